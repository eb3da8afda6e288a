"""The workflow itself: lint, the plan for one target, bad config, and the whole default DAG for real."""
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from eebench import targets
from eebench.config import load_config
from eebench.render.paper import BEYOND, PAPERS
from eebench.tasks import per_sample_performance
from eebench.io import read_checkpoint

from tests.latex import fake_paper_inputs, problems, unread_paper_files

from .conftest import REPO, copy_default_config, job_counts, snakemake, write_config


def test_lint_has_no_findings(tmp_path):
    copy_default_config(tmp_path)
    result = snakemake(tmp_path, "--lint")
    assert "Congratulations, your workflow is in a good condition!" in result.stdout + result.stderr
    assert "Lints for" not in result.stdout + result.stderr


def test_one_table_plans_only_what_it_needs(tmp_path):
    copy_default_config(tmp_path)
    result = snakemake(tmp_path, "--dry-run", "paper/tables/regimes.tex")
    # digits only: 3 seeds x (backbone + the seven regimes), and one metrics job per run the table reads; no
    # multi-label, no static heads, no B_EE. cnn's joint runs also feed the B_EE figures, but B_EE is a job of
    # its own (compute_bee), the only one that waits for the static heads: a run's metrics job never does.
    config = load_config(tmp_path / "config.yaml")
    runs = [(r, s) for r in config["tables"]["regimes"]["regimes"] for s in config["seeds"]]
    assert [s for r, s in runs if targets.bee_plan(config, "cnn", r, s)] == [0, 1, 2]
    assert job_counts(result.stdout) == {
        "prepare_dataset": 1, "train_model": 24, "compute_metrics": 21, "render_table": 1, "total": 47,
    }
    planned = planned_outputs(result.stdout)
    assert sorted(p for p in planned if p.startswith("results/metrics/")) == sorted(
        targets.metrics_dir("cnn", r, s) for r, s in runs)
    assert not [p for p in planned if "/static/" in p or p.startswith("results/bee/")]
    assert "digits_composite" not in result.stdout


def test_a_bee_figure_plans_the_static_heads_and_one_bee_job_per_run_it_reads(tmp_path):
    copy_default_config(tmp_path)
    result = snakemake(tmp_path, "--dry-run", "--printshellcmds", "paper/figures/bee.pdf")
    config = load_config(tmp_path / "config.yaml")
    assert config["figures"]["bee"]["kind"] == "bee"
    # Fig. 3: three settings x three seeds, each run one metrics job (its sweeps) and one B_EE job (every
    # criterion the figure reads of it: the softmax setting's five thresholds are one job per seed).
    bee_dirs = targets.render_dependencies(config, "figures", "bee")
    assert len(bee_dirs) == 9 and all(d.startswith("results/bee/") for d in bee_dirs)
    runs = [tuple(d.split("/")[2:]) for d in bee_dirs]  # (model, regime, "seed<s>")
    static = sorted({path for m, r, s in runs for path in targets.bee_inputs(config, m, r, s.removeprefix("seed"))[
        "static"] if "/static/" in path})
    assert len(static) == 27
    counts = job_counts(result.stdout)
    assert counts["compute_bee"] == counts["compute_metrics"] == 9
    assert counts["train_static_head"] == len(static)
    planned = planned_outputs(result.stdout)
    assert sorted(p for p in planned if p.startswith("results/bee/")) == sorted(bee_dirs)
    assert sorted(p for p in planned if p.startswith("results/metrics/")) == sorted(
        targets.metrics_dir(m, r, s.removeprefix("seed")) for m, r, s in runs)
    assert sorted(p for p in planned if p.startswith("results/logits/") and "/static/" in p) == static
    jobs = dry_run_jobs(result.stdout)
    for job in jobs:
        if job["rule"] == "compute_bee":
            model, regime, seed = job["output"].split("/")[2:]
            seed = seed.removeprefix("seed")
            inputs = targets.bee_inputs(config, model, regime, seed)
            assert (f"--metrics {inputs['metrics']} --static {' '.join(inputs['static'])} --criteria "
                    f"{' '.join(targets.bee_plan(config, model, regime, seed))} --out {job['output']} ") in job["shell"]
        elif job["rule"] == "compute_metrics":
            assert "--static" not in job["shell"] and "/static/" not in job["input"]
    assert targets.bee_plan(config, "cnn_composite_softmax", "joint", 0) == [
        f"softmax_entropy_{t}" for t in ("0.01", "0.05", "0.1", "0.2", "0.3")]


