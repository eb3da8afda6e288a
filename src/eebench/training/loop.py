"""The one training loop. Every regime, and every static per-head baseline, runs through ``train_phases``.

The same loop trains in one process or data-parallel (``distributed.World``), and can checkpoint and resume
bit-identically (``resume.ResumeFile``). For that, each epoch's sample order is a pure function of
(seed, phase index, epoch) rather than the state of a shared generator, so an epoch can be replayed from any
batch.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from eebench import torch_eager
from eebench.analysis.dominance import gradient_dominance
from eebench.tasks import SingleLabel, Task, task_of
from eebench.models.multi_exit import MultiExitNet
from eebench.training.distributed import World, sync_batchnorm
from eebench.training.regimes import Phase, PhasePlan, expand
from eebench.training.scaling import (
    GPF_AUTHORS_SCALINGS, GradientEquilibrium, HeadLayout, loss_scaling, scaling_name,
)
from eebench.training.resume import Preempted, PreemptionFlag, ResumeFile, preemption_signals, set_rng_state

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingConfig:
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    max_epochs: int = 50
    patience: int = 5  # epochs without any loss head improving on validation before a phase stops
    restart_epochs: int = 10  # period T_0 of cosine annealing with warm restarts, in epochs
    augment: bool = True
    eval_batch_size: int = 512
    num_workers: int = 0
    # With a resume file, also checkpoint after every this many batches of an epoch (0: only at epoch ends,
    # which always checkpoint). It never changes the result, so it is not part of a run's fingerprint.
    checkpoint_every_batches: int = 0
    # Weights of the heads' losses (paper B §4.4): a name in eebench.training.scaling.SCALINGS or
    # {type: name, ...parameters}; None = constant (every alpha_k = 1).
    loss_scaling: dict[str, Any] | str | None = None
    # GPU efficiency (nothing changes on the CPU under "auto"): bf16 autocast, channels-last convolutions.
    precision: str = "auto"  # auto (bf16 where CUDA supports it, else fp32) | fp32 | bf16
    memory_format: str = "auto"  # auto (channels_last on CUDA for image inputs) | contiguous | channels_last
    # Paper B §3.1: log every head's gradient dominance on the backbone every this many steps (0: off). Extra
    # gradient computations only: the training itself is unchanged.
    gradient_dominance_every: int = 0
    # Paper B's training mechanics beside ours (each default keeps our behaviour; see eebench.readings):
    # early stopping as ours (EarlyStopping) or as the authors' code (AuthorsEarlyStopping);
    early_stopping: str = "ours"  # ours | authors
    # label smoothing of single-label cross-entropy, Mixup/CutMix's soft targets included;
    label_smoothing: float = 0.0
    # clip the trainable parameters' gradient norm to this before each optimiser step (None = off);
    grad_clip_norm: float | None = None
    # GPF's head weights: ours (loss_scaling's) or the authors' (i+1) / (K(K+1)/2), see head_loss_factors;
    gpf_loss_weights: str = "ours"  # ours | authors
    # a multi-head loss as the (weighted) sum of the heads' losses or that sum over the loss set's size.
    head_loss_reduction: str = "sum"  # sum | mean
    # early-stopping scores on the validation split with the training augmentation (the authors' code draws it
    # from the augmented training set; Mixup/CutMix, applied in the loop, never reach it).
    validation_augment: bool = False

    def identity(self) -> dict[str, Any]:
        """The settings that determine the trained weights (a resume checkpoint's fingerprint): all but
        ``checkpoint_every_batches``, and the paper-B switches only where set, so that a checkpoint written
        before they existed still matches a run that leaves them at their defaults."""
        settings = {k: v for k, v in asdict(self).items() if k != "checkpoint_every_batches"}
        for key, default in SWITCH_DEFAULTS.items():
            if settings[key] == default:
                del settings[key]
        return settings

    def __post_init__(self) -> None:
        for key in ("batch_size", "max_epochs", "patience", "restart_epochs", "eval_batch_size"):
            if getattr(self, key) < 1:
                raise ValueError(f"training: {key} must be at least 1, got {getattr(self, key)!r}")
        if self.gradient_dominance_every < 0:
            raise ValueError("training: gradient_dominance_every must be 0 (off) or positive")
        if self.checkpoint_every_batches < 0:
            raise ValueError("training: checkpoint_every_batches must be 0 (epoch ends only) or positive")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ValueError(f"training: precision must be auto, fp32 or bf16, got {self.precision!r}")
        if self.memory_format not in ("auto", "contiguous", "channels_last"):
            raise ValueError(f"training: memory_format must be auto, contiguous or channels_last, "
                             f"got {self.memory_format!r}")
        for key, choices in (("early_stopping", ("ours", "authors")), ("gpf_loss_weights", ("ours", "authors")),
                             ("head_loss_reduction", ("sum", "mean"))):
            if getattr(self, key) not in choices:
                raise ValueError(f"training: {key} must be {' or '.join(choices)}, got {getattr(self, key)!r}")
        if not isinstance(self.validation_augment, bool):
            raise ValueError(f"training: validation_augment must be true or false, got {self.validation_augment!r}")
        if isinstance(self.label_smoothing, bool) or not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"training: label_smoothing must be in [0, 1), got {self.label_smoothing!r}")
        if self.grad_clip_norm is not None and (isinstance(self.grad_clip_norm, bool) or self.grad_clip_norm <= 0):
            raise ValueError(f"training: grad_clip_norm must be null (off) or positive, got {self.grad_clip_norm!r}")


# The paper-B switches above and the values that keep our behaviour.
SWITCH_DEFAULTS = {"early_stopping": "ours", "label_smoothing": 0.0, "grad_clip_norm": None,
                   "gpf_loss_weights": "ours", "head_loss_reduction": "sum", "validation_augment": False}
# The authors' IC phases check early stopping every min(epoch, this many) batches (methods/early_exit.py:255).
AUTHORS_CHECK_BATCHES = 300


@dataclass(frozen=True)
class Placement:
    """How tensors and arithmetic are placed on the device: autocast dtype (None = full precision), memory
    format of a convolutional net and its 4-D inputs, pinned host memory for the DataLoader (CUDA only)."""

    device: torch.device
    autocast_dtype: torch.dtype | None = None
    channels_last: bool = False

    @classmethod
    def of(cls, config: TrainingConfig, device: torch.device, convolutional: bool) -> "Placement":
        cuda = device.type == "cuda"
        bf16 = config.precision == "bf16" or (
            config.precision == "auto" and cuda and torch.cuda.is_bf16_supported())
        channels_last = convolutional and (config.memory_format == "channels_last" or (
            config.memory_format == "auto" and cuda))
        return cls(device, torch.bfloat16 if bf16 else None, channels_last)

    @property
    def pin_memory(self) -> bool:
        return self.device.type == "cuda"

    def autocast(self):
        return torch.autocast(self.device.type, dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None)

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=self.pin_memory)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last and x.dim() == 4 else x

    def prepare(self, model: nn.Module) -> None:
        if self.channels_last:
            model.to(memory_format=torch.channels_last)


def select_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


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


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


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
            self.best_state = _cpu_state(model)
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
            self.best_state = _cpu_state(model)
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


def _stopper(config: TrainingConfig, num_scored: int, model: nn.Module, state: dict[str, Any] | None = None):
    """A phase's early stopping as ``config.early_stopping`` says, fresh or from a resume checkpoint's state."""
    if config.early_stopping == "authors":
        if state is not None:
            return AuthorsEarlyStopping(**state)
        return AuthorsEarlyStopping(np.full(num_scored, -math.inf), config.patience)
    if state is not None:
        return EarlyStopping(**state)
    return EarlyStopping(np.full(num_scored, -math.inf), _cpu_state(model))


def check_interval(model: MultiExitNet, plan: PhasePlan, config: TrainingConfig, steps_per_epoch: int) -> int:
    """Steps between early-stopping checks: one epoch; under the authors' early stopping, a phase that trains
    an IC checks every min(epoch, 300) batches (methods/early_exit.py:255), phase 1 once per epoch
    (train.py:282)."""
    trains_ic = any(h < model.num_heads - 1 for h in plan.heads)
    if config.early_stopping == "authors" and trains_ic:
        return min(steps_per_epoch, AUTHORS_CHECK_BATCHES)
    return steps_per_epoch


@dataclass
class Run:
    """What the phases of one training run share besides the model: the seed that fixes every epoch's sample
    order, the ranks, and the resume file (None: no checkpoints, and signals keep their default effect)."""

    seed: int = 0
    world: World = field(default_factory=World)
    resume: ResumeFile | None = None
    flag: PreemptionFlag = field(default_factory=PreemptionFlag)
    history: list[dict] = field(default_factory=list)  # of the finished phases
    state: dict[str, Any] | None = None  # checkpoint to resume from, until its phase has taken it

    def take_state(self, phase_index: int) -> dict[str, Any] | None:
        state, self.state = self.state, None
        return state if state is not None and state["phase_index"] == phase_index else None

    def save(self, state: dict[str, Any]) -> None:
        if self.resume is not None:
            self.resume.save({**state, "history": self.history}, self.world)

    def preempted(self) -> bool:
        """Whether any rank received a preemption signal (all ranks must stop at the same point)."""
        return self.resume is not None and self.world.sum([float(self.flag.requested)])[0] > 0

    def stopped(self, where: str) -> Preempted:
        path = self.resume.path if self.resume is not None else None
        return Preempted(f"stopped by a signal after {where}; progress saved in {path}")


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


def _indices(values: Sequence[int]) -> str:
    """E.g. "0-3" or "1, 3" or "none"."""
    values = sorted(values)
    if not values:
        return "none"
    if values == list(range(values[0], values[-1] + 1)) and len(values) > 2:
        return f"{values[0]}-{values[-1]}"
    return ", ".join(str(v) for v in values)


def describe_phase(model: MultiExitNet, plan: PhasePlan, config: TrainingConfig) -> str:
    """What a phase trains, for the log: e.g. "trains blocks 0-3 and heads 0-3 of 4 blocks and 4 heads (the
    last head is the final classifier), on the losses of heads 0-3; at most 50 epochs, patience 5"."""
    losses = " / ".join(_indices(heads) for heads in plan.loss_sets)  # alternating phases: several, in turn
    return (f"trains blocks {_indices(plan.blocks)} and heads {_indices(plan.heads)} of {len(model.blocks)} blocks "
            f"and {model.num_heads} heads (the last head is the final classifier), on the losses of heads "
            f"{losses}; at most {config.max_epochs} epochs, patience {config.patience}"
            + (" checks of every head (paper B's code's early stopping)" if config.early_stopping == "authors" else ""))


