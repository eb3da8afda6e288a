"""Analyses of whole trained models (paper B §3.2 mode connectivity, Appendix B loss landscape): each reads
trained checkpoints and a prepared dataset, never trains, and returns a frame written as one CSV.

``CHECKPOINT_ANALYSES`` is their registry: an entry is ``(checkpoints, data, **settings) -> DataFrame``, its
keyword-only parameters (declared with defaults, eebench.declare) are its config keys under the top-level
``analysis:`` section, and its ``checkpoints`` attribute says how many checkpoints it reads (2: a pair of regimes;
1: one run). connectivity.py and landscape.py register the entries.

What "loss" is for a multi-exit model (paper B eq. 2 with α_k = 1; App. B "total training loss and separate
losses for each IC"): each head's loss is the task's training loss (cross-entropy for single-label) averaged over
the samples, and the total is the unweighted sum of the heads' losses, whatever loss scaling the run trained
with. A row per head (``head`` "1".."H", 1-based) and one ``head`` "total" row; the total row's metrics
(accuracy, ...) are the mean over heads.
"""
from __future__ import annotations

from typing import Annotated, Any, Callable, Mapping, Sequence

import torch
from torch import Tensor, nn

from eebench.declare import Param
from eebench.registry import Registry

CHECKPOINT_ANALYSES: Registry[Callable[..., Any]] = Registry(
    "checkpoint analysis", providers=("eebench.analysis.connectivity", "eebench.analysis.landscape"))
DEFAULT_SAMPLES = 500
DEFAULT_BATCH_SIZE = 500
BatchSize = Annotated[int, Param("Forward batch size (BatchNorm statistics, where recomputed, are the mean over "
                                 "batches).", ge=1)]
TOTAL = "total"


def register(name: str, checkpoints: int) -> Callable:
    def mark(analysis: Callable) -> Callable:
        analysis.checkpoints = checkpoints  # type: ignore[attr-defined]
        return CHECKPOINT_ANALYSES.register(name, analysis)

    return mark


def parameters(name: str) -> dict[str, Any]:
    """An analysis's config keys with their defaults (its keyword-only parameters)."""
    from eebench.declare import declared_parameters

    return {key: p.default for key, p in declared_parameters(CHECKPOINT_ANALYSES.get(name)).items()}


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load_run(checkpoint: str) -> dict[str, Any]:
    """A trained model (eval mode, on :func:`device`) with its spec (``ModelSpec``), task and meta."""
    from eebench.inference import load_checkpoint
    from eebench.models import ModelSpec

    model, saved = load_checkpoint(checkpoint, keys=("meta",))
    return {"model": model.to(device()), "spec": ModelSpec.from_dict(saved["spec"]), "task": saved.get("task"),
            "meta": saved["meta"], "path": checkpoint}


def split_samples(data: str, split: str, samples: int) -> tuple[Tensor, Tensor]:
    """The first ``samples`` inputs and labels of a prepared dataset's split, in stored order, never augmented."""
    from torch.utils.data import DataLoader, Subset

    from eebench.data import load_split

    dataset, _ = load_split(data, split)
    subset = Subset(dataset, range(min(int(samples), len(dataset))))
    xs, ys = zip(*DataLoader(subset, batch_size=1024, shuffle=False))
    return torch.cat(xs), torch.cat(ys)


def run_task(run: Mapping[str, Any], data: str):
    from eebench.data import read_info
    from eebench.tasks import task_of

    return task_of(run["task"] or read_info(data).task)


@torch.no_grad()
def head_logits(model: nn.Module, x: Tensor, batch_size: int) -> Tensor:
    """Logits [H, N, C] of every head on ``x`` in eval mode (BN uses its running statistics)."""
    model.eval()
    place = next(model.parameters()).device
    parts = [torch.stack(model(x[start:start + batch_size].to(place))).float().cpu()
             for start in range(0, len(x), batch_size)]
    return torch.cat(parts, dim=1)


def head_rows(logits: Tensor, labels: Tensor, task) -> list[dict[str, Any]]:
    """One row per head (``head`` "1".."H": loss = the task's loss, mean over samples, and the task's metrics)
    and the ``total`` row (the sum of the heads' losses, the mean of their metrics)."""
    loss = task.loss()
    logits64 = logits.double()
    target = labels.double() if labels.is_floating_point() else labels
    metrics = task.performance(logits.numpy(), labels.numpy())
    rows = [{"head": str(h + 1), "loss": float(loss(logits64[h], target)),
             **{metric: float(values[h].mean()) for metric, values in metrics.items()}}
            for h in range(logits.shape[0])]
    total = {"head": TOTAL, "loss": sum(row["loss"] for row in rows)}
    total.update({metric: sum(row[metric] for row in rows) / len(rows) for metric in metrics})
    return [*rows, total]


@torch.no_grad()
def recompute_batch_norm(model: nn.Module, x: Tensor, batch_size: int) -> None:
    """Reset every BatchNorm's running statistics and recompute them on ``x`` (the training samples): momentum
    None (PyTorch's cumulative average: the mean over batches of each batch's mean and unbiased variance), the
    BN layers in train mode and everything else in eval mode, no gradients. Afterwards the model is in eval
    mode and every BN's momentum is restored. (Interpolated weights no longer match either endpoint's
    statistics; Jordan et al., "REPAIR", ICLR 2023, and Ainsworth et al. §5 reset them so.)"""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    model.eval()
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    place = next(model.parameters()).device
    for start in range(0, len(x), batch_size):
        model(x[start:start + batch_size].to(place))
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    model.eval()


def analyze_checkpoints(name: str, checkpoints: Sequence[str], data: str, params: Mapping[str, Any] | None = None):
    """Run analysis ``name`` with its defaults updated by ``params`` (unknown keys are errors)."""
    accepted = parameters(name)
    unknown = sorted(dict(params or {}).keys() - accepted.keys())
    if unknown:
        raise ValueError(f"analysis {name!r}: unknown parameter {unknown[0]!r}; accepted: {', '.join(accepted)}")
    analysis = CHECKPOINT_ANALYSES.get(name)
    if len(checkpoints) != analysis.checkpoints:
        raise ValueError(f"analysis {name!r} reads {analysis.checkpoints} checkpoint(s), got {len(checkpoints)}")
    return analysis(list(checkpoints), data, **{**accepted, **dict(params or {})})


def run_checkpoint_analysis(name: str, checkpoints: Sequence[str], data: str, out: str,
                            params: Mapping[str, Any] | None = None) -> None:
    from eebench.io import write_csv

    write_csv(out, analyze_checkpoints(name, checkpoints, data, params))


__all__ = ["CHECKPOINT_ANALYSES", "analyze_checkpoints", "head_logits", "head_rows", "parameters",
           "recompute_batch_norm", "run_checkpoint_analysis"]
