"""Training logs a person can follow: a line when a phase starts, then one per epoch with its progress."""
import logging
import re

import torch
from torch.utils.data import TensorDataset

from eebench.models import ModelSpec, build_model
from eebench.training import TrainingConfig
from eebench.training import loop, progress
from eebench.training.regimes import REGIMES


def test_a_short_run_logs_each_phase_start_and_every_epoch_in_order(caplog):
    torch.manual_seed(0)
    model = build_model(ModelSpec("cnn", {"widths": [4, 4], "strides": [1, 1]}, (1, 4, 4), 3))
    data = TensorDataset(torch.randn(16, 1, 4, 4), torch.randint(0, 3, (16,)))
    config = TrainingConfig(max_epochs=3, patience=10, batch_size=8, augment=False)
    with caplog.at_level(logging.INFO, logger="eebench.training.loop"):
        history = loop.train_phases(model, REGIMES.get("mixed").phases, data, data, "single_label", config, 0,
                                    torch.device("cpu"))
    lines = [r.getMessage() for r in caplog.records if r.name == "eebench.training.loop"]
    assert len(history) == 6 and len(lines) == 8
    assert lines[0].startswith("phase 1/2 backbone: trains blocks 0, 1 and heads 1 of 2 blocks and 2 heads")
    assert "on the losses of heads 1; at most 3 epochs, patience 10" in lines[0]
    assert lines[4].startswith("phase 2/2 joint: trains blocks 0, 1 and heads 0, 1")
    epochs = [line for line in lines if " epoch " in line]
    assert [re.match(r"phase (\d)/2 \w+ epoch (\d)/3: loss ", line).groups() for line in epochs] == [
        (p, e) for p in "12" for e in "123"]
    for line in epochs:
        assert re.search(r"; \d+\.\d s elapsed, ", line)
    assert re.search(r"\d+\.\d s \(2 epochs\) left$", epochs[0]) and re.search(r"\(1 epoch\) left$", epochs[1])
    assert epochs[2].endswith("phase done at max_epochs") and epochs[5].endswith("phase done at max_epochs")
    # The phase's last epoch records how it ended (the claims table marks runs that hit the cap).
    assert [h.get("end") for h in history] == [None, None, "max_epochs"] * 2


def test_progress_estimates_between_early_stopping_and_max_epochs():
    history = [{"epoch": e, "seconds": 10.0} for e in (1, 2, 3)]
    assert progress.progress(history, 50, 4) == "30 s elapsed, 40 s (4 epochs, if no head improves) to 7 min 50 s (47 epochs) left"
    assert progress.progress(history, 5, 4) == "30 s elapsed, 20 s (2 epochs) left"
    assert progress.progress(history, 50, 0) == "30 s elapsed, phase done"
    stopped = [*history[:2], {**history[2], "end": "early_stopping"}]
    assert progress.progress(stopped, 50, 0) == "30 s elapsed, phase done by early stopping"
    assert progress.progress(history * 200, 10_000, 500).startswith("1 h 40 min elapsed")
    assert progress.progress(history[:1], 3, 5).startswith("10 s elapsed") and "2.5 s" in progress._duration(2.5)
