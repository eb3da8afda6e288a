"""The DAG's shape: which files each target needs, computed by eebench.targets from the default config."""
import copy
from pathlib import Path

from eebench import targets
from eebench.config import load_config, render_spec

REPO = Path(__file__).resolve().parents[2]
CONFIG = load_config(REPO / "config.yaml")


def test_regimes_table_reads_the_budget_files_of_its_rule_and_budgets():
    inputs = targets.render_inputs(CONFIG, "tables", "regimes")
    assert len(inputs) == 7 * len(CONFIG["seeds"])  # the seven regimes of paper B §2 and Appendix A
    assert inputs[0] == "results/budgets/cnn/disjoint/confidence/last/25-50-75-100/seed0.csv"
    assert not any("composite" in p or "static" in p for p in inputs)


def test_a_table_with_its_own_budgets_and_rule_gets_its_own_files():
    config = load_config(REPO / "config.yaml")
    config["tables"]["regimes"].update(budgets=[0.35, 0.5, 0.75, 1.0], rule="val")
    assert targets.render_inputs(config, "tables", "regimes")[0] == \
        "results/budgets/cnn/disjoint/confidence/val/35-50-75-100/seed0.csv"
    assert targets.parse_budgets_slug("35-50-75-100") == [0.35, 0.5, 0.75, 1.0]
    assert targets.budgets_slug([0.125, 1.0]) == "12.5-100"


def test_bee_needs_the_sweep_and_the_static_model_of_every_head():
    inputs = targets.bee_inputs(CONFIG, "cnn", "joint", "confidence", "1")
    assert inputs["sweep"] == "results/sweeps/cnn/joint/confidence/seed1.csv"
    # The last head's static model is the plain backbone: the phase-1 run, shared.
    assert inputs["static"] == [f"results/logits/cnn/static/block{b}/seed1.npz" for b in (0, 1, 2)] + [
        "results/logits/cnn/backbone/seed1.npz"]


def test_variants_share_phase1_and_identical_static_heads():
    assert targets.train_inputs(CONFIG, "cnn_mlp", "mixed", "2") == {
        "data": "results/data/digits.npz", "init": "results/models/cnn/backbone/seed2/model.pt"}
    assert targets.train_inputs(CONFIG, "cnn_mlp", "joint", "2") == {"data": "results/data/digits.npz"}
    assert targets.static_head_paths(CONFIG, "cnn_every2", 0) == [
        "results/models/cnn/static/block1/seed0/model.pt", "results/models/cnn/backbone/seed0/model.pt"]
    assert targets.static_head_paths(CONFIG, "cnn_mlp", 0)[0] == "results/models/cnn_mlp/static/block0/seed0/model.pt"
    # Another dataset is another phase 1.
    assert targets.train_inputs(CONFIG, "cnn_composite", "mixed", "0")["init"] == \
        "results/models/cnn_composite/backbone/seed0/model.pt"


def test_a_static_baseline_setting_lends_its_static_heads_and_backbone():
    # By default a setting has its own static models (the softmax variant's are softmax models) ...
    assert targets.static_head_paths(CONFIG, "cnn_composite_softmax", 0)[0] == \
        "results/models/cnn_composite_softmax/static/block0/seed0/model.pt"
    # ... and `static_baseline:` lends another setting's: one set of static models per dataset.
    config = copy.deepcopy(CONFIG)
    config["models"]["cnn_composite_softmax"]["static_baseline"] = "cnn_composite"
    assert targets.static_head_paths(config, "cnn_composite_softmax", 0) == \
        targets.static_head_paths(config, "cnn_composite", 0) == [
            *(f"results/models/cnn_composite/static/block{b}/seed0/model.pt" for b in (0, 1, 2)),
            "results/models/cnn_composite/backbone/seed0/model.pt"]
    assert targets.bee_inputs(config, "cnn_composite_softmax", "joint", "softmax_entropy_0.1", "0")["static"][-1] \
        == "results/logits/cnn_composite/backbone/seed0.npz"


def test_phase1_trains_the_plain_network_whatever_the_variant():
    plain = targets.train_settings(CONFIG, "cnn_mlp", "backbone")
    assert plain == {**targets.train_settings(CONFIG, "cnn", "backbone")}
    assert plain["ic"] == {"type": "linear"} and plain["placement"] == []
    assert targets.train_settings(CONFIG, "cnn_mlp", "mixed")["ic"] == {"type": "mlp", "hidden": [64]}


