"""Per-sample performance: its mean over samples must equal sklearn's accuracy and sample-averaged F1."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score

from eebench.exits.performance import PERFORMANCE_METRICS, per_sample_performance


def test_keys():
    logits = np.zeros((1, 2, 3))
    assert tuple(per_sample_performance(logits, np.array([0, 1]), False)) == PERFORMANCE_METRICS


def test_single_label_accuracy_and_f1_are_argmax_hits():
    logits = np.array([[[3.0, 1.0, 0.0], [0.0, 1.0, 5.0]], [[0.0, 2.0, 1.0], [0.0, 9.0, 1.0]]])
    result = per_sample_performance(logits, np.array([0, 1]), multilabel=False)
    np.testing.assert_array_equal(result["accuracy"], [[1.0, 0.0], [0.0, 1.0]])
    np.testing.assert_array_equal(result["f1"], result["accuracy"])
    assert result["accuracy"].dtype == np.float64


@pytest.mark.parametrize("seed", range(5))
def test_single_label_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    logits, labels = rng.normal(size=(3, 200, 6)), rng.integers(0, 6, 200)
    result = per_sample_performance(logits, labels, multilabel=False)
    for head in range(3):
        predicted = logits[head].argmax(-1)
        assert result["accuracy"][head].mean() == pytest.approx(accuracy_score(labels, predicted))
        assert result["f1"][head].mean() == pytest.approx(f1_score(labels, predicted, average="micro"))


def test_multilabel_hand_computed():
    # Sample 0: predicted {0, 1}, true {0}: F1 = 2*1/(2+1). Sample 1: nothing predicted, true {2}: 0.
    # Sample 2: nothing predicted, nothing true: 0 (zero_division=0), yet an exact match.
    logits = np.array([[[1.0, 0.0, -1.0], [-1.0, -1.0, -1.0], [-2.0, -2.0, -2.0]]])
    labels = np.array([[1, 0, 0], [0, 0, 1], [0, 0, 0]], dtype=np.uint8)
    result = per_sample_performance(logits, labels, multilabel=True)
    np.testing.assert_allclose(result["f1"], [[2 / 3, 0.0, 0.0]])
    np.testing.assert_array_equal(result["accuracy"], [[0.0, 0.0, 1.0]])


@pytest.mark.parametrize("seed", range(5))
def test_multilabel_matches_sklearn_including_empty_rows(seed):
    rng = np.random.default_rng(seed)
    n_heads, n_samples, n_classes = 3, 300, 5
    logits = rng.normal(loc=-0.8, size=(n_heads, n_samples, n_classes))
    logits[:, :40] = -1.0  # nothing predicted
    labels = (rng.random((n_samples, n_classes)) < 0.3).astype(np.uint8)
    labels[20:60] = 0  # nothing true (rows 20-39 have neither)
    result = per_sample_performance(logits, labels, multilabel=True)
    for head in range(n_heads):
        predicted = (logits[head] >= 0).astype(int)
        assert result["accuracy"][head].mean() == pytest.approx(accuracy_score(labels, predicted))
        expected_f1 = f1_score(labels, predicted, average="samples", zero_division=0)
        assert result["f1"][head].mean() == pytest.approx(expected_f1)


def test_label_shape_is_checked():
    with pytest.raises(ValueError, match="labels"):
        per_sample_performance(np.zeros((2, 4, 3)), np.zeros(4, dtype=int), multilabel=True)
    with pytest.raises(ValueError, match="labels"):
        per_sample_performance(np.zeros((2, 4, 3)), np.zeros((4, 3), dtype=int), multilabel=False)