def planned_outputs(output: str) -> list[str]:
    """Every output file of every job in a dry run's plan."""
    return [name.strip() for line in output.splitlines() if line.strip().startswith("output:")
            for name in line.split(":", 1)[1].split(",")]


@pytest.fixture(scope="module")
def default_dry_run(tmp_path_factory):
    """The stdout of `snakemake --dry-run --printshellcmds` of the default config (about 10 s)."""
    path = tmp_path_factory.mktemp("default_dry_run")
    copy_default_config(path)
    return snakemake(path, "--dry-run", "--printshellcmds").stdout


def test_variants_share_phase1_and_identical_static_heads_in_the_plan(default_dry_run):
    planned = planned_outputs(default_dry_run)
    trained = [p for p in planned if p.startswith("results/models/")]
    # One phase-1 run per dataset, task, phase-1 training settings and seed, under the first setting that has it:
    # every seed of the settings B_EE figures read with all seeds; seed 0 of paper A Fig. 2's class subsets and
    # learning rates. The loss-scaling, GPF, IC and gradient-dominance variants share cnn's; the softmax variant
    # has its own (another loss).
    every_seed = ("cnn", "cnn_composite", "cnn_composite_softmax")
    seed_0 = ("cnn_2classes", "cnn_2classes_lr1e-3", "cnn_5classes", "cnn_5classes_lr1e-3", "cnn_lr1e-3")
    runs = [(m, s) for m in every_seed for s in (0, 1, 2)] + [(m, 0) for m in seed_0]
    # The authors'-code preset trains phase 1 otherwise (their early stopping): its own, and no static heads (no
    # B_EE reads it).
    other_preset = [("cnn_authors_code", s) for s in (0, 1, 2)]
    assert sorted(p for p in trained if "/backbone/" in p) == sorted(
        f"results/models/{m}/backbone/seed{s}/model.pt" for m, s in runs + other_preset)
    # Every variant trains its own regimes; loss-scaling and GPF variants share cnn's phase 1 too.
    for model in ("cnn", "cnn_mlp", "cnn_every2", "cnn_composite", "cnn_inc", "cnn_dec", "cnn_sdn", "cnn_ge",
                  "cnn_gpf"):
        assert f"results/models/{model}/joint/seed0/model.pt" in trained
    assert "results/models/cnn_ge/mixed/seed0/model.pt" in trained
    # Static heads: blocks 0-2 of the same runs (block 3's is the phase-1 run); no variant duplicates them.
    assert sorted(p for p in trained if "/static/" in p) == sorted(
        f"results/models/{m}/static/block{b}/seed{s}/model.pt" for m, s in runs for b in (0, 1, 2))


