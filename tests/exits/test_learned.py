"""The learned exit (paper A §3, eq. (1)-(2)): its loss by hand, what it learns on a separable case, and the
sweep fitting it once on the validation split."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from eebench.exits.criteria import CRITERIA
from eebench.exits.learned import _loss, exit_targets
from eebench.exits.sweep import run_sweep
from eebench.io import save_npz
from eebench.tasks import TASKS


def test_the_regularised_mse_is_eq_2_per_head():
    scores = torch.tensor([[0.0, 2.0], [-1.0, 1.0]])  # sigmoid: [0.5, 0.8808], [0.2689, 0.7311]
    targets = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    p = torch.sigmoid(scores)
    alpha = 0.3
    by_hand = [alpha * ((p[h] - targets[h]) ** 2).mean() + (1 - alpha) * ((p[h] * (1 - targets[h])) ** 2).mean()
               for h in range(2)]
    np.testing.assert_allclose(_loss(scores, targets, "mse_regularised", alpha).numpy(), torch.stack(by_hand).numpy())
    # head 0: alpha (0.25 + 0.8808^2) / 2 + (1 - alpha) (0 + 0.8808^2) / 2
    assert _loss(scores, targets, "mse_regularised", alpha)[0].item() == pytest.approx(
        alpha * (0.25 + 0.880797 ** 2) / 2 + (1 - alpha) * 0.880797 ** 2 / 2, rel=1e-5)
    np.testing.assert_allclose(_loss(scores, targets, "hinge", 0.5).numpy(),
                               [(1.0 + 3.0) / 2, (0.0 + 0.0) / 2])  # 1 - 0, 1 + 2; 1 - 1, 1 - 1


def test_exit_targets_are_the_heads_being_right():
    logits = np.array([[[2.0, 0.0], [0.0, 1.0]], [[0.0, 3.0], [0.0, 1.0]]])
    assert exit_targets(logits, np.array([0, 1]), TASKS.get("single_label")).tolist() == [[1.0, 1.0], [0.0, 1.0]]


def separable(seed=0, n=300):
    """Head 1 is right on the first half of the samples only, with a tell-tale large logit there."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(2, n, 4)).astype(np.float32)
    labels = rng.integers(0, 4, n)
    logits[1, np.arange(n), labels] += 4.0  # the last head is always right
    half = np.arange(n // 2)
    logits[0, half, labels[half]] += 4.0
    logits[0, n // 2:, (labels[n // 2:] + 1) % 4] += 4.0  # confidently wrong on the rest
    return logits, labels


def test_it_learns_when_a_head_is_right():
    logits, labels = separable()
    scores = CRITERIA.get("learned_exit")(logits, "single_label", fit_on=(logits, labels))
    right = exit_targets(logits, labels, TASKS.get("single_label"))[0].astype(bool)
    assert scores.shape == logits.shape[:2] and ((scores >= 0) & (scores <= 1)).all()
    assert scores[0, right].mean() > 0.6 > 0.4 > scores[0, ~right].mean()
    with pytest.raises(ValueError, match="learns from labelled logits: pass fit_on"):
        CRITERIA.get("learned_exit")(logits, "single_label")
    for params, match in (({"loss": "huber"}, "loss must be one of"), ({"alpha": 2}, "alpha must be in"),
                          ({"epochs": 0}, "epochs must be an integer >= 1")):
        with pytest.raises(ValueError, match=match):
            CRITERIA.get("learned_exit")(logits, "single_label", fit_on=(logits, labels), **params)


def test_the_sweep_fits_it_once_on_the_validation_split(tmp_path):
    val, val_labels = separable(0)
    test, test_labels = separable(1, n=200)
    save_npz(tmp_path / "c.npz", val_logits=val, test_logits=test, val_labels=val_labels, test_labels=test_labels,
             head_flops=np.array([1.0, 2.0]), backbone_flops=np.float64(2.0), task=np.array("single_label"),
             meta=np.array('{"model": "m"}'))
    frame = run_sweep(tmp_path / "c.npz", "learned_exit", tmp_path / "s.csv", params={"epochs": 100}, name="learned")
    fitted = CRITERIA.get("learned_exit")(test, "single_label", fit_on=(val, val_labels), epochs=100)
    expected_exit = 1 + (np.maximum.accumulate(fitted, axis=0)[0] < 0.5).mean()  # threshold 0.5, test split
    test_rows = frame[frame["split"] == "test"]
    at_half = test_rows[test_rows["threshold"] >= 0.5].iloc[0]
    assert at_half["avg_exit_head"] == pytest.approx(expected_exit)
    assert 1.2 < expected_exit < 1.8 and set(frame["criterion"]) == {"learned"}


def test_the_head_weighting_is_inert_under_adam(monkeypatch):
    """Eq. (2)'s 1 / (h_i + 1) scales each head's loss, but each head has its own classifier and Adam's step is
    invariant to a constant gradient scale (up to eps): the fitted scores agree with an unweighted fit to ~1e-6
    (measured: <= 1.2e-7) for the paper's loss and the smooth alternatives. (The hinge's do not: measured 1.1e-2,
    its kinks turn rounding-level differences into different steps; paper A reports the MSE only.) A weight that
    does reach Adam's eps, 1e-12, changes the fit: the comparison can fail."""
    from eebench.exits import learned

    rng = np.random.default_rng(3)
    logits = rng.normal(size=(4, 400, 5)).astype(np.float32) * 2
    labels = rng.integers(0, 5, 400)

    def fit(loss):
        return CRITERIA.get("learned_exit")(logits, "single_label", fit_on=(logits, labels), loss=loss)

    losses = ("mse_regularised", "bce", "l1")
    weighted = {loss: fit(loss) for loss in losses}
    assert learned._head_weights(4).tolist() == pytest.approx([1.0, 1 / 2, 1 / 3, 1 / 4])
    monkeypatch.setattr(learned, "_head_weights", lambda n_heads: torch.ones(n_heads))
    for loss in losses:
        np.testing.assert_allclose(weighted[loss], fit(loss), atol=1e-6, rtol=0)
        assert np.abs(weighted[loss][1:] - 0.5).max() > 0.05  # the classifiers did move away from their start
    monkeypatch.setattr(learned, "_head_weights", lambda n_heads: torch.tensor([1.0] * (n_heads - 1) + [1e-12]))
    assert np.abs(weighted["mse_regularised"] - fit("mse_regularised")).max() > 0.1


def test_learned_exit_operating_point_is_the_sweep_row_threshold_half_selects():
    """Paper A §4.2: the learned exit exits where its classifier's output exceeds 0.5. That point is the first
    sweep row whose threshold is >= 0.5 (row k holds every t in (thr[k-1], thr[k]]), not the last row <= 0.5;
    checked against exit heads assigned by hand."""
    from eebench.exits.sweep import exit_heads, sweep
    from eebench.sweep_metrics import operating_point

    # Scores chosen so that no score is exactly 0.5: the rows around 0.5 are thresholds 0.45 and 0.6.
    scores = np.array([[0.2, 0.6, 0.45, 0.9],
                       [0.7, 0.3, 0.55, 0.1],
                       [0.1, 0.1, 0.1, 0.1]])
    correct = np.array([[0, 1, 0, 1], [1, 0, 1, 0], [1, 1, 1, 1]], dtype=float)
    frame = sweep(scores, {"accuracy": correct}, np.array([1.0, 2.0, 3.0]), 3.0)
    # By hand at t = 0.5: sample 0 exits at head 2 (0.2 < 0.5, 0.7 >= 0.5), 1 at head 1, 2 at head 2 (0.55),
    # 3 at head 1 (0.9).
    by_hand = np.array([1, 0, 1, 0])
    np.testing.assert_array_equal(exit_heads(scores, 0.5), by_hand)
    point = operating_point(frame, 0.5)
    assert point["threshold"] == 0.55  # the running max of sample 2 at head 2 is 0.55: the first row >= 0.5
    assert point["avg_exit_head"] == pytest.approx(1 + by_hand.mean())
    assert point["accuracy"] == pytest.approx(correct[by_hand, np.arange(4)].mean())
    last_below = frame[frame["threshold"] <= 0.5].iloc[-1]  # the other reading would be another point
    assert last_below["avg_exit_head"] != pytest.approx(point["avg_exit_head"])
    # Thinned to 3 points, the sweep still keeps the row 0.5 selects when asked to.
    thin = sweep(scores, {"accuracy": correct}, np.array([1.0, 2.0, 3.0]), 3.0, max_points=3,
                 keep_thresholds=(0.5,))
    assert operating_point(thin, 0.5)["avg_exit_head"] == pytest.approx(point["avg_exit_head"])
    assert 0.55 not in sweep(scores, {"accuracy": correct}, np.array([1.0, 2.0, 3.0]), 3.0,
                             max_points=3)["threshold"].tolist()
