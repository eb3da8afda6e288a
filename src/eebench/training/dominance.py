"""Gradient-dominance logging during training (paper B §3.1, ``training.gradient_dominance_every``): every N
steps, each loss head's gradient dominance on the shared backbone goes into the epoch's history entry. Extra
gradient computations only: the training itself is unchanged."""
from __future__ import annotations

from typing import Any

from torch import nn

from eebench.analysis.dominance import gradient_dominance
from eebench.training.hooks import PhaseHook, Step


class DominanceLog(PhaseHook):
    """Records ``{"step", "heads", "gd"}`` every ``every`` steps (0: never) and hands an epoch's records to its
    history entry, with the epoch's step count, so a step places a record within its epoch."""

    def __init__(self, model: nn.Module, every: int, world_size: int) -> None:
        if every and world_size > 1:
            raise ValueError("training: gradient_dominance_every is logged in single-process training only (the "
                             "extra gradients would bypass DDP's reducer); train on one GPU or the CPU")
        self.every = every
        # Paper B §3.1 compares gradients on the shared backbone (a phase that freezes it has none to compare).
        self.backbone = [p for p in model.blocks.parameters() if p.requires_grad] if every else []
        self.records: list[dict] = []  # this epoch's

    def state(self) -> dict[str, Any]:
        return {"dominance": list(self.records)}

    def restore(self, state: dict[str, Any]) -> None:
        self.records = list(state.get("dominance", []))

    def on_loss(self, phase: Any, step: Step) -> None:
        if self.every and step.index % self.every == 0 and self.backbone:
            self.records.append({"step": step.index, "heads": list(step.heads),
                                 "gd": [round(v, 6) for v in gradient_dominance(step.terms, step.loss, self.backbone)]})

    def on_epoch_end(self, phase: Any, entry: dict[str, Any]) -> None:
        if self.records:
            entry["gradient_dominance"], entry["steps_per_epoch"], self.records = (
                self.records, phase.steps_per_epoch, [])