def test_each_run_has_one_metrics_job_and_one_bee_job_where_b_ee_of_it_is_read(default_dry_run):
    """Issue 22: one metrics process per run (model, regime, seed), not one per sweep and budget table; and one
    B_EE process per run whose B_EE some figure reads, not one per criterion."""
    from eebench.metrics import bee_file
    from eebench.schema import validate_schema

    config = load_config(REPO / "config.yaml")
    validate_schema(config)  # the schema's defaults, as the Snakefile's
    counts = job_counts(default_dry_run)
    assert not {"sweep_exits", "compute_budgets"} & set(counts)
    dependencies = {directory for section in ("tables", "figures") for name in config[section]
                    for directory in targets.render_dependencies(config, section, name)}
    # The runs whose B_EE some figure reads (their B_EE directories), each one job.
    bee_dirs = {directory for directory in dependencies if directory.startswith("results/bee/")}
    bee_plans = targets.bee_plans(config)
    assert len(bee_dirs) == len(bee_plans) == counts["compute_bee"] == 14
    bee_jobs = [job for job in dry_run_jobs(default_dry_run) if job["rule"] == "compute_bee"]
    assert {job["output"] for job in bee_jobs} == bee_dirs
    for job in bee_jobs:  # each with its run's criteria and sweeps, and the static heads' caches
        model, regime, seed = job["output"].split("/")[2:]
        seed = seed.removeprefix("seed")
        criteria = targets.bee_plan(config, model, regime, seed)
        assert criteria and f"--criteria {' '.join(criteria)} " in job["shell"]
        assert f"--metrics {targets.metrics_dir(model, regime, seed)} " in job["shell"]
        static = targets.bee_inputs(config, model, regime, seed)["static"]
        assert f"--static {' '.join(static)} " in job["shell"] and len(static) == 4
        assert job["input"].startswith(f"{targets.metrics_dir(model, regime, seed)}, {', '.join(static)}, ")
    # The runs whose sweeps or budget tables some table or figure reads, or whose B_EE (its sweeps), each one job.
    wanted = {directory for directory in dependencies if directory.startswith("results/metrics/")} | {
        targets.metrics_dir(*key) for key in bee_plans}
    plans = targets.metrics_plans(config)
    assert len(wanted) == len(plans) == counts["compute_metrics"] == 92
    jobs = [job for job in dry_run_jobs(default_dry_run) if job["rule"] == "compute_metrics"]
    assert {job["output"] for job in jobs} == wanted
    for job in jobs:  # each with its run's plan, never the static heads' caches
        model, regime, seed = job["output"].split("/")[2:]
        plan = targets.metrics_plan(config, model, regime, seed.removeprefix("seed"))
        assert f"--plan {targets.shell_json(plan)} " in job["shell"]
        assert "--static" not in job["shell"] and "/static/" not in job["shell"], job["shell"]
        assert job["input"].startswith("results/logits/") and "/static/" not in job["input"], job["input"]
    # Every file a renderer is given is one its run's plan writes (sweeps of every criterion it reads), and every
    # B_EE criterion's sweep is in its run's metrics plan.
    for key, criteria in bee_plans.items():
        assert set(criteria) <= {item["name"] for item in plans[key]["sweeps"]}, key
    for section in ("tables", "figures"):
        for name in config[section]:
            for path in targets.render_inputs(config, section, name):
                if path.startswith("results/metrics/"):  # results/metrics/<model>/<regime>/seed<s>/<file>
                    model, regime, seed, *file = path.split("/")[2:]
                    plan = targets.metrics_plan(config, model, regime, seed.removeprefix("seed"))
                    assert "/".join(file) in planned_files(plan), (name, path)
                elif path.startswith("results/bee/"):  # results/bee/<model>/<regime>/seed<s>/<criterion>.csv
                    model, regime, seed, file = path.split("/")[2:]
                    criteria = targets.bee_plan(config, model, regime, seed.removeprefix("seed"))
                    assert file in {bee_file(criterion) for criterion in criteria}, (name, path)


def planned_files(plan: dict) -> set[str]:
    """The files `eebench metrics` writes for ``plan``, relative to its run directory."""
    from eebench.metrics import budgets_file, sweep_file

    return ({sweep_file(item["name"]) for item in plan["sweeps"]}
            | {budgets_file(item["criterion"], item["rule"], item["budgets"]) for item in plan["budgets"]})


def dry_run_jobs(output: str) -> list[dict[str, str]]:
    """Each planned job of a dry run with --printshellcmds: its rule, input, output and shell command."""
    jobs: list[dict[str, str]] = []
    for line in output.splitlines():
        started = re.match(r"^(local)?rule (\w+):$", line.strip())
        if started:
            jobs.append({"rule": started.group(2), "input": "", "output": "", "shell": ""})
        elif jobs and line.strip().startswith("input:"):
            jobs[-1]["input"] = line.split(":", 1)[1].strip()
        elif jobs and line.strip().startswith("output:"):
            jobs[-1]["output"] = line.split(":", 1)[1].strip()
        elif jobs and line.startswith("Shell command: "):
            jobs[-1]["shell"] = line.split(":", 1)[1].strip()
    return jobs


