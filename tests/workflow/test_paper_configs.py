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
    assert counts["train_model"] > 0
    # Static per-head baselines are paper A's B_EE figures' (kind: bee), read by their B_EE jobs only (a run's
    # metrics job never waits for them); paper B has none.
    if any(spec["kind"] == "bee" for spec in figures.values()):
        assert counts.get("train_static_head", 0) > 0 and counts.get("compute_bee", 0) > 0
    else:
        assert "train_static_head" not in counts and "compute_bee" not in counts
    assert not [job for job in planned_jobs(stdout) if job["rule"] == "compute_metrics" and "/static/" in job["shell"]]

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
    seen_criteria: dict[str, tuple[str, dict]] = {}
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
        for name, setting in config.get("criteria", {}).items():  # a sweep's path carries the name
            first = seen_criteria.setdefault(name, (path.name, setting))
            assert first[1] == setting, f"criterion {name!r} differs between {first[0]} and {path.name}"
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
    jobs = {job["output"]: job for job in planned_jobs(stdout)}
    # Each file's budgets stay its own: vit_b_cifar100's tables read 35% budget files, which its runs' metrics
    # jobs write.
    assert any(output.startswith("results/metrics/vit_b_cifar100/") and '"budgets":[0.35,0.5,0.75,1.0]' in job["shell"]
               for output, job in jobs.items() if job["rule"] == "compute_metrics")
    vit_t = [job for output, job in jobs.items() if output.startswith("results/models/vit_t_imagenet/")]
    assert vit_t and all("gpu=4" in job["resources"] and "--nproc 4 " in job["shell"] for job in vit_t)
    # Paper A's ImageNet-1k runs (Fig. 2) keep their 4 GPUs, static heads included; its other runs ask one.
    paper_a = [job for output, job in jobs.items() if output.startswith("results/models/a_")]
    in_1k = [job for job in paper_a if job["output"].startswith("results/models/a_resnet50_imagenet1000_")]
    assert {job["rule"] for job in in_1k} == set(GPU_RULES)
    assert all("gpu=4" in job["resources"] for job in in_1k)
    assert all("gpu=1" in job["resources"] for job in paper_a if job not in in_1k)
    # Paper B's analysis jobs keep their file's settings (analysis:) and GPUs (its resources, made its model's own).
    paths = [job for output, job in jobs.items() if output.startswith("results/analysis/mode_connectivity/")]
    assert len(paths) == 9 and all('"points":21' in job["shell"] and "gpu=1" in job["resources"] for job in paths)


def test_paper_b_figs_3_and_6_analyse_sdn_resnet20_on_cifar10_on_gpus(dry_run):
    """Fig. 3 (mode connectivity) and Fig. 6 (loss landscapes, head 1) of "SDN ... with Resnet20 as backbone
    trained on the CIFAR-10 dataset": one path per regime pair and seed, one landscape per regime (seed 0); the
    analysis jobs ask for a GPU as the file says, and read the training jobs' checkpoints."""
    path = REPO / "config/paper/b_analysis_resnet20_cifar10.yaml"
    config = load(path)
    (name, model), = config["models"].items()
    assert (model["backbone"], model["ic"], model["dataset"]) == ("resnet20", {"type": "sdn"}, "cifar10")
    fig3, fig6 = (config["figures"][f"{name}_{kind}"] for kind in ("mode_connectivity", "loss_landscape"))
    assert fig3["pairs"] == [["disjoint", "mixed"], ["joint", "mixed"], ["disjoint", "joint"]]
    assert fig6["regimes"] == ["joint", "mixed", "disjoint"] and fig6["head"] == 1 and fig6["seeds"] == [0]
    jobs = planned_jobs(dry_run(path))
    outputs = {job["rule"]: set() for job in jobs}
    for job in jobs:
        outputs[job["rule"]].add(job["output"])
    assert outputs["connect_modes"] == {f"results/analysis/mode_connectivity/{name}/{pair}/seed{seed}.csv"
                                        for pair in ("disjoint-mixed", "joint-mixed", "disjoint-joint")
                                        for seed in (0, 1, 2)}
    assert outputs["map_loss_landscape"] == {f"results/analysis/loss_landscape/{name}/{regime}/seed0.csv"
                                             for regime in ("joint", "mixed", "disjoint")}
    analyses = [job for job in jobs if job["rule"] in ("connect_modes", "map_loss_landscape")]
    assert all(re.search(r"\bgpu=1\b", job["resources"]) for job in analyses)
    assert all(f"--checkpoints results/models/{name}/" in job["shell"] for job in analyses
               if job["rule"] == "connect_modes")
    # Figs 4-5 (no setting named; read here): each block's rank and I(X; Z) of the plain network, joint, mixed.
    assert outputs["analyze_layers"] == {f"results/analysis/{analysis}/{name}/{regime}/seed{seed}.csv"
                                         for analysis in ("numerical_rank", "mutual_information")
                                         for regime in ("backbone", "joint", "mixed") for seed in (0, 1, 2)}


