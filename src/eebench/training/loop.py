"""The one training loop. Every regime, and every static per-head baseline, runs through ``train_phases``.

The same loop trains in one process or data-parallel (``distributed.World``), and can checkpoint and resume
bit-identically (``resume.ResumeFile``). For that, each epoch's sample order is a pure function of
(seed, phase index, epoch) rather than the state of a shared generator, so an epoch can be replayed from any
batch.

A phase trains in named steps (``PhaseTraining``: ``train_epoch``, ``train_step``, ``end_epoch``). Every feature
beside plain training is a hook (eebench.training.hooks) in its own module, listed in ``phase_hooks``: the heads'
losses and their scaling (losses, scaling: GPF's auxiliary loss too), gradient clipping (hooks), early stopping
(stopping), gradient-dominance logging (dominance), checkpoints and preemption (checkpoints); precision and memory
format are the ``Placement`` (placement). A new feature is a new hook there, not a change of the loop.
"""
from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from eebench import torch_eager
from eebench.models.multi_exit import MultiExitNet
from eebench.tasks import Task, task_of
from eebench.training.checkpoints import Checkpoints, Run
from eebench.training.config import TrainingConfig
from eebench.training.distributed import World, sync_batchnorm
from eebench.training.dominance import DominanceLog
from eebench.training.hooks import GradientClipping, PhaseHook, Step, cpu_state
from eebench.training.losses import HeadLosses
from eebench.training.placement import Placement
from eebench.training.preemption import preemption_signals
from eebench.training.progress import describe_phase, progress
from eebench.training.regimes import Phase, PhasePlan, expand
from eebench.training.resume import ResumeFile, set_rng_state
from eebench.training.scaling import GradientEquilibrium
from eebench.training.stopping import Stopping

log = logging.getLogger(__name__)


def _parts(model: MultiExitNet, plan: PhasePlan) -> list[tuple[nn.Module, bool]]:
    """Every trainable unit of the network (each block, each head, a merge module of the ICs if there is one)
    and whether ``plan`` trains it."""
    final = model.num_heads - 1
    units = [(block, j in plan.blocks) for j, block in enumerate(model.blocks)]
    units += [(model.heads[str(b)], h in plan.heads) for h, b in enumerate(model.head_blocks)]
    merge = getattr(model, "merge", None)
    if merge is not None:  # shared by the ICs (GPF): trains with any of them
        units.append((merge, any(h < final for h in plan.heads)))
    return units


def set_trainable(model: MultiExitNet, plan: PhasePlan) -> list[nn.Parameter]:
    """Enable gradients for the plan's parts only. Frozen parts also go to eval mode, so that their
    batch-norm statistics stay as trained (a frozen backbone must really not change)."""
    model.train()
    trainable: list[nn.Parameter] = []
    for module, on in _parts(model, plan):
        module.requires_grad_(on)
        if on:
            trainable += list(module.parameters())
        else:
            module.eval()
    return trainable


def epoch_seed(seed: int, phase_index: int, epoch: int) -> int:
    return int(np.random.SeedSequence([seed, phase_index, epoch]).generate_state(1, np.uint64)[0])


def epoch_batches(num_samples: int, batch_size: int, seed: int, phase_index: int, epoch: int,
                  rank: int = 0, world_size: int = 1) -> list[list[int]]:
    """This rank's batches (sample indices) of one epoch.

    The permutation depends only on (seed, phase, epoch), so an interrupted epoch can be replayed from any
    batch. It is cut into global batches of ``batch_size``; rank r takes positions r, r + W, ... of each, so
    the ranks' k-th batches together are exactly the single-process k-th batch. A last global batch smaller
    than the number of ranks is dropped (it would leave a rank without data); one process drops nothing.
    """
    if batch_size % world_size:
        raise ValueError(f"training: batch_size {batch_size} (the global batch) is not divisible by the "
                         f"{world_size} processes")
    generator = torch.Generator().manual_seed(epoch_seed(seed, phase_index, epoch))
    order = torch.randperm(num_samples, generator=generator).tolist()
    batches = [order[i : i + batch_size] for i in range(0, num_samples, batch_size)]
    if batches and len(batches[-1]) < world_size:
        batches.pop()
    return [batch[rank::world_size] for batch in batches]