def test_a_config_file_on_the_command_line_is_the_whole_experiment(tmp_path):
    copy_default_config(tmp_path)  # the default experiment is there, and must not be planned
    config = yaml.safe_load((REPO / "config/paper/resnet34_cifar100.yaml").read_text())
    config["datasets"]["cifar100"]["root"] = str(tmp_path)
    (tmp_path / "paper.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    result = snakemake(tmp_path, "--dry-run", "--configfile", "paper.yaml")
    counts = job_counts(result.stdout)
    assert counts["train_model"] == 24 and counts["render_table"] == 2 and counts["render_figure"] == 1
    assert "train_static_head" not in counts and "prepare_dataset" in counts
    planned = planned_outputs(result.stdout)
    assert not [p for p in planned if "digits" in p or "/cnn" in p or "regimes.tex" in p or "bee" in p]
    # Single keys can still be overridden on the command line: by a second config file merged over the first
    # (typed values), or with --config (Snakemake parses nested values as strings, e.g. a path).
    (tmp_path / "one_seed.yaml").write_text("seeds: [0]\n")
    result = snakemake(tmp_path, "--dry-run", "--configfile", "paper.yaml", "one_seed.yaml")
    assert job_counts(result.stdout)["train_model"] == 8  # backbone + the seven regimes
    result = snakemake(tmp_path, "--dry-run", "--configfile", "paper.yaml", "--config",
                       'datasets={"cifar100": {"root": "/no/such/root"}}', check=False)
    assert "datasets.cifar100.root: directory /no/such/root does not exist" in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (("tables", "regimes", "regimes"), ["disjoint", "jiont"], "jiont"),
        (("figures", "cost_curves", "model"), "mnist", "mnist"),
        (("tables", "regimes", "criterion"), "confidance", "confidance"),
        (("resources", "train_model", "mem_mb"), 0, "mem_mb"),
        (("resources", "train_model", "gpu"), "one", "gpu"),
    ],
)
def test_bad_config_fails_before_any_job_and_keeps_results(workdir, key, value, message):
    path, config = workdir
    section, name, field = key
    config[section][name][field] = value
    write_config(path, config)
    kept = path / targets.model_path("cnn", "joint", 0)
    kept.parent.mkdir(parents=True)
    kept.write_bytes(b"trained weights")
    result = snakemake(path, "--cores", "1", check=False)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert message in output and field in output
    assert "rule " not in output.split("Building DAG of jobs...")[-1]  # no job started
    assert kept.read_bytes() == b"trained weights"


def test_missing_paper_scale_data_is_named_before_any_job(tmp_path):
    shutil.copy(REPO / "config/paper/resnet34_cifar100.yaml", tmp_path / "paper.yaml")
    result = snakemake(tmp_path, "--cores", "1", "--configfile", "paper.yaml", check=False)
    assert result.returncode != 0
    assert "datasets.cifar100.root: directory data/cifar100 does not exist" in result.stdout + result.stderr


def test_paper_scale_config_plans_gpu_jobs(tmp_path):
    config = yaml.safe_load((REPO / "config/paper/resnet34_cifar100.yaml").read_text())
    config["datasets"]["cifar100"]["root"] = str(tmp_path)
    write_config(tmp_path, config)
    result = snakemake(tmp_path, "--dry-run")
    counts = job_counts(result.stdout)
    assert counts["train_model"] == 24 and counts["render_table"] == 2
    assert "gpu=1" in result.stdout


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    """The whole default DAG, run once for the tests below (a few minutes on 2 cores)."""
    path = tmp_path_factory.mktemp("default_run")
    copy_default_config(path)
    snakemake(path, "--cores", "2")
    return path


@pytest.mark.slow
def test_default_dag_renders_the_regimes_table(default_run):
    tex = (default_run / "paper/tables/regimes.tex").read_text()
    numbers = pd.read_csv(default_run / "paper/tables/regimes.csv")
    assert [line.split("&")[0].strip() for line in tex.splitlines() if "\\pm" in line and "&" in line] == [
        "Disjoint", "Joint", "Mixed", "Branch-wise", "Separate", "Alternating", "Mixed-gradual"]
    assert set(numbers["regime"]) == {"disjoint", "joint", "mixed", "branchwise", "separate", "alternating",
                                      "mixed_gradual"}
    assert set(numbers["budget"]) == {"25%", "50%", "75%", "100%", "unlimited"}
    assert (numbers["n_seeds"] <= 3).all()
    full = numbers[numbers["budget"] == "unlimited"]
    assert (full["mean"] > 80).all() and (full["n_seeds"] == 3).all()


