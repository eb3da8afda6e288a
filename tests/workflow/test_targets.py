"""The DAG's shape: which files each target needs, computed by eebench.targets."""
from pathlib import Path

from eebench import targets
from eebench.config import load_config

REPO = Path(__file__).resolve().parents[2]
CONFIG = load_config(REPO / "config.yaml")


def test_regimes_table_needs_only_single_label_budget_files():
    inputs = targets.render_inputs(CONFIG, "tables", "regimes")
    assert len(inputs) == 3 * len(CONFIG["seeds"])
    assert inputs[0] == "results/budgets/digits/cnn/disjoint/confidence/seed0.csv"
    assert not any("composite" in p or "static" in p for p in inputs)


def test_bee_needs_the_sweep_and_every_static_head():
    inputs = targets.bee_inputs(CONFIG, "digits", "cnn", "joint", "confidence", "1")
    assert inputs["sweep"] == "results/sweeps/digits/cnn/joint/confidence/seed1.csv"
    assert inputs["static"] == [f"results/logits/digits/cnn/static/head{h}/seed1.npz" for h in (1, 2, 3, 4)]


def test_regimes_that_reuse_the_backbone_depend_on_its_checkpoint():
    assert targets.train_inputs(CONFIG, "digits", "cnn", "mixed", "2") == {
        "data": "results/data/digits.npz", "init": "results/models/digits/cnn/backbone/seed2/model.pt"}
    assert targets.train_inputs(CONFIG, "digits", "cnn", "joint", "2") == {"data": "results/data/digits.npz"}


def test_render_options_drop_the_experiment_keys():
    options = targets.render_options(CONFIG["tables"]["regimes"])
    assert set(options) == {"regimes", "metric", "caption", "label"}


def test_resources_fall_back_to_default():
    config = {"resources": {"default": {"threads": 1, "gpu": 0}, "train_model": {"gpu": 2}}}
    assert targets.resource(config, "train_model", "gpu") == 2
    assert targets.resource(config, "train_model", "threads") == 1
    assert targets.resource(config, "cache_logits", "gpu") == 0


def test_code_inputs_are_the_modules_source_files():
    files = targets.code_files("render", "metrics")
    assert any(f.endswith("render/tables.py") for f in files)
    assert files[-1].endswith("eebench/metrics.py") and all(Path(f).exists() for f in files)


def test_bee_figure_reads_every_dataset_and_seed():
    inputs = targets.render_inputs(CONFIG, "figures", "bee")
    assert inputs == [f"results/bee/{d}/cnn/joint/confidence/seed{s}.csv"
                      for d in ("digits", "digits_composite") for s in (0, 1, 2)]


def test_every_renderer_reads_a_stage_with_a_result_path():
    from eebench.render import FIGURES, TABLES

    for registry in (TABLES, FIGURES):
        for name in registry.names():
            assert registry.get(name).reads in targets.STAGE_PATHS, name
