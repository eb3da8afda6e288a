"""What the training log says of a phase: what it trains, and after each epoch the time spent and an estimate
of the time left."""
from __future__ import annotations

from typing import Sequence

from torch import nn

from eebench.training.config import TrainingConfig
from eebench.training.regimes import PhasePlan


def _indices(values: Sequence[int]) -> str:
    """E.g. "0-3" or "1, 3" or "none"."""
    values = sorted(values)
    if not values:
        return "none"
    if values == list(range(values[0], values[-1] + 1)) and len(values) > 2:
        return f"{values[0]}-{values[-1]}"
    return ", ".join(str(v) for v in values)


def describe_phase(model: nn.Module, plan: PhasePlan, config: TrainingConfig) -> str:
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
