"""The one training loop. Every regime, and every static per-head baseline, runs through ``train_phases``."""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from eebench.exits.performance import per_sample_performance
from eebench.models.multi_exit import MultiExitNet
from eebench.training.regimes import Phase

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


def select_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def loss_function(multilabel: bool) -> nn.Module:
    return nn.BCEWithLogitsLoss() if multilabel else nn.CrossEntropyLoss()


@torch.no_grad()
def predict(model: MultiExitNet, dataset: Dataset, batch_size: int, device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    """Logits of every head [H, N, C] and the labels, in dataset order."""
    model.eval()
    logits, labels = [], []
    for x, y in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        outputs = model(x.to(device))
        logits.append(torch.stack(outputs).float().cpu())
        labels.append(y)
    return torch.cat(logits, dim=1).numpy(), torch.cat(labels).numpy()


def head_scores(logits: np.ndarray, labels: np.ndarray, multilabel: bool) -> np.ndarray:
    """Per-head validation score used for early stopping: accuracy (single-label) or sample-F1 (multi-label)."""
    performance = per_sample_performance(logits, labels, multilabel)
    return performance["f1" if multilabel else "accuracy"].mean(axis=1)


def set_trainable(model: MultiExitNet, phase: Phase) -> list[nn.Parameter]:
    """Enable gradients for the phase's groups only. Frozen groups also go to eval mode, so that their
    batch-norm statistics stay as trained (a frozen backbone must really not change)."""
    model.train()
    params = model.parameter_groups()
    modules = model.group_modules()
    trainable: list[nn.Parameter] = []
    for group, group_params in params.items():
        on = group in phase.trainable
        for p in group_params:
            p.requires_grad_(on)
        if on:
            trainable += group_params
        else:
            for module in modules[group]:
                module.eval()
    return trainable


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def train_phase(
    model: MultiExitNet,
    phase: Phase,
    train_set: Dataset,
    val_set: Dataset,
    multilabel: bool,
    config: TrainingConfig,
    device: torch.device,
    generator: torch.Generator,
) -> list[dict]:
    """Train until no loss head has improved its validation score for ``patience`` epochs, then restore the
    weights of the last epoch at which some head improved (per-head best tracking, paper B §4.1)."""
    loss_heads = phase.loss_head_indices(model.num_heads)
    criterion = loss_function(multilabel)
    trainable = set_trainable(model, phase)
    optimizer = torch.optim.AdamW(trainable, lr=config.lr, weight_decay=config.weight_decay)
    loader = DataLoader(
        train_set, batch_size=config.batch_size, shuffle=True, generator=generator,
        num_workers=config.num_workers, drop_last=False,
    )
    steps_per_epoch = max(1, len(loader))
    scheduler = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
        optimizer, T_0=config.restart_epochs * steps_per_epoch
    )
    best = np.full(len(loss_heads), -math.inf)
    best_state = _cpu_state(model)
    history: list[dict] = []
    stale_epochs = 0
    for epoch in range(1, config.max_epochs + 1):
        set_trainable(model, phase)
        total_loss, seen = 0.0, 0
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            outputs = model(x)
            loss = sum(criterion(outputs[h], y) for h in loss_heads)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total_loss += loss.item() * len(x)
            seen += len(x)
        val_logits, val_labels = predict(model, val_set, config.eval_batch_size, device)
        scores = head_scores(val_logits, val_labels, multilabel)[loss_heads]
        improved = scores > best
        best = np.maximum(best, scores)
        if improved.any():
            best_state = _cpu_state(model)
            stale_epochs = 0
        else:
            stale_epochs += 1
        history.append({
            "phase": phase.name, "epoch": epoch, "train_loss": total_loss / max(seen, 1),
            "val_scores": [round(float(s), 6) for s in scores], "improved": bool(improved.any()),
        })
        log.info("phase %s epoch %d loss %.4f val %s", phase.name, epoch, total_loss / max(seen, 1),
                 " ".join(f"{s:.4f}" for s in scores))
        if stale_epochs >= config.patience:
            break
    model.load_state_dict(best_state)
    return history


def train_phases(
    model: MultiExitNet,
    phases: tuple[Phase, ...],
    train_set: Dataset,
    val_set: Dataset,
    multilabel: bool,
    config: TrainingConfig,
    seed: int,
    device: torch.device,
) -> list[dict]:
    generator = torch.Generator().manual_seed(seed)
    model.to(device)
    history: list[dict] = []
    for phase in phases:
        history += train_phase(model, phase, train_set, val_set, multilabel, config, device, generator)
    return history
