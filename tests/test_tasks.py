"""Tasks: per-sample metrics against sklearn, hand-computed regression errors, losses against torch."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score

from eebench.tasks import TASKS, per_sample_performance


def test_keys():
    logits = np.zeros((1, 2, 3))
    assert tuple(per_sample_performance(logits, np.array([0, 1]), "single_label")) == ("accuracy", "f1")
    assert tuple(per_sample_performance(logits, np.zeros((2, 3)), "multi_label")) == ("accuracy", "f1")
    assert tuple(per_sample_performance(logits[..., :1], np.zeros(2), "regression")) == ("mse",)


def test_single_label_accuracy_and_f1_are_argmax_hits():
    logits = np.array([[[3.0, 1.0, 0.0], [0.0, 1.0, 5.0]], [[0.0, 2.0, 1.0], [0.0, 9.0, 1.0]]])
    result = per_sample_performance(logits, np.array([0, 1]), task="single_label")
    np.testing.assert_array_equal(result["accuracy"], [[1.0, 0.0], [0.0, 1.0]])
    np.testing.assert_array_equal(result["f1"], result["accuracy"])
    assert result["accuracy"].dtype == np.float64


@pytest.mark.parametrize("seed", range(5))
def test_single_label_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    logits, labels = rng.normal(size=(3, 200, 6)), rng.integers(0, 6, 200)
    result = per_sample_performance(logits, labels, task="single_label")
    for head in range(3):
        predicted = logits[head].argmax(-1)
        assert result["accuracy"][head].mean() == pytest.approx(accuracy_score(labels, predicted))
        assert result["f1"][head].mean() == pytest.approx(f1_score(labels, predicted, average="micro"))


def test_multilabel_hand_computed():
    # Sample 0: predicted {0, 1}, true {0}: F1 = 2*1/(2+1). Sample 1: nothing predicted, true {2}: 0.
    # Sample 2: nothing predicted, nothing true: 0 (zero_division=0), yet an exact match.
    logits = np.array([[[1.0, 0.0, -1.0], [-1.0, -1.0, -1.0], [-2.0, -2.0, -2.0]]])
    labels = np.array([[1, 0, 0], [0, 0, 1], [0, 0, 0]], dtype=np.uint8)
    result = per_sample_performance(logits, labels, task="multi_label")
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
    result = per_sample_performance(logits, labels, task="multi_label")
    for head in range(n_heads):
        predicted = (logits[head] >= 0).astype(int)
        assert result["accuracy"][head].mean() == pytest.approx(accuracy_score(labels, predicted))
        expected_f1 = f1_score(labels, predicted, average="samples", zero_division=0)
        assert result["f1"][head].mean() == pytest.approx(expected_f1)


def test_label_shape_is_checked():
    with pytest.raises(ValueError, match="labels"):
        per_sample_performance(np.zeros((2, 4, 3)), np.zeros(4, dtype=int), task="multi_label")
    with pytest.raises(ValueError, match="labels"):
        per_sample_performance(np.zeros((2, 4, 3)), np.zeros((4, 3), dtype=int), task="single_label")


def test_regression_mse_is_the_squared_error_per_sample_and_its_mean_sklearns():
    from sklearn.metrics import mean_squared_error

    logits = np.array([[[1.0], [2.0], [0.5]], [[3.0], [2.0], [-1.0]]])
    labels = np.array([2.0, 2.0, 0.0], dtype=np.float32)
    result = per_sample_performance(logits, labels, "regression")
    np.testing.assert_allclose(result["mse"], [[1.0, 0.0, 0.25], [1.0, 0.0, 1.0]])
    assert result["mse"][1].mean() == pytest.approx(mean_squared_error(labels, logits[1, :, 0]))


def test_regression_needs_one_output_and_flat_labels():
    with pytest.raises(ValueError, match="one output"):
        per_sample_performance(np.zeros((2, 4, 3)), np.zeros(4), "regression")
    with pytest.raises(ValueError, match="labels"):
        per_sample_performance(np.zeros((2, 4, 1)), np.zeros((4, 1)), "regression")


def test_stopping_scores_are_larger_when_better():
    logits = np.array([[[0.0, 2.0], [1.0, 0.0]], [[3.0, 0.0], [1.0, 0.0]]])
    assert TASKS.get("single_label").stopping_scores(logits, np.array([1, 0])).tolist() == [1.0, 0.5]
    regression = np.array([[[1.0], [1.0]], [[0.0], [3.0]]])
    # minus the validation loss (MSE): head 0 errs by 1 and 1 -> -1; head 1 by 0 and 1 -> -0.5 (better)
    assert TASKS.get("regression").stopping_scores(regression, np.array([0.0, 2.0])).tolist() == [-1.0, -0.5]
    labels = np.array([[1, 0], [0, 0]])
    f1 = per_sample_performance(logits, labels, "multi_label")["f1"].mean(1)
    np.testing.assert_array_equal(TASKS.get("multi_label").stopping_scores(logits, labels), f1)


def test_losses_match_torch():
    import torch
    import torch.nn.functional as F

    output = torch.tensor([[0.5, -1.0], [2.0, 0.0]])
    assert TASKS.get("single_label").loss()(output, torch.tensor([1, 0])) == pytest.approx(
        F.cross_entropy(output, torch.tensor([1, 0])).item())
    soft = torch.tensor([[0.3, 0.7], [1.0, 0.0]])  # CutMix/MixUp targets
    assert TASKS.get("single_label").loss()(output, soft) == pytest.approx(F.cross_entropy(output, soft).item())
    bits = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert TASKS.get("multi_label").loss()(output, bits) == pytest.approx(
        F.binary_cross_entropy_with_logits(output, bits).item())
    column = torch.tensor([[0.5], [2.0]])
    assert TASKS.get("regression").loss()(column, torch.tensor([1.5, 2.0])).item() == pytest.approx(0.5)  # (1+0)/2


def test_every_metric_of_every_task_is_listed():
    from eebench.tasks import LOWER_IS_BETTER, all_metrics

    assert all_metrics() == ("accuracy", "f1", "mse")
    assert LOWER_IS_BETTER == {"mse"} <= set(all_metrics())


def test_softmax_multi_label_predicts_the_labels_above_the_positive_threshold():
    from scipy.special import softmax

    logits = np.log(np.array([[[0.5, 0.3, 0.15, 0.05], [0.25, 0.25, 0.25, 0.25]]]))  # softmax = these rows
    labels = np.array([[1, 1, 0, 0], [1, 0, 0, 0]])
    task = TASKS.get("multi_label_softmax")
    assert task.params == {"positive_threshold": 0.1}
    np.testing.assert_allclose(task.probabilities(logits), softmax(logits, axis=-1))
    # threshold 0.1: row 0 predicts {0, 1, 2} (F1 = 2*2/(3+2)), row 1 all four (F1 = 2*1/(4+1))
    result = per_sample_performance(logits, labels, task)
    np.testing.assert_allclose(result["f1"], [[0.8, 0.4]])
    np.testing.assert_array_equal(result["accuracy"], [[0.0, 0.0]])
    # threshold 0.26: row 0 predicts {0, 1}: exact; row 1 nothing
    stricter = task.configured(positive_threshold=0.26)
    np.testing.assert_allclose(per_sample_performance(logits, labels, stricter)["f1"], [[1.0, 0.0]])
    np.testing.assert_array_equal(per_sample_performance(logits, labels, stricter)["accuracy"], [[1.0, 0.0]])
    assert task.params["positive_threshold"] == 0.1  # configuring made a copy
    with pytest.raises(ValueError, match="positive_threshold must lie strictly between 0 and 1"):
        task.configured(positive_threshold=1.0)
    with pytest.raises(TypeError, match="task 'multi_label': unknown parameter 'positive_threshold'"):
        TASKS.get("multi_label").configured(positive_threshold=0.2)


def test_softmax_multi_label_loss_is_cross_entropy_to_the_label_set_as_a_distribution():
    import torch
    import torch.nn.functional as F

    output = torch.tensor([[0.5, -1.0, 2.0], [0.0, 0.0, 1.0]])
    target = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    expected = (F.cross_entropy(output[:1], torch.tensor([[0.5, 0.0, 0.5]]), reduction="sum") + 0.0) / 2
    assert TASKS.get("multi_label_softmax").loss()(output, target).item() == pytest.approx(expected.item())
