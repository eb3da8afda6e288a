"""A paper-scale config's resources reach sbatch: GPU, memory, wall time and CPUs of the training jobs (which
also cache their logits), read from the sbatch command lines the SLURM plugin really runs; rendering and the other local rules
never reach sbatch.

A fake ``sbatch`` first on PATH appends its argv to a file and execs the real one, so the jobs run on the
test cluster. The node claims as many CPUs and as much memory as the config asks for (nothing enforces
either here) and one GPU backed by /dev/null, so the jobs are scheduled and then train on the CPU. To keep
this fast, the config is shrunk where it does not touch resources: one seed, one epoch, one regime in the
table (mixed: two training jobs, phase 1 and mixed's phase 2), a tiny CIFAR-100 in the official pickle layout (20 train
images, half of them for validation)."""
from __future__ import annotations

import json
import shutil
import stat
from collections import Counter
from pathlib import Path

import pytest
import yaml

from tests.fixtures import write_cifar100

from .conftest import (BIN, FAST_POLLING, PROFILE, REPO, comment_rule, job_counts, local_rules, remote_counts, show_job,
                       snakemake)

pytestmark = pytest.mark.slow  # real SLURM jobs: about a minute

PAPER_CONFIG = REPO / "config/paper/resnet34_cifar100.yaml"
GPU_RULES = ("train_model", "train_static_head")
GPU_PARTITION = "gpu"  # a second partition on the test node, chosen for train_model on the command line


def paper_config() -> dict:
    return yaml.safe_load(PAPER_CONFIG.read_text())


def resource(config: dict, rule: str, key: str):
    """What the workflow asks for: the rule's entry under `resources:`, else `default` (eebench.targets.resource)."""
    resources = config["resources"]
    return resources.get(rule, {}).get(key, resources["default"][key])


def _node() -> dict:
    """A node big enough for every request of the paper config (it claims more than this machine has)."""
    if not PAPER_CONFIG.exists():
        return {}
    config = paper_config()
    rules = ("default", *GPU_RULES)
    return dict(
        cpus=max(2, *(resource(config, r, "threads") for r in rules)),
        memory_mb=max(resource(config, r, "mem_mb") for r in rules),
        gpus=max(1, *(resource(config, r, "gpu") for r in rules)),
        oversized=True,
        extra_partitions=(GPU_PARTITION,),
    )


SLURM_NODE = _node()


