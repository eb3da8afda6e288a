"""The paper-scale configs (config/paper/*.yaml): each plans every table and figure it names, asks the GPUs it
says, and the names they share mean the same settings in every file.

Each file is dry-run in its own working directory, with every path it reads from disk (dataset roots and
tokenizer directories, ViT weights, BERT model directories) pointed at fixtures that exist: empty directories,
an empty weights file (weights are never read while planning: models are built on the meta device), and a BERT
directory holding only a bert-base config.json (what ``bert`` reads on the meta device).

The files are not merged into one run: each is a whole experiment with its own global training settings,
budgets and resources, so a merged config would not be any of them. The sum of the per-file dry-run times is
printed instead (``pytest -s``)."""
from __future__ import annotations

import copy
import re
import time
from pathlib import Path

import pytest
import yaml

from eebench import config as ee
from eebench import targets

from tests.fixtures import with_fixtures, write_bert_base_config

from .conftest import REPO, job_counts, snakemake, write_config

SUITE = REPO / "config" / "paper" / "all.yaml"  # every file below as one experiment
PAPER_CONFIGS = sorted(path for path in (REPO / "config" / "paper").glob("*.yaml") if path != SUITE)
GPU_RULES = ("train_model", "train_static_head")
DRY_RUN_SECONDS: dict[str, float] = {}


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory) -> Path:
    return write_bert_base_config(tmp_path_factory.mktemp("bert-base-uncased"))


def planned_outputs(output: str) -> set[str]:
    return {name.strip() for line in output.splitlines() if line.strip().startswith("output:")
            for name in line.split(":", 1)[1].split(",")}


def planned_jobs(output: str) -> list[dict[str, str]]:
    """Each planned job of a dry run (with --printshellcmds): its rule, output, resources line and shell
    command."""
    jobs, job = [], None
    for line in output.splitlines():
        started = re.match(r"^(local)?rule (\w+):$", line.strip())
        if started:
            job = {"rule": started.group(2), "output": "", "resources": "", "shell": ""}
            jobs.append(job)
        elif job is not None and line.strip().startswith("output:"):
            job["output"] = line.split(":", 1)[1].strip()
        elif job is not None and line.strip().startswith("resources:"):
            job["resources"] = line.strip()
        elif job is not None and line.startswith("Shell command: "):
            job["shell"] = line.split(":", 1)[1].strip()
    return jobs


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory, bert_dir):
    """``dry_run(path)``: the stdout of ``snakemake --dry-run --printshellcmds`` on that paper config (with
    fixtures) in a working directory of its own, planned once per test module; the time is kept."""
    planned: dict[str, str] = {}

    def run(path: Path) -> str:
        if path.name not in planned:
            workdir = tmp_path_factory.mktemp(path.stem)
            write_config(workdir, with_fixtures(load(path), workdir, bert_dir))
            start = time.perf_counter()
            result = snakemake(workdir, "--dry-run", "--printshellcmds")
            DRY_RUN_SECONDS[path.name] = time.perf_counter() - start
            planned[path.name] = result.stdout
        return planned[path.name]

    return run


def test_there_are_paper_configs():
    assert len(PAPER_CONFIGS) >= 10, [p.name for p in PAPER_CONFIGS]


@pytest.mark.parametrize("path", PAPER_CONFIGS, ids=lambda p: p.stem)
def test_paper_config_plans_every_table_and_figure_with_its_gpus(path, dry_run):
    config = load(path)
    stdout = dry_run(path)
    counts = job_counts(stdout)
    print(f"{path.name}: {DRY_RUN_SECONDS[path.name]:.1f} s, {counts}")

    planned = planned_outputs(stdout)
    tables, figures = config.get("tables", {}), config.get("figures", {})
    assert tables or figures, f"{path.name} names no table or figure"
    missing = ([f"paper/tables/{t}.tex" for t in tables if f"paper/tables/{t}.tex" not in planned]
               + [f"paper/figures/{f}.pdf" for f in figures if f"paper/figures/{f}.pdf" not in planned])
    assert not missing, f"{path.name}: not planned: {missing}"
    assert counts.get("render_table", 0) == len(tables) and counts.get("render_figure", 0) == len(figures)
    assert counts["train_model"] > 0 and "train_static_head" not in counts  # paper B: no static heads

    # Every GPU job asks what the config's resources say (its model setting's own, else the rule's), and
    # training runs one process per GPU.
    jobs = planned_jobs(stdout)
    for rule in GPU_RULES:
        ruled = [job for job in jobs if job["rule"] == rule]
        assert len(ruled) == counts.get(rule, 0)
        for job in ruled:
            model = job["output"].split("/")[2]  # results/<stage>/<model>/...
            gpus = targets.resource(config, rule, "gpu", model)
            assert re.search(rf"\bgpu={gpus}\b", job["resources"]), (rule, job["resources"])
            if rule == "train_model":
                assert f"--nproc {max(1, gpus)} " in job["shell"], job["shell"]


