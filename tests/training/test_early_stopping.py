"""Early stopping with per-head best tracking (paper B §4.1), driven by scripted validation scores."""
import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from eebench.models import ModelSpec, build_model
from eebench.training import TrainingConfig
from eebench.training import loop, losses, stopping
from eebench.training.regimes import BACKBONE_PHASE, JOINT_PHASE


def script_validation(monkeypatch, scores) -> list[dict]:
    """Replace the validation scores by ``scores`` (one row per evaluation, one column per head); the returned
    list receives the weights at each evaluation."""
    scripted = iter(np.asarray(scores, dtype=float))
    states = []
    real_predict = loop.predict

    def recording_predict(model, *args, **kwargs):
        states.append({k: v.clone() for k, v in model.state_dict().items()})
        return real_predict(model, *args, **kwargs)

    monkeypatch.setattr(loop, "predict", recording_predict)
    monkeypatch.setattr(loop, "head_scores", lambda *a: next(scripted))
    return states


def run_with_scores(monkeypatch, scores, patience, **settings):
    """Train with the validation scores replaced by ``scores`` (one row per epoch, one column per head) and
    record the weights at each epoch's evaluation."""
    states = script_validation(monkeypatch, scores)
    torch.manual_seed(0)
    model = build_model(ModelSpec("cnn", {"widths": [4, 4], "strides": [1, 1]}, (1, 4, 4), 3))
    data = TensorDataset(torch.randn(16, 1, 4, 4), torch.randint(0, 3, (16,)))
    config = TrainingConfig(**{"max_epochs": 20, "patience": patience, "batch_size": 8, "augment": False, **settings})
    history = loop.train_phase(model, JOINT_PHASE, data, data, "single_label", config, torch.device("cpu"))
    return model, history, states


def test_stops_after_patience_epochs_without_improvement_and_restores_best(monkeypatch):
    model, history, states = run_with_scores(monkeypatch, [[0.5, 0.5], [0.6, 0.6], [0.55, 0.6], [0.6, 0.6]], 2)
    assert [h["improved"] for h in history] == [True, True, False, False]
    assert [h.get("end") for h in history] == [None, None, None, "early_stopping"]
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
    assert [h.get("end") for h in history] == [None] * 19 + ["max_epochs"]


def test_a_phase_stopping_early_on_its_last_allowed_epoch_counts_as_stopped_early(monkeypatch):
    # Patience 2 runs out at epoch 3, which is also max_epochs: the phase converged, it did not hit the cap.
    _, history, _ = run_with_scores(monkeypatch, [[0.5, 0.5], [0.4, 0.4], [0.4, 0.4]], 2, max_epochs=3)
    assert [h.get("end") for h in history] == [None, None, "early_stopping"]


def test_regression_trains_on_the_mse_and_stops_on_the_validation_loss(monkeypatch):
    """A regression target (one output, float labels): the loss of every step is the MSE of the heads' single
    outputs, and early stopping tracks minus the validation MSE of each head (paper B §4.1)."""
    torch.manual_seed(0)
    model = build_model(ModelSpec("cnn", {"widths": [4, 4], "strides": [1, 1]}, (1, 4, 4), 1))
    x = torch.randn(24, 1, 4, 4)
    y = x.mean(dim=(1, 2, 3)) * 3.0  # learnable, float32 [N]
    data = TensorDataset(x, y)
    step_losses, scores = [], []
    real_loss, real_scores = losses.loss_function, loop.head_scores

    def recording_loss(task):
        criterion = real_loss(task)

        def loss(output, target):
            value = criterion(output, target)
            step_losses.append((value.item(), torch.mean((output[:, 0] - target) ** 2).item()))
            return value
        return loss

    def recording_scores(logits, labels, task):
        scores.append((real_scores(logits, labels, task), ((logits[..., 0] - labels) ** 2).mean(axis=1)))
        return scores[-1][0]

    monkeypatch.setattr(losses, "loss_function", recording_loss)
    monkeypatch.setattr(loop, "head_scores", recording_scores)
    config = TrainingConfig(max_epochs=6, patience=6, batch_size=8, lr=0.01, augment=False)
    history = loop.train_phase(model, JOINT_PHASE, data, data, "regression", config, torch.device("cpu"))
    assert len(step_losses) == 6 * 3 * 2  # epochs x batches x heads
    for value, by_hand in step_losses:
        assert value == pytest.approx(by_hand, rel=1e-5)
    for score, mse in scores:
        np.testing.assert_allclose(score, -mse, rtol=1e-5)
    assert [h["val_scores"] for h in history] == [np.round(s, 6).tolist() for s, _ in scores]
    assert scores[-1][1].max() < scores[0][1].min()  # it learns: every head's validation MSE went down


# Paper B's code (training.early_stopping: authors; methods/early_exit.py:15-55, 255) --------------------------