@torch.no_grad()
def predict(model: MultiExitNet, dataset: Dataset, batch_size: int, device: torch.device,
            placement: Placement | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Logits of every head [H, N, C] (float32) and the labels, in dataset order."""
    placement = placement or Placement(device)
    model.eval()
    logits, labels = [], []
    for x, y in DataLoader(dataset, batch_size=batch_size, shuffle=False, pin_memory=placement.pin_memory):
        with placement.autocast():
            outputs = model(placement.inputs(x))
        logits.append(torch.stack(outputs).float().cpu())
        labels.append(y)
    return torch.cat(logits, dim=1).numpy(), torch.cat(labels).numpy()


def head_scores(logits: np.ndarray, labels: np.ndarray, task: str | Task) -> np.ndarray:
    """Per-head validation score used for early stopping, larger = better: accuracy (single-label), sample-F1
    (multi-label) or minus the MSE, the validation loss (regression; paper B §4.1)."""
    return task_of(task).stopping_scores(logits, labels)


def _has_unused_trainable_parts(model: MultiExitNet, plan: PhasePlan) -> bool:
    """Whether some step leaves a trainable part without gradient (then DDP must look for such parameters):
    a trainable head outside the step's loss set, or a trainable block after its deepest head. On a backbone
    whose exits read only part of each block's output (MSDNet's coarsest scale) any loss but the last head's
    leaves some parameters without gradient."""
    if getattr(model, "partial_exits", False) and any(max(heads) < model.num_heads - 1 for heads in plan.loss_sets):
        return True
    for heads in plan.loss_sets:
        deepest = max(model.head_blocks[h] for h in heads)
        if set(plan.heads) - set(heads) or any(b > deepest for b in plan.blocks):
            return True
        if getattr(model, "merge", None) is not None and not any(h < model.num_heads - 1 for h in heads):
            return True
    return False


class PhaseTraining:
    """One phase of training, in named steps. Train until no scored head has improved its validation score for
    ``patience`` epochs, then restore the weights of the last epoch at which some head improved (per-head best
    tracking, paper B §4.1; eebench.training.stopping). A fresh optimiser and scheduler serve each phase.

    The hooks read (and the checkpoints restore) the phase's progress: ``epoch`` (from 1), ``start`` (the batch
    a resumed epoch continues at), ``num_batches`` (the epoch's), ``epoch_loss`` (sum of per-sample losses,
    samples seen), ``seconds`` (wall-clock of the epoch so far: a resumed epoch keeps what it had spent) since
    ``began`` and ``history`` (the phase's epochs)."""

    def __init__(self, model: MultiExitNet, plan: PhasePlan, train_set: Dataset, val_set: Dataset,
                 task: str | Task, config: TrainingConfig, device: torch.device, run: Run, phase_index: int,
                 num_phases: int) -> None:
        self.model, self.plan, self.train_set, self.val_set, self.task = model, plan, train_set, val_set, task
        self.config, self.device, self.run, self.world, self.phase_index = config, device, run, run.world, phase_index
        self.scored = plan.scored_heads
        self.losses = HeadLosses(model, task, config)
        self.placement = Placement.of(config, device, any(isinstance(m, nn.Conv2d) for m in model.modules()))
        self.placement.prepare(model)
        self.trainable = set_trainable(model, plan)
        model.zero_grad(set_to_none=True)  # an earlier phase's gradients on parts this one freezes
        # foreach: torch's multi-tensor update (its default on GPUs); on the CPU the same weights bit for bit as the
        # per-parameter loop, in 60% of the step time (benchmarks/epoch_cost.py)
        self.optimizer = torch_eager.AdamW(self.trainable, lr=config.lr, weight_decay=config.weight_decay,
                                           foreach=True)
        self.num_samples = len(train_set)  # type: ignore[arg-type]
        self.steps_per_epoch = max(1, len(epoch_batches(self.num_samples, config.batch_size, run.seed, phase_index,
                                                        1, world_size=self.world.size)))
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
            self.optimizer, T_0=config.restart_epochs * self.steps_per_epoch
        )
        self.stopping = Stopping(model, plan, config, self.steps_per_epoch)
        self.hooks = phase_hooks(self)
        self.history: list[dict] = []
        self.epoch, self.start, self.num_batches, self.epoch_loss = 1, 0, 0, [0.0, 0]
        self.seconds, self.began = 0.0, 0.0
        resumed = run.take_state(phase_index)
        if resumed is not None:
            self.resume(resumed)
        self.net = self.world.wrap(model, _has_unused_trainable_parts(model, plan))
        self.where = f"phase {phase_index + 1}/{num_phases} {plan.name}"
        log.info("%s: %s", self.where, describe_phase(model, plan, config))
        if resumed is not None:
            log.info("%s: resuming at epoch %d/%d, batch %d", self.where, self.epoch, config.max_epochs, self.start)

    def resume(self, state: dict[str, Any]) -> None:
        """Continue from a resume checkpoint of this phase (``checkpoint``)."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        for hook in self.hooks:
            hook.restore(state)
        self.history, self.epoch, self.start = state["phase_history"], state["epoch"], state["batch"]
        self.epoch_loss, self.seconds = state["epoch_loss"], state.get("seconds", 0.0)
        set_rng_state(state["rng"][self.world.rank])

    def checkpoint(self, next_epoch: int, next_batch: int) -> dict[str, Any]:
        """The phase's state for a resume checkpoint that continues at ``next_batch`` of ``next_epoch``."""
        state = {
            "phase_index": self.phase_index, "epoch": next_epoch, "batch": next_batch, "model": cpu_state(self.model),
            "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "epoch_loss": list(self.epoch_loss), "phase_history": list(self.history), "seconds": self.seconds,
        }
        for hook in self.hooks:
            state.update(hook.state())
        return state

    def train_mode(self) -> None:
        set_trainable(self.model, self.plan)

    def validate(self) -> np.ndarray:
        """The scored heads' validation scores (rank 0's on every rank)."""
        val_logits, val_labels = predict(self.model, self.val_set, self.config.eval_batch_size, self.device,
                                         self.placement)
        return self.world.broadcast(head_scores(val_logits, val_labels, self.task)[self.scored])

    def train(self) -> list[dict]:
        """Train the phase to its end and return its history."""
        try:
            while self.epoch <= self.config.max_epochs and not self.stopping.done:
                self.train_epoch()
                self.end_epoch()
        finally:
            for hook in self.hooks:
                hook.close()
        for hook in self.hooks:
            hook.on_phase_end(self)
        return self.history

    def train_epoch(self) -> None:
        self.began = time.perf_counter()
        self.train_mode()
        for hook in self.hooks:
            hook.on_epoch_start(self, self.epoch)
        seed = epoch_seed(self.run.seed, self.phase_index, self.epoch)
        batches = epoch_batches(self.num_samples, self.config.batch_size, self.run.seed, self.phase_index,
                                self.epoch, self.world.rank, self.world.size)
        self.num_batches = len(batches)
        # Its own generator: creating a DataLoader iterator must not draw from the global RNG (augmentation's).
        # A dataset may bring a batch-level augmentation (CutMix/Mixup: soft targets) as its collate_fn.
        loader = DataLoader(self.train_set, batch_sampler=batches[self.start:], num_workers=self.config.num_workers,
                            generator=torch.Generator().manual_seed(seed),
                            collate_fn=getattr(self.train_set, "collate_fn", None),
                            pin_memory=self.placement.pin_memory)
        for batch, (x, y) in enumerate(loader, start=self.start):
            step = self.train_step(batch, x, y)
            if any(hook.after_step(self, step) for hook in self.hooks):
                break
        self.start = 0

    def train_step(self, batch: int, x: torch.Tensor, y: torch.Tensor) -> Step:
        x, y = self.placement.inputs(x), y.to(self.device, non_blocking=self.placement.pin_memory)
        index = (self.epoch - 1) * self.steps_per_epoch + batch
        # The step's loss set: alternating phases cycle through theirs, step by step over the phase.
        step = Step(self.epoch, batch, index, self.plan.loss_sets[index % len(self.plan.loss_sets)])
        for hook in self.hooks:
            hook.before_forward(self, step)
        with self.placement.autocast():
            step.terms, step.loss = self.losses(self.net(x), y, step.heads)
        for hook in self.hooks:
            hook.on_loss(self, step)
        self.optimizer.zero_grad(set_to_none=True)
        if self.world.size > 1:
            # DDP averages over ranks; weighting by the rank's share of the global batch makes that the
            # global batch's mean loss even when the last batch splits unevenly.
            global_size = min(self.config.batch_size, self.num_samples - batch * self.config.batch_size)
            (step.loss * (len(x) * self.world.size / global_size)).backward()
        else:
            step.loss.backward()
        for hook in self.hooks:
            hook.before_update(self, step)
        self.optimizer.step()
        self.scheduler.step()
        # One reduction over ranks for the loss and for the signal flags (so that all ranks stop together).
        loss_sum, seen, signalled = self.world.sum([step.loss.item() * len(x), len(x),
                                                    float(self.run.flag.requested)])
        self.epoch_loss[0] += loss_sum
        self.epoch_loss[1] += seen
        step.signalled = signalled > 0
        return step

    def end_epoch(self) -> None:
        """Score the epoch, add it to the history and log it; then the hooks' ``after_epoch`` (checkpoints)."""
        scores, improved = self.stopping.epoch_scores(self, self.epoch)
        train_loss = self.epoch_loss[0] / max(self.epoch_loss[1], 1)
        self.seconds += time.perf_counter() - self.began
        entry = {
            "phase": self.plan.name, "epoch": self.epoch, "train_loss": train_loss, "heads": self.scored,
            "val_scores": [round(float(s), 6) for s in scores], "improved": improved,
            "seconds": round(self.seconds, 4),
        }
        if self.stopping.done:  # how the phase ended, on its last epoch (claims mark capped runs)
            entry["end"] = "early_stopping"
        elif self.epoch == self.config.max_epochs:
            entry["end"] = "max_epochs"
        for hook in self.hooks:
            hook.on_epoch_end(self, entry)
        self.history.append(entry)
        log.info("%s epoch %d/%d: loss %.4f val %s%s; %s", self.where, self.epoch, self.config.max_epochs,
                 train_loss, " ".join(f"{s:.4f}" for s in scores),
                 f" weights {entry['loss_weights']}" if "loss_weights" in entry else "",
                 progress(self.history, self.config.max_epochs, self.stopping.patience_left))
        self.epoch, self.epoch_loss, self.seconds = self.epoch + 1, [0.0, 0], 0.0
        for hook in self.hooks:
            hook.after_epoch(self)