def test_table1_trains_the_imagenet_settings_on_their_own_files_four_gpus(dry_run):
    """models.<name>.resources: in table1.yaml (one GPU per job) the two ImageNet settings ask 4, as their own
    files do, so the same job has the same --nproc in either file."""
    jobs = [job for job in planned_jobs(dry_run(REPO / "config/paper/table1.yaml")) if job["rule"] == "train_model"]
    by_model = {}
    for job in jobs:
        by_model.setdefault(job["output"].split("/")[2], set()).add(
            (re.search(r"\bgpu=(\d+)", job["resources"]).group(1), re.search(r"--nproc (\d+) ", job["shell"]).group(1)))
    assert by_model.pop("vit_t_imagenet") == by_model.pop("vit_s_imagenet") == {("4", "4")}
    assert set().union(*by_model.values()) == {("1", "1")} and len(by_model) == 4


def test_the_imagenet_vit_t_setting_trains_on_four_gpus(dry_run):
    """App. E.5: "4 A-100 GPUs with an effective batch size of 2048": gpu=4 per training job, four processes,
    the global batch 2048; rank 0 alone caches the logits at the end."""
    path = REPO / "config/paper/vit_t_imagenet.yaml"
    config = load(path)
    assert config["training"]["batch_size"] == 2048 and config["resources"]["train_model"]["gpu"] == 4
    jobs = planned_jobs(dry_run(path))
    training = [job for job in jobs if job["rule"] == "train_model"]
    assert len(training) == 12  # 3 seeds x (phase 1 + disjoint, joint, mixed)
    assert all("gpu=4" in job["resources"] and "--nproc 4 " in job["shell"] for job in training)
    assert all("--logits results/logits/vit_t_imagenet/" in job["shell"] for job in training)


# App. E's exit positions, as our 0-based block indices of every head (the last = the final classifier); the
# reasons are in the configs' comments.
APPENDIX_E_HEADS = {
    "resnet34_cifar100": [2, 4, 6, 8, 10, 12, 14, 15],         # E.1 {2, 4, ..., 14}; 16 residual blocks
    "msdnet_cifar100": list(range(19)),                          # E.2 {0..17}; 19 modules (granularity: layer)
    "vit_t_cifar100": list(range(7)),                            # E.3 {0..6}; 7 layers, 6 = final classifier
    "resnet50_tinyimagenet": list(range(1, 16)),                 # E.4 {1..14}; 16 bottleneck blocks
    "vit_t_imagenet": list(range(1, 12)),                        # E.5 {1..10}; 12 layers
    "bert_newsgroups": list(range(12)),                          # E.6 {1, 3, ..., 21} = ends of layers 0..10
    "bert_stsb": list(range(12)),                                # E.7: as E.6
    "vit_b_cifar100": [3, 5, 7, 9, 11],                          # E.8 {3, 5, ..., 9}; 12 layers
}


def test_appendix_e_positions_map_onto_these_blocks(tmp_path, bert_dir):
    models = {}
    for path in PAPER_CONFIGS:
        models.update(ee.resolve_models(with_fixtures(load(path), tmp_path, bert_dir)))
    assert {name: ee.head_blocks(models[name]) for name in APPENDIX_E_HEADS} == APPENDIX_E_HEADS


