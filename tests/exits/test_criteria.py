"""Exit criteria: hand-computed values, agreement with scipy, and checks run on every registered criterion."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.special import expit, softmax
from scipy.stats import entropy as scipy_entropy

from eebench.exits.criteria import CRITERIA, applicable

CLASSIFICATION_CRITERIA = applicable("single_label")


def random_logits(seed: int = 0, shape: tuple[int, int, int] = (4, 50, 7)) -> np.ndarray:
    return (np.random.default_rng(seed).normal(size=shape) * 3).astype(np.float32)


def test_paper_criteria_are_registered():
    assert {"confidence", "entropy"} <= set(CRITERIA.names())


@pytest.mark.parametrize("task", ["single_label", "multi_label"])
@pytest.mark.parametrize("name", CLASSIFICATION_CRITERIA)
def test_every_criterion_gives_finite_unit_scores_per_head_and_sample(name, task):
    logits = random_logits()
    extreme = np.array([[[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4]]], dtype=np.float32)
    for values in (logits, extreme):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # overflow or log(0) would warn
            scores = CRITERIA.get(name)(values, task)
        assert scores.shape == values.shape[:2]
        assert np.isfinite(scores).all() and (scores >= 0).all()
        if name != "patience":  # patience counts heads; the others are probabilities or 1 - entropies
            assert (scores <= 1 + 1e-6).all()


@pytest.mark.parametrize("name", CRITERIA.names())
def test_criteria_are_pure(name):
    logits = random_logits(1)
    before = logits.copy()
    for task in CRITERIA.get(name).applies_to:
        CRITERIA.get(name)(logits[..., :1] if task == "regression" else logits, task)
    np.testing.assert_array_equal(logits, before)


def test_confidence_single_label_is_max_softmax():
    logits = random_logits(2)
    np.testing.assert_allclose(CRITERIA.get("confidence")(logits, "single_label"), softmax(logits, axis=-1).max(-1), rtol=1e-6)


def test_confidence_single_label_hand_computed():
    logits = np.log(np.array([[[0.2, 0.5, 0.3], [0.9, 0.05, 0.05]]]))
    np.testing.assert_allclose(CRITERIA.get("confidence")(logits, "single_label"), [[0.5, 0.9]])


def test_confidence_multilabel_is_smallest_positive_sigmoid_and_largest_sigmoid_without_positives():
    logits = np.array([[[2.0, -1.0, 0.5], [-3.0, -0.1, -2.0], [0.0, 4.0, -9.0]]])
    expected = [[expit(0.5), expit(-0.1), 0.5]]  # a logit of exactly 0 (sigmoid 0.5) counts as positive
    np.testing.assert_allclose(CRITERIA.get("confidence")(logits, "multi_label"), expected)


def test_entropy_single_label_is_one_minus_normalised_entropy():
    logits = random_logits(3)
    probabilities = softmax(logits.astype(np.float64), axis=-1)
    expected = 1 - scipy_entropy(probabilities, axis=-1) / np.log(logits.shape[-1])
    np.testing.assert_allclose(CRITERIA.get("entropy")(logits, "single_label"), expected, atol=1e-5)


def test_entropy_extremes():
    uniform = np.zeros((1, 1, 5))
    certain = np.array([[[50.0, 0.0, 0.0, 0.0, 0.0]]])
    score = CRITERIA.get("entropy")
    np.testing.assert_allclose(score(uniform, "single_label"), [[0.0]], atol=1e-12)
    np.testing.assert_allclose(score(certain, "single_label"), [[1.0]], atol=1e-12)
    np.testing.assert_allclose(score(uniform, "multi_label"), [[0.0]], atol=1e-12)  # every sigmoid at 0.5: one bit each
    np.testing.assert_allclose(score(np.full((1, 1, 5), -60.0), "multi_label"), [[1.0]], atol=1e-12)


def test_entropy_multilabel_is_mean_binary_entropy_in_bits():
    logits = np.array([[[0.0, np.log(3.0)]]])  # sigmoids 0.5 and 0.75
    bits_075 = -(0.75 * np.log2(0.75) + 0.25 * np.log2(0.25))
    np.testing.assert_allclose(CRITERIA.get("entropy")(logits, "multi_label"), [[1 - (1.0 + bits_075) / 2]])


def test_entropy_single_class_is_certain():
    np.testing.assert_array_equal(CRITERIA.get("entropy")(np.zeros((2, 3, 1)), "single_label"), np.ones((2, 3)))


def test_patience_counts_consecutive_agreeing_heads_single_label():
    # Predictions per head for three samples: [0, 0, 0, 0], [1, 2, 2, 2], [3, 3, 1, 1].
    predicted = np.array([[0, 1, 3], [0, 2, 3], [0, 2, 1], [0, 2, 1]])
    logits = np.full((4, 3, 4), -5.0)
    np.put_along_axis(logits, predicted[..., None], 5.0, axis=-1)
    np.testing.assert_array_equal(CRITERIA.get("patience")(logits, "single_label"),
                                  [[0, 0, 0], [1, 0, 1], [2, 1, 0], [3, 2, 1]])


def test_patience_multilabel_agreement_is_an_identical_label_set():
    sets = [[1, 0, 1], [1, 0, 1], [1, 1, 1], [1, 1, 1]]  # one sample; label sets per head
    logits = (np.array(sets, dtype=float)[:, None, :] * 2 - 1)
    np.testing.assert_array_equal(CRITERIA.get("patience")(logits, "multi_label")[:, 0], [0, 1, 0, 1])


def test_patience_sweep_is_pbee_for_every_patience():
    """Thresholds 0..H-1 of the sweep give PBEE with patience k: exit at the first head whose streak >= k."""
    from eebench.exits.sweep import sweep

    logits = random_logits(3, (5, 200, 3))
    scores = CRITERIA.get("patience")(logits, "single_label")
    correct = (logits.argmax(-1) == 0).astype(float)
    frame = sweep(scores, {"accuracy": correct}, np.arange(1.0, 6.0), 5.0)
    predictions = logits.argmax(-1)
    for k in range(5):
        exits = []
        for n in range(200):  # the per-sample loop, as PBEE is written, to check the vectorised sweep
            streak, exit_head = 0, 4
            for h in range(5):
                streak = streak + 1 if h and predictions[h, n] == predictions[h - 1, n] else 0
                if streak >= k:
                    exit_head = h
                    break
            exits.append(exit_head)
        exits = np.array(exits)
        row = frame[frame["threshold"] >= k].iloc[0]  # the operating point threshold k selects
        assert row["avg_exit_head"] == pytest.approx(exits.mean() + 1)
        assert row["accuracy"] == pytest.approx(correct[exits, np.arange(200)].mean())


def test_regression_patience_is_minus_the_change_from_the_previous_head():
    predictions = np.array([[[1.0], [0.0]], [[1.5], [0.0]], [[1.4], [2.0]]])  # [H=3, N=2, 1]
    scores = CRITERIA.get("regression_patience")(predictions, "regression")
    np.testing.assert_allclose(scores, [[-np.inf, -np.inf], [-0.5, 0.0], [-0.1, -2.0]])
    # tau = 0.2 (threshold -0.2): sample 0 settles at head 3, sample 1 at head 2 (no change)
    settled = scores >= -0.2
    assert settled.argmax(axis=0).tolist() == [2, 1]


def test_criteria_refuse_outputs_of_another_task():
    with pytest.raises(ValueError, match="'confidence'.*regression.*regression_patience"):
        CRITERIA.get("confidence")(np.zeros((2, 3, 1)), "regression")
    with pytest.raises(ValueError, match="'regression_patience'.*single_label"):
        CRITERIA.get("regression_patience")(np.zeros((2, 3, 4)), "single_label")
