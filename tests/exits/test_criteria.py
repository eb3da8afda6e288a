"""Exit criteria: hand-computed values, agreement with scipy, and checks run on every registered criterion."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.special import expit, softmax
from scipy.stats import entropy as scipy_entropy

from eebench.exits.criteria import CRITERIA, applicable

CLASSIFICATION_CRITERIA = applicable("single_label")
HEAD_COUNTS = ("patience", "rank_patience")  # criteria whose score is a streak of heads, not a probability


def random_logits(seed: int = 0, shape: tuple[int, int, int] = (4, 50, 7)) -> np.ndarray:
    return (np.random.default_rng(seed).normal(size=shape) * 3).astype(np.float32)


def test_paper_criteria_are_registered():
    assert {"confidence", "entropy"} <= set(CRITERIA.names())


def score(name, logits, task):
    """A criterion's scores; one that learns is fitted on the same logits with arbitrary labels."""
    if not CRITERIA.get(name).learns:
        return CRITERIA.get(name)(logits, task)
    labels = (np.zeros(logits.shape[1:], dtype=np.uint8) if task.startswith("multi")
              else np.arange(logits.shape[1]) % logits.shape[2])
    return CRITERIA.get(name)(logits, task, fit_on=(logits, labels), epochs=5)


@pytest.mark.parametrize("task", ["single_label", "multi_label"])
@pytest.mark.parametrize("name", CLASSIFICATION_CRITERIA)
def test_every_criterion_gives_finite_unit_scores_per_head_and_sample(name, task):
    logits = random_logits()
    extreme = np.array([[[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4]]], dtype=np.float32)
    for values in (logits, extreme):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # overflow or log(0) would warn
            scores = score(name, values, task)
        assert scores.shape == values.shape[:2]
        if name in ("hybrid", "rank_patience"):  # -inf ("never ready") until the ranking has stayed stable for
            # `patience` heads (rank_patience: the smallest of its `patiences`, paper A's t = 2 by default)
            assert (np.isfinite(scores) | np.isneginf(scores)).all()
            scores = scores[np.isfinite(scores)]
        assert np.isfinite(scores).all() and (scores >= 0).all()
        if name in HEAD_COUNTS:
            assert (scores == np.round(scores)).all() and (scores <= values.shape[0] - 1).all()
        else:  # probabilities or 1 - entropies (hybrid's finite scores are its base's; a learned exit's)
            assert (scores <= 1 + 1e-6).all()


@pytest.mark.parametrize("name", CRITERIA.names())
def test_criteria_are_pure(name):
    logits = random_logits(1)
    before = logits.copy()
    for task in CRITERIA.get(name).applies_to:
        score(name, logits[..., :1] if task == "regression" else logits, task)
    np.testing.assert_array_equal(logits, before)


def test_confidence_single_label_is_max_softmax():
    logits = random_logits(2)
    np.testing.assert_allclose(CRITERIA.get("confidence")(logits, "single_label"), softmax(logits, axis=-1).max(-1),
                               rtol=1e-6)


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


# Rank patience and hybrid (paper A §3, §4.2) ------------------------------------------------------------------


def first_exit(scores: np.ndarray, threshold: float) -> np.ndarray:
    """The exit rule: the first head whose score is >= threshold, else the last head."""
    passed = scores >= threshold
    return np.where(passed.any(axis=0), passed.argmax(axis=0), scores.shape[0] - 1)


def streaks_from(agrees: np.ndarray) -> np.ndarray:
    """Reference streaks by the per-sample loop: agrees [H-1, N], head h+1 agrees with head h."""
    streak = np.zeros((agrees.shape[0] + 1, agrees.shape[1]))
    for n in range(agrees.shape[1]):
        for h in range(1, agrees.shape[0] + 1):
            streak[h, n] = streak[h - 1, n] + 1 if agrees[h - 1, n] else 0
    return streak


def probabilities(logits: np.ndarray, task: str) -> np.ndarray:
    wide = logits.astype(np.float64)
    return expit(wide) if task == "multi_label" else softmax(wide, axis=-1)