def _duration(seconds: float) -> str:
    if seconds < 9.95:
        return f"{seconds:.1f} s"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def progress(history: Sequence[dict], max_epochs: int, patience_left: int) -> str:
    """Elapsed time of a phase and an estimate of what is left, from its finished epochs (``history``, each with
    its ``seconds``). A phase stops after ``max_epochs`` or once no scored head has improved for ``patience``
    epochs, so between ``patience_left`` epochs (no head improves again) and all the remaining ones are left;
    each is estimated at the mean epoch so far."""
    elapsed = sum(entry["seconds"] for entry in history)
    remaining = max_epochs - history[-1]["epoch"] if history else max_epochs
    low = min(max(patience_left, 0), remaining)
    if remaining == 0 or low == 0:
        how = {"early_stopping": " by early stopping", "max_epochs": " at max_epochs"}.get(
            history[-1].get("end", "") if history else "", "")
        return f"{_duration(elapsed)} elapsed, phase done{how}"
    per_epoch = elapsed / max(len(history), 1)

    def epochs(n: int) -> str:
        return f"{n} epoch{'s' if n != 1 else ''}"

    span = (f"{_duration(low * per_epoch)} ({epochs(low)}, if no head improves) to "
            f"{_duration(remaining * per_epoch)} ({epochs(remaining)})" if low < remaining
            else f"{_duration(remaining * per_epoch)} ({epochs(remaining)})")
    return f"{_duration(elapsed)} elapsed, {span} left"


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
    """Train until no scored head has improved its validation score for ``patience`` epochs, then restore the
    weights of the last epoch at which some head improved (per-head best tracking, paper B §4.1). A fresh
    optimiser and scheduler serve each phase.

    Continues from ``run``'s checkpoint if it belongs to this phase. With a resume file it checkpoints at every
    epoch end and every ``checkpoint_every_batches`` batches, and on a preemption signal checkpoints after the
    current batch and raises ``Preempted``.
    """
    if isinstance(phase, Phase):
        (phase,) = phase.plans(model.head_blocks, len(model.blocks))  # a per-head phase gives several: refuse
    plan = phase
    run = run or Run()
    world = run.world
    scored = plan.scored_heads
    criterion = training_loss(task, config.label_smoothing)
    scaling = loss_scaling(config.loss_scaling)
    gpf = getattr(model, "merge", None) is not None  # ICs with an auxiliary loss (GPF's imitation loss)
    if gpf and config.gpf_loss_weights == "authors" and scaling_name(config.loss_scaling) not in GPF_AUTHORS_SCALINGS:
        raise ValueError("training: gpf_loss_weights: authors fixes GPF's head weights to (h+1) / (K(K+1)/2) "
                         "(paper B's code); loss_scaling must be unset, constant or increasing")
    layout = HeadLayout(tuple(model.head_blocks), len(model.blocks))
    equilibrium = GradientEquilibrium(model.blocks, model.head_blocks) if scaling.gradient_equilibrium else None
    placement = Placement.of(config, device, convolutional=any(isinstance(m, nn.Conv2d) for m in model.modules()))
    placement.prepare(model)
    trainable = set_trainable(model, plan)
    model.zero_grad(set_to_none=True)  # an earlier phase's gradients on parts this one freezes
    dominance_every = config.gradient_dominance_every
    if dominance_every and world.size > 1:
        raise ValueError("training: gradient_dominance_every is logged in single-process training only (the "
                         "extra gradients would bypass DDP's reducer); train on one GPU or the CPU")
    # Paper B §3.1 compares gradients on the shared backbone (a phase that freezes it has none to compare).
    backbone_params = [p for p in model.blocks.parameters() if p.requires_grad] if dominance_every else []
    dominance: list[dict] = []  # this epoch's gradient-dominance records
    # foreach: torch's multi-tensor update (its default on GPUs); on the CPU the same weights bit for bit as the
    # per-parameter loop, in 60% of the step time (benchmarks/epoch_cost.py)
    optimizer = torch_eager.AdamW(trainable, lr=config.lr, weight_decay=config.weight_decay, foreach=True)
    num_samples = len(train_set)  # type: ignore[arg-type]
    steps_per_epoch = max(1, len(epoch_batches(num_samples, config.batch_size, run.seed, phase_index, 1,
                                               world_size=world.size)))
    scheduler = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
        optimizer, T_0=config.restart_epochs * steps_per_epoch
    )
    stopper = _stopper(config, len(scored), model)
    check_every = check_interval(model, plan, config, steps_per_epoch)
    checks: list[dict] = []  # this epoch's mid-epoch early-stopping checks (authors' IC phases)
    history: list[dict] = []
    epoch, start, epoch_loss = 1, 0, [0.0, 0]  # epoch_loss: sum of per-sample losses, samples seen
    seconds = 0.0  # wall-clock of the epoch so far (a resumed epoch keeps what it had spent)
    resumed = run.take_state(phase_index)
    if resumed is not None:
        model.load_state_dict(resumed["model"])
        optimizer.load_state_dict(resumed["optimizer"])
        scheduler.load_state_dict(resumed["scheduler"])
        stopper = _stopper(config, len(scored), model, resumed["early_stopping"])
        checks = list(resumed.get("checks", []))
        history, epoch, start = resumed["phase_history"], resumed["epoch"], resumed["batch"]
        epoch_loss, seconds = resumed["epoch_loss"], resumed.get("seconds", 0.0)
        dominance = list(resumed.get("dominance", []))
        set_rng_state(resumed["rng"][world.rank])
    net = world.wrap(model, _has_unused_trainable_parts(model, plan))
    where = f"phase {phase_index + 1}/{num_phases} {plan.name}"
    log.info("%s: %s", where, describe_phase(model, plan, config))
    if resumed is not None:
        log.info("%s: resuming at epoch %d/%d, batch %d", where, epoch, config.max_epochs, start)

    def checkpoint(next_epoch: int, next_batch: int) -> None:
        run.save({
            "phase_index": phase_index, "epoch": next_epoch, "batch": next_batch, "model": _cpu_state(model),
            "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "early_stopping": dict(vars(stopper)), "epoch_loss": list(epoch_loss), "phase_history": list(history),
            "seconds": seconds, "dominance": list(dominance), **({"checks": list(checks)} if checks else {}),
        })

    def validate() -> np.ndarray:
        val_logits, val_labels = predict(model, val_set, config.eval_batch_size, device, placement)
        return world.broadcast(head_scores(val_logits, val_labels, task)[scored])

    every = config.checkpoint_every_batches
    try:
        while epoch <= config.max_epochs and not stopper.done(config.patience):
            began = time.perf_counter()
            set_trainable(model, plan)
            weights = scaling.weights(layout, epoch, config.max_epochs)
            seed = epoch_seed(run.seed, phase_index, epoch)
            batches = epoch_batches(num_samples, config.batch_size, run.seed, phase_index, epoch, world.rank,
                                    world.size)
            # Its own generator: creating a DataLoader iterator must not draw from the global RNG (augmentation's).
            # A dataset may bring a batch-level augmentation (CutMix/Mixup: soft targets) as its collate_fn.
            loader = DataLoader(train_set, batch_sampler=batches[start:], num_workers=config.num_workers,
                                generator=torch.Generator().manual_seed(seed),
                                collate_fn=getattr(train_set, "collate_fn", None), pin_memory=placement.pin_memory)
            for batch, (x, y) in enumerate(loader, start=start):
                x, y = placement.inputs(x), y.to(device, non_blocking=placement.pin_memory)
                # The step's loss set: alternating phases cycle through theirs, step by step over the phase.
                heads = plan.loss_sets[((epoch - 1) * steps_per_epoch + batch) % len(plan.loss_sets)]
                scaled = len(heads) > 1  # eq. (2)/(3) weights; a single loss (eq. 1) is never scaled
                if equilibrium is not None:
                    equilibrium.set_heads(list(heads) if scaled else None)
                with placement.autocast():
                    outputs = net(x)
                    factors = head_loss_factors(heads, weights, model.num_heads, config, gpf)
                    terms = [f * criterion(outputs[h].float(), y) for f, h in zip(factors, heads)]
                    loss = sum(terms)
                    auxiliary = getattr(model, "auxiliary_loss", None)
                    if auxiliary is not None and any(h < model.num_heads - 1 for h in heads):
                        loss = loss + auxiliary  # e.g. GPF's imitation loss
                step = (epoch - 1) * steps_per_epoch + batch
                if dominance_every and step % dominance_every == 0 and backbone_params:
                    dominance.append({"step": step, "heads": list(heads),
                                      "gd": [round(v, 6) for v in gradient_dominance(terms, loss, backbone_params)]})
                optimizer.zero_grad(set_to_none=True)
                if world.size > 1:
                    # DDP averages over ranks; weighting by the rank's share of the global batch makes that the
                    # global batch's mean loss even when the last batch splits unevenly.
                    global_size = min(config.batch_size, num_samples - batch * config.batch_size)
                    (loss * (len(x) * world.size / global_size)).backward()
                else:
                    loss.backward()
                if config.grad_clip_norm is not None:  # paper B's ViT runs: 1.0 (methods/early_exit.py:237-238)
                    torch.nn.utils.clip_grad_norm_(trainable, config.grad_clip_norm)
                optimizer.step()
                scheduler.step()
                # One reduction over ranks for the loss and for the signal flags (so that all ranks stop together).
                loss_sum, seen, signalled = world.sum([loss.item() * len(x), len(x), float(run.flag.requested)])
                epoch_loss[0] += loss_sum
                epoch_loss[1] += seen
                done = batch + 1
                step_done = (epoch - 1) * steps_per_epoch + done
                if check_every < steps_per_epoch and step_done % check_every == 0 and done < len(batches):
                    # Before the checkpoint below, so that a resumed epoch never repeats or skips a check.
                    check_scores = validate()
                    checks.append({"step": step_done, "val_scores": [round(float(v), 6) for v in check_scores],
                                   "improved": stopper.update(check_scores, model)})
                    set_trainable(model, plan)  # predict left the model in eval mode
                    if stopper.done(config.patience):
                        break
                stop = run.resume is not None and signalled > 0
                if stop or (every and done % every == 0 and done < len(batches)):
                    seconds += time.perf_counter() - began
                    began = time.perf_counter()
                    checkpoint(epoch, done)
                if stop:
                    raise run.stopped(f"batch {done} of epoch {epoch} of phase {plan.name!r}")
            start = 0
            if stopper.done(config.patience):  # stopped by a mid-epoch check: its scores close the epoch
                scores, improved = np.asarray(checks[-1]["val_scores"]), False
            else:
                scores = validate()
                if (epoch * steps_per_epoch) % check_every == 0:
                    improved = stopper.update(scores, model)
                else:  # the authors' IC phases check every check_every steps; this epoch end is not one
                    improved = False
                improved = improved or any(c["improved"] for c in checks)
            train_loss = epoch_loss[0] / max(epoch_loss[1], 1)
            seconds += time.perf_counter() - began
            entry = {
                "phase": plan.name, "epoch": epoch, "train_loss": train_loss, "heads": scored,
                "val_scores": [round(float(s), 6) for s in scores], "improved": improved,
                "seconds": round(seconds, 4),
            }
            if stopper.done(config.patience):  # how the phase ended, on its last epoch (claims mark capped runs)
                entry["end"] = "early_stopping"
            elif epoch == config.max_epochs:
                entry["end"] = "max_epochs"
            multi = [heads for heads in plan.loss_sets if len(heads) > 1]
            if multi:  # each head's factor in the (largest) multi-head loss set: alpha_h unless a switch says
                factors = dict(zip(max(multi, key=len), head_loss_factors(max(multi, key=len), weights,
                                                                          model.num_heads, config, gpf)))
                entry["loss_weights"] = [round(factors.get(h, float(weights[h])), 6) for h in range(model.num_heads)]
            if config.early_stopping == "authors":
                entry["stale_checks"] = list(stopper.counters)
                if checks:
                    entry["checks"], checks = checks, []
            if dominance:  # with the steps of an epoch, so a step places a record within its epoch
                entry["gradient_dominance"], entry["steps_per_epoch"], dominance = dominance, steps_per_epoch, []
            history.append(entry)
            log.info("%s epoch %d/%d: loss %.4f val %s%s; %s", where, epoch, config.max_epochs, train_loss,
                     " ".join(f"{s:.4f}" for s in scores),
                     f" weights {entry['loss_weights']}" if "loss_weights" in entry else "",
                     progress(history, config.max_epochs, stopper.patience_left(config.patience)))
            epoch, epoch_loss, seconds = epoch + 1, [0.0, 0], 0.0
            if run.resume is not None:
                checkpoint(epoch, 0)
                if run.preempted():
                    raise run.stopped(f"epoch {epoch - 1} of phase {plan.name!r}")
    finally:
        if equilibrium is not None:
            equilibrium.remove()
    if stopper.restores:  # ours: always; the authors': only when early stopping fired, not at the epoch cap
        model.load_state_dict(stopper.best_state)
    return history


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