def test_render_spec_fills_rule_budgets_and_names_the_settings():
    spec = render_spec(CONFIG, "tables", "ic_size")
    assert "kind" not in spec and spec["rule"] == "last" and spec["budgets"] == [0.25, 0.5, 0.75, 1.0]
    assert set(spec["model_descriptions"]) == {"cnn", "cnn_mlp"}
    assert "mlp hidden=[64]" in spec["model_descriptions"]["cnn_mlp"]


def test_figures_of_paper_a_read_their_own_seeds_and_pool_the_learning_rate_grid():
    # Fig. 2: one run per learning rate (seed 0), lines of 2, 5 and 10 classes.
    inputs = targets.render_inputs(CONFIG, "figures", "bee_classes")
    assert inputs[:2] == ["results/bee/cnn_2classes/joint/confidence/seed0.csv",
                          "results/bee/cnn_2classes_lr1e-3/joint/confidence/seed0.csv"]
    assert len(inputs) == 6 and all(p.endswith("seed0.csv") for p in inputs)
    # Fig. 3: every seed; the softmax model's five positive thresholds are five criterion settings.
    inputs = targets.render_inputs(CONFIG, "figures", "bee")
    assert len(inputs) == (1 + 2 + 5) * len(CONFIG["seeds"])
    assert "results/bee/cnn_composite_softmax/joint/softmax_entropy_0.3/seed2.csv" in inputs
    # Fig. 6: the ten binary models' logit caches, one seed.
    inputs = targets.render_inputs(CONFIG, "figures", "class_exit_heads")
    assert inputs == [f"results/logits/cnn_has{k}/joint/seed0.npz" for k in range(10)]


def test_render_spec_resolves_a_named_criterion_for_renderers_that_score_logits():
    config = load_config(REPO / "config.yaml")
    config["figures"]["class_exit_heads"]["criterion"] = "softmax_entropy_0.2"
    spec = render_spec(config, "figures", "class_exit_heads")
    assert spec["criterion_setting"] == {"criterion": "entropy", "params": {"positive_threshold": 0.2}}
    assert "seeds" not in spec  # the workflow's key: which files the renderer is given
    assert render_spec(CONFIG, "figures", "class_exit_heads")["criterion_setting"] == {
        "criterion": "confidence", "params": {}}


def test_logging_gradient_dominance_shares_phase1_and_the_figure_reads_the_checkpoints():
    # Phase 1 has one loss, so a setting that only logs gradient dominance starts from cnn's phase-1 run.
    assert targets.train_inputs(CONFIG, "cnn_gd", "mixed", "0")["init"] == "results/models/cnn/backbone/seed0/model.pt"
    assert targets.render_inputs(CONFIG, "figures", "gradient_dominance") == [
        "results/models/cnn_gd/joint/seed0/model.pt", "results/models/cnn_gd/mixed/seed0/model.pt"]


def test_layer_analyses_read_the_trained_checkpoints_with_the_configs_settings():
    from eebench.config import analysis_settings

    assert targets.render_inputs(CONFIG, "figures", "numerical_rank") == [
        f"results/analysis/numerical_rank/cnn/{r}/seed0.csv" for r in ("backbone", "joint", "mixed")]
    assert analysis_settings(CONFIG, "mutual_information") == {"samples": 500, "estimator": "kde", "noise": 0.25,
                                                                "bound": "upper", "bins": 30}
    assert analysis_settings({}, "numerical_rank") == {"samples": 500, "variance_rtol": [0.001, 0.01], "rows": "samples"}


def test_resources_fall_back_to_default():
    config = {"resources": {"default": {"threads": 1, "gpu": 0}, "train_model": {"gpu": 2}}}
    assert targets.resource(config, "train_model", "gpu") == 2
    assert targets.resource(config, "train_model", "threads") == 1
    assert targets.resource(config, "sweep_exits", "gpu") == 0


def test_a_model_settings_own_resources_come_first_and_are_inherited_whole():
    config = {"resources": {"default": {"threads": 1, "gpu": 0}, "train_model": {"gpu": 1, "threads": 4}},
              "models": {"small": {"dataset": "d", "backbone": "cnn"},
                         "big": {"dataset": "d", "backbone": "cnn", "resources": {"train_model": {"gpu": 4}}},
                         "bigger": {"base": "big", "params": {"widths": [8]}}}}
    assert targets.resource(config, "train_model", "gpu", "small") == 1
    assert targets.resource(config, "train_model", "gpu", "big") == 4
    assert targets.resource(config, "train_model", "threads", "big") == 4  # not set by the model: the rule's
    assert targets.resource(config, "train_static_head", "gpu", "big") == 0  # another rule: the default
    assert targets.resource(config, "train_model", "gpu", "bigger") == 4  # through base:


