"""Early stopping of a phase on the validation split (paper B §4.1), ours or as paper B's code
(``training.early_stopping``), and the hook that checks it during and at the end of each epoch."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from eebench.training.config import TrainingConfig
from eebench.training.hooks import PhaseHook, Step, cpu_state
from eebench.training.regimes import PhasePlan

# The authors' IC phases check early stopping every min(epoch, this many) batches (methods/early_exit.py:255).
AUTHORS_CHECK_BATCHES = 300


@dataclass
class EarlyStopping:
    """Per-head best tracking (paper B §4.1): a phase goes on while some loss head improves its best validation
    score within ``patience`` epochs; the weights of the last epoch at which one did are the phase's result."""

    best: np.ndarray
    best_state: dict[str, torch.Tensor]
    stale_epochs: int = 0

    def update(self, scores: np.ndarray, model: nn.Module) -> bool:
        improved = bool((scores > self.best).any())
        self.best = np.maximum(self.best, scores)
        if improved:
            self.best_state = cpu_state(model)
            self.stale_epochs = 0
        else:
            self.stale_epochs += 1
        return improved

    def done(self, patience: int) -> bool:
        return self.stale_epochs >= patience

    def patience_left(self, patience: int) -> int:
        return patience - self.stale_epochs

    @property
    def restores(self) -> bool:
        """Whether the phase ends on the best weights: always (the cap too)."""
        return True


@dataclass
class AuthorsEarlyStopping:
    """Paper B's code (methods/early_exit.py:15-55, EarlyStopperEarlyExit, min_delta 0): one patience counter
    per head; a head's counter resets when its score beats its best, grows by one when the score is worse, and
    is left alone on a tie (l. 29-42). The state is saved whenever some head improved (l. 44-46); training
    stops once every head's counter reached ``patience`` (l. 51), and only then is the saved state restored
    (l. 52-53): a phase that hits its epoch cap keeps its last weights. The checks are counted, not epochs: in
    an IC phase they come every min(epoch, 300) batches (l. 255). Scores: larger = better."""

    best: np.ndarray
    patience: int
    counters: list[int] = field(default_factory=list)  # a list (not an array): resume files hold primitives
    best_state: dict[str, torch.Tensor] | None = None
    stopped: bool = False

    def __post_init__(self) -> None:
        if not self.counters:
            self.counters = [0] * len(self.best)

    def update(self, scores: np.ndarray, model: nn.Module) -> bool:
        better, worse = scores > self.best, scores < self.best
        self.counters = [0 if b else c + int(w) for c, b, w in zip(self.counters, better, worse)]
        self.best = np.where(better, scores, self.best)
        improved = bool(better.any())
        if improved:
            self.best_state = cpu_state(model)
        else:
            self.stopped = all(c >= self.patience for c in self.counters)
        return improved

    def done(self, patience: int) -> bool:
        return self.stopped

    def patience_left(self, patience: int) -> int:
        return patience - min(self.counters, default=patience)

    @property
    def restores(self) -> bool:
        return self.stopped


def make_stopper(config: TrainingConfig, num_scored: int, model: nn.Module, state: dict[str, Any] | None = None):
    """A phase's early stopping as ``config.early_stopping`` says, fresh or from a resume checkpoint's state."""
    if config.early_stopping == "authors":
        if state is not None:
            return AuthorsEarlyStopping(**state)
        return AuthorsEarlyStopping(np.full(num_scored, -math.inf), config.patience)
    if state is not None:
        return EarlyStopping(**state)
    return EarlyStopping(np.full(num_scored, -math.inf), cpu_state(model))


def check_interval(model: nn.Module, plan: PhasePlan, config: TrainingConfig, steps_per_epoch: int) -> int:
    """Steps between early-stopping checks: one epoch; under the authors' early stopping, a phase that trains
    an IC checks every min(epoch, 300) batches (methods/early_exit.py:255), phase 1 once per epoch
    (train.py:282)."""
    trains_ic = any(h < model.num_heads - 1 for h in plan.heads)
    if config.early_stopping == "authors" and trains_ic:
        return min(steps_per_epoch, AUTHORS_CHECK_BATCHES)
    return steps_per_epoch


class Stopping(PhaseHook):
    """Early stopping of one phase: the check at each epoch's end (or, under the authors' early stopping in an IC
    phase, every ``check_every`` steps, mid-epoch too), and the best weights restored at the end."""

    def __init__(self, model: nn.Module, plan: PhasePlan, config: TrainingConfig, steps_per_epoch: int) -> None:
        self.model, self.config, self.steps_per_epoch = model, config, steps_per_epoch
        self.num_scored = len(plan.scored_heads)
        self.stopper = make_stopper(config, self.num_scored, model)
        self.check_every = check_interval(model, plan, config, steps_per_epoch)
        self.checks: list[dict] = []  # this epoch's mid-epoch checks (authors' IC phases)

    @property
    def done(self) -> bool:
        return self.stopper.done(self.config.patience)

    @property
    def patience_left(self) -> int:
        return self.stopper.patience_left(self.config.patience)

    def state(self) -> dict[str, Any]:
        return {"early_stopping": dict(vars(self.stopper)), **({"checks": list(self.checks)} if self.checks else {})}

    def restore(self, state: dict[str, Any]) -> None:
        self.stopper = make_stopper(self.config, self.num_scored, self.model, state["early_stopping"])
        self.checks = list(state.get("checks", []))

    def after_step(self, phase: Any, step: Step) -> bool:
        step_done = (step.epoch - 1) * self.steps_per_epoch + step.done
        mid_epoch = step.done < phase.num_batches  # the epoch's end checks in end_epoch
        if self.check_every < self.steps_per_epoch and step_done % self.check_every == 0 and mid_epoch:
            # Before the checkpoint (a later hook), so that a resumed epoch never repeats or skips a check.
            scores = phase.validate()
            self.checks.append({"step": step_done, "val_scores": [round(float(v), 6) for v in scores],
                                "improved": self.stopper.update(scores, self.model)})
            phase.train_mode()  # predict left the model in eval mode
            return self.done
        return False

    def epoch_scores(self, phase: Any, epoch: int) -> tuple[np.ndarray, bool]:
        """The validation scores that close ``epoch`` and whether some head improved in it."""
        if self.done:  # stopped by a mid-epoch check: its scores close the epoch
            return np.asarray(self.checks[-1]["val_scores"]), False
        scores = phase.validate()
        if (epoch * self.steps_per_epoch) % self.check_every == 0:
            improved = self.stopper.update(scores, self.model)
        else:  # the authors' IC phases check every check_every steps; this epoch end is not one
            improved = False
        return scores, improved or any(c["improved"] for c in self.checks)

    def on_epoch_end(self, phase: Any, entry: dict[str, Any]) -> None:
        if self.config.early_stopping == "authors":
            entry["stale_checks"] = list(self.stopper.counters)
            if self.checks:
                entry["checks"], self.checks = self.checks, []

    def on_phase_end(self, phase: Any) -> None:
        if self.stopper.restores:  # ours: always; the authors': only when early stopping fired, not at the epoch cap
            self.model.load_state_dict(self.stopper.best_state)