@pytest.mark.slow
def test_default_dag_checks_the_claims_and_times_every_regime(default_run):
    claims = pd.read_csv(default_run / "paper/tables/claims.csv")
    # Whatever the verdict, each claim is computed from the numbers of its table or figure (none is missing).
    assert len(claims) == 16 and claims["holds"].isin([True, False]).all()
    assert set(claims["entry"]) == {"regimes", "gradient_dominance", "mode_connectivity", "numerical_rank",
                                    "mutual_information", "bee", "rank_patience_grid", "class_exit_heads",
                                    "loss_scaling_differences", "ic_size_differences", "training_time"}
    time = pd.read_csv(default_run / "paper/tables/training_time.csv").set_index(["regime", "quantity"])
    assert (time.xs("epochs", level="quantity")["n_seeds"] == 3).all()
    # Phase 1 counts for the regimes that start from it, and only for those.
    phase1 = time.xs("phase1_epochs", level="quantity")["mean"]
    assert (phase1[["disjoint", "mixed", "mixed_gradual"]] > 0).all()
    assert (phase1[["joint", "branchwise", "separate", "alternating"]] == 0).all()
    # The SDN variant logs its loss weights: head 0 (1 of 4 blocks) ramps from 0.01 + 0.25/ramp_epochs towards
    # 0.25 and stays there; the final head's stays 1.
    scaling = yaml.safe_load((REPO / "config.yaml").read_text())["models"]["cnn_sdn"]["training"]["loss_scaling"]
    history = read_checkpoint(default_run / "results/models/cnn_sdn/joint/seed0/model.pt", "a checkpoint")["history"]
    weights = np.array([epoch["loss_weights"] for epoch in history])
    assert weights[0, 0] == pytest.approx(0.01 + 0.25 / scaling["ramp_epochs"], abs=1e-6)
    assert weights[1, 0] > weights[0, 0]
    assert (np.diff(weights[:, 0]) >= 0).all() and weights[:, 0].max() <= 0.25 and (weights[:, -1] == 1).all()


@pytest.mark.slow
def test_default_run_trains_every_phase_to_early_stopping(default_run):
    """The papers' protocol (paper B §4.1): phases end by early stopping; at most 5% may reach max_epochs (issue
    22), and the claims table counts, per claim, the runs behind it that did."""
    ends = [entry["end"] for path in sorted((default_run / "results/models").rglob("model.pt"))
            for entry in read_checkpoint(path, "a checkpoint")["history"] if "end" in entry]
    assert len(ends) > 150 and set(ends) <= {"early_stopping", "max_epochs"}
    assert ends.count("max_epochs") <= 0.05 * len(ends), f"{ends.count('max_epochs')} of {len(ends)} phases capped"
    claims = pd.read_csv(default_run / "paper/tables/claims.csv")
    assert (claims["runs"] > 0).all() and (claims["capped_runs"] <= claims["runs"]).all()


@pytest.mark.slow
def test_default_dag_renders_the_bee_figure(default_run):
    for suffix in (".pdf", ".png"):
        assert (default_run / f"paper/figures/bee{suffix}").stat().st_size > 1000
    numbers = pd.read_csv(default_run / "paper/figures/bee.csv")
    assert list(pd.unique(numbers["line"])) == ["Single-label", "Multi-label"]
    assert set(numbers["metric"]) == {"accuracy", "f1"}
    assert sorted(numbers["head"].unique()) == [1, 2, 3, 4]
    # Fig. 3 pools every multi-label variant: 2 sigmoid criteria + 5 softmax thresholds, 3 seeds each.
    count = numbers.set_index(["line", "metric", "head"])["n_values"]
    assert count[("Single-label", "accuracy", 1)] == 3 and count[("Multi-label", "accuracy", 1)] == 7 * 3
    assert numbers.loc[numbers["line"] == "Multi-label", "p_below_first"].between(0, 1).all()
    variants = pd.read_csv(default_run / "paper/figures/bee_variants.csv")
    assert len(pd.unique(variants["line"])) == 7


