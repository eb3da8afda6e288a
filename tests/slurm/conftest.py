"""A real single-node SLURM cluster for the tests in this folder (see cluster.py), and helpers to run the
workflow through workflow/profiles/slurm.

Each test module gets its own cluster (module scope): the node's shape can differ per module through a
module-level ``SLURM_NODE = dict(cpus=..., memory_mb=..., oversized=...)``. Starting one takes a few
seconds (plus ~10 s of apt-get the first time on a fresh machine)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fixtures import job_counts

from .cluster import Cluster, ClusterError, exclusive, unavailable_reason

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent  # the venv running pytest also holds snakemake and eebench
PROFILE = REPO / "workflow/profiles/slurm"
# The plugin's log line for every sbatch submission (snakemake-executor-plugin-slurm 2.x, run_job):
#   "Job 3 has been submitted with SLURM jobid 17 (log: .../.snakemake/slurm_logs/rule_x/.../17.log)."
SUBMITTED = re.compile(r"Job (\d+) has been submitted with SLURM jobid (\d+)")
# Poll SLURM every few seconds instead of the plugin's 40 s: the jobs here take seconds, not hours.
FAST_POLLING = ("--slurm-init-seconds-before-status-checks", "2", "--seconds-between-status-checks", "2")


@pytest.fixture(scope="module")
def slurm_cluster(request, tmp_path_factory):
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    shape = getattr(request.module, "SLURM_NODE", {})
    cluster = Cluster(tmp_path_factory.mktemp("slurm"), **shape)
    log = lambda message: print(message, file=sys.stderr)  # noqa: E731
    with exclusive(log=log):
        try:
            cluster.start(log=log)
        except ClusterError as error:
            pytest.fail(f"could not start a local SLURM cluster: {error}")
        try:
            yield cluster
        finally:
            cluster.stop(log=lambda message: None)
            assert not cluster.started(), f"daemons left running: {cluster.started()}"


def local_rules() -> set[str]:
    """The workflow's ``localrules:`` (workflow/rules/common.smk): these must never reach sbatch."""
    text = (REPO / "workflow/rules/common.smk").read_text()
    block = re.search(r"^localrules:\n((?:[ \t]+\w+,?[ \t]*\n)+)", text, re.M)
    assert block, "no localrules block in workflow/rules/common.smk"
    return set(re.findall(r"\w+", block.group(1)))


def remote_counts(plan: dict[str, int]) -> Counter:
    """Jobs per rule of a plan that the executor submits: everything but local rules, `all` and the total."""
    local = local_rules() | {"all", "total"}
    return Counter({rule: n for rule, n in plan.items() if rule not in local})


@dataclass
class Run:
    command: list[str]
    returncode: int
    output: str  # stdout and stderr together
    seconds: float

    def slurm_ids(self) -> list[str]:
        return [slurm for _, slurm in SUBMITTED.findall(self.output)]


def snakemake(workdir: Path, *args: str, extra_path: Path | None = None, check: bool = True,
              timeout: float = 900) -> Run:
    """Run the repository's Snakefile in ``workdir`` with the venv's bin (and ``extra_path``) first on PATH;
    sbatch exports this environment to the jobs, so they find ``eebench`` and ``snakemake`` too."""
    path = [str(p) for p in (extra_path, BIN) if p] + [os.environ.get("PATH", "")]
    env = {**os.environ, "PATH": os.pathsep.join(path)}
    command = [str(BIN / "snakemake"), "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir), *args]
    start = time.monotonic()
    result = subprocess.run(command, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, timeout=timeout)
    run = Run(command, result.returncode, result.stdout, time.monotonic() - start)
    if check and run.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed after {run.seconds:.0f} s:\n{run.output[-6000:]}")
    return run


def show_job(job_id: str) -> dict[str, str]:
    """``scontrol show job`` as a dict (JobState, Comment, TresPerJob, ...)."""
    result = subprocess.run(["scontrol", "-o", "show", "job", job_id], capture_output=True, text=True)
    assert result.returncode == 0, f"scontrol show job {job_id}: {result.stderr}"
    fields = {}
    for token in result.stdout.split():
        key, _, value = token.partition("=")
        fields.setdefault(key, value)
    return fields


def comment_rule(comment: str, rules: set[str]) -> str:
    """The rule of a job from the plugin's ``--comment rule_<name>[_wildcards_<...>]``."""
    assert comment.startswith("rule_"), comment
    name = comment[len("rule_"):].split("_wildcards_")[0]
    assert name in rules, f"comment {comment!r} names no rule of {sorted(rules)}"
    return name
