"""Threshold sweep: a hand-computed example, edge cases, and agreement with a brute-force sweep."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from eebench.exits.criteria import CRITERIA
from eebench.exits import sweep as sweep_module
from eebench.exits.sweep import load_cache, run_sweep, sweep
from eebench.io import save_npz
from eebench.tasks import TASKS, per_sample_performance

# H=3 heads x N=4 samples. Running max over heads 1-2: [0.9, 0.2, 0.5, 0.1] and [0.9, 0.6, 0.5, 0.3].
SCORES = np.array([[0.9, 0.2, 0.5, 0.1], [0.1, 0.6, 0.5, 0.3], [0.0, 0.0, 0.0, 0.0]])
CORRECT = np.array([[1.0, 0, 0, 0], [0, 1, 0, 1], [1, 1, 1, 0]])
HEAD_FLOPS = np.array([1.0, 2.0, 4.0])


def exit_heads(scores: np.ndarray, threshold: float) -> np.ndarray:
    """Brute force, one sample at a time: the first head whose score reaches the threshold and is not -inf
    ("never ready"), else the last."""
    n_heads, n_samples = scores.shape
    exits = np.full(n_samples, n_heads - 1)
    for n in range(n_samples):
        for h in range(n_heads):
            if scores[h, n] >= threshold and scores[h, n] > -np.inf:
                exits[n] = h
                break
    return exits


def operating_point(scores, performance, head_flops, backbone_flops, threshold) -> dict[str, float]:
    exits = exit_heads(scores, threshold)
    samples = np.arange(scores.shape[1])
    point = {"avg_exit_head": exits.mean() + 1, "flops_fraction": head_flops[exits].mean() / backbone_flops}
    point.update({name: values[exits, samples].mean() for name, values in performance.items()})
    return point


def test_hand_computed_example():
    frame = sweep(SCORES, {"accuracy": CORRECT}, HEAD_FLOPS, backbone_flops=4.0)
    # exit heads (1-based) per row: 1111, 1112, 1212, 1213, 1233, 1333, 3333
    expected = pd.DataFrame({
        "threshold": [0.1, 0.2, 0.3, 0.5, 0.6, 0.9, np.inf],
        "avg_exit_head": [4 / 4, 5 / 4, 6 / 4, 7 / 4, 9 / 4, 10 / 4, 12 / 4],
        "flops_fraction": np.array([4, 5, 6, 8, 11, 13, 16]) / 16,
        "accuracy": [0.25, 0.5, 0.75, 0.5, 0.75, 0.75, 0.75],
    })
    pd.testing.assert_frame_equal(frame, expected)


def test_score_equal_to_threshold_exits():
    # At t=0.3, sample 4's head-2 score is exactly 0.3: it exits there (head 2), not at head 3.
    frame = sweep(SCORES, {}, HEAD_FLOPS, 4.0).set_index("threshold")
    assert frame.loc[0.3, "avg_exit_head"] == pytest.approx(6 / 4)


def test_all_ties_give_two_points():
    frame = sweep(np.full((3, 5), 0.5), {"accuracy": np.zeros((3, 5))}, HEAD_FLOPS, 4.0)
    assert frame["threshold"].tolist() == [0.5, np.inf]
    assert frame["avg_exit_head"].tolist() == [1.0, 3.0]
    assert frame["flops_fraction"].tolist() == [0.25, 1.0]


def test_one_head_gives_one_point_at_infinity():
    frame = sweep(np.array([[0.2, 0.7]]), {"f1": np.array([[1.0, 0.5]])}, np.array([3.0]), 6.0)
    assert frame.to_dict("records") == [{"threshold": np.inf, "avg_exit_head": 1.0, "flops_fraction": 0.5, "f1": 0.75}]


def test_columns_follow_performance_keys():
    frame = sweep(SCORES, {"f1": CORRECT, "accuracy": CORRECT}, HEAD_FLOPS, 4.0)
    assert list(frame.columns) == ["threshold", "avg_exit_head", "flops_fraction", "f1", "accuracy"]


def test_max_points_keeps_extremes_and_an_even_grid():
    rng = np.random.default_rng(0)
    scores = np.sort(rng.random((4, 100)), axis=0)  # rising scores: every running-max value is distinct
    full = sweep(scores, {}, np.arange(1.0, 5.0), 4.0)
    thin = sweep(scores, {}, np.arange(1.0, 5.0), 4.0, max_points=10)
    assert len(full) == 3 * 100 + 1 and len(thin) == 10
    pd.testing.assert_series_equal(thin.iloc[0], full.iloc[0], check_names=False)
    pd.testing.assert_series_equal(thin.iloc[-1], full.iloc[-1], check_names=False)
    assert thin["threshold"].isin(full["threshold"]).all()
    assert len(sweep(scores, {}, np.arange(1.0, 5.0), 4.0, max_points=10_000)) == len(full)
    with pytest.raises(ValueError, match="max_points"):
        sweep(scores, {}, np.arange(1.0, 5.0), 4.0, max_points=1)


def test_invalid_inputs_are_refused():
    with pytest.raises(ValueError, match="NaN"):
        sweep(np.array([[np.nan, 0.1], [0.2, 0.3]]), {}, np.array([1.0, 2.0]), 2.0)
    with pytest.raises(ValueError, match="inf"):
        sweep(np.array([[np.inf, 0.1], [0.2, 0.3]]), {}, np.array([1.0, 2.0]), 2.0)
    with pytest.raises(ValueError, match="head_flops"):
        sweep(SCORES, {}, np.array([1.0, 2.0]), 4.0)
    with pytest.raises(ValueError, match="performance"):
        sweep(SCORES, {"accuracy": CORRECT[:2]}, HEAD_FLOPS, 4.0)


@pytest.mark.parametrize("seed", range(25))
def test_matches_brute_force_at_every_threshold(seed):
    rng = np.random.default_rng(seed)
    n_heads, n_samples = int(rng.integers(1, 6)), int(rng.integers(1, 30))
    scores = rng.integers(0, 6, size=(n_heads, n_samples)) / 5 if seed % 2 else rng.random((n_heads, n_samples))
    performance = {"accuracy": rng.integers(0, 2, size=(n_heads, n_samples)).astype(float),
                   "f1": rng.random((n_heads, n_samples))}
    head_flops = np.cumsum(rng.random(n_heads) + 0.1)
    frame = sweep(scores, performance, head_flops, backbone_flops=head_flops[-1])

    thresholds = frame["threshold"].to_numpy()
    assert (np.diff(thresholds) > 0).all() and thresholds[-1] == np.inf
    assert frame["avg_exit_head"].iloc[0] == 1.0 and frame["avg_exit_head"].iloc[-1] == n_heads
    for row, threshold in enumerate(thresholds):
        expected = operating_point(scores, performance, head_flops, head_flops[-1], threshold)
        for column, value in expected.items():
            assert frame[column].iloc[row] == pytest.approx(value, abs=1e-12), (row, column)
    # Consecutive rows are distinct exit assignments ...
    for lower, upper in zip(thresholds[:-1], thresholds[1:]):
        assert not np.array_equal(exit_heads(scores, lower), exit_heads(scores, upper))
    # ... and any threshold behaves like the first row whose threshold is >= it: no operating point is missed.
    probes = np.concatenate([np.unique(scores), np.unique(scores) + 1e-9, rng.random(20), [-1.0, 2.0]])
    for threshold in probes:
        row = int(np.searchsorted(thresholds, threshold, side="left"))
        np.testing.assert_array_equal(exit_heads(scores, threshold), exit_heads(scores, thresholds[row]))


def write_cache(path, n_heads=3, n_classes=4, task="single_label", seed=0, meta=None, n_val=30, n_test=40):
    rng = np.random.default_rng(seed)
    n_classes = 1 if task == "regression" else n_classes
    arrays = {}
    for split, n in (("val", n_val), ("test", n_test)):
        arrays[f"{split}_logits"] = (rng.normal(size=(n_heads, n, n_classes)) * 2).astype(np.float32)
        arrays[f"{split}_labels"] = {
            "single_label": lambda: rng.integers(0, n_classes, n).astype(np.int64),
            "multi_label": lambda: (rng.random((n, n_classes)) < 0.4).astype(np.uint8),
            "multi_label_softmax": lambda: (rng.random((n, n_classes)) < 0.4).astype(np.uint8),
            "regression": lambda: rng.normal(size=n).astype(np.float32),
        }[task]()
    meta = meta if meta is not None else {"dataset": "digits", "backbone": "cnn", "regime": "joint", "seed": seed}
    save_npz(path, **arrays, head_flops=np.arange(1.0, n_heads + 1), backbone_flops=np.float64(n_heads),
             task=np.array(task), meta=np.array(json.dumps(meta)))
    return arrays


def test_load_cache_decodes_meta_and_scalars(tmp_path):
    write_cache(tmp_path / "c.npz")
    cache = load_cache(tmp_path / "c.npz")
    assert cache["meta"] == {"dataset": "digits", "backbone": "cnn", "regime": "joint", "seed": 0}
    assert cache["task"] is TASKS.get("single_label") and cache["backbone_flops"] == 3.0
    assert cache["val_logits"].shape == (3, 30, 4) and cache["head_flops"].dtype == np.float64


def test_load_cache_names_a_missing_key(tmp_path):
    save_npz(tmp_path / "bad.npz", val_logits=np.zeros((1, 2, 3)))
    with pytest.raises(ValueError, match="bad.npz.*test_logits"):
        load_cache(tmp_path / "bad.npz")


@pytest.mark.parametrize(("criterion", "task"),
                         [(name, task) for name in CRITERIA.names() for task in CRITERIA.get(name).applies_to])
def test_run_sweep_writes_both_splits_with_identity_columns(tmp_path, criterion, task):
    arrays = write_cache(tmp_path / "c.npz", task=task)
    out = tmp_path / "sweeps" / "s.csv"
    returned = run_sweep(tmp_path / "c.npz", criterion, out)
    frame = pd.read_csv(out)
    metrics = ["mse"] if task == "regression" else ["accuracy", "f1"]
    operating = ["operating_threshold"] if criterion == "learned_exit" else []  # its own 0.5 (paper A §4.2)
    assert list(frame.columns) == ["dataset", "backbone", "regime", "seed", "criterion", "criterion_params",
                                   *operating, "split", "threshold", "avg_exit_head", "flops_fraction", *metrics]
    if operating:
        assert (frame["operating_threshold"] == 0.5).all()
    assert set(frame["split"]) == {"val", "test"} and (frame["criterion"] == criterion).all()
    assert len(returned) == len(frame)
    test = frame[frame["split"] == "test"].reset_index(drop=True)
    logits, labels = arrays["test_logits"], arrays["test_labels"]
    fit_on = (arrays["val_logits"], arrays["val_labels"]) if CRITERIA.get(criterion).learns else None
    if fit_on is not None:  # fitted once on val, applied to val and test together
        both = CRITERIA.get(criterion)(np.concatenate([fit_on[0], logits], axis=1), task, fit_on=fit_on)
        scores = both[:, fit_on[0].shape[1]:]
    else:
        scores = CRITERIA.get(criterion)(logits, task)
    expected = sweep(scores, per_sample_performance(logits, labels, task),
                     np.arange(1.0, 4.0), 3.0)
    pd.testing.assert_frame_equal(test[expected.columns], expected, check_exact=True)  # floats round-trip


def test_run_sweep_thins_each_split(tmp_path):
    write_cache(tmp_path / "c.npz")
    frame = run_sweep(tmp_path / "c.npz", "confidence", tmp_path / "s.csv", max_points=5)
    assert frame.groupby("split").size().to_dict() == {"test": 5, "val": 5}


def test_run_sweep_refuses_unknown_criterion_and_clashing_meta(tmp_path):
    write_cache(tmp_path / "c.npz", meta={"dataset": "digits", "split": "x"})
    with pytest.raises(KeyError, match="criterion"):
        run_sweep(tmp_path / "c.npz", "no-such-criterion", tmp_path / "s.csv")
    with pytest.raises(ValueError, match="split"):
        run_sweep(tmp_path / "c.npz", "confidence", tmp_path / "s.csv")
    assert not (tmp_path / "s.csv").exists()


def test_run_sweep_passes_parameters_and_writes_the_settings_name(tmp_path):
    arrays = write_cache(tmp_path / "c.npz")
    real = CRITERIA.get("patience")
    frame = run_sweep(tmp_path / "c.npz", "patience", tmp_path / "s.csv", name="pbee")
    assert set(frame["criterion"]) == {"pbee"}
    expected = sweep(real(arrays["test_logits"], "single_label"),
                     per_sample_performance(arrays["test_logits"], arrays["test_labels"], "single_label"),
                     np.arange(1.0, 4.0), 3.0)
    test = frame[frame["split"] == "test"].reset_index(drop=True)
    pd.testing.assert_frame_equal(test[expected.columns], expected)
    with pytest.raises(TypeError, match="'confidence': unknown parameter 'tolerance'"):
        run_sweep(tmp_path / "c.npz", "confidence", tmp_path / "t.csv", params={"tolerance": 0.1})
    assert not (tmp_path / "t.csv").exists()


def test_a_settings_positive_threshold_configures_the_softmax_multi_label_task(tmp_path):
    arrays = write_cache(tmp_path / "c.npz", task="multi_label_softmax")
    frame = run_sweep(tmp_path / "c.npz", "entropy", tmp_path / "s.csv", params={"positive_threshold": 0.3},
                      name="entropy_t03")
    task = TASKS.get("multi_label_softmax").configured(positive_threshold=0.3)
    logits, labels = arrays["test_logits"], arrays["test_labels"]
    expected = sweep(CRITERIA.get("entropy")(logits, task), per_sample_performance(logits, labels, task),
                     np.arange(1.0, 4.0), 3.0)
    test = frame[frame["split"] == "test"].reset_index(drop=True)
    pd.testing.assert_frame_equal(test[expected.columns], expected)
    default = run_sweep(tmp_path / "c.npz", "entropy", tmp_path / "d.csv")  # threshold 0.1: other F1
    assert not np.allclose(default.loc[default["split"] == "test", "f1"].to_numpy(), test["f1"].to_numpy())
    write_cache(tmp_path / "sigmoid.npz", task="multi_label")
    with pytest.raises(TypeError, match="sigmoid.npz: task 'multi_label': unknown parameter 'positive_threshold'"):
        run_sweep(tmp_path / "sigmoid.npz", "entropy", tmp_path / "e.csv", params={"positive_threshold": 0.3})


@pytest.mark.parametrize("seed", range(10))
def test_package_exit_heads_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 5, size=(int(rng.integers(1, 6)), 40)) / 4
    for threshold in (-1.0, 0.0, 0.25, 0.5, 0.6, 1.0, 2.0):
        np.testing.assert_array_equal(sweep_module.exit_heads(scores, threshold), exit_heads(scores, threshold))


def test_a_minus_inf_score_is_never_ready_so_the_sweep_has_no_forbidden_point():
    """-inf = "never ready" (hybrid before its rank patience, rank-patience below its smallest patience): no
    threshold, not even -inf, lets a sample exit there. Without it the sweep's first row (threshold -inf) put
    everyone at head 1, a point those criteria forbid."""
    scores = np.array([[-np.inf, -np.inf, -np.inf],
                       [0.9, -np.inf, 0.2],
                       [0.1, 0.4, 0.3],
                       [0.0, 0.0, 0.0]])
    correct = np.array([[1, 1, 1], [0, 1, 1], [1, 0, 1], [1, 1, 0]], dtype=float)
    frame = sweep(scores, {"accuracy": correct}, np.arange(1.0, 5.0), 4.0)
    np.testing.assert_array_equal(exit_heads(scores, -np.inf), [1, 2, 1])  # head 0 (1-based 1) never
    assert frame["threshold"].tolist() == [0.2, 0.3, 0.4, 0.9, np.inf]
    for row in frame.itertuples():  # every row is the rule applied by hand at its threshold
        heads = exit_heads(scores, row.threshold)
        assert not np.isneginf(scores[heads[heads < 3], np.flatnonzero(heads < 3)]).any()
        assert row.avg_exit_head == pytest.approx(1 + heads.mean())
        assert row.accuracy == pytest.approx(correct[heads, np.arange(3)].mean())
        assert row.flops_fraction == pytest.approx((heads + 1).mean() / 4.0)
    # t = 0.2: sample 0 exits at head 2 (0.9), 1 waits for head 3 (0.4), 2 exits at head 2 (0.2): E = 7/3.
    assert frame["avg_exit_head"].iloc[0] == pytest.approx(7 / 3)
    assert (frame["avg_exit_head"] > 1.0).all()
    # All -inf up to the last head: the only point is everyone at the last head.
    only = sweep(np.array([[-np.inf, -np.inf], [-np.inf, -np.inf], [0.5, 0.5]]), {}, np.arange(1.0, 4.0), 3.0)
    assert only.to_dict("records") == [{"threshold": np.inf, "avg_exit_head": 3.0, "flops_fraction": 1.0}]


@pytest.mark.parametrize("seed", range(15))
def test_matches_brute_force_with_never_ready_heads(seed):
    """Scores with -inf sprinkled in (hybrid, rank-patience): every row is the brute-force rule at its threshold,
    any threshold (-inf included) selects the first row >= it, and no row has a sample exit at a -inf head."""
    rng = np.random.default_rng(100 + seed)
    n_heads, n_samples = int(rng.integers(2, 6)), int(rng.integers(1, 25))
    scores = rng.random((n_heads, n_samples))
    scores[rng.random((n_heads, n_samples)) < 0.4] = -np.inf
    scores[0, rng.random(n_samples) < 0.8] = -np.inf  # mostly forbidden at head 1, as hybrid's always is
    performance = {"accuracy": rng.integers(0, 2, size=(n_heads, n_samples)).astype(float)}
    head_flops = np.cumsum(rng.random(n_heads) + 0.1)
    frame = sweep(scores, performance, head_flops, backbone_flops=head_flops[-1])
    thresholds = frame["threshold"].to_numpy()
    assert np.isfinite(thresholds[:-1]).all() and thresholds[-1] == np.inf
    for row, threshold in enumerate(thresholds):
        expected = operating_point(scores, performance, head_flops, head_flops[-1], threshold)
        for column, value in expected.items():
            assert frame[column].iloc[row] == pytest.approx(value, abs=1e-12), (row, column)
        heads = exit_heads(scores, threshold)
        early = heads < n_heads - 1
        assert not np.isneginf(scores[heads[early], np.flatnonzero(early)]).any()
    finite = np.unique(scores[np.isfinite(scores)])
    for threshold in np.concatenate([[-np.inf, -1.0, 2.0], finite, finite + 1e-9]):
        row = int(np.searchsorted(thresholds, threshold, side="left"))
        np.testing.assert_array_equal(exit_heads(scores, threshold), exit_heads(scores, thresholds[row]))
        np.testing.assert_array_equal(sweep_module.exit_heads(scores, threshold), exit_heads(scores, threshold))