@pytest.mark.slow
def test_default_dag_renders_paper_a_fig2_over_class_counts_and_learning_rates(default_run):
    numbers = pd.read_csv(default_run / "paper/figures/bee_classes.csv")
    assert list(pd.unique(numbers["line"])) == ["2 classes", "5 classes", "10 classes"]
    assert (numbers["n_values"] <= 2).all() and (numbers.loc[numbers["head"] == 1, "n_values"] == 2).all()


@pytest.mark.slow
def test_default_dag_renders_paper_a_fig4_tolerance_grid_against_confidence(default_run):
    numbers = pd.read_csv(default_run / "paper/figures/rank_patience_grid.csv")
    count = numbers.set_index(["line", "metric", "head"])["n_values"]
    # Five nDCG and four Kendall tolerances pooled (seed 0); the test against confidence per line.
    assert count[("Rank-patience (nDCG)", "f1", 1)] == 5 and count[("Rank-patience (Kendall)", "f1", 1)] == 4
    assert numbers.loc[numbers["line"] != "Confidence", "p_below_first"].between(0, 1).all()


@pytest.mark.slow
def test_default_dag_renders_paper_b_fig2_gradient_dominance(default_run):
    numbers = pd.read_csv(default_run / "paper/figures/gradient_dominance.csv")
    assert list(pd.unique(numbers["regime"])) == ["joint", "mixed"]
    assert set(numbers["head"]) == {1, 2, 3, 4} and numbers["mean"].between(-1, 1).all()
    # Mixed's records start after its phase-1 epochs (cnn's shared run, which logs none); joint's at 0.
    assert numbers.loc[numbers["regime"] == "joint", "epochs"].min() == 0
    assert numbers.loc[numbers["regime"] == "mixed", "epochs"].min() >= 1


@pytest.mark.slow
def test_default_dag_renders_paper_b_figs_4_5_per_layer_analyses(default_run):
    for name, variants in (("numerical_rank", 2), ("mutual_information", 1)):  # a panel per rank tolerance
        numbers = pd.read_csv(default_run / f"paper/figures/{name}.csv")
        assert list(pd.unique(numbers["regime"])) == ["backbone", "joint", "mixed"]
        assert numbers["block"].tolist() == [1, 2, 3, 4] * 3 * variants and (numbers["n_seeds"] == 1).all()
    ranks = pd.read_csv(default_run / "results/analysis/numerical_rank/cnn/joint/seed0.csv")
    # Rows are the 360 test images, centred: rank <= min(359, features); neither bound is reached at 1e-3.
    assert (ranks["value"] < np.minimum(ranks["samples"] - 1, ranks["features"])).all() and (ranks["value"] > 0).all()
    information = pd.read_csv(default_run / "results/analysis/mutual_information/cnn/joint/seed0.csv")
    assert (information["value"] > 0).all() and (information["value"] <= 1 / 0.25).all()  # kde: at most 1/noise


@pytest.mark.slow
def test_default_dag_renders_paper_a_fig6_one_binary_model_per_class(default_run):
    numbers = pd.read_csv(default_run / "paper/figures/class_exit_heads.csv")
    assert list(pd.unique(numbers["model"])) == [f"cnn_has{k}" for k in range(10)]
    examples = numbers.groupby("example")
    assert examples.ngroups == 40 and (examples["present"].sum() >= 2).all()
    assert numbers["exit_head"].between(1, 4).all()
    # Same-head marks only between classes present in the example, and in pairs at least.
    marked = numbers[numbers["same_head"]]
    assert marked["present"].all()
    assert (marked.groupby(["example", "exit_head"]).size() >= 2).all()


