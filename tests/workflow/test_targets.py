"""The DAG's shape: which files each target needs, computed by eebench.targets from the default config."""
import copy
from pathlib import Path

from eebench import targets
from eebench.config import load_config
from eebench.render.spec import entry_spec as render_spec
from eebench.metrics import budgets_slug

REPO = Path(__file__).resolve().parents[2]
CONFIG = load_config(REPO / "config.yaml")


def test_regimes_table_reads_the_budget_files_of_its_rule_and_budgets():
    inputs = targets.render_inputs(CONFIG, "tables", "regimes")
    assert len(inputs) == 7 * len(CONFIG["seeds"])  # the seven regimes of paper B §2 and Appendix A
    assert inputs[0] == "results/metrics/cnn/disjoint/seed0/budgets/confidence/last/25-50-75-100.csv"
    assert not any("composite" in p or "static" in p for p in inputs)
    # The rule waits for the run directories those files are in (one compute_metrics job each).
    assert targets.render_dependencies(CONFIG, "tables", "regimes") == [
        f"results/metrics/cnn/{regime}/seed{seed}" for regime in CONFIG["tables"]["regimes"]["regimes"]
        for seed in CONFIG["seeds"]]


def test_a_table_with_its_own_budgets_and_rule_gets_its_own_files():
    config = load_config(REPO / "config.yaml")
    config["tables"]["regimes"].update(budgets=[0.35, 0.5, 0.75, 1.0], rule="val")
    assert targets.render_inputs(config, "tables", "regimes")[0] == \
        "results/metrics/cnn/disjoint/seed0/budgets/confidence/val/35-50-75-100.csv"
    assert budgets_slug([0.125, 1.0]) == "12.5-100"
    assert {"criterion": "confidence", "rule": "val", "budgets": [0.35, 0.5, 0.75, 1.0]} in \
        targets.metrics_plan(config, "cnn", "disjoint", 0)["budgets"]


def test_a_runs_metrics_need_its_logits_and_its_bee_the_sweeps_and_the_static_model_of_every_head():
    inputs = targets.metrics_inputs(CONFIG, "cnn", "joint", "1")
    # Never the static heads, though figures read B_EE of this run: its sweeps and budget tables wait for no more.
    assert set(inputs) == {"logits", "code"} and inputs["logits"] == "results/logits/cnn/joint/seed1.npz"
    assert any(f.endswith("eebench/metrics.py") for f in inputs["code"])
    assert any(f.endswith("eebench/exits/sweep.py") for f in inputs["code"])
    assert targets.bee_plan(CONFIG, "cnn", "joint", "1") == ["confidence"]
    assert "confidence" in [item["name"] for item in targets.metrics_plan(CONFIG, "cnn", "joint", "1")["sweeps"]]
    inputs = targets.bee_inputs(CONFIG, "cnn", "joint", "1")
    assert inputs["metrics"] == targets.metrics_dir("cnn", "joint", "1") == "results/metrics/cnn/joint/seed1"
    # The last head's static model is the plain backbone: the phase-1 run, shared.
    assert inputs["static"] == [f"results/logits/cnn/static/block{b}/seed1.npz" for b in (0, 1, 2)] + [
        "results/logits/cnn/backbone/seed1.npz"]
    assert any(f.endswith("eebench/metrics.py") for f in inputs["code"])
    # No table or figure reads B_EE of the disjoint run: no B_EE job.
    assert targets.bee_plan(CONFIG, "cnn", "disjoint", "1") == []
    assert ("cnn", "disjoint", "1") not in targets.bee_plans(CONFIG)
    assert "bee" not in targets.metrics_plan(CONFIG, "cnn", "disjoint", "1")


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
    assert targets.bee_inputs(config, "cnn_composite_softmax", "joint", "0")["static"][-1] \
        == "results/logits/cnn_composite/backbone/seed0.npz"


def test_phase1_trains_the_plain_network_whatever_the_variant():
    plain = targets.train_settings(CONFIG, "cnn_mlp", "backbone")
    assert plain == {**targets.train_settings(CONFIG, "cnn", "backbone")}
    assert plain["ic"] == {"type": "linear"} and plain["placement"] == []
    assert targets.train_settings(CONFIG, "cnn_mlp", "mixed")["ic"] == {"type": "mlp", "hidden": [64], "pool_size": 1}


