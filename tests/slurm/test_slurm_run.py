"""A real target of the default config through workflow/profiles/slurm on a real (one-node) SLURM cluster:
every non-local job goes through sbatch and completes there; local rules run in the Snakemake process."""
from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

from .conftest import (FAST_POLLING, PROFILE, REPO, comment_rule, job_counts, local_rules, remote_counts, show_job,
                       snakemake)

pytestmark = pytest.mark.slow  # real SLURM jobs: about two minutes

TARGET = "paper/tables/regimes.tex"


def small_config(workdir: Path) -> None:
    """The default config, shrunk for speed: one seed, 3 epochs per phase, the regimes of paper B §2 only
    (each job through SLURM costs its polling overhead)."""
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["seeds"] = [0]
    config["training"]["max_epochs"] = 3
    config["tables"]["regimes"]["regimes"] = ["disjoint", "joint", "mixed"]
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def test_regimes_table_runs_through_sbatch(slurm_cluster, tmp_path):
    small_config(tmp_path)
    plan = job_counts(snakemake(tmp_path, TARGET, "--profile", str(PROFILE), "--dry-run").output)
    expected = remote_counts(plan)
    assert expected == Counter({"train_model": 4}), plan  # backbone/disjoint/joint/mixed, each caching its logits

    run = snakemake(tmp_path, TARGET, "--profile", str(PROFILE), *FAST_POLLING)

    for output in ("paper/tables/regimes.tex", "paper/tables/regimes.csv"):
        assert (tmp_path / output).stat().st_size > 0, output
    ids = run.slurm_ids()
    assert len(ids) == len(set(ids)) == sum(expected.values()), run.output[-4000:]
    jobs = {job_id: show_job(job_id) for job_id in ids}
    assert {job_id: job["JobState"] for job_id, job in jobs.items()} == dict.fromkeys(ids, "COMPLETED")
    rules = set(plan) - {"total"}
    assert Counter(comment_rule(job["Comment"], rules) for job in jobs.values()) == expected
    # The config names no partition (""): the plugin asks sinfo for the cluster's default and names it.
    assert {job["Partition"] for job in jobs.values()} == {"debug"}
    # The local rules ran here, in the Snakemake process, never through sbatch.
    ran_locally = {rule for rule in local_rules() if f"localrule {rule}:" in run.output}
    assert ran_locally == {rule for rule in plan if rule in local_rules()}
    print(f"\nSLURM run of {TARGET}: {run.seconds:.1f} s wall, {len(ids)} sbatch jobs "
          f"({dict(expected)})", file=sys.stderr)