def phase_hooks(phase: PhaseTraining) -> list[PhaseHook]:
    """The features beside the loop, in the order it calls them (so an epoch's history entry gets the loss
    weights, then early stopping's counters, then gradient dominance; early stopping checks before a checkpoint
    is written)."""
    config, model = phase.config, phase.model
    dominance = DominanceLog(model, config.gradient_dominance_every, phase.world.size)  # after set_trainable
    hooks: list[PhaseHook] = [phase.losses]
    if phase.losses.scaling.gradient_equilibrium:
        hooks.append(GradientEquilibrium(model.blocks, model.head_blocks))
    if config.grad_clip_norm is not None:
        hooks.append(GradientClipping(phase.trainable, config.grad_clip_norm))
    return [*hooks, phase.stopping, dominance, Checkpoints(phase.run, config.checkpoint_every_batches)]


def train_phase(
    model: MultiExitNet,
    phase: Phase | PhasePlan,
    train_set: Dataset,
    val_set: Dataset,
    task: str | Task,
    config: TrainingConfig,
    device: torch.device,
    run: Run | None = None,
    phase_index: int = 0,
    num_phases: int = 1,
) -> list[dict]:
    """Train one phase (``PhaseTraining``) and return its history.

    Continues from ``run``'s checkpoint if it belongs to this phase. With a resume file it checkpoints at every
    epoch end and every ``checkpoint_every_batches`` batches, and on a preemption signal checkpoints after the
    current batch and raises ``Preempted`` (eebench.training.checkpoints).
    """
    if isinstance(phase, Phase):
        (phase,) = phase.plans(model.head_blocks, len(model.blocks))  # a per-head phase gives several: refuse
    return PhaseTraining(model, phase, train_set, val_set, task, config, device, run or Run(), phase_index,
                         num_phases).train()