def test_render_spec_fills_rule_budgets_and_names_the_settings():
    spec = render_spec(CONFIG, "tables", "ic_size")
    assert "kind" not in spec and spec["rule"] == "last" and spec["budgets"] == [0.25, 0.5, 0.75, 1.0]
    assert set(spec["model_descriptions"]) == {"cnn", "cnn_mlp"}
    assert "mlp hidden=[64]" in spec["model_descriptions"]["cnn_mlp"]


def test_figures_of_paper_a_read_their_own_seeds_and_pool_the_learning_rate_grid():
    # Fig. 2: one run per learning rate (seed 0), lines of 2, 5 and 10 classes.
    inputs = targets.render_inputs(CONFIG, "figures", "bee_classes")
    assert inputs[:2] == ["results/bee/cnn_2classes/joint/seed0/confidence.csv",
                          "results/bee/cnn_2classes_lr1e-3/joint/seed0/confidence.csv"]
    assert len(inputs) == 6 and all("/seed0/" in p for p in inputs)
    # Fig. 3: every seed; the softmax model's five positive thresholds are five criterion settings.
    inputs = targets.render_inputs(CONFIG, "figures", "bee")
    assert len(inputs) == (1 + 2 + 5) * len(CONFIG["seeds"])
    assert "results/bee/cnn_composite_softmax/joint/seed2/softmax_entropy_0.3.csv" in inputs
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
    assert targets.resource(config, "compute_metrics", "gpu") == 0


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
    assert inputs == [f"results/bee/{m}/joint/seed{s}/{c}.csv" for m, c in runs for s in (0, 1, 2)]
    # The figure waits for each run's B_EE directory once (one compute_bee job each, which waits for the run's
    # metrics directory): the softmax model's five settings are one run per seed.
    assert targets.render_dependencies(CONFIG, "figures", "bee") == [
        f"results/bee/{m}/joint/seed{s}" for m in ("cnn", "cnn_composite", "cnn_composite_softmax")
        for s in (0, 1, 2)]
    assert targets.bee_plan(CONFIG, "cnn_composite_softmax", "joint", 2) == [
        f"softmax_entropy_{t}" for t in ("0.01", "0.05", "0.1", "0.2", "0.3")]


def test_cost_curves_read_sweeps():
    inputs = targets.render_inputs(CONFIG, "figures", "cost_curves")
    assert inputs[0] == "results/metrics/cnn/disjoint/seed0/sweeps/confidence.csv" and len(inputs) == 9


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


def test_each_claim_carries_the_checkpoints_behind_its_entry_and_the_job_waits_for_them():
    checks = {c["claim"]: c for c in targets.render_spec(CONFIG, "tables", "claims")["checks"]}
    regimes = checks["mixed_at_least_joint_at_high_budgets"]["runs"]
    # The regimes table: seven regimes x three seeds, each its own run (phase 1 travels in a run's history).
    assert len(regimes) == 21 and regimes[0] == "results/models/cnn/disjoint/seed0/model.pt"
    # Mode connectivity reads both models of each pair, once each: disjoint, mixed, joint at seed 0.
    assert checks["disjoint_and_mixed_share_a_basin"]["runs"] == [
        f"results/models/cnn/{regime}/seed0/model.pt" for regime in ("disjoint", "mixed", "joint")]
    # B_EE compares with the static heads: blocks 0-2 trained alone, block 3's is the shared phase-1 run.
    single = checks["single_label_benefit_positive"]["runs"]
    assert "results/models/cnn/static/block0/seed2/model.pt" in single
    assert "results/models/cnn/backbone/seed1/model.pt" in single
    dependencies = targets.render_dependencies(CONFIG, "tables", "claims")
    assert set(targets.render_inputs(CONFIG, "tables", "claims")) < set(dependencies)
    assert set(regimes) | set(single) <= set(dependencies) and len(dependencies) == len(set(dependencies))
    # Every other entry's spec is the config's, with (for a table) what it is compared with: the miniature's
    # scale, which the renderer reads to say it does not compare.
    assert targets.render_spec(CONFIG, "tables", "regimes") == {
        **render_spec(CONFIG, "tables", "regimes"),
        "paper_comparison": {"scale": "miniature", "tables": [f"B Table {n}" for n in range(8, 19)]}}
    assert targets.render_spec(CONFIG, "figures", "bee") == render_spec(CONFIG, "figures", "bee")


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