@pytest.mark.slow
def test_default_dag_compares_the_exit_strategies_of_paper_a(default_run):
    """Figs 4-5 in miniature: B_EE per head of every strategy, and each strategy's performance-speed-up area."""
    numbers = pd.read_csv(default_run / "paper/figures/exit_strategies.csv")
    assert list(pd.unique(numbers["line"])) == ["Confidence", "Entropy", "Rank-patience (nDCG)",
                                               "Rank-patience (Kendall)", "Hybrid (confidence + nDCG)", "Learned exit"]
    assert numbers.loc[numbers["line"] == "Confidence", "p_below_first"].isna().all()
    assert numbers.loc[numbers["line"] != "Confidence", "p_below_first"].between(0, 1).all()
    areas = pd.read_csv(default_run / "paper/figures/exit_strategy_areas.csv").set_index("criterion")
    assert list(areas.index) == ["confidence", "entropy", "rank_ndcg", "rank_kendall", "hybrid_confidence", "learned"]
    assert (areas["n_seeds"] == 3).all() and (areas["area_mean"].drop("learned") >= 0).all()
    assert areas.loc["confidence", "area_mean"] > 0  # a dense curve: it buys speed-up with some F1
    # The learned exit is one operating point (threshold 0.5), beside the curves.
    # (Its speed-up may sit just below 1: a sample that reaches the last head has also paid for every IC.)
    assert np.isnan(areas.loc["learned", "area_mean"]) and areas.loc["learned", "speedup_mean"] > 0.99
    for stem in ("exit_strategies", "exit_strategy_areas"):
        assert (default_run / f"paper/figures/{stem}.png").stat().st_size > 1000


@pytest.mark.slow
def test_default_is_a_real_trade_off(default_run):
    """The last exit must beat the first by at least 5 points, so exiting early costs something."""
    for seed in (0, 1, 2):
        cache = np.load(default_run / f"results/logits/cnn/joint/seed{seed}.npz")
        performance = per_sample_performance(cache["test_logits"], cache["test_labels"], "single_label")
        accuracy = performance["accuracy"].mean(1)
        assert accuracy[-1] - accuracy[0] >= 0.05, accuracy


@pytest.mark.slow
def test_editing_rendering_code_reruns_rendering_only(default_run):
    assert "Nothing to be done" in snakemake(default_run, "--dry-run").stdout
    render_module = REPO / "src/eebench/render/tables.py"
    original = render_module.read_bytes()
    # A real edit: Snakemake ignores a newer mtime when the file's checksum is unchanged.
    render_module.write_bytes(original + b"\n# an edit to rendering code\n")
    try:
        counts = job_counts(snakemake(default_run, "--dry-run").stdout)
    finally:
        render_module.write_bytes(original)
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    tables, figures = len(config["tables"]), len(config["figures"])
    # The paper's body is written by rendering code too (eebench.render.paper).
    assert counts == {"render_figure": figures, "render_table": tables, "render_body": 1, "all": 1,
                      "total": tables + figures + 2}


@pytest.mark.slow
def test_editing_one_variant_reruns_that_variant_only(default_run):
    config_file = default_run / "config.yaml"
    original = config_file.read_text()
    config = yaml.safe_load(original)
    config["models"]["cnn_mlp"]["ic"]["hidden"] = [32]
    config["tables"]["placement"]["caption"] = "Another caption."
    config_file.write_text(yaml.safe_dump(config, sort_keys=False))
    try:
        result = snakemake(default_run, "--dry-run")
    finally:
        config_file.write_text(original)
    counts = job_counts(result.stdout)
    planned = planned_outputs(result.stdout)
    # cnn_mlp's three regimes x three seeds, and what reads them; its phase 1 (cnn's) and nothing of cnn.
    assert counts["train_model"] == 9 and "train_static_head" not in counts
    assert all("/cnn_mlp/" in p for p in planned if p.startswith("results/"))
    # The three tables showing cnn_mlp, the placement table whose caption changed, and the claims table, which
    # reads ic_size_differences' numbers; nothing else (not the body: IC sizes are not in its captions).
    assert sorted(p for p in planned if p.startswith("paper/")) == [
        f"paper/tables/{t}.{x}" for t in ("claims", "ic_size", "ic_size_differences", "placement", "settings")
        for x in ("csv", "tex")]


def build_the_paper(workdir: Path) -> dict:
    """`snakemake paper/main.pdf` in a workdir whose default target is built; returns the dry run's job counts.
    Then checks the PDF, and that LaTeX read every table and figure of the config and resolved every reference."""
    (workdir / "paper").mkdir(exist_ok=True)
    shutil.copy(REPO / "paper/main.tex", workdir / "paper/main.tex")  # the hand-written part of the paper
    counts = job_counts(snakemake(workdir, "--dry-run", "paper/main.pdf").stdout)
    snakemake(workdir, "--cores", "2", "paper/main.pdf")
    assert (workdir / "paper/main.pdf").read_bytes().startswith(b"%PDF")
    log = (workdir / "results/logs/build_paper/main.log").read_text(errors="replace")  # T1 bytes are not UTF-8
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    assert unread_paper_files(log, config) == set() and problems(log) == []
    # No .aux, .fls... beside the paper; LaTeX's log is kept with the rule's.
    assert sorted(path.name for path in (workdir / "paper").glob("main.*")) == ["main.pdf", "main.tex"]
    assert "Nothing to be done" in snakemake(workdir, "--dry-run", "paper/main.pdf").stdout
    return counts