def test_code_inputs_are_the_modules_source_files():
    files = targets.code_files("render", "metrics")
    assert any(f.endswith("render/tables.py") for f in files)
    assert files[-1].endswith("eebench/metrics.py") and all(Path(f).exists() for f in files)


def test_bee_figure_reads_every_model_criterion_and_seed_in_line_order():
    inputs = targets.render_inputs(CONFIG, "figures", "bee")
    runs = [("cnn", "confidence"), ("cnn_composite", "confidence"), ("cnn_composite", "entropy"),
            *(("cnn_composite_softmax", f"softmax_entropy_{t}") for t in ("0.01", "0.05", "0.1", "0.2", "0.3"))]
    assert inputs == [f"results/bee/{m}/joint/{c}/seed{s}.csv" for m, c in runs for s in (0, 1, 2)]


def test_cost_curves_read_sweeps():
    inputs = targets.render_inputs(CONFIG, "figures", "cost_curves")
    assert inputs[0] == "results/sweeps/cnn/disjoint/confidence/seed0.csv" and len(inputs) == 9


def test_every_renderer_reads_a_stage_with_a_result_path():
    from eebench.render import FIGURES, TABLES
    from eebench.render.base import METRIC_STAGES, RunKey

    assert set(METRIC_STAGES) == {"budgets", "bee", "sweeps", "models", "logits", "analysis", "mode_connectivity",
                                  "loss_landscape", "rendered"}
    spec = {"rule": "best", "budgets": [1.0], "analysis": "numerical_rank"}
    for registry in (TABLES, FIGURES):
        for name in registry.names():
            if registry.get(name).reads == "rendered":  # other entries' CSVs: see the claims test below
                continue
            assert targets.stage_path(CONFIG, registry.get(name).reads, spec,
                                      RunKey("cnn", "joint", "entropy", versus="mixed"), 0)
    # The logits stage is the training job's second output (of the shared run, where one is shared).
    assert targets.stage_path(CONFIG, "logits", spec, RunKey("cnn_mlp", "backbone", "entropy"), 1) == \
        "results/logits/cnn/backbone/seed1.npz"


def test_the_claims_table_reads_the_numbers_of_the_entries_its_checks_name_each_once():
    inputs = targets.render_inputs(CONFIG, "tables", "claims")
    assert inputs[0] == "paper/tables/regimes.csv" and len(inputs) == len(set(inputs)) == 11
    assert "paper/figures/mode_connectivity.csv" in inputs and "paper/figures/class_exit_heads.csv" in inputs


def test_training_time_reads_the_checkpoints_with_the_shared_phase1_run():
    config = {**CONFIG, "tables": {"time": {"kind": "training_time", "model": "cnn_mlp",
                                            "regimes": ["backbone", "mixed"]}}}
    assert targets.render_inputs(config, "tables", "time")[::3] == [
        "results/models/cnn/backbone/seed0/model.pt", "results/models/cnn_mlp/mixed/seed0/model.pt"]


def test_paper_b_fig3_reads_one_path_per_regime_pair_and_fig6_one_landscape_per_regime():
    inputs = targets.render_inputs(CONFIG, "figures", "mode_connectivity")
    assert inputs == [f"results/analysis/mode_connectivity/cnn/{pair}/seed0.csv"
                      for pair in ("disjoint-mixed", "joint-mixed", "disjoint-joint")]
    assert targets.mode_connectivity_inputs(CONFIG, "cnn", "disjoint", "mixed", "0") | {"code": None} == {
        "model_a": "results/models/cnn/disjoint/seed0/model.pt",
        "model_b": "results/models/cnn/mixed/seed0/model.pt", "data": "results/data/digits.npz", "code": None}
    inputs = targets.render_inputs(CONFIG, "figures", "loss_landscape")
    assert inputs == [f"results/analysis/loss_landscape/cnn/{regime}/seed0.csv" for regime in ("joint", "mixed", "disjoint")]
    assert render_spec(CONFIG, "figures", "loss_landscape")["head"] == 1


def test_the_default_target_includes_the_readings_section():
    assert targets.final_outputs({"tables": {"t": {}}, "figures": {}})[-1] == "paper/readings.tex"