def fake_sbatch(directory: Path, record: Path) -> Path:
    """An ``sbatch`` that appends its argv (one JSON list per line) to ``record``, then runs the real one."""
    real = shutil.which("sbatch")
    assert real, "no sbatch on PATH"
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / "sbatch"
    script.write_text(
        f"#!{BIN / 'python'}\n"
        "import json, os, sys\n"
        f"with open({str(record)!r}, 'a') as handle:\n"
        "    handle.write(json.dumps(sys.argv[1:]) + '\\n')\n"
        f"os.execv({real!r}, [{real!r}, *sys.argv[1:]])\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return directory


def option(argv: list[str], *names: str) -> str | None:
    """The value of an sbatch option given as ``--name value``, ``--name=value`` or ``-x value``."""
    for i, token in enumerate(argv):
        for name in names:
            if token == name and i + 1 < len(argv):
                return argv[i + 1]
            if name.startswith("--") and token.startswith(name + "="):
                return token[len(name) + 1:]
    return None


@pytest.fixture(scope="module")
def paper_run(slurm_cluster, tmp_path_factory):
    """The paper config's table through the SLURM profile, with every sbatch argv recorded."""
    if not PAPER_CONFIG.exists():
        pytest.fail(f"{PAPER_CONFIG.relative_to(REPO)} is missing")
    workdir = tmp_path_factory.mktemp("paper")
    config = paper_config()
    root = write_cifar100(workdir / "cifar100", classes=10, test=10)
    dataset = config["datasets"]["cifar100"]
    dataset.update(root=str(root), val_fraction=0.5)  # one image per class in val, one in train
    config["seeds"] = config["seeds"][:1]
    config["training"].update(max_epochs=1, patience=1, num_workers=0)
    table = next(iter(config["tables"]))
    config["tables"][table]["regimes"] = ["mixed"]
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    target = f"paper/tables/{table}.tex"

    record = workdir / "sbatch-argv.jsonl"
    bin_dir = fake_sbatch(workdir / "fake-bin", record)
    plan = job_counts(snakemake(workdir, target, "--profile", str(PROFILE), "--dry-run").output)
    run = snakemake(workdir, target, "--profile", str(PROFILE),
                    "--set-resources", f"train_model:slurm_partition={GPU_PARTITION}", *FAST_POLLING, extra_path=bin_dir)
    calls = [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []
    return dict(workdir=workdir, config=config, target=target, plan=plan, run=run, calls=calls)


def test_training_jobs_carry_the_configs_gpu_memory_time_and_cpus(paper_run):
    config, calls = paper_run["config"], paper_run["calls"]
    rules = set(paper_run["plan"]) - {"total"}
    by_rule: dict[str, list[list[str]]] = {}
    for argv in calls:
        by_rule.setdefault(comment_rule(option(argv, "--comment"), rules), []).append(argv)
    assert set(by_rule) == {"train_model"} and len(by_rule["train_model"]) == 2, by_rule.keys()
    for rule, argvs in by_rule.items():
        gpus = resource(config, rule, "gpu")
        assert gpus >= 1, f"{PAPER_CONFIG.name} asks no GPU for {rule}"
        for argv in argvs:
            assert option(argv, "--gpus") == str(gpus) or option(argv, "--gres") == f"gpu:{gpus}", argv
            assert option(argv, "--mem") == str(resource(config, rule, "mem_mb")), argv
            assert option(argv, "-t", "--time") == str(resource(config, rule, "runtime")), argv
            assert option(argv, "--cpus-per-task", "-c") == str(resource(config, rule, "threads")), argv


def test_every_gpu_job_ran_on_the_cluster_and_local_rules_never_reached_sbatch(paper_run):
    run, plan, workdir = paper_run["run"], paper_run["plan"], paper_run["workdir"]
    assert (workdir / paper_run["target"]).stat().st_size > 0
    expected = remote_counts(plan)
    assert expected == Counter({"train_model": 2}), plan
    calls = paper_run["calls"]
    assert len(calls) == sum(expected.values())
    comments = [option(argv, "--comment") for argv in calls]
    assert not any(comment_rule(c, set(plan)) in local_rules() for c in comments)
    ids = run.slurm_ids()
    assert len(ids) == len(calls)
    for job_id in ids:
        job = show_job(job_id)
        assert job["JobState"] == "COMPLETED", job
        assert "gpu" in job.get("TresPerJob", "") + job.get("TresPerNode", ""), job  # asked for and scheduled with a GPU
    ran_locally = {rule for rule in local_rules() if f"localrule {rule}:" in run.output}
    assert ran_locally == {rule for rule in plan if rule in local_rules()}
    assert "render_table" in ran_locally


def test_partition_from_the_command_line(paper_run):
    """The config's partition is "" (the cluster's default, which tests/slurm/test_slurm_run.py checks);
    `--set-resources train_model:slurm_partition=gpu` overrides it for the rule."""
    rules = set(paper_run["plan"]) - {"total"}
    partitions = {(comment_rule(option(argv, "--comment"), rules), option(argv, "-p", "--partition"))
                  for argv in paper_run["calls"]}
    assert resource(paper_run["config"], "train_model", "partition") == ""
    assert partitions == {("train_model", GPU_PARTITION)}
    for job_id in paper_run["run"].slurm_ids():
        assert show_job(job_id)["Partition"] == GPU_PARTITION