def test_the_paper_rule_compiles_what_the_default_target_wrote(tmp_path, latex):
    """The build_paper rule on stand-ins for every table and figure of config.yaml (about 20 s: three Snakemake
    calls and a LaTeX build)."""
    copy_default_config(tmp_path)
    fake_paper_inputs(tmp_path, yaml.safe_load((REPO / "config.yaml").read_text()))
    # Files Snakemake did not write, and whose inputs are missing, count as given: only the paper is planned.
    assert build_the_paper(tmp_path) == {"build_paper": 1, "total": 1}


@pytest.mark.slow
def test_the_paper_compiles_from_the_default_run(latex, default_run):  # latex first: skip before the run
    counts = build_the_paper(default_run)
    # Nothing that trains, sweeps or measures: the paper, and at most the rendering of a file main.tex reads that
    # the default target lacks (a render_body rule, say).
    assert counts["build_paper"] == 1
    assert [rule for rule in counts if rule not in ("build_paper", "total") and not rule.startswith("render_")] == []


REPORT_TARGETS = ("paper/tables/training_time.tex", "paper/figures/cost_curves.png",
                  "paper/figures/exit_strategy_areas.png")


def report_items(path: Path) -> dict:
    """The report's categories as the HTML embeds them: {category: {subcategory: [paths]}}."""
    import json
    import re

    html = path.read_text()
    return json.loads(re.search(r"var categories = (\{.*?\});\n", html).group(1))


@pytest.mark.slow
def test_report_of_a_target_subset_names_its_tables_and_figures_by_paper(workdir):
    """`snakemake --report` on a few cheap targets (one seed, two epochs a phase; about 80 s on 2 cores)."""
    path, config = workdir
    config["seeds"] = [0]
    config["training"].update(max_epochs=2, patience=2)
    write_config(path, config)
    snakemake(path, "--cores", "2", *REPORT_TARGETS)
    snakemake(path, "--report", "report.html", *REPORT_TARGETS)
    html = (path / "report.html").read_text()
    for name in ("training_time", "cost_curves", "exit_strategy_areas"):
        assert f"{name} (" in html  # its caption
    items = report_items(path / "report.html")
    paper_a, paper_b = (next(c for c in items if c.startswith(f"Paper {p}")) for p in "AB")
    assert items[paper_a] == {"Figures": ["paper/figures/exit_strategy_areas.png"]}
    assert items[paper_b] == {"Tables": ["paper/tables/training_time.csv"], "Figures": ["paper/figures/cost_curves.png"]}
    # The report embeds captions as JSON strings: § is \u00a7 there.
    assert "regenerates paper B, \\u00a74.7" in html and config["tables"]["training_time"]["caption"][:40] in html


@pytest.mark.slow
def test_report_of_the_default_run_shows_every_table_and_figure(default_run):
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    snakemake(default_run, "--report", "report.html")
    items = report_items(default_run / "report.html")
    shown = {Path(item).name for subcategories in items.values() for paths in subcategories.values() for item in paths}
    assert shown == {f"{name}.png" for name in config["figures"]} | {f"{name}.csv" for name in config["tables"]}
    html = (default_run / "report.html").read_text()
    for name in config["figures"]:
        assert f"{name} (figure kind {config['figures'][name]['kind']})" in html
    # Both papers, and the default's presets table, which regenerates neither (its kind says so).
    assert sorted(items) == sorted([*(paper.short for paper in PAPERS.values()), BEYOND[0]])
    assert set(items[BEYOND[0]]) == {"Tables"} and "fidelity_presets.csv" in {
        Path(item).name for item in items[BEYOND[0]]["Tables"]}
