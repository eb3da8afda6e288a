"""The training loop's settings, declared once: ``TrainingConfig``'s fields are the config's ``training`` keys, with
their types, constraints, defaults and descriptions (eebench.declare), and ``training_schema`` is the config
schema's ``$defs/training`` generated from them.
"""
from __future__ import annotations

import typing
from dataclasses import asdict, dataclass, fields
from typing import Annotated, Any, Literal

from eebench.declare import Param, PresetDefault, Ref, Unset, entry_description, parameters_schema


@dataclass(frozen=True, kw_only=True)
class TrainingConfig:
    """Settings of the one training loop (AdamW, cosine annealing with warm restarts, early stopping).

    Each field is a key of the config's ``training`` (and of a model setting's ``training`` overrides)."""

    batch_size: Annotated[int, Param("Mini-batch size (the global batch when data-parallel).", ge=1)] = 64
    lr: Annotated[float, Param("AdamW learning rate.", gt=0)] = 1e-3
    weight_decay: Annotated[float, Param("AdamW weight decay.", ge=0)] = 0.0
    max_epochs: Annotated[int, Param("Upper bound on epochs per phase.", ge=1)] = 50
    patience: Annotated[int, Param(
        "A phase stops after this many epochs in which no trained head improved its validation score.", ge=1)] = 5
    restart_epochs: Annotated[int, Param(
        "Period (T_0) of the cosine-annealing warm restarts, in epochs.", ge=1)] = 10
    augment: Annotated[bool, Param("Augment the training split (validation and test never are).")] = True
    eval_batch_size: Annotated[int, Param("Batch size for validation and logit caching.", ge=1)] = 512
    num_workers: Annotated[int, Param("DataLoader worker processes.", ge=0)] = 0
    # It never changes the result, so it is not part of a run's fingerprint.
    checkpoint_every_batches: Annotated[int, Param(
        "Also write the resume checkpoint every N batches (0 = at the end of every epoch only); a SIGTERM/SIGUSR1 "
        "always writes one.", ge=0)] = 0
    # Weights of the heads' losses (paper B §4.4): a name in eebench.training.scaling.SCALINGS or
    # {type: name, ...parameters}; None = constant (every alpha_k = 1).
    loss_scaling: Annotated[dict[str, Any] | str | None, Ref("loss_scaling"), Unset()] = None
    # GPU efficiency (nothing changes on the CPU under "auto"): bf16 autocast, channels-last convolutions.
    precision: Annotated[Literal["auto", "fp32", "bf16"], Param(
        "Arithmetic of training and caching: auto = bf16 autocast on a CUDA GPU that supports it, fp32 otherwise "
        "(the CPU: unchanged).")] = "auto"
    memory_format: Annotated[Literal["auto", "contiguous", "channels_last"], Param(
        "Memory format of convolutional nets and their image batches: auto = channels_last on a CUDA GPU, "
        "contiguous otherwise.")] = "auto"
    # Extra gradient computations only: the training itself is unchanged.
    gradient_dominance_every: Annotated[int, Param(
        "Paper B §3.1: every N steps, log each trained head's gradient dominance (cosine of its loss's gradient on "
        "the backbone's trainable parameters with the total loss's) in the checkpoint's history; 0 = off. Training "
        "is unchanged; single-process training only.", ge=0)] = 0
    # Paper B's training mechanics beside ours (each default keeps our behaviour; see eebench.readings). No schema
    # default (PresetDefault): a fidelity preset fills them, and as validation fills schema defaults into the config,
    # a new key in every model's training settings would rerun every run.
    # early stopping as ours (EarlyStopping) or as the authors' code (AuthorsEarlyStopping);
    early_stopping: Annotated[Literal["ours", "authors"], PresetDefault(), Param(
        "Omitted = ours: a phase stops once no scored head improved its best validation score for `patience` "
        "epochs, and ends on the weights of the last epoch at which one did (the epoch cap too). authors = paper "
        "B's code (methods/early_exit.py:15-55, 255; train.py:282): a patience counter per head (a tie neither "
        "resets nor counts), stop once every head's counter reached `patience`, checks every epoch in phase 1 and "
        "every min(epoch, 300) batches in a phase that trains ICs, and the best weights restored only when "
        "stopping fired (at the epoch cap the last weights stay).")] = "ours"
    # label smoothing of single-label cross-entropy, Mixup/CutMix's soft targets included;
    label_smoothing: Annotated[float, PresetDefault(), Param(
        "Omitted = 0 (ours). Label smoothing s of single-label cross-entropy, target (1 - s) * y + s / C, Mixup and "
        "CutMix's soft targets included. Paper B's code smooths by 0.1 whenever Mixup/CutMix is on (train.py:227, "
        "methods/early_exit.py:164 with utils.py:68-73), by the loss's label_smoothing (0.0 in its scripts) "
        "otherwise.", ge=0, lt=1)] = 0.0
    # clip the trainable parameters' gradient norm to this before each optimiser step (None = off);
    grad_clip_norm: Annotated[float | None, PresetDefault(), Param(
        "Omitted or null = off (ours). Clip the trainable parameters' total gradient norm to this before each "
        "optimiser step (torch.nn.utils.clip_grad_norm_); paper B's ViT scripts use 1.0 (scripts/vit_imagenet.py:78, "
        "scripts/pretrained_vit_cifar100_finetuning.py:63; methods/early_exit.py:237-238).", gt=0)] = None
    # GPF's head weights: ours (loss_scaling's) or the authors' (i+1) / (K(K+1)/2), see head_loss_factors;
    gpf_loss_weights: Annotated[Literal["ours", "authors"], PresetDefault(), Param(
        "GPF models only. Omitted = ours: the heads' losses weighed by `loss_scaling` (increasing = k/K in the "
        "shipped GPF settings) plus the imitation loss. authors = paper B's code (methods/early_exit.py:216-222): "
        "head h of K (the final included) weighs (h+1) / (K(K+1)/2), plus the imitation loss; with K heads ours "
        "makes the imitation loss (K+1)/2 times weaker against classification. `loss_scaling` must then be unset, "
        "constant or increasing.")] = "ours"
    # a multi-head loss as the (weighted) sum of the heads' losses or that sum over the loss set's size.
    head_loss_reduction: Annotated[Literal["sum", "mean"], PresetDefault(), Param(
        "Omitted = sum (ours): a multi-head loss is the weighted sum of the heads' losses (eq. 2/3). mean = that "
        "sum divided by the number of heads in the step's loss set, as paper B's code divides by the number of "
        "heads (methods/early_exit.py:227-228); an auxiliary loss (GPF's) is added after. A single-head loss is "
        "never changed.")] = "sum"
    # early-stopping scores on the validation split with the training augmentation (the authors' code draws it
    # from the augmented training set; Mixup/CutMix, applied in the loop, never reach it).
    validation_augment: Annotated[bool, PresetDefault(), Param(
        "Omitted = false (ours): early stopping scores the validation split as it is. true = with the training "
        "augmentation (not Mixup/CutMix), as paper B's code, whose validation subset is cut from the augmented "
        "training set (train.py:119-121, datasets.py:56). Only with augment; the cached val logits are never "
        "augmented.")] = False

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


def _switches() -> dict[str, Any]:
    hints = typing.get_type_hints(TrainingConfig, include_extras=True)
    return {field.name: field.default for field in fields(TrainingConfig)
            if any(isinstance(item, PresetDefault) for item in getattr(hints[field.name], "__metadata__", ()))}


# The paper-B switches (the fields a fidelity preset fills) and the values that keep our behaviour.
SWITCH_DEFAULTS = _switches()


def training_schema() -> dict[str, Any]:
    """The config schema's ``$defs/training``, generated from ``TrainingConfig``'s declaration."""
    return parameters_schema(TrainingConfig, description=entry_description(TrainingConfig))
