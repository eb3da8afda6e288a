"""Early stopping with per-head best tracking (paper B §4.1), driven by scripted validation scores."""
import numpy as np
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
    history = loop.train_phase(model, JOINT_PHASE, data, data, False, config, torch.device("cpu"))
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