# Paper A (Bałazy et al.): Figs 2-6 ------------------------------------------------------------------------------

FIG2, FIG3, FIG4, FIG5, FIG6 = (REPO / "config" / "paper" / f"{stem}.yaml" for stem in (
    "a_fig2_imagenet_classes", "a_fig3_single_vs_multi_label", "a_fig4_rank_patience_voc", "a_fig5_learned_exit",
    "a_fig6_voc_binary_classes"))
PAPER_A_CONFIGS = [FIG2, FIG3, FIG4, FIG5, FIG6]
RESNET50_WEIGHTS = "models/resnet50-0676ba61.pth"  # torchvision's IMAGENET1K_V1, a local file
LR_GRID = {0.001, 0.0001, 0.00001}                   # §4.1, §4.2: lambda in {1e-3, 1e-4, 1e-5}


def resolved(path: Path) -> tuple[dict, dict[str, dict]]:
    config = load(path)
    return config, ee.resolve_models(config)


def line_entries(spec: dict) -> list[tuple[str, list[str], str]]:
    """(label, models, criterion) of each line of a B_EE figure."""
    return [(line["label"], line["models"], line.get("criterion", spec["criterion"])) for line in spec["lines"]]


def lr_grid_of_one_setting(models: dict[str, dict], names: list[str]) -> str:
    """The dataset of a pooled lr grid: the entries differ in the learning rate only, one each of the grid."""
    entries = [models[name] for name in names]
    assert {entry["training"]["lr"] for entry in entries} == LR_GRID and len(entries) == 3, names
    stripped = [{**entry, "training": {**entry["training"], "lr": None}, "resources": None} for entry in entries]
    assert all(entry == stripped[0] for entry in stripped), names
    return entries[0]["dataset"]


def test_paper_a_models_fine_tune_the_pretrained_resnet50():
    assert set(PAPER_A_CONFIGS) <= set(PAPER_CONFIGS)
    for path in PAPER_A_CONFIGS:
        config, models = resolved(path)
        for name, entry in models.items():
            assert name.startswith("a_"), name
            # §4: "a pre-trained ResNet50 model as the backbone", an IC after every bottleneck block (§3)
            assert entry["backbone"] == "resnet50" and entry["params"] == {"weights": RESNET50_WEIGHTS}, name
            assert entry["ic"] == {"type": "sdn"} and entry["placement"] is None, name
            assert entry["training"]["lr"] in LR_GRID, name
        assert all(name.startswith("a_") for name in config["datasets"])
        assert all(name.startswith("a_") for name in config["figures"])


def test_paper_a_fig2_pools_three_learning_rates_per_class_count():
    config, models = resolved(FIG2)
    (spec,) = config["figures"].values()
    assert spec["kind"] == "bee" and spec["criterion"] == "confidence" and spec["seeds"] == [0]
    counts, subsets = [], []
    for label, names, criterion in line_entries(spec):
        assert criterion == "confidence"
        dataset = config["datasets"][lr_grid_of_one_setting(models, names)]
        assert dataset["loader"] == "imagenet"
        classes = dataset.get("classes")
        counts.append(1000 if classes is None else len(classes))
        subsets.append(classes)
        assert label == f"{counts[-1]} classes"
    assert counts == [2, 10, 100, 1000]
    # Nested random subsets: each the start of the next.
    assert all(small == large[:len(small)] for small, large in zip(subsets[:-2], subsets[1:-1]))


