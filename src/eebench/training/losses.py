"""A training step's loss: each head of the step's loss set on the task's loss, weighed (the loss scaling of
paper B §4.4 and paper B's switches), summed, plus a merge module's auxiliary loss (GPF's imitation loss)."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from torch import Tensor, nn

from eebench.tasks import SingleLabel, Task, task_of
from eebench.training.config import TrainingConfig
from eebench.training.hooks import PhaseHook
from eebench.training.scaling import GPF_AUTHORS_SCALINGS, HeadLayout, loss_scaling, scaling_name


def loss_function(task: str | Task):
    """The task's training loss, ``loss(output [B, C], target)`` (cross-entropy, BCE or MSE)."""
    return task_of(task).loss()


def training_loss(task: str | Task, label_smoothing: float = 0.0):
    """The loss a phase trains on: the task's (``loss_function``), or with ``label_smoothing`` > 0 the
    single-label cross-entropy against (1 - s) * target + s / C. PyTorch smooths a class index and a soft
    Mixup/CutMix row alike, which equals paper B's code smoothing each one-hot label before mixing them
    (``utils.py:68-73`` ``mixup_target``: off = s / C, on = 1 - s + s / C, mixed with lambda)."""
    if not label_smoothing:
        return loss_function(task)
    if not isinstance(task_of(task), SingleLabel):
        raise ValueError(f"training: label_smoothing applies to single-label cross-entropy; task "
                         f"{task_of(task).name!r} is not single-label")
    return nn.CrossEntropyLoss(label_smoothing=label_smoothing)


def head_loss_factors(heads: Sequence[int], weights: np.ndarray, num_heads: int, config: TrainingConfig,
                      gpf: bool) -> list[float]:
    """The factor of each head's loss in a step's loss (``heads``: the step's loss set, ``weights``: the loss
    scaling's alpha per head; a merge module's auxiliary loss, GPF's imitation loss, is added with factor 1).

    A single-head loss (eq. 1) is never scaled. Ours: alpha_h, divided by len(heads) under
    ``head_loss_reduction: mean`` (paper B's code divides the sum by the number of heads,
    methods/early_exit.py:227-228). With ``gpf_loss_weights: authors`` a GPF network's head h of K (the final
    included) weighs (h + 1) / (K(K+1)/2) whatever the loss set (methods/early_exit.py:216-222: every head's
    loss is summed there, the final's too, a constant when frozen), so that the classification weights sum to
    1 against the imitation loss's 1."""
    if len(heads) == 1:
        return [1.0]
    if gpf and config.gpf_loss_weights == "authors":
        total = num_heads * (num_heads + 1) / 2
        return [(h + 1) / total for h in heads]
    factors = [float(weights[h]) for h in heads]
    if config.head_loss_reduction == "mean":
        factors = [f / len(heads) for f in factors]
    return factors


class HeadLosses(PhaseHook):
    """The loss of a phase's steps, with the loss scaling's weights of the current epoch; each epoch's history
    entry records the heads' factors (``loss_weights``)."""

    def __init__(self, model: nn.Module, task: str | Task, config: TrainingConfig) -> None:
        self.model, self.config = model, config
        self.criterion = training_loss(task, config.label_smoothing)
        self.scaling = loss_scaling(config.loss_scaling)
        self.gpf = getattr(model, "merge", None) is not None  # ICs with an auxiliary loss (GPF's imitation loss)
        if (self.gpf and config.gpf_loss_weights == "authors"
                and scaling_name(config.loss_scaling) not in GPF_AUTHORS_SCALINGS):
            raise ValueError("training: gpf_loss_weights: authors fixes GPF's head weights to (h+1) / (K(K+1)/2) "
                             "(paper B's code); loss_scaling must be unset, constant or increasing")
        self.layout = HeadLayout(tuple(model.head_blocks), len(model.blocks))
        self.weights = np.ones(model.num_heads)

    def on_epoch_start(self, phase: Any, epoch: int) -> None:
        self.weights = self.scaling.weights(self.layout, epoch, self.config.max_epochs)

    def factors(self, heads: Sequence[int]) -> list[float]:
        return head_loss_factors(heads, self.weights, self.model.num_heads, self.config, self.gpf)

    def __call__(self, outputs: Sequence[Tensor], target: Tensor, heads: Sequence[int]) -> tuple[list[Tensor], Tensor]:
        """Each head's weighted loss and the step's loss (their sum, plus the auxiliary loss where the loss set
        counts an IC)."""
        terms = [f * self.criterion(outputs[h].float(), target) for f, h in zip(self.factors(heads), heads)]
        loss = sum(terms)
        auxiliary = getattr(self.model, "auxiliary_loss", None)
        if auxiliary is not None and any(h < self.model.num_heads - 1 for h in heads):
            loss = loss + auxiliary  # e.g. GPF's imitation loss
        return terms, loss

    def on_epoch_end(self, phase: Any, entry: dict[str, Any]) -> None:
        multi = [heads for heads in phase.plan.loss_sets if len(heads) > 1]
        if multi:  # each head's factor in the (largest) multi-head loss set: alpha_h unless a switch says
            largest = max(multi, key=len)
            factors = dict(zip(largest, self.factors(largest)))
            entry["loss_weights"] = [round(factors.get(h, float(self.weights[h])), 6)
                                     for h in range(self.model.num_heads)]
