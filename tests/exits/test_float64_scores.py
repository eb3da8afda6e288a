"""Criterion scores are float64, so near-equal scores stay distinct operating points (issue: float32 merged 1,077
points where there were 1,081)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.special import softmax

from eebench.exits import criteria
from eebench.exits.criteria import CRITERIA
from eebench.exits.sweep import sweep
from eebench.inference import scorer

# Two heads, three samples whose head-1 margins 20, 20.5 and 21 give softmax confidences 1 - 2.1e-9, 1 - 1.2e-9
# and 1 - 7.6e-10: one value (1.0) in float32, three in float64.
LOGITS = np.array([[[20.0, 0.0], [20.5, 0.0], [21.0, 0.0]],
                   [[0.0, 1.0], [0.0, 1.0], [0.0, 1.0]]], dtype=np.float32)


def test_float32_would_merge_these_confidences():
    assert len(np.unique(softmax(LOGITS[0], axis=-1).max(axis=-1).astype(np.float32))) == 1


@pytest.mark.parametrize("name", ["confidence", "entropy"])
def test_scores_are_float64_and_distinct(name):
    scores = CRITERIA.get(name)(LOGITS, "single_label")
    assert scores.dtype == np.float64
    assert len(np.unique(scores[0])) == 3


def test_confidence_equals_float64_softmax():
    expected = softmax(LOGITS.astype(np.float64), axis=-1).max(axis=-1)
    np.testing.assert_allclose(CRITERIA.get("confidence")(LOGITS, "single_label"), expected, rtol=0, atol=1e-15)


def test_sweep_keeps_every_distinct_point():
    scores = CRITERIA.get("confidence")(LOGITS, "single_label")
    performance = {"accuracy": np.ones((2, 3))}
    frame = sweep(scores, performance, np.array([1.0, 2.0]), 2.0)
    # Three distinct head-1 scores -> three thresholds at which one more sample passes head 1, plus +inf.
    assert len(frame) == 4
    np.testing.assert_allclose(frame["avg_exit_head"], [1.0, 1 + 1 / 3, 1 + 2 / 3, 2.0])


def test_scores_are_computed_in_chunks_of_samples(monkeypatch):
    logits = np.random.default_rng(0).normal(size=(3, 50, 4)).astype(np.float32)
    whole = CRITERIA.get("entropy")(logits, "multi_label")
    monkeypatch.setattr(criteria, "_CHUNK_ELEMENTS", 12 * 7)  # 7 samples per chunk
    np.testing.assert_array_equal(CRITERIA.get("entropy")(logits, "multi_label"), whole)


def test_real_exiting_scores_as_the_sweep_does():
    """inference's scorer skips the registry's wrapper: it must still score in float64."""
    np.testing.assert_array_equal(scorer("confidence", "single_label")(LOGITS),
                                  CRITERIA.get("confidence")(LOGITS, "single_label"))


def test_the_learned_exit_scores_in_float64():
    """Computed in float64, not float32 then widened: a widened float32 value is exactly representable in
    float32, a float64 sigmoid almost never is."""
    rng = np.random.default_rng(0)
    logits = (rng.normal(size=(3, 200, 4)) * 3).astype(np.float32)
    labels = rng.integers(0, 4, 200)
    scores = CRITERIA.get("learned_exit")(logits, "single_label", fit_on=(logits, labels), epochs=20)
    assert scores.dtype == np.float64
    assert (scores != scores.astype(np.float32).astype(np.float64)).mean() > 0.99