def test_paper_a_fig3_pools_the_sigmoid_and_softmax_variants_of_each_multi_label_dataset():
    config, models = resolved(FIG3)
    (spec,) = config["figures"].values()
    assert spec["seeds"] == [0]
    by_label: dict[str, list[tuple[str | None, str, str]]] = {}
    for label, names, criterion in line_entries(spec):
        dataset = lr_grid_of_one_setting(models, names)
        by_label.setdefault(label, []).append((models[names[0]]["task"], criterion, dataset))
    (single, single_runs), *multi = by_label.items()  # the first line: the p-values' reference
    assert single.startswith("Single-label") and {run[:2] for run in single_runs} == {(None, "confidence"),
                                                                                     (None, "entropy")}
    assert config["datasets"][single_runs[0][2]]["loader"] == "imagenet"
    thresholds = {0.01, 0.05, 0.1, 0.2, 0.3}  # §4.2: softmax positives
    loaders = []
    for label, runs in multi:
        datasets = {config["datasets"][dataset].get("loader", dataset) for *_, dataset in runs}
        assert len({dataset for *_, dataset in runs}) == 1, label  # one dataset per line
        loaders += datasets
        sigmoid = {criterion for task, criterion, _ in runs if task is None}
        softmax = {criterion for task, criterion, _ in runs if task == "multi_label_softmax"}
        assert sigmoid == {"confidence", "entropy"} and len(runs) == 2 + len(thresholds), label
        settings = [config["criteria"][name] for name in softmax]
        assert all(setting["criterion"] == "entropy" for setting in settings)
        assert {setting["positive_threshold"] for setting in settings} == thresholds
    assert sorted(loaders) == ["coco", "imagenet_composite", "voc2007"]
    # The composites' n = 10 classes are the single-label line's 10 classes (and Fig. 2's).
    composite = config["datasets"]["a_imagenet_composite"]
    assert composite["classes"] == config["datasets"][single_runs[0][2]]["classes"] == \
        load(FIG2)["datasets"]["a_imagenet10"]["classes"]
    assert composite["m_values"] == [2, 4] and len(composite["classes"]) == 10


def test_paper_a_fig4_covers_the_rank_patience_and_hybrid_grid_on_voc():
    config, models = resolved(FIG4)
    (spec,) = config["figures"].values()
    entries = line_entries(spec)
    assert entries[0][2] == "confidence"
    assert {lr_grid_of_one_setting(models, names) for _, names, _ in entries} == {"a_voc2007"}
    assert all(models[names[0]]["task"] is None for _, names, _ in entries)  # the sigmoid models
    ndcg, kendall = {0.001, 0.01, 0.05, 0.1, 0.15}, {0.7, 0.8, 0.9, 0.95}
    settings = [config["criteria"][criterion] for _, _, criterion in entries[1:]]
    rank = {(s["agreement"], s["tolerance"]) for s in settings if s["criterion"] == "rank_patience"}
    assert rank == {("ndcg", t) for t in ndcg} | {("kendall", t) for t in kendall}
    hybrid = [(s["base"], s["agreement"], s["tolerance"], s["patience"]) for s in settings if s["criterion"] == "hybrid"]
    assert sorted(hybrid) == sorted({(base, agreement, t, p) for base in ("confidence", "entropy")
                                     for agreement, tolerances in (("ndcg", ndcg), ("kendall", kendall))
                                     for t in tolerances for p in range(2, 7)})
    assert len(settings) == len(rank) + len(hybrid)


def test_paper_a_fig5_sets_the_learned_exit_beside_confidence_and_entropy_per_dataset():
    config, models = resolved(FIG5)
    loaders = []
    for spec in config["figures"].values():
        entries = line_entries(spec)
        (dataset,) = {lr_grid_of_one_setting(models, names) for _, names, _ in entries}
        loaders.append(config["datasets"][dataset]["loader"])
        assert [criterion for _, _, criterion in entries[:2]] == ["confidence", "entropy"]
        learned = [config["criteria"][criterion] for _, _, criterion in entries[2:]]
        assert learned and all(s["criterion"] == "learned_exit" and s["loss"] == "mse_regularised" for s in learned)
        assert len({s["alpha"] for s in learned}) == len(learned)  # one line per setting
    assert sorted(loaders) == ["coco", "imagenet_composite", "voc2007"]


def test_paper_a_bee_figures_plan_a_static_baseline_for_every_head(dry_run, tmp_path, bert_dir):
    """§4: "each internal classifier head is fine-tuned independently ... resulting in H distinct static
    models": every B_EE model's 15 IC blocks get a static-head job (seed 0), its last head is the phase-1 run."""
    for path in (FIG2, FIG3, FIG4, FIG5):
        config = with_fixtures(load(path), tmp_path / path.stem, bert_dir)
        planned = planned_outputs(dry_run(path))
        wanted_static, wanted_models = set(), set()
        for spec in config["figures"].values():
            for _, names, _ in line_entries(spec):
                for name in names:
                    assert len(ee.head_blocks(ee.model_entry(config, name))) == 16  # 15 ICs + the final head
                    *static, backbone = targets.static_head_paths(config, name, 0)
                    wanted_static.update(static)
                    wanted_models |= {backbone, targets.model_path(name, "joint", 0)}
        assert {out for out in planned if "/static/" in out and out.endswith("model.pt")} == wanted_static, path.name
        assert wanted_models <= planned, path.name
        # One B_EE job per B_EE model (its joint run, seed 0), all of the run's criteria in one.
        assert {out for out in planned if out.startswith("results/bee/")} == {
            targets.bee_dir(name, "joint", 0) for spec in config["figures"].values() if spec["kind"] == "bee"
            for _, names, _ in line_entries(spec) for name in names}, path.name
        assert not any("/seed1/" in out or "/seed2/" in out for out in planned), path.name  # seed 0 only


