"""Where a training feature plugs into the loop: a ``PhaseHook`` is called at fixed points of a phase (each
step, each epoch's end, the phase's end) and keeps its own state in the resume checkpoint, so that a feature
(early stopping, preemption, gradient-dominance logging, gradient equilibrium, clipping...) is written beside the
loop (eebench.training.loop), not inside it. The loop calls its hooks in the order of ``phase_hooks``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn


@dataclass
class Step:
    """One optimiser step of a phase, as its hooks see it."""

    epoch: int  # from 1
    batch: int  # its index in the epoch, from 0
    index: int  # the phase's steps before this one: (epoch - 1) * steps_per_epoch + batch
    heads: tuple[int, ...]  # its loss set
    terms: list[Tensor] = field(default_factory=list)  # each head's weighted loss
    loss: Tensor | None = None  # what is backpropagated (the terms' sum, plus an auxiliary loss)
    signalled: bool = False  # some rank received a preemption signal (known after the step)

    @property
    def done(self) -> int:
        """The epoch's batches done once this step is."""
        return self.batch + 1


class PhaseHook:
    """A training feature beside the loop; every method is a no-op unless overridden. ``phase`` is the loop's
    ``PhaseTraining`` (its model, plan, config, epoch, ``validate()``, ``checkpoint()``...)."""

    def state(self) -> dict[str, Any]:
        """What the feature keeps in a resume checkpoint (its own keys)."""
        return {}

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a resume checkpoint's ``state`` (written by ``state``)."""

    def on_epoch_start(self, phase: Any, epoch: int) -> None:
        pass

    def before_forward(self, phase: Any, step: Step) -> None:
        pass

    def on_loss(self, phase: Any, step: Step) -> None:
        """After the step's loss, before its backward pass."""

    def before_update(self, phase: Any, step: Step) -> None:
        """After the backward pass, before the optimiser step."""

    def after_step(self, phase: Any, step: Step) -> bool:
        """After the optimiser step; True ends the epoch here (the later hooks skip this step)."""
        return False

    def on_epoch_end(self, phase: Any, entry: dict[str, Any]) -> None:
        """Add to the epoch's history ``entry`` before it is logged."""

    def after_epoch(self, phase: Any) -> None:
        """Once the epoch is in the history (``phase.epoch`` is the next one)."""

    def on_phase_end(self, phase: Any) -> None:
        """The phase trained to its end (not on an exception)."""

    def close(self) -> None:
        """The phase is over, by its end or an exception."""


class GradientClipping(PhaseHook):
    """Clip the trainable parameters' total gradient norm before each optimiser step (``training.grad_clip_norm``;
    paper B's ViT runs: 1.0, methods/early_exit.py:237-238)."""

    def __init__(self, parameters: list[nn.Parameter], max_norm: float) -> None:
        self.parameters, self.max_norm = parameters, max_norm

    def before_update(self, phase: Any, step: Step) -> None:
        torch.nn.utils.clip_grad_norm_(self.parameters, self.max_norm)


def cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of ``model``'s state on the CPU (a checkpoint's weights, early stopping's best ones)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
