"""Early stopping with per-head best tracking (paper B §4.1), driven by scripted validation scores."""
import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from eebench.models import ModelSpec, build_model
from eebench.training import TrainingConfig
from eebench.training import loop
from eebench.training.regimes import JOINT_PHASE


def run_with_scores(monkeypatch, scores, patience):
    """Train with the validation scores replaced by ``scores`` (one row per epoch, one column per head) and
    record the weights at each epoch's evaluation."""
    scripted = iter(np.asarray(scores, dtype=float))
    states = []
    real_predict = loop.predict

    def recording_predict(model, *args, **kwargs):
        states.append({k: v.clone() for k, v in model.state_dict().items()})
        return real_predict(model, *args, **kwargs)

    monkeypatch.setattr(loop, "predict", recording_predict)
    monkeypatch.setattr(loop, "head_scores", lambda *a: next(scripted))
    torch.manual_seed(0)
    model = build_model(ModelSpec("cnn", {"widths": [4, 4], "strides": [1, 1]}, (1, 4, 4), 3))
    data = TensorDataset(torch.randn(16, 1, 4, 4), torch.randint(0, 3, (16,)))
    config = TrainingConfig(max_epochs=20, patience=patience, batch_size=8, augment=False)
    history = loop.train_phase(model, JOINT_PHASE, data, data, "single_label", config, torch.device("cpu"))
    return model, history, states


def test_stops_after_patience_epochs_without_improvement_and_restores_best(monkeypatch):
    model, history, states = run_with_scores(monkeypatch, [[0.5, 0.5], [0.6, 0.6], [0.55, 0.6], [0.6, 0.6]], 2)
    assert [h["improved"] for h in history] == [True, True, False, False]
    restored = model.state_dict()
    assert all(torch.equal(restored[k], states[1][k]) for k in restored)
    assert not all(torch.equal(restored[k], states[3][k]) for k in restored)


def test_any_single_head_improving_resets_patience(monkeypatch):
    # Head 2 alone improves at epoch 3 although the mean drops: training goes on, and epoch 3 is kept.
    scores = [[0.5, 0.5], [0.6, 0.4], [0.3, 0.55], [0.3, 0.3], [0.3, 0.3]]
    model, history, states = run_with_scores(monkeypatch, scores, 2)
    assert [h["improved"] for h in history] == [True, True, True, False, False]
    restored = model.state_dict()
    assert all(torch.equal(restored[k], states[2][k]) for k in restored)


def test_max_epochs_bounds_a_phase(monkeypatch):
    _, history, _ = run_with_scores(monkeypatch, [[i, i] for i in range(20)], 3)
    assert len(history) == 20


def test_regression_trains_on_the_mse_and_stops_on_the_validation_loss(monkeypatch):
    """A regression target (one output, float labels): the loss of every step is the MSE of the heads' single
    outputs, and early stopping tracks minus the validation MSE of each head (paper B §4.1)."""
    torch.manual_seed(0)
    model = build_model(ModelSpec("cnn", {"widths": [4, 4], "strides": [1, 1]}, (1, 4, 4), 1))
    x = torch.randn(24, 1, 4, 4)
    y = x.mean(dim=(1, 2, 3)) * 3.0  # learnable, float32 [N]
    data = TensorDataset(x, y)
    losses, scores = [], []
    real_loss, real_scores = loop.loss_function, loop.head_scores

    def recording_loss(task):
        criterion = real_loss(task)

        def loss(output, target):
            value = criterion(output, target)
            losses.append((value.item(), torch.mean((output[:, 0] - target) ** 2).item()))
            return value
        return loss

    def recording_scores(logits, labels, task):
        scores.append((real_scores(logits, labels, task), ((logits[..., 0] - labels) ** 2).mean(axis=1)))
        return scores[-1][0]

    monkeypatch.setattr(loop, "loss_function", recording_loss)
    monkeypatch.setattr(loop, "head_scores", recording_scores)
    config = TrainingConfig(max_epochs=6, patience=6, batch_size=8, lr=0.01, augment=False)
    history = loop.train_phase(model, JOINT_PHASE, data, data, "regression", config, torch.device("cpu"))
    assert len(losses) == 6 * 3 * 2  # epochs x batches x heads
    for value, by_hand in losses:
        assert value == pytest.approx(by_hand, rel=1e-5)
    for score, mse in scores:
        np.testing.assert_allclose(score, -mse, rtol=1e-5)
    assert [h["val_scores"] for h in history] == [np.round(s, 6).tolist() for s, _ in scores]
    assert scores[-1][1].max() < scores[0][1].min()  # it learns: every head's validation MSE went down
