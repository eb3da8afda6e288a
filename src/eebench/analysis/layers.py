"""Per-layer analyses of a trained model (paper B §3.3 numerical rank, §3.4 mutual information): each block's
output on test samples, reduced to one number per block (or one per setting, e.g. per tolerance) by a
registered measure. Read from a checkpoint; never trains."""
from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Mapping, Sequence

import pandas as pd
import torch

from eebench.analysis.information import DEFAULT_BINS, DEFAULT_NOISE, MI_ESTIMATORS
from eebench.analysis.rank import DEFAULT_VARIANCE_RTOL, variance_ranks
from eebench.registry import Registry

Measure = Callable[..., "float | Mapping[str, float]"]  # (activations [n, ...], **params) -> value(s)
LAYER_ANALYSES: Registry[Measure] = Registry("analysis")
DEFAULT_SAMPLES = 500
DEFAULT_VARIANCE_RTOLS = (DEFAULT_VARIANCE_RTOL, 1e-2)  # the tunnel effect's tolerance, and a looser one


def channel_matrix(activations: torch.Tensor) -> torch.Tensor:
    """A block output as rows of features: a conv map [n, C, H, W] as [n*H*W, C] (every position of every
    sample a row of C channel features), tokens [n, T, D] as [n*T, D], vectors [n, D] as they are."""
    if activations.ndim == 4:
        return activations.permute(0, 2, 3, 1).reshape(-1, activations.shape[1])
    return activations.reshape(-1, activations.shape[-1])


@LAYER_ANALYSES.register("numerical_rank")
def _rank(activations: torch.Tensor, *, variance_rtol: Sequence[float] = DEFAULT_VARIANCE_RTOLS,
          rows: str = "samples") -> dict[str, float]:
    """One value per tolerance, labelled ``variance_rtol=<t>``: the number of principal directions whose
    variance is above t times the largest (:func:`eebench.analysis.rank.variance_rank`; the tunnel effect's
    1e-3, and 1e-2 beside it to show how much the tolerance decides).

    ``rows: samples`` (default, eq. 5's "n samples, m features" as the tunnel effect reads it): A = one
    flattened output per sample, so rank <= min(samples - 1, features); ``rows: positions``: A = the channel
    matrix (:func:`channel_matrix`), rank <= channels: how many independent channel features a layer uses."""
    if rows not in ("positions", "samples"):
        raise ValueError(f"analysis 'numerical_rank': rows must be positions or samples, got {rows!r}")
    tolerances = [variance_rtol] if isinstance(variance_rtol, (int, float)) else list(variance_rtol)
    matrix = channel_matrix(activations) if rows == "positions" else activations.reshape(len(activations), -1)
    ranks = variance_ranks(matrix, tolerances)
    return {f"variance_rtol={float(t):g}": float(rank) for t, rank in zip(tolerances, ranks)}


@LAYER_ANALYSES.register("mutual_information")
def _information(activations: torch.Tensor, *, estimator: str = "kde", noise: float = DEFAULT_NOISE,
                 bound: str = "upper", bins: int = DEFAULT_BINS) -> float:
    """I(X; Z) by a registered estimator (:data:`eebench.analysis.information.MI_ESTIMATORS`): ``kde``
    (default; its ``noise`` and ``bound``) or ``binning`` (its ``bins``); each reads only its own keys."""
    function = MI_ESTIMATORS.get(estimator)
    accepted = inspect.signature(function).parameters
    settings = {"noise": noise, "bound": bound, "bins": bins}
    return function(activations, **{key: value for key, value in settings.items() if key in accepted})


def parameters(name: str) -> dict[str, Any]:
    """An analysis's config keys with their defaults: its measure's keyword-only parameters and ``samples``
    (how many test samples, the first in test order)."""
    signature = inspect.signature(LAYER_ANALYSES.get(name))
    own = {p.name: list(p.default) if isinstance(p.default, tuple) else p.default
           for p in signature.parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY}
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
    """One row per block and variant: model, regime, seed (from the checkpoint), analysis, block (0-based),
    samples, features (the block output's size per sample), channels, variant (the measure's label of the
    value, e.g. ``variance_rtol=0.001``; empty for a measure with one value), value."""
    from eebench.inference import load_checkpoint, split_inputs

    settings = {**parameters(name), **dict(params or {})}
    unknown = sorted(settings.keys() - parameters(name).keys())
    if unknown:
        raise ValueError(f"analysis {name!r}: unknown parameter {unknown[0]!r}; accepted: "
                         f"{', '.join(parameters(name))}")
    samples = int(settings.pop("samples"))
    if samples < 2:
        raise ValueError(f"analysis {name!r}: samples must be at least 2, got {samples}")
    measure = functools.partial(LAYER_ANALYSES.get(name), **settings)
    model, saved = load_checkpoint(checkpoint, keys=("meta",))
    meta = saved["meta"]
    x = split_inputs(data, "test")[:samples]
    rows = []
    for block, output in enumerate(block_outputs(model, x)):
        values = measure(output)
        for variant, value in (values.items() if isinstance(values, Mapping) else [("", values)]):
            rows.append({"model": meta.get("model"), "regime": meta.get("regime"), "seed": meta.get("seed"),
                         "analysis": name, "block": block, "samples": len(output),
                         "features": int(output[0].numel()), "channels": int(channel_matrix(output[:1]).shape[1]),
                         "variant": variant, "value": float(value)})
    return pd.DataFrame(rows)


def run_analysis(name: str, checkpoint: str, data: str, out: str, params: Mapping[str, Any] | None = None) -> None:
    from eebench.io import write_csv

    write_csv(out, analyze(name, checkpoint, data, params))


__all__ = ["LAYER_ANALYSES", "analyze", "block_outputs", "parameters", "run_analysis"]