def test_names_shared_between_paper_configs_mean_the_same_settings():
    """A dataset or model name in two files is the same setting in both (so one working directory can hold every
    file's results, and table1.yaml's runs are the per-setting files' runs); output names never collide."""
    seen_models: dict[str, tuple[str, dict]] = {}
    seen_datasets: dict[str, tuple[str, dict]] = {}
    outputs: dict[str, str] = {}
    for path in PAPER_CONFIGS:
        config = load(path)
        for name, entry in ee.resolve_models(config).items():
            # GPUs as the jobs get them (a model's own, else the file's): the process count is a job parameter,
            # so a difference would rerun the job. (Memory and wall-time may differ: they never rerun one.)
            entry.pop("resources", None)
            gpus = {rule: targets.resource(config, rule, "gpu", name) for rule in GPU_RULES}
            settings = {**entry, "dataset_params": config["datasets"][entry["dataset"]], "gpus": gpus}
            first = seen_models.setdefault(name, (path.name, settings))
            assert first[1] == settings, f"model {name!r} differs between {first[0]} and {path.name}"
        for name, params in config["datasets"].items():
            first = seen_datasets.setdefault(name, (path.name, params))
            assert first[1] == params, f"dataset {name!r} differs between {first[0]} and {path.name}"
        for section in ("tables", "figures"):
            for name in config.get(section, {}):
                first = outputs.setdefault(f"{section}/{name}", path.name)
                assert first == path.name, f"{section}.{name} is in both {first} and {path.name}"
    # Table 1's settings are all defined elsewhere too (it only gathers them).
    table1 = load(REPO / "config/paper/table1.yaml")
    elsewhere = {name for path in PAPER_CONFIGS if path.name != "table1.yaml" for name in load(path)["models"]}
    assert set(table1["models"]) <= elsewhere


def test_sum_of_the_paper_configs_dry_run_times(dry_run):
    """Plans what the tests above did not (e.g. under -k), then prints the total planning time (pytest -s)."""
    for path in PAPER_CONFIGS:
        dry_run(path)
    total = sum(DRY_RUN_SECONDS[p.name] for p in PAPER_CONFIGS)
    print("dry-run seconds: " + ", ".join(f"{p.stem} {DRY_RUN_SECONDS[p.name]:.1f}" for p in PAPER_CONFIGS)
          + f"; sum {total:.1f}")


def test_the_suite_of_every_paper_config_plans_all_of_them_at_once(tmp_path, bert_dir, monkeypatch):
    """config/paper/all.yaml lists every file; expanded, one dry run plans every table and figure of all of
    them, each job with its own file's parameters (a job's shell command is the same as in its file's own
    plan). Its planning time is printed (pytest -s); the README states the measured figure."""
    monkeypatch.chdir(REPO)  # include paths are relative to the working directory
    suite = load(SUITE)
    assert sorted(suite["include"]) == sorted(str(p.relative_to(REPO)) for p in PAPER_CONFIGS)
    expanded = ee.expand_includes(suite)
    workdir = tmp_path / "suite"
    workdir.mkdir()
    write_config(workdir, with_fixtures(expanded, workdir, bert_dir))
    start = time.perf_counter()
    stdout = snakemake(workdir, "--dry-run", "--printshellcmds").stdout
    seconds = time.perf_counter() - start
    counts = job_counts(stdout)
    print(f"suite of {len(PAPER_CONFIGS)} paper configs: one dry run {seconds:.1f} s, {counts}")
    planned = planned_outputs(stdout)
    for path in PAPER_CONFIGS:
        config = load(path)
        wanted = ([f"paper/tables/{t}.tex" for t in config.get("tables", {})]
                  + [f"paper/figures/{f}.pdf" for f in config.get("figures", {})])
        assert set(wanted) <= planned, path.name
    # Each file's budgets stay its own: vit_b_cifar100's tables read 35% budget files.
    assert any(output.startswith("results/budgets/vit_b_cifar100/") and "/35-50-75-100/" in output
               for output in planned)
    jobs = {job["output"]: job for job in planned_jobs(stdout)}
    vit_t = [job for output, job in jobs.items() if output.startswith("results/models/vit_t_imagenet/")]
    assert vit_t and all("gpu=4" in job["resources"] and "--nproc 4 " in job["shell"] for job in vit_t)
