"""Per-layer analyses of a trained model (paper B §3.3 numerical rank, §3.4 mutual information): each block's
output on test samples, reduced to one number per block by a registered measure. Read from a checkpoint; never
trains."""
from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Mapping

import pandas as pd
import torch

from eebench.analysis.information import DEFAULT_BINS, binned_mutual_information
from eebench.analysis.rank import DEFAULT_RTOL, numerical_rank
from eebench.registry import Registry

Measure = Callable[..., float]  # (activations [n, ...], **params) -> value
LAYER_ANALYSES: Registry[Measure] = Registry("analysis")
DEFAULT_SAMPLES = 500


def channel_matrix(activations: torch.Tensor) -> torch.Tensor:
    """A block output as rows of features: a conv map [n, C, H, W] as [n*H*W, C] (every position of every
    sample a row of C channel features), tokens [n, T, D] as [n*T, D], vectors [n, D] as they are."""
    if activations.ndim == 4:
        return activations.permute(0, 2, 3, 1).reshape(-1, activations.shape[1])
    return activations.reshape(-1, activations.shape[-1])


@LAYER_ANALYSES.register("numerical_rank")
def _rank(activations: torch.Tensor, *, rtol: float = DEFAULT_RTOL, rows: str = "positions") -> float:
    """``rows: positions`` (default): A = the channel matrix (:func:`channel_matrix`), m = channels, so the rank
    says how many independent features the layer uses; ``rows: samples``: A = one flattened output per
    sample, whose rank is capped by the number of samples (full rank on a small test set)."""
    if rows not in ("positions", "samples"):
        raise ValueError(f"analysis 'numerical_rank': rows must be positions or samples, got {rows!r}")
    matrix = channel_matrix(activations) if rows == "positions" else activations.reshape(len(activations), -1)
    return float(numerical_rank(matrix, rtol))


@LAYER_ANALYSES.register("mutual_information")
def _information(activations: torch.Tensor, *, bins: int = DEFAULT_BINS) -> float:
    return binned_mutual_information(activations, bins)


def parameters(name: str) -> dict[str, Any]:
    """An analysis's config keys with their defaults: its measure's keyword-only parameters and ``samples``
    (how many test samples, the first in test order)."""
    signature = inspect.signature(LAYER_ANALYSES.get(name))
    own = {p.name: p.default for p in signature.parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY}
    return {"samples": DEFAULT_SAMPLES, **own}


@torch.no_grad()
def block_outputs(model: torch.nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Every block's output on ``x``, in order (the backbone's layers as the heads see them)."""
    outputs = []
    for block in model.blocks:
        x = block(x)
        outputs.append(x)
    return outputs


def analyze(name: str, checkpoint: str, data: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """One row per block: model, regime, seed (from the checkpoint), analysis, block (0-based), samples,
    features (the block output's size per sample), channels, value."""
    from eebench.inference import load_trained, split_inputs
    from eebench.io import MODEL_CHECKPOINT, read_checkpoint

    settings = {**parameters(name), **dict(params or {})}
    unknown = sorted(settings.keys() - parameters(name).keys())
    if unknown:
        raise ValueError(f"analysis {name!r}: unknown parameter {unknown[0]!r}; accepted: "
                         f"{', '.join(parameters(name))}")
    samples = int(settings.pop("samples"))
    if samples < 2:
        raise ValueError(f"analysis {name!r}: samples must be at least 2, got {samples}")
    measure = functools.partial(LAYER_ANALYSES.get(name), **settings)
    meta = read_checkpoint(checkpoint, MODEL_CHECKPOINT, keys=("meta",))["meta"]
    model = load_trained(checkpoint)
    x = split_inputs(data, "test")[:samples]
    rows = []
    for block, output in enumerate(block_outputs(model, x)):
        rows.append({"model": meta.get("model"), "regime": meta.get("regime"), "seed": meta.get("seed"),
                     "analysis": name, "block": block, "samples": len(output),
                     "features": int(output[0].numel()), "channels": int(channel_matrix(output[:1]).shape[1]),
                     "value": measure(output)})
    return pd.DataFrame(rows)


def run_analysis(name: str, checkpoint: str, data: str, out: str, params: Mapping[str, Any] | None = None) -> None:
    from eebench.io import write_csv

    write_csv(out, analyze(name, checkpoint, data, params))


__all__ = ["LAYER_ANALYSES", "analyze", "block_outputs", "parameters", "run_analysis"]