@pytest.mark.parametrize("task", ["single_label", "multi_label"])
def test_rank_patience_ndcg_agreement_is_sklearn_ndcg_of_the_current_ranking_against_previous_probabilities(task):
    from sklearn.metrics import ndcg_score

    from eebench.exits.criteria import _consecutive_ndcg
    from eebench.tasks import task_of

    logits = random_logits(4, (4, 60, 6))
    relevance = probabilities(logits, task)
    expected = np.array([[ndcg_score([relevance[h - 1, n]], [logits[h, n]]) for n in range(60)]
                         for h in range(1, 4)])
    np.testing.assert_allclose(_consecutive_ndcg(logits, task_of(task)), expected, rtol=1e-12, atol=1e-12)
    tolerance = float(np.median(1 - expected))  # some heads agree, some do not
    np.testing.assert_array_equal(
        CRITERIA.get("rank_patience")(logits, task, agreement="ndcg", tolerance=tolerance, patiences=None),
        streaks_from(1 - expected < tolerance))


def test_rank_patience_ndcg_averages_tied_logits_as_sklearn_does():
    from sklearn.metrics import ndcg_score

    from eebench.exits.criteria import _consecutive_ndcg
    from eebench.tasks import task_of

    logits = np.random.default_rng(5).integers(-2, 3, size=(3, 80, 6)).astype(np.float32)  # many ties
    logits[1, 0] = 1.0  # a constant ranking: every class tied
    relevance = probabilities(logits, "single_label")
    expected = np.array([[ndcg_score([relevance[h - 1, n]], [logits[h, n]]) for n in range(80)]
                         for h in range(1, 3)])
    np.testing.assert_allclose(_consecutive_ndcg(logits, task_of("single_label")), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("task", ["single_label", "multi_label"])
def test_rank_patience_kendall_is_scipy_tau_b_with_ties_and_constant_rankings(task):
    from scipy.stats import kendalltau

    from eebench.exits.criteria import _consecutive_kendall

    logits = np.random.default_rng(6).integers(-2, 3, size=(4, 80, 6)).astype(np.float32)  # many ties
    logits[1, 0] = 1.0  # constant ranking: tau undefined against heads 0 and 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns on the constant row
        expected = np.array([[kendalltau(logits[h - 1, n], logits[h, n]).statistic for n in range(80)]
                             for h in range(1, 4)])
    assert np.isnan(expected[:2, 0]).all()
    np.testing.assert_allclose(_consecutive_kendall(logits), expected, rtol=1e-12, atol=1e-12)
    scores = CRITERIA.get("rank_patience")(logits, task, agreement="kendall", tolerance=0.3, patiences=None)
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(scores, streaks_from(expected >= 0.3))  # NaN: no agreement
    assert scores[1, 0] == 0 and scores[2, 0] == 0


def test_rank_patience_ndcg_hand_computed_streaks():
    from eebench.exits.criteria import _consecutive_ndcg
    from eebench.tasks import task_of

    a, r = np.log([0.75, 0.25]), np.log([0.25, 0.75])  # two classes, the ranking reversed
    heads = [[a, a, a], [a, r, a], [a, r, r], [a, a, r]]  # [H=4][N=3] head logits per sample
    logits = np.array(heads)
    # Ranking [0.75, 0.25] the wrong way round: DCG 0.25 + 0.75 / log2(3) against the ideal 0.75 + 0.25 / log2(3).
    loss = 1 - (0.25 + 0.75 / np.log2(3)) / (0.75 + 0.25 / np.log2(3))  # 0.2033
    np.testing.assert_allclose(1 - _consecutive_ndcg(logits, task_of("single_label")),
                               [[0, loss, 0], [0, 0, loss], [0, loss, 0]], atol=1e-12)
    score = CRITERIA.get("rank_patience")
    np.testing.assert_array_equal(score(logits, "single_label", agreement="ndcg", tolerance=0.01, patiences=None),
                                  [[0, 0, 0], [1, 0, 1], [2, 1, 0], [3, 0, 1]])
    np.testing.assert_array_equal(score(logits, "single_label", agreement="ndcg", tolerance=0.25, patiences=None),
                                  [[0, 0, 0], [1, 1, 1], [2, 2, 2], [3, 3, 3]])
    # The loss must be strictly below the tolerance ("values below"): a loss equal to it does not agree.
    exact = float(1 - _consecutive_ndcg(logits, task_of("single_label"))[0, 1])
    np.testing.assert_array_equal(score(logits, "single_label", agreement="ndcg", tolerance=exact,
                                        patiences=None),
                                  [[0, 0, 0], [1, 0, 1], [2, 1, 0], [3, 0, 1]])


@pytest.mark.parametrize("task", ["single_label", "multi_label"])
def test_rank_patience_kendall_hand_computed_streaks(task):
    a, swap, rev, const = [4, 3, 2, 1], [4, 3, 1, 2], [1, 2, 3, 4], [0, 0, 0, 0]  # tau(a, swap) = 4/6
    heads = [[a, a, a, a], [a, swap, const, rev], [a, swap, const, rev], [a, a, a, rev]]
    logits = np.array(heads, dtype=np.float32)  # [H=4, N=4, C=4]
    score = CRITERIA.get("rank_patience")
    np.testing.assert_array_equal(score(logits, task, agreement="kendall", tolerance=0.9, patiences=None),
                                  [[0, 0, 0, 0], [1, 0, 0, 0], [2, 1, 0, 1], [3, 0, 0, 2]])
    np.testing.assert_array_equal(score(logits, task, agreement="kendall", tolerance=0.6, patiences=None),
                                  [[0, 0, 0, 0], [1, 1, 0, 0], [2, 2, 0, 1], [3, 3, 0, 2]])
    # Even the loosest tolerance never lets a constant ranking agree (tau undefined).
    np.testing.assert_array_equal(score(logits, task, agreement="kendall", tolerance=-1.0, patiences=None),
                                  [[0, 0, 0, 0], [1, 1, 0, 1], [2, 2, 0, 2], [3, 3, 0, 3]])


def test_streak_counts_runs_of_agreement_and_restarts_at_the_first_head():
    from eebench.exits.criteria import _streak

    agrees = np.array([[True, False], [True, False], [False, True], [True, True]])  # row 0 ignored
    before = agrees.copy()
    np.testing.assert_array_equal(_streak(agrees), [[0, 0], [1, 0], [0, 1], [1, 2]])
    np.testing.assert_array_equal(agrees, before)


def test_rank_patience_is_the_same_in_sample_chunks(monkeypatch):
    from eebench.exits import criteria

    logits = random_logits(7, (4, 50, 6))
    whole = {agreement: CRITERIA.get("rank_patience")(logits, "multi_label", agreement=agreement, tolerance=0.2,
                                                      patiences=None)
             for agreement in ("ndcg", "kendall")}
    monkeypatch.setattr(criteria, "_CHUNK_ELEMENTS", 4 * 6 * 3)  # chunks of 3 samples, the last one of 2
    for agreement, expected in whole.items():
        np.testing.assert_array_equal(
            CRITERIA.get("rank_patience")(logits, "multi_label", agreement=agreement, tolerance=0.2,
                                          patiences=None), expected)
    assert any((expected > 0).any() for expected in whole.values())


@pytest.mark.parametrize("task", ["single_label", "multi_label"])
def test_rank_criteria_on_extreme_logits_give_scores_without_warnings(task):
    extreme = np.array([[[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4], [-800.0, -900.0, -1e4]],
                        [[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4], [-800.0, -900.0, -1e4]]], dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for agreement in ("ndcg", "kendall"):
            scores = CRITERIA.get("rank_patience")(extreme, task, agreement=agreement, tolerance=0.01,
                                                   patiences=None)
            # Identical heads agree, but a constant ranking never does (Kendall's tau undefined).
            assert scores[1, 0] == 1 and (scores[1, 1] == 0 or agreement == "ndcg")
            hybrid = CRITERIA.get("hybrid")(extreme, task, agreement=agreement, tolerance=0.01, patience=1)
            assert not (np.isnan(hybrid) | np.isposinf(hybrid)).any()


@pytest.mark.parametrize("base", ["confidence", "entropy"])
@pytest.mark.parametrize("agreement, tolerance", [("ndcg", 0.1), ("kendall", 0.5)])
def test_hybrid_is_the_base_score_where_the_rank_streak_reaches_patience(base, agreement, tolerance):
    logits = random_logits(8, (5, 100, 6))
    for task in ("single_label", "multi_label"):
        streak = CRITERIA.get("rank_patience")(logits, task, agreement=agreement, tolerance=tolerance,
                                               patiences=None)
        for patience in (1, 2):
            expected = np.where(streak >= patience, CRITERIA.get(base)(logits, task), -np.inf)
            scores = CRITERIA.get("hybrid")(logits, task, base=base, agreement=agreement, tolerance=tolerance,
                                            patience=patience)
            np.testing.assert_array_equal(scores, expected)
            assert np.isfinite(scores).any() and np.isneginf(scores).any()


def test_hybrid_waits_for_a_stable_ranking_after_the_confidence_threshold_is_met():
    from eebench.exits.sweep import sweep

    confident, flipped = [5.0, 0.0, -5.0], [5.0, -5.0, 0.0]  # same top class; tau(confident, flipped) = 1/3
    # Sample 0 keeps its ranking; sample 1 is as confident at head 0 but its ranking flips at head 1.
    logits = np.array([[confident, confident], [confident, flipped], [confident, flipped], [confident, flipped]])
    plain = CRITERIA.get("confidence")(logits, "single_label")
    assert (plain > 0.99).all()
    hybrid = CRITERIA.get("hybrid")(logits, "single_label", agreement="kendall", tolerance=0.9, patience=1)
    assert first_exit(plain, 0.99).tolist() == [0, 0]
    assert first_exit(hybrid, 0.99).tolist() == [1, 2]
    patient = CRITERIA.get("hybrid")(logits, "single_label", agreement="kendall", tolerance=0.9, patience=2)
    assert first_exit(patient, 0.99).tolist() == [2, 3]
    # The sweep takes the -inf scores: at the base's threshold, hybrid exits after heads 2 and 3 (1-based).
    performance = {"accuracy": np.ones((4, 2))}
    for scores, exit_head in ((plain, 1.0), (hybrid, 2.5)):
        frame = sweep(scores, performance, np.arange(1.0, 5.0), 4.0)
        assert frame[frame["threshold"] >= 0.99].iloc[0]["avg_exit_head"] == pytest.approx(exit_head)


def test_rank_criteria_parameters_are_their_config_keys():
    from eebench.exits.criteria import parameters

    assert {k: p.default for k, p in parameters("rank_patience").items()} == {
        "agreement": "ndcg", "tolerance": None, "patiences": (2, 3, 4, 5, 6)}
    assert {k: p.default for k, p in parameters("hybrid").items()} == {
        "base": "confidence", "agreement": "ndcg", "tolerance": None, "patience": 2}


@pytest.mark.parametrize(("agreement", "default"), [("ndcg", 0.01), ("kendall", 0.9)])
def test_without_a_tolerance_each_agreement_takes_its_own_default(agreement, default):
    logits = random_logits(3)
    np.testing.assert_array_equal(
        CRITERIA.get("rank_patience")(logits, "single_label", agreement=agreement),
        CRITERIA.get("rank_patience")(logits, "single_label", agreement=agreement, tolerance=default))
    other = 0.05 if agreement == "ndcg" else 0.7
    assert not np.array_equal(
        CRITERIA.get("rank_patience")(logits, "single_label", agreement=agreement, patiences=None),
        CRITERIA.get("rank_patience")(logits, "single_label", agreement=agreement, tolerance=other, patiences=None))


@pytest.mark.parametrize("name, params, match", [
    ("rank_patience", {"agreement": "spearman"}, "agreement must be one of 'ndcg', 'kendall'"),
    ("rank_patience", {"agreement": "ndcg", "tolerance": 0.0}, "tolerance"),
    ("rank_patience", {"agreement": "ndcg", "tolerance": 1.5}, "tolerance"),
    ("rank_patience", {"agreement": "kendall", "tolerance": 1.01}, "tolerance"),
    ("rank_patience", {"agreement": "kendall", "tolerance": "high"}, "tolerance"),
    ("rank_patience", {"patiences": 2}, "patiences must be a non-empty list of integers >= 0"),
    ("rank_patience", {"patiences": []}, "patiences"),
    ("rank_patience", {"patiences": [2, -1]}, "patiences"),
    ("rank_patience", {"patiences": [2.5]}, "patiences"),
    ("hybrid", {"base": "patience"}, "base must be one of 'confidence', 'entropy'"),
    ("hybrid", {"patience": 0}, "patience must be an integer >= 1"),
    ("hybrid", {"patience": 1.5}, "patience"),
    ("hybrid", {"agreement": "kendall", "tolerance": -2}, "tolerance"),
])
def test_rank_criteria_reject_bad_parameters_naming_them(name, params, match):
    with pytest.raises(ValueError, match=f"'{name}'.*{match}"):
        CRITERIA.get(name)(random_logits(), "multi_label", **params)
    with pytest.raises(TypeError, match="unknown parameter 'patient'"):
        CRITERIA.get(name)(random_logits(), "multi_label", patient=2)


def test_softmax_multi_label_criteria_use_softmax_probabilities_and_the_positive_threshold():
    from eebench.tasks import TASKS

    logits = np.log(np.array([[[0.5, 0.3, 0.15, 0.05]], [[0.97, 0.01, 0.01, 0.01]]]))
    task = TASKS.get("multi_label_softmax")  # positive threshold 0.1
    # confidence: the smallest positive probability (0.15 of {0.5, 0.3, 0.15}); head 2: {0.97} alone
    np.testing.assert_allclose(CRITERIA.get("confidence")(logits, task)[:, 0], [0.15, 0.97])
    np.testing.assert_allclose(CRITERIA.get("confidence")(logits, task.configured(positive_threshold=0.2))[:, 0],
                               [0.3, 0.97])
    # entropy: the softmax's, as single-label
    np.testing.assert_allclose(CRITERIA.get("entropy")(logits, task), CRITERIA.get("entropy")(logits, "single_label"))
    # patience: the set of positive labels changed from {0, 1, 2} to {0}
    assert CRITERIA.get("patience")(logits, task)[:, 0].tolist() == [0.0, 0.0]


def test_hybrid_never_yields_a_point_it_forbids_and_b_ee_does_not_credit_one():
    """Hybrid forbids every exit before the rank streak reaches its patience (-inf, "never ready"), head 1
    always. Before that rule the sweep's first row, threshold -inf, put everyone at head 1, and E_closest(head 1)
    took it. Hand-built: sample 0 keeps its ranking, sample 1's flips at head 2 and then holds."""
    from eebench.exits.sweep import sweep
    from eebench.sweep_metrics import bee

    confident, flipped = [5.0, 0.0, -5.0], [5.0, -5.0, 0.0]  # tau(confident, flipped) = 1/3 < 0.9
    logits = np.array([[confident, confident], [confident, flipped], [confident, flipped], [confident, flipped]])
    scores = CRITERIA.get("hybrid")(logits, "single_label", agreement="kendall", tolerance=0.9, patience=1)
    # Streaks: sample 0: 0, 1, 2, 3; sample 1: 0, 0, 1, 2. Patience 1: -inf at head 1 for both, head 2 for 1.
    assert np.isneginf(scores[:, 0]).tolist() == [True, False, False, False]
    assert np.isneginf(scores[:, 1]).tolist() == [True, True, False, False]
    correct = np.array([[1.0, 1.0], [0.0, 0.0], [1.0, 1.0], [1.0, 1.0]])  # head 1 would be right on both
    frame = sweep(scores, {"accuracy": correct}, np.arange(1.0, 5.0), 4.0)
    # The fastest allowed point: sample 0 at head 2, sample 1 at head 3 (E = 2.5); then everyone at head 4.
    assert frame["avg_exit_head"].tolist() == [2.5, 4.0]
    assert frame["accuracy"].tolist() == [0.5, 1.0]
    table = bee(frame, {1: 0.9, 2: 0.9, 3: 0.9, 4: 0.9}, "accuracy")
    # Head 1 is compared with E = 2.5 (accuracy 0.5), not with a forbidden "everyone at head 1" (accuracy 1).
    assert table.loc[table["head"] == 1, ["E_closest", "P_ee"]].values.tolist() == [[2.5, 0.5]]


def test_rank_patience_sweeps_the_papers_patiences_two_to_six():
    """Paper A §4.2: t in {2, ..., 6}. Rankings that always agree (streak = head index): 8 heads give one
    operating point per patience (exit at head t+1) and the sweep's +inf row; the default CNN's 4 heads reach a
    streak of 3 at most, at the last head, so t = 2 is their only early exit and t = 3, ..., 6 all put every
    sample at the last head."""
    from eebench.exits.sweep import exit_heads, sweep

    same = np.log([0.6, 0.3, 0.1])
    for n_heads, points in ((8, [3.0, 4.0, 5.0, 6.0, 7.0, 8.0]), (4, [3.0, 4.0])):
        logits = np.tile(same, (n_heads, 5, 1))
        scores = CRITERIA.get("rank_patience")(logits, "single_label", agreement="ndcg", tolerance=0.01)
        raw = CRITERIA.get("rank_patience")(logits, "single_label", agreement="ndcg", tolerance=0.01,
                                            patiences=None)
        assert raw[:, 0].tolist() == list(range(n_heads))
        expected = [-np.inf, -np.inf, *np.minimum(np.arange(2, n_heads), 6)]
        assert scores[:, 0].tolist() == expected
        frame = sweep(scores, {}, np.arange(1.0, n_heads + 1), float(n_heads))
        assert frame["avg_exit_head"].tolist() == points
        assert frame["threshold"].tolist() == [*range(2, min(n_heads - 2, 6) + 1), np.inf]  # last head: no event
        for t in range(2, 7):
            heads = exit_heads(scores, t)
            assert (heads == (t if t < n_heads - 1 else n_heads - 1)).all(), (n_heads, t)
        # patiences=None keeps the whole sweep: every patience 0, ..., H-1, from everyone at head 1.
        whole = sweep(raw, {}, np.arange(1.0, n_heads + 1), float(n_heads))
        assert whole["avg_exit_head"].tolist() == [float(h) for h in range(1, n_heads + 1)]
    # A streak between two chosen patiences counts as the lower one: {3, 5} on a streak of 4 is 3.
    logits = np.tile(same, (6, 1, 1))
    scores = CRITERIA.get("rank_patience")(logits, "single_label", patiences=[5, 3])
    assert scores[:, 0].tolist() == [-np.inf, -np.inf, -np.inf, 3.0, 3.0, 5.0]


def test_regression_patience_never_exits_at_the_first_head():
    """The first head has no predecessor to agree with (-inf, never ready, as PABEE): the sweep's fastest point
    has every sample at head 2, with tau the largest head-1-to-2 change."""
    from eebench.exits.sweep import sweep

    predictions = np.array([[[0.0], [1.0]], [[0.5], [1.0]], [[0.6], [3.0]]])
    scores = CRITERIA.get("regression_patience")(predictions, "regression")
    frame = sweep(scores, {}, np.arange(1.0, 4.0), 3.0)
    assert frame["threshold"].tolist() == [-0.5, 0.0, np.inf]
    assert frame["avg_exit_head"].tolist() == [2.0, 2.5, 3.0]