# A small hand-written config: what each entry reads of which run decides every run's metrics plan.
SMALL = {
    "seeds": [0, 1],
    "sweep": {"max_points": 7},
    "budgets": [0.25, 0.5, 1.0],
    "datasets": {"digits": {"split_seed": 0}},
    "training": {"batch_size": 64},
    "models": {"cnn": {"dataset": "digits", "backbone": "cnn", "params": {"widths": [8, 8], "strides": [1, 2]},
                       "ic": {"type": "linear"}, "placement": None},
               "cnn_mlp": {"base": "cnn", "ic": {"type": "mlp", "hidden": [16]}}},
    "criteria": {"ent_0.1": {"criterion": "entropy", "positive_threshold": 0.1}},
    "tables": {
        # The config's budgets, rule last, on two regimes; the same table twice is one file.
        "last": {"kind": "budgets", "model": "cnn", "regimes": ["joint", "mixed"], "criterion": "confidence",
                 "rule": "last"},
        "again": {"kind": "budgets", "model": "cnn", "regimes": ["joint"], "criterion": "confidence", "rule": "last"},
        # Its own budgets (integers as YAML may give them) and rule, seed 1 only.
        "val": {"kind": "budgets", "model": "cnn", "regimes": ["joint"], "criterion": "confidence", "rule": "val",
                "budgets": [0.5, 1], "seeds": [1]},
    },
    "figures": {
        # B_EE of two criteria (a named setting among them) of one run, seed 1 only.
        "bee": {"kind": "bee", "regime": "joint", "criterion": "confidence", "seeds": [1],
                "lines": [{"label": "a", "models": ["cnn"]},
                          {"label": "b", "models": ["cnn"], "criterion": "ent_0.1"}]},
        "curves": {"kind": "cost_curves", "model": "cnn_mlp", "regimes": ["joint"], "criterion": "entropy"},
        "rank": {"kind": "layer_profile", "model": "cnn", "regimes": ["mixed"], "analysis": "numerical_rank"},
    },
}
CONFIDENCE = {"name": "confidence", "criterion": "confidence", "params": {}}
LAST = {"criterion": "confidence", "rule": "last", "budgets": [0.25, 0.5, 1.0]}


def test_a_runs_metrics_plan_is_what_every_table_and_figure_reads_of_it():
    plans = targets.metrics_plans(SMALL)
    # Only runs an entry reads metrics of (the layer profile reads checkpoints: its run gets no plan of its own).
    assert sorted(plans) == [("cnn", "joint", "0"), ("cnn", "joint", "1"), ("cnn", "mixed", "0"),
                             ("cnn", "mixed", "1"), ("cnn_mlp", "joint", "0"), ("cnn_mlp", "joint", "1")]
    assert plans[("cnn", "joint", "0")] == {"max_points": 7, "sweeps": [CONFIDENCE], "budgets": [LAST]}
    # Seed 1 adds the val table (its own budgets, as floats) and the sweeps B_EE of both criteria reads, each
    # criterion swept once.
    assert plans[("cnn", "joint", "1")] == {
        "max_points": 7,
        "sweeps": [CONFIDENCE, {"name": "ent_0.1", "criterion": "entropy", "params": {"positive_threshold": 0.1}}],
        "budgets": [LAST, {"criterion": "confidence", "rule": "val", "budgets": [0.5, 1.0]}],
    }
    assert plans[("cnn", "mixed", "1")] == plans[("cnn", "mixed", "0")] == {
        "max_points": 7, "sweeps": [CONFIDENCE], "budgets": [LAST]}
    assert plans[("cnn_mlp", "joint", "0")] == {
        "max_points": 7, "sweeps": [{"name": "entropy", "criterion": "entropy", "params": {}}], "budgets": []}
    assert targets.metrics_plan(SMALL, "cnn", "joint", 1) == plans[("cnn", "joint", "1")]
    assert targets.metrics_plan(SMALL, "cnn", "backbone", 0) == {"max_points": 7, "sweeps": [], "budgets": []}
    # B_EE of both criteria, seed 1 only: the one run with a B_EE job.
    assert targets.bee_plans(SMALL) == {("cnn", "joint", "1"): ["confidence", "ent_0.1"]}
    assert targets.bee_plan(SMALL, "cnn", "joint", 1) == ["confidence", "ent_0.1"]
    assert targets.bee_plan(SMALL, "cnn", "joint", 0) == []
    # The files each entry reads are those the plan writes, in its run's directory.
    assert targets.render_inputs(SMALL, "tables", "val") == [
        "results/metrics/cnn/joint/seed1/budgets/confidence/val/50-100.csv"]
    assert targets.render_inputs(SMALL, "figures", "bee") == [
        "results/bee/cnn/joint/seed1/confidence.csv", "results/bee/cnn/joint/seed1/ent_0.1.csv"]
    assert targets.render_dependencies(SMALL, "figures", "bee") == ["results/bee/cnn/joint/seed1"]
    assert targets.render_dependencies(SMALL, "tables", "val") == ["results/metrics/cnn/joint/seed1"]
    assert targets.render_dependencies(SMALL, "figures", "curves") == [
        "results/metrics/cnn_mlp/joint/seed0", "results/metrics/cnn_mlp/joint/seed1"]
    assert targets.render_dependencies(SMALL, "figures", "rank") == targets.render_inputs(SMALL, "figures", "rank")
    # B_EE's job reads the run's sweeps and the static heads; the metrics job never the static heads.
    assert targets.bee_inputs(SMALL, "cnn", "joint", 1)["static"] == [
        "results/logits/cnn/static/block0/seed1.npz", "results/logits/cnn/backbone/seed1.npz"]
    assert targets.bee_inputs(SMALL, "cnn", "joint", 1)["metrics"] == "results/metrics/cnn/joint/seed1"
    assert "static" not in targets.metrics_inputs(SMALL, "cnn", "joint", 1)