def same(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


def test_authors_counters_per_head_ties_neither_reset_nor_count(monkeypatch):
    """Patience 2, two heads. Counters by hand (a tie leaves a head's counter, a worse score adds one, a better
    one resets it; stop once both reach 2): [0,0] [0,1] [1,2] [1,3] [2,0] [3,1] [4,2] -> stop after epoch 7,
    restoring epoch 5's weights, the last at which a head improved."""
    scores = [[0.5, 0.5], [0.5, 0.4], [0.4, 0.4], [0.5, 0.4], [0.4, 0.6], [0.4, 0.5], [0.4, 0.5]]
    model, history, states = run_with_scores(monkeypatch, scores, 2, early_stopping="authors")
    assert [h["stale_checks"] for h in history] == [[0, 0], [0, 1], [1, 2], [1, 3], [2, 0], [3, 1], [4, 2]]
    assert [h["improved"] for h in history] == [True, False, False, False, True, False, False]
    assert same(model.state_dict(), states[4]) and not same(model.state_dict(), states[6])
    # Ours on the same scores: two epochs without any improvement end the phase at epoch 3, back to epoch 1.
    model, history, states = run_with_scores(monkeypatch, scores, 2)
    assert len(history) == 3 and same(model.state_dict(), states[0])


def test_authors_a_tied_head_never_goes_stale_and_the_cap_keeps_the_last_weights(monkeypatch):
    """Head 0 repeats its best score forever: its counter stays 0, so the phase runs to max_epochs (20), and
    the cap ends it on its last weights, not the best ones (restored only when stopping fires)."""
    scores = [[0.5, 0.5]] + [[0.5, 0.4]] * 19
    model, history, states = run_with_scores(monkeypatch, scores, 2, early_stopping="authors")
    assert len(history) == 20 and history[-1]["stale_checks"] == [0, 19]
    assert same(model.state_dict(), states[-1]) and not same(model.state_dict(), states[0])


def test_authors_check_interval():
    model = build_model(ModelSpec("cnn", {"widths": [4, 4], "strides": [1, 1]}, (1, 4, 4), 3))
    joint = JOINT_PHASE.plans(model.head_blocks, len(model.blocks))[0]
    backbone = BACKBONE_PHASE.plans(model.head_blocks, len(model.blocks))[0]
    authors, ours = TrainingConfig(early_stopping="authors"), TrainingConfig()
    assert stopping.check_interval(model, joint, authors, 1000) == 300  # an IC phase: min(epoch, 300 batches)
    assert stopping.check_interval(model, joint, authors, 200) == 200
    assert stopping.check_interval(model, backbone, authors, 1000) == 1000  # phase 1: once per epoch (train.py:282)
    assert stopping.check_interval(model, joint, ours, 1000) == 1000


def test_authors_checks_every_300_batches_in_an_ic_phase(monkeypatch):
    """350 batches per epoch: checks after batches 300 (epoch 1) and 600 (epoch 2); the epoch ends (350, 700)
    are validated for the record only. Patience 1: check 2 is worse for both heads, so training stops there,
    mid-epoch, restoring the weights of check 1, and never validates at batch 700."""
    states, training_modes = script_validation(monkeypatch, [[0.5, 0.5], [0.9, 0.9], [0.4, 0.4]]), []
    torch.manual_seed(0)
    model = build_model(ModelSpec("cnn", {"widths": [2, 2], "strides": [1, 1]}, (1, 2, 2), 3))
    model.register_forward_pre_hook(lambda m, i: training_modes.append(m.training) if torch.is_grad_enabled()
                                    else None)
    data = TensorDataset(torch.randn(350, 1, 2, 2), torch.randint(0, 3, (350,)))
    config = TrainingConfig(max_epochs=5, patience=1, batch_size=1, augment=False, early_stopping="authors")
    history = loop.train_phase(model, JOINT_PHASE, data, data, "single_label", config, torch.device("cpu"))
    assert len(states) == 3  # batch 300, end of epoch 1, batch 600
    assert [c["step"] for c in history[0]["checks"]] == [300] and [c["step"] for c in history[1]["checks"]] == [600]
    assert history[0]["improved"] and history[0]["stale_checks"] == [0, 0]  # epoch 1's end (0.9) is no check
    assert history[1]["val_scores"] == [0.4, 0.4] and history[1]["stale_checks"] == [1, 1]
    assert len(history) == 2 and same(model.state_dict(), states[0])
    assert len(training_modes) == 600 and all(training_modes)  # a check leaves the model in train mode


def test_authors_state_survives_a_resume_checkpoint(tmp_path):
    """The state a resume file holds (weights_only loading: primitives, tensors and float arrays only)."""
    from eebench.io import read_checkpoint, save_torch
    from eebench.training.resume import RESUME_CHECKPOINT, RESUME_GLOBALS

    model = build_model(ModelSpec("cnn", {"widths": [4, 4], "strides": [1, 1]}, (1, 4, 4), 3))
    config = TrainingConfig(early_stopping="authors", patience=2)
    stopper = stopping.make_stopper(config, 2, model)
    stopper.update(np.array([0.5, 0.5]), model)
    stopper.update(np.array([0.5, 0.4]), model)
    save_torch(tmp_path / "resume.pt", {"early_stopping": dict(vars(stopper))})
    state = read_checkpoint(tmp_path / "resume.pt", RESUME_CHECKPOINT, allowed_globals=RESUME_GLOBALS)
    resumed = stopping.make_stopper(config, 2, model, state["early_stopping"])
    assert isinstance(resumed, stopping.AuthorsEarlyStopping) and resumed.counters == [0, 1]
    assert resumed.update(np.array([0.4, 0.4]), model) is False and resumed.counters == [1, 2]
    assert not resumed.stopped
    resumed.update(np.array([0.4, 0.4]), model)
    assert resumed.stopped and same(resumed.best_state, stopper.best_state)
