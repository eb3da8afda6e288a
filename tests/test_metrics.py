"""Budgets and B_EE on hand-computed sweeps, and the file-level runners on small logit caches."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from eebench.tasks import per_sample_performance
from eebench.exits.sweep import run_sweep
from eebench.io import save_npz
from eebench.metrics import run_bee, run_budgets
from eebench.sweep_metrics import bee, budget_performance, e_closest

SWEEP = pd.DataFrame({
    "threshold": [0.1, 0.5, 0.9, np.inf],
    "avg_exit_head": [1.0, 1.5, 2.5, 3.0],
    "flops_fraction": [0.25, 0.5, 0.8, 1.0],
    "accuracy": [0.6, 0.7, 0.65, 0.8],
    "f1": [0.5, 0.6, 0.72, 0.7],
})


def test_budget_lookup_hand_computed():
    table = budget_performance(SWEEP, [0.5, 0.2, 0.25, 0.75, 1.0], ["accuracy", "f1"])
    assert list(table.columns) == ["budget", "budget_fraction", "accuracy", "accuracy_flops", "f1", "f1_flops"]
    assert table["budget"].tolist() == ["50%", "20%", "25%", "75%", "100%", "unlimited"]
    assert table["budget_fraction"].tolist() == [0.5, 0.2, 0.25, 0.75, 1.0, np.inf]
    # 20%: no point fits, and the 50% value before it is not carried over. 25% and 100%: points exactly at it.
    np.testing.assert_array_equal(table["accuracy"], [0.7, np.nan, 0.6, 0.7, 0.8, 0.8])
    np.testing.assert_array_equal(table["accuracy_flops"], [0.5, np.nan, 0.25, 0.5, 1.0, 1.0])
    # f1 peaks at the 80% point, so from 100% on the best f1 point is cheaper than the budget.
    np.testing.assert_array_equal(table["f1"], [0.6, np.nan, 0.5, 0.6, 0.72, 0.72])
    np.testing.assert_array_equal(table["f1_flops"], [0.5, np.nan, 0.25, 0.5, 0.8, 0.8])


def test_budget_tolerates_rounding_and_single_metric():
    nudged = SWEEP.assign(flops_fraction=SWEEP["flops_fraction"] + 1e-12)
    table = budget_performance(nudged, [0.25], "accuracy")
    assert list(table.columns) == ["budget", "budget_fraction", "accuracy", "accuracy_flops"]
    assert table["accuracy"].tolist() == [0.6, 0.8]


def test_unlimited_is_the_overall_best_even_above_the_backbone_cost():
    costly = SWEEP.assign(flops_fraction=[0.5, 0.9, 1.1, 1.3])
    table = budget_performance(costly, [1.0], "f1")
    assert table["f1"].tolist() == [0.6, 0.72]


def test_budgets_refuse_mixed_splits():
    with pytest.raises(ValueError, match="splits"):
        budget_performance(pd.concat([SWEEP.assign(split="val"), SWEEP.assign(split="test")]), [0.5], "f1")


def test_e_closest_exact_and_nearest():
    assert e_closest(SWEEP, 1, "accuracy") == 0
    assert e_closest(SWEEP, 3, "accuracy") == 3
    assert e_closest(SWEEP, 4, "accuracy") == 3


def test_e_closest_ties_go_to_the_better_metric():
    # Head 2 is 0.5 from both E=1.5 (accuracy 0.7, f1 0.6) and E=2.5 (accuracy 0.65, f1 0.72).
    assert e_closest(SWEEP, 2, "accuracy") == 1
    assert e_closest(SWEEP, 2, "f1") == 2


def test_e_closest_equal_metric_ties_go_to_the_cheaper_point():
    same_depth = pd.DataFrame({"avg_exit_head": [2.0, 2.0, 2.0], "flops_fraction": [0.6, 0.5, 0.55],
                               "accuracy": [0.7, 0.7, 0.6]})
    assert e_closest(same_depth, 2, "accuracy") == 1


def test_bee_hand_computed_and_sign():
    frame = bee(SWEEP, {3: 0.8, 1: 0.55, 2: 0.75}, "accuracy")
    assert list(frame.columns) == ["head", "E_closest", "P_ee", "P_static", "B_EE"]
    assert frame["head"].tolist() == [1, 2, 3]
    assert frame["E_closest"].tolist() == [1.0, 1.5, 3.0]
    assert frame["P_ee"].tolist() == [0.6, 0.7, 0.8]
    np.testing.assert_allclose(frame["B_EE"], [0.05, -0.05, 0.0], atol=1e-12)  # early exits win, lose, tie


def write_cache(path, n_heads, seed, meta, n_classes=4, n=40, blocks=None, task="single_label"):
    rng = np.random.default_rng(seed)
    arrays = {}
    for split in ("val", "test"):
        if task == "regression":  # one output, float targets
            arrays[f"{split}_logits"] = rng.normal(size=(n_heads, n, 1)).astype(np.float32)
            arrays[f"{split}_labels"] = rng.normal(size=n).astype(np.float32)
        else:
            arrays[f"{split}_logits"] = (rng.normal(size=(n_heads, n, n_classes)) * 2).astype(np.float32)
            arrays[f"{split}_labels"] = rng.integers(0, n_classes, n).astype(np.int64)
    save_npz(path, **arrays, head_flops=np.arange(1.0, n_heads + 1), backbone_flops=np.float64(3.0),
             task=np.array(task), meta=np.array(json.dumps(meta)),
             head_blocks=np.asarray(blocks if blocks is not None else range(n_heads)))
    return arrays


IDENTITY = {"dataset": "digits", "backbone": "cnn", "regime": "joint", "seed": 0}


@pytest.fixture
def sweep_csv(tmp_path):
    write_cache(tmp_path / "ee.npz", 3, 0, IDENTITY)
    run_sweep(tmp_path / "ee.npz", "confidence", tmp_path / "sweep.csv")
    return tmp_path / "sweep.csv"


def static_caches(tmp_path, blocks):
    """Static models stopping after ``blocks`` (one head each), as the workflow writes them."""
    paths = []
    for block in blocks:
        path = tmp_path / f"static{block}.npz"
        write_cache(path, 1, 10 + block, {**IDENTITY, "regime": "static", "block": block}, blocks=[block])
        paths.append(str(path))
    return paths


def test_run_budgets_columns_and_values(sweep_csv, tmp_path):
    result = run_budgets(sweep_csv, [0.5, 1.0], tmp_path / "budgets.csv")
    written = pd.read_csv(tmp_path / "budgets.csv")
    assert list(written.columns) == ["dataset", "backbone", "regime", "seed", "criterion", "criterion_params", "rule", "budget",
                                     "budget_fraction", "accuracy", "accuracy_flops", "f1", "f1_flops"]
    assert written["budget"].tolist() == ["50%", "100%", "unlimited"]
    assert (written["rule"] == "best").all()
    test = pd.read_csv(sweep_csv).query("split == 'test'")
    assert written["accuracy"].iloc[-1] == pytest.approx(test["accuracy"].max())
    assert written["f1"].iloc[0] == pytest.approx(test.loc[test["flops_fraction"] <= 0.5 + 1e-9, "f1"].max())
    assert written["f1_flops"].iloc[0] <= 0.5 + 1e-9
    assert len(result) == 3


def test_run_bee_long_format(sweep_csv, tmp_path):
    paths = static_caches(tmp_path, [0, 2, 5])  # head i is the i-th cache, whatever its block
    run_bee(sweep_csv, paths, tmp_path / "bee.csv")
    written = pd.read_csv(tmp_path / "bee.csv")
    assert list(written.columns) == ["dataset", "backbone", "regime", "seed", "criterion", "criterion_params", "head", "metric",
                                     "reading", "E_closest", "P_ee", "P_static", "B_EE"]
    assert (written["reading"] == "nearest_to_head").all()  # confidence has no operating threshold of its own
    assert written[["metric", "head"]].values.tolist() == [[m, h] for m in ("accuracy", "f1") for h in (1, 2, 3)]
    assert (written["regime"] == "joint").all()
    static_3 = np.load(paths[2])
    expected = per_sample_performance(static_3["test_logits"], static_3["test_labels"], "single_label")["accuracy"].mean()
    row = written[(written["metric"] == "accuracy") & (written["head"] == 3)].iloc[0]
    assert row["P_static"] == pytest.approx(expected)
    assert row["B_EE"] == pytest.approx(row["P_ee"] - row["P_static"])
    assert row["E_closest"] == 3.0  # the +inf threshold puts everyone at head 3


def test_run_bee_refuses_bad_static_caches(sweep_csv, tmp_path):
    good = static_caches(tmp_path, [0, 1, 2])
    with pytest.raises(ValueError, match="3 heads, but 2 static caches"):
        run_bee(sweep_csv, good[:2], tmp_path / "bee.csv")
    with pytest.raises(ValueError, match="static1.npz: static head 3 stops at block 1, not after .* block 2"):
        run_bee(sweep_csv, [good[0], good[2], good[1]], tmp_path / "bee.csv")
    other = tmp_path / "other.npz"
    write_cache(other, 1, 7, {**IDENTITY, "dataset": "cifar10"}, blocks=[2])
    with pytest.raises(ValueError, match="other.npz.*dataset"):
        run_bee(sweep_csv, [*good[:2], str(other)], tmp_path / "bee.csv")
    multi_head = tmp_path / "multihead.npz"
    write_cache(multi_head, 3, 8, IDENTITY)
    with pytest.raises(ValueError, match="multihead.npz.*one head"):
        run_bee(sweep_csv, [*good[:2], str(multi_head)], tmp_path / "bee.csv")
    assert not (tmp_path / "bee.csv").exists()


def test_regression_budgets_and_bee_count_a_lower_mse_as_better(tmp_path):
    write_cache(tmp_path / "ee.npz", 3, 0, IDENTITY, task="regression")
    sweep = run_sweep(tmp_path / "ee.npz", "regression_patience", tmp_path / "sweep.csv")
    assert "mse" in sweep.columns and "accuracy" not in sweep.columns
    # Head 1 has no predecessor: never ready, so the fastest point has everyone at head 2 (2/3 of the FLOPs)
    # and a 50% budget holds no point.
    budgets = run_budgets(tmp_path / "sweep.csv", [0.5, 0.7, 1.0], tmp_path / "budgets.csv")
    assert list(budgets.columns[-4:]) == ["budget", "budget_fraction", "mse", "mse_flops"]
    test = sweep[sweep["split"] == "test"]
    assert test["avg_exit_head"].min() == 2.0 and np.isnan(budgets["mse"].iloc[0])
    # rule best: the smallest test MSE among points within the budget, and over all points when unlimited
    assert budgets["mse"].iloc[1] == pytest.approx(test.loc[test["flops_fraction"] <= 0.7 + 1e-9, "mse"].min())
    assert budgets["mse"].iloc[-1] == pytest.approx(test["mse"].min()) and test["mse"].nunique() > 1
    paths = []
    for block in (0, 1, 2):
        paths.append(str(tmp_path / f"static{block}.npz"))
        write_cache(paths[-1], 1, 10 + block, {**IDENTITY, "regime": "static"}, blocks=[block], task="regression")
    bee = run_bee(tmp_path / "sweep.csv", paths, tmp_path / "bee.csv")
    assert bee["metric"].unique().tolist() == ["mse"]
    static = np.load(paths[2])
    p_static = float(((static["test_logits"][0, :, 0] - static["test_labels"]) ** 2).mean())
    last = bee[bee["head"] == 3].iloc[0]
    assert last["P_static"] == pytest.approx(p_static)
    assert last["B_EE"] == pytest.approx(p_static - last["P_ee"])  # positive = the early-exit model errs less


def test_run_bee_refuses_static_caches_of_another_task(sweep_csv, tmp_path):
    paths = []
    for block in (0, 1, 2):
        paths.append(str(tmp_path / f"r{block}.npz"))
        write_cache(paths[-1], 1, block, {**IDENTITY, "regime": "static"}, blocks=[block], task="regression")
    with pytest.raises(ValueError, match="no accuracy, f1"):
        run_bee(sweep_csv, paths, tmp_path / "bee.csv")


def write_softmax_multilabel_cache(path, n_heads, seed, meta, blocks):
    """A softmax multi-label cache (paper A §4.2's variant): every sample has one to three labels of 5."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split in ("val", "test"):
        labels = np.zeros((60, 5), dtype=np.int64)
        for row in labels:
            row[rng.choice(5, size=rng.integers(1, 4), replace=False)] = 1
        arrays[f"{split}_logits"] = (rng.normal(size=(n_heads, 60, 5)) * 2).astype(np.float32)
        arrays[f"{split}_labels"] = labels
    save_npz(path, **arrays, head_flops=np.arange(1.0, n_heads + 1), backbone_flops=np.float64(3.0),
             task=np.array("multi_label_softmax"), meta=np.array(json.dumps(meta)),
             head_blocks=np.asarray(blocks))
    return arrays


def test_bee_scores_static_heads_at_the_sweeps_positive_threshold(tmp_path):
    """Paper A §4.2's softmax variant: a label is positive where its softmax probability is >= the setting's
    threshold. The static baselines are scored at the threshold the sweep recorded, never at the default."""
    from scipy.special import softmax
    from sklearn.metrics import f1_score

    write_softmax_multilabel_cache(tmp_path / "ee.npz", 3, 0, IDENTITY, blocks=[0, 1, 2])
    statics = []
    for block in (0, 1, 2):
        statics.append(tmp_path / f"static{block}.npz")
        write_softmax_multilabel_cache(statics[-1], 1, 10 + block, {**IDENTITY, "regime": "static"}, [block])
    p_static = {}
    for threshold in (0.05, 0.3):
        sweep_path = tmp_path / f"sweep{threshold}.csv"
        run_sweep(tmp_path / "ee.npz", "confidence", sweep_path, params={"positive_threshold": threshold},
                  name=f"softmax_confidence_{threshold}")
        assert json.loads(pd.read_csv(sweep_path)["criterion_params"].iloc[0]) == {"positive_threshold": threshold}
        bee = run_bee(sweep_path, [str(p) for p in statics], tmp_path / f"bee{threshold}.csv")
        for head, path in enumerate(statics, start=1):
            static = np.load(path)
            predicted = softmax(static["test_logits"][0].astype(np.float64), axis=-1) >= threshold
            expected = f1_score(static["test_labels"], predicted, average="samples", zero_division=0)
            row = bee[(bee["metric"] == "f1") & (bee["head"] == head)].iloc[0]
            assert row["P_static"] == pytest.approx(expected, abs=1e-12)
            p_static[threshold, head] = row["P_static"]
    assert all(p_static[0.05, head] != p_static[0.3, head] for head in (1, 2, 3))  # the threshold matters


def test_bee_refuses_a_sweep_without_its_criterion_params(sweep_csv, tmp_path):
    frame = pd.read_csv(sweep_csv).drop(columns="criterion_params")
    frame.to_csv(tmp_path / "old.csv", index=False)
    with pytest.raises(ValueError, match="old.csv: no 'criterion_params' column.*rerun the sweep"):
        run_bee(tmp_path / "old.csv", static_caches(tmp_path, [0, 1, 2]), tmp_path / "bee.csv")
    assert not (tmp_path / "bee.csv").exists()


def test_single_label_f1_is_accuracy_and_sklearns_samples_f1_of_one_hot_predictions():
    """Paper A's F1 is averaged over instances; with one predicted and one true label per sample it is 1 on a
    match and 0 otherwise: the accuracy, per sample and so for every operating point and B_EE."""
    from sklearn.metrics import accuracy_score, f1_score

    rng = np.random.default_rng(7)
    logits = rng.normal(size=(3, 200, 6))
    labels = rng.integers(0, 6, 200)
    per_sample = per_sample_performance(logits, labels, "single_label")
    np.testing.assert_array_equal(per_sample["f1"], per_sample["accuracy"])
    eye = np.eye(6, dtype=int)
    for head in range(3):
        predicted = logits[head].argmax(axis=-1)
        samples_f1 = f1_score(eye[labels], eye[predicted], average="samples", zero_division=0)
        assert per_sample["f1"][head].mean() == pytest.approx(samples_f1, abs=1e-12)
        assert per_sample["accuracy"][head].mean() == pytest.approx(accuracy_score(labels, predicted), abs=1e-12)
    assert 0.05 < per_sample["accuracy"].mean() < 0.5  # random logits: some right, most wrong


def test_bee_at_threshold_is_one_point_at_the_head_nearest_its_depth():
    """Paper A Fig. 5's learned exit: the one point threshold 0.5 selects (the first row >= 0.5: E = 1.5),
    compared with the static head nearest E; E = 1.5 is as near heads 1 and 2: the deeper head, the static model
    at least as costly."""
    from eebench.sweep_metrics import bee_at_threshold, operating_point

    static = {1: 0.55, 2: 0.75, 3: 0.8}
    assert operating_point(SWEEP, 0.5)["avg_exit_head"] == 1.5
    assert operating_point(SWEEP, 0.6)["avg_exit_head"] == 2.5  # between rows 0.5 and 0.9: the 0.9 row
    row = bee_at_threshold(SWEEP, static, "accuracy", 0.5)
    assert row.to_dict("records") == [{"head": 2, "E_closest": 1.5, "P_ee": 0.7, "P_static": 0.75,
                                       "B_EE": pytest.approx(-0.05)}]
    assert bee_at_threshold(SWEEP, static, "f1", 0.6)["head"].tolist() == [3]  # E = 2.5: heads 2 and 3 tie
    assert bee_at_threshold(SWEEP, static, "f1", 0.05)["head"].tolist() == [1]  # E = 1.0
    with pytest.raises(ValueError, match="no \\+inf threshold"):
        operating_point(SWEEP.iloc[:-1], 0.5)


def test_run_bee_reads_the_learned_exit_both_ways(tmp_path):
    """A learned-exit sweep records its operating threshold; its B_EE CSV holds the whole-sweep reading (one row
    per head) and the threshold-0.5 point (one row per metric), which is the point exit_heads gives at 0.5."""
    from eebench.exits.criteria import CRITERIA
    from eebench.exits.sweep import exit_heads

    arrays = write_cache(tmp_path / "ee.npz", 3, 0, IDENTITY)
    run_sweep(tmp_path / "ee.npz", "learned_exit", tmp_path / "sweep.csv", name="learned")
    assert (pd.read_csv(tmp_path / "sweep.csv")["operating_threshold"] == 0.5).all()
    paths = static_caches(tmp_path, [0, 1, 2])
    written = run_bee(tmp_path / "sweep.csv", paths, tmp_path / "bee.csv")
    assert written.groupby("reading").size().to_dict() == {"nearest_to_head": 6, "threshold_0.5": 2}
    point = written[written["reading"] == "threshold_0.5"].set_index("metric")
    # By hand: the classifier's scores (fitted on val, applied with test), exits at the first score >= 0.5.
    both = CRITERIA.get("learned_exit")(np.concatenate([arrays["val_logits"], arrays["test_logits"]], axis=1),
                                        "single_label", fit_on=(arrays["val_logits"], arrays["val_labels"]))
    heads = exit_heads(both[:, arrays["val_logits"].shape[1]:], 0.5)
    correct = per_sample_performance(arrays["test_logits"], arrays["test_labels"], "single_label")["accuracy"]
    assert point.loc["accuracy", "E_closest"] == pytest.approx(1 + heads.mean())
    assert point.loc["accuracy", "P_ee"] == pytest.approx(correct[heads, np.arange(heads.size)].mean())
    assert point.loc["accuracy", "head"] == min(3, max(1, int(np.floor(1 + heads.mean() + 0.5))))


def test_the_metrics_and_bee_run_commands_write_what_sweep_budgets_and_bee_write_one_by_one(tmp_path):
    """`eebench metrics` (one process per run, the workflow's compute_metrics) writes each sweep and budget table
    of its plan, and `eebench bee-run` (one process per run, the workflow's compute_bee) each B_EE table of its
    criteria from those sweeps, byte for byte as `eebench sweep`, `eebench budgets` and `eebench bee` write them,
    in their directories' layouts, and nothing else; several criteria share one read of the logit cache (a
    learned one among them), and of the static caches."""
    from eebench.cli import main
    from eebench.metrics import bee_file, budgets_file, sweep_file

    write_cache(tmp_path / "ee.npz", 3, 0, IDENTITY, n=60)
    static = static_caches(tmp_path, [0, 1, 2])
    plan = {
        "max_points": 9,
        "sweeps": [{"name": "confidence", "criterion": "confidence", "params": {}},
                   {"name": "learned", "criterion": "learned_exit", "params": {"alpha": 0.5, "epochs": 20}},
                   {"name": "rank", "criterion": "rank_patience", "params": {"agreement": "ndcg", "tolerance": 0.05}}],
        "budgets": [{"criterion": "confidence", "rule": "last", "budgets": [0.5, 1.0]},
                    {"criterion": "confidence", "rule": "val", "budgets": [0.4, 0.8]},
                    {"criterion": "rank", "rule": "best", "budgets": [0.5, 1.0]}],
    }
    criteria = ["confidence", "learned"]
    out, bee_out = tmp_path / "run", tmp_path / "bee"
    assert main(["metrics", "--logits", str(tmp_path / "ee.npz"), "--plan", json.dumps(plan),
                 "--out", str(out)]) == 0
    assert main(["bee-run", "--metrics", str(out), "--static", *static, "--criteria", *criteria,
                 "--out", str(bee_out)]) == 0  # as the workflow's compute_bee gives them

    one_by_one = tmp_path / "one_by_one"
    expected, expected_bee = [], []
    for item in plan["sweeps"]:
        expected.append(sweep_file(item["name"]))
        assert main(["sweep", "--logits", str(tmp_path / "ee.npz"), "--criterion", item["criterion"],
                     "--params", json.dumps(item["params"]), "--name", item["name"], "--max-points", "9",
                     "--out", str(one_by_one / expected[-1])]) == 0
    for item in plan["budgets"]:
        expected.append(budgets_file(item["criterion"], item["rule"], item["budgets"]))
        assert main(["budgets", "--sweep", str(one_by_one / sweep_file(item["criterion"])), "--rule", item["rule"],
                     "--budgets", *map(str, item["budgets"]), "--out", str(one_by_one / expected[-1])]) == 0
    for criterion in criteria:
        expected_bee.append(bee_file(criterion))
        assert main(["bee", "--sweep", str(one_by_one / sweep_file(criterion)), "--static", *static,
                     "--out", str(one_by_one / "bee" / expected_bee[-1])]) == 0

    assert expected[3:] == ["budgets/confidence/last/50-100.csv", "budgets/confidence/val/40-80.csv",
                            "budgets/rank/best/50-100.csv"]
    assert expected_bee == ["confidence.csv", "learned.csv"]
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == sorted(expected)
    assert sorted(str(p.relative_to(bee_out)) for p in bee_out.rglob("*") if p.is_file()) == expected_bee
    for written, reference in [*((out / name, one_by_one / name) for name in expected),
                               *((bee_out / name, one_by_one / "bee" / name) for name in expected_bee)]:
        pd.testing.assert_frame_equal(pd.read_csv(written), pd.read_csv(reference))
        assert written.read_bytes() == reference.read_bytes(), written
    assert (pd.read_csv(out / "sweeps/confidence.csv").groupby("split").size() == 9).all()  # max_points
    assert (pd.read_csv(out / "sweeps/learned.csv")["criterion"] == "learned").all()  # the setting's name
    assert set(pd.read_csv(bee_out / "learned.csv")["reading"]) == {"nearest_to_head", "threshold_0.5"}


def test_the_metrics_command_refuses_a_plan_it_cannot_follow_before_writing(tmp_path, capsys):
    from eebench.cli import main

    write_cache(tmp_path / "ee.npz", 3, 0, IDENTITY)
    sweeps = [{"name": "confidence", "criterion": "confidence", "params": {}}]
    for plan, message in (
        ({"sweeps": sweeps, "budgets": [{"criterion": "entropy", "rule": "last", "budgets": [1.0]}]},
         "budgets of entropy, which it does not sweep"),
        ({"sweeps": sweeps, "budgets": [{"criterion": "confidence", "rule": "worst", "budgets": [1.0]}]},
         "unknown budget rule 'worst'"),
        ({"sweeps": sweeps, "bugdets": []}, "unknown key(s) bugdets"),
        ({"sweeps": sweeps, "bee": ["confidence"]}, "unknown key(s) bee"),  # B_EE is bee-run's, not this job's
    ):
        assert main(["metrics", "--logits", str(tmp_path / "ee.npz"), "--plan", json.dumps(plan),
                     "--out", str(tmp_path / "run")]) == 2
        assert message in capsys.readouterr().err
        assert not (tmp_path / "run").exists()
    # An empty plan makes an empty directory (the workflow's output must exist).
    assert main(["metrics", "--logits", str(tmp_path / "ee.npz"), "--plan", json.dumps({"sweeps": []}),
                 "--out", str(tmp_path / "run")]) == 0
    assert (tmp_path / "run").is_dir() and not any((tmp_path / "run").iterdir())


def test_the_bee_run_command_refuses_what_it_cannot_read_before_writing(tmp_path, capsys, monkeypatch):
    from eebench import metrics
    from eebench.cli import main

    write_cache(tmp_path / "ee.npz", 3, 0, IDENTITY)
    static = static_caches(tmp_path, [0, 1, 2])
    plan = {"sweeps": [{"name": "confidence", "criterion": "confidence", "params": {}}]}
    assert main(["metrics", "--logits", str(tmp_path / "ee.npz"), "--plan", json.dumps(plan),
                 "--out", str(tmp_path / "run")]) == 0
    for criteria, message in ((["confidence", "entropy"], "no sweep " + str(tmp_path / "run/sweeps/entropy.csv")),
                              (["confidence", "confidence"], "a criterion is named twice")):
        assert main(["bee-run", "--metrics", str(tmp_path / "run"), "--criteria", *criteria, "--static", *static,
                     "--out", str(tmp_path / "bee")]) == 2
        assert message in capsys.readouterr().err
        assert not (tmp_path / "bee").exists()
    with pytest.raises(SystemExit):  # the static caches are required
        main(["bee-run", "--metrics", str(tmp_path / "run"), "--criteria", "confidence",
              "--out", str(tmp_path / "bee")])
    assert not (tmp_path / "bee").exists()
    # Two criteria read each static cache once.
    plan["sweeps"].append({"name": "ent", "criterion": "entropy", "params": {}})
    assert main(["metrics", "--logits", str(tmp_path / "ee.npz"), "--plan", json.dumps(plan),
                 "--out", str(tmp_path / "run")]) == 0
    read = []
    monkeypatch.setattr(metrics, "load_cache", lambda path, load=metrics.load_cache: read.append(path) or load(path))
    assert main(["bee-run", "--metrics", str(tmp_path / "run"), "--criteria", "confidence", "ent", "--static", *static,
                 "--out", str(tmp_path / "bee")]) == 0
    assert sorted(map(str, read)) == sorted(static)
    assert sorted(p.name for p in (tmp_path / "bee").iterdir()) == ["confidence.csv", "ent.csv"]