def test_a_runs_plan_changes_with_its_metric_settings_only_and_is_ordered():
    import json

    def plan_json(config, run=("cnn", "joint", 1)):
        return json.dumps(targets.metrics_plan(config, *run))

    before = plan_json(SMALL)
    reordered = copy.deepcopy(SMALL)
    reordered["tables"] = dict(reversed(list(SMALL["tables"].items())))
    reordered["figures"]["bee"]["lines"].reverse()
    assert plan_json(reordered) == before  # the order of entries and lines is not the plan's
    for change in (lambda c: c["sweep"].update(max_points=0),
                   lambda c: c["criteria"]["ent_0.1"].update(positive_threshold=0.2),
                   lambda c: c["tables"]["val"].update(budgets=[0.4, 1.0]),
                   lambda c: c["figures"]["bee"].update(seeds=[0])):
        changed = copy.deepcopy(SMALL)
        change(changed)
        assert plan_json(changed) != before
    # A caption, or an entry reading another run, changes nothing of this run's plan.
    changed = copy.deepcopy(SMALL)
    changed["tables"]["last"]["caption"] = "Another caption."
    changed["figures"]["curves"]["criterion"] = "confidence"
    assert plan_json(changed) == before
    # B_EE's criteria are the B_EE job's plan: dropping the B_EE of a criterion a budget table still reads leaves
    # the metrics plan (its sweep) as it was and changes the B_EE plan only; a B_EE caption changes neither.
    changed = copy.deepcopy(SMALL)
    changed["figures"]["bee"]["lines"] = changed["figures"]["bee"]["lines"][1:]
    assert plan_json(changed) == before
    assert targets.bee_plan(SMALL, "cnn", "joint", 1) == ["confidence", "ent_0.1"]
    assert targets.bee_plan(changed, "cnn", "joint", 1) == ["ent_0.1"]
    changed = copy.deepcopy(SMALL)
    changed["figures"]["bee"]["caption"] = "Another caption."
    assert plan_json(changed) == before
    assert targets.bee_plans(changed) == targets.bee_plans(SMALL)


def test_a_frozen_configs_plans_are_computed_once_and_handed_out_as_copies():
    from eebench import config as ee

    config = copy.deepcopy(SMALL)
    ee.freeze(config)
    assert targets.metrics_plans(config) is targets.metrics_plans(config)
    assert targets.bee_plans(config) is targets.bee_plans(config)
    plan = targets.metrics_plan(config, "cnn", "joint", 1)
    plan["sweeps"].clear()
    assert len(targets.metrics_plan(config, "cnn", "joint", 1)["sweeps"]) == 2
    criteria = targets.bee_plan(config, "cnn", "joint", 1)
    criteria.clear()
    assert targets.bee_plan(config, "cnn", "joint", 1) == ["confidence", "ent_0.1"]
    assert targets.metrics_plans(SMALL) is not targets.metrics_plans(SMALL)  # not frozen: computed each time
    assert targets.bee_plans(SMALL) is not targets.bee_plans(SMALL)