def train_phases(
    model: MultiExitNet,
    phases: tuple[Phase, ...],
    train_set: Dataset,
    val_set: Dataset,
    task: str | Task,
    config: TrainingConfig,
    seed: int,
    device: torch.device,
    resume: ResumeFile | None = None,
    world: World | None = None,
) -> list[dict]:
    """Train ``phases`` in order and return the history of every epoch.

    With ``resume``, continue from its checkpoint if there is one, and while training turn SIGTERM and
    SIGUSR1 into a checkpoint plus ``Preempted``. With a ``world`` of several ranks, train data-parallel: batch
    norm is synchronised (in place: the state dict keeps its keys) and ``config.batch_size`` is the global batch.
    """
    world = world or World(device=device)
    model.to(device)
    if world.size > 1:
        sync_batchnorm(model, device)
    run = Run(seed, world, resume)
    state = resume.load(world) if resume is not None else None
    first = 0
    if state is not None:
        run.history, run.state, first = state["history"], state, state["phase_index"]
    plans = expand(phases, model.head_blocks, len(model.blocks))
    with preemption_signals(enabled=resume is not None) as flag:
        run.flag = flag
        for index in range(first, len(plans)):
            run.history = run.history + train_phase(
                model, plans[index], train_set, val_set, task, config, device, run, index, len(plans)
            )
    return run.history