def test_paper_a_fig6_plans_ten_binary_models_on_the_same_voc_images_and_one_seed(dry_run):
    config, models = resolved(FIG6)
    (spec,) = config["figures"].values()
    assert spec["kind"] == "exit_heads" and spec["seeds"] == [0] and spec["min_classes"] == 2
    assert len(spec["models"]) == 10
    datasets = [config["datasets"][models[name]["dataset"]] for name in spec["models"]]
    assert all(d["loader"] == "voc2007" and len(d["classes"]) == 1 for d in datasets)
    assert len({d["classes"][0] for d in datasets}) == 10  # ten distinct classes
    # The same images: the datasets differ in their label column only; the models in their dataset only.
    assert all({**d, "classes": None} == {**datasets[0], "classes": None} for d in datasets)
    networks = [{**models[name], "dataset": None} for name in spec["models"]]
    assert all(network == networks[0] for network in networks)
    stdout = dry_run(FIG6)
    counts = job_counts(stdout)
    assert counts["train_model"] == 10 and "train_static_head" not in counts
    assert {job["output"].split(",")[0].strip() for job in planned_jobs(stdout) if job["rule"] == "train_model"} \
        == {targets.model_path(name, "joint", 0) for name in spec["models"]}


def test_the_suite_merges_every_files_criterion_settings(monkeypatch):
    """expand_includes merges the files' `criteria:` as it does datasets and models: the suite's are exactly
    their union, and one name given two settings fails naming both files."""
    monkeypatch.chdir(REPO)
    union: dict[str, dict] = {}
    for path in PAPER_CONFIGS:
        union.update(load(path).get("criteria", {}))
    assert union and ee.expand_includes(load(SUITE))["criteria"] == union


def test_a_criterion_name_with_two_settings_in_a_suite_fails_naming_both_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name, tolerance in (("one.yaml", 0.01), ("two.yaml", 0.05)):
        (tmp_path / name).write_text(yaml.safe_dump(
            {"criteria": {"rank": {"criterion": "rank_patience", "agreement": "ndcg", "tolerance": tolerance}}}))
    with pytest.raises(ee.ConfigError, match=r"criteria\.rank differs between one\.yaml and two\.yaml"):
        ee.expand_includes({"include": ["one.yaml", "two.yaml"]})



def test_the_suite_regenerates_every_table_and_figure_of_both_papers_in_the_paper_body(monkeypatch):
    """Every entry of the paper configs names what it regenerates (claims tables aside), and between them they
    name every table (1-20) and figure (1-17) of paper B and Figs 2-6 of paper A, placed by paper/body.tex under
    the papers' sections."""
    from eebench.render.paper import parse_reference, render_body
    from eebench.render.spec import body_spec

    monkeypatch.chdir(REPO)
    suite = ee.expand_includes(load(SUITE))
    assert suite["scale"] == "paper"
    spec = body_spec(suite)
    unplaced = [item["name"] for item in spec["items"] if not item["regenerates"] and item["kind"] != "claims"]
    assert unplaced == []
    named = set()
    for item in spec["items"]:
        for ref in map(parse_reference, item["regenerates"]):
            last = int(ref.last or ref.first) if ref.item != "§" else None
            named |= ({(ref.paper, ref.item, n) for n in range(int(ref.first), last + 1)} if last else set())
    assert {n for paper, item, n in named if (paper, item) == ("B", "Table")} == set(range(1, 21))
    assert {n for paper, item, n in named if (paper, item) == ("B", "Fig.")} == set(range(1, 18))
    assert {n for paper, item, n in named if (paper, item) == ("A", "Fig.")} == set(range(2, 7))
    body = render_body(spec)
    assert "Beyond the papers" not in body and "paper scale (the paper's datasets and architectures)" in body
