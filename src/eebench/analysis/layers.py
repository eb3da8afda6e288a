"""Per-layer analyses of a trained model (paper B §3.3 numerical rank, §3.4 mutual information): each block's
output on test samples, reduced to one number per block (or one per setting, e.g. per tolerance) by a
registered measure. Read from a checkpoint; never trains.

An entry of ``LAYER_ANALYSES`` is a keyword-only dataclass: its fields (declared, eebench.declare) are the analysis's
config keys under the top-level ``analysis:`` section, ``samples`` among them, and calling it on a block's output
[n, ...] gives the value(s) there."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal, Mapping

import pandas as pd
import torch

from eebench.analysis.information import DEFAULT_BINS, DEFAULT_NOISE, MI_ESTIMATORS, Bins, Bound, Noise
from eebench.analysis.rank import DEFAULT_VARIANCE_RTOL, variance_ranks
from eebench.declare import Param, declared_parameters
from eebench.registry import Registry

LAYER_ANALYSES: Registry[Any] = Registry("analysis")
DEFAULT_SAMPLES = 500
DEFAULT_VARIANCE_RTOLS = (DEFAULT_VARIANCE_RTOL, 1e-2)  # the tunnel effect's tolerance, and a looser one


def channel_matrix(activations: torch.Tensor) -> torch.Tensor:
    """A block output as rows of features: a conv map [n, C, H, W] as [n*H*W, C] (every position of every
    sample a row of C channel features), tokens [n, T, D] as [n*T, D], vectors [n, D] as they are."""
    if activations.ndim == 4:
        return activations.permute(0, 2, 3, 1).reshape(-1, activations.shape[1])
    return activations.reshape(-1, activations.shape[-1])


@LAYER_ANALYSES.register("numerical_rank")
@dataclass(frozen=True, kw_only=True)
class NumericalRank:
    """Numerical rank (eq. 5) of each block's output, with the tolerance stated on variances: the number of
    principal directions whose variance is above variance_rtol times the largest (the numerical rank of the
    covariance matrix; Masarczyk et al. 2024 as reproduced: mean-centred [samples, features], 1e-3).

    One value per tolerance, labelled ``variance_rtol=<t>``: :func:`eebench.analysis.rank.variance_rank`; the
    tunnel effect's 1e-3, and 1e-2 beside it to show how much the tolerance decides.

    ``rows: samples`` (default, eq. 5's "n samples, m features" as the tunnel effect reads it): A = one
    flattened output per sample, so rank <= min(samples - 1, features); ``rows: positions``: A = the channel
    matrix (:func:`channel_matrix`), rank <= channels: how many independent channel features a layer uses."""

    samples: Annotated[int, Param(
        "Test samples (the first in test order): the rows n of the activation matrix A [n, m] (eq. 5); with rows: "
        "samples the rank is at most samples - 1.", ge=2)] = DEFAULT_SAMPLES
    variance_rtol: Annotated[list[Annotated[float, Param("A tolerance.", gt=0, lt=1)]], Param(
        "Tolerances on the eigenvalues of A's covariance (principal variances) relative to the largest, one value "
        "(and one figure panel) per tolerance; 1e-3 is the tunnel effect's. On the singular values of A this is "
        "sqrt(variance_rtol): 0.0316 and 0.1 of the largest.", min_length=1)] = DEFAULT_VARIANCE_RTOLS
    rows: Annotated[Literal["positions", "samples"], Param(
        "samples: A = [samples, flattened output] (eq. 5's n samples x m features; rank <= min(samples - 1, "
        "features)); positions: A = [samples x positions, channels] (rank <= channels: how many independent "
        "channel features a layer uses).")] = "samples"

    def __post_init__(self) -> None:
        if self.rows not in ("positions", "samples"):
            raise ValueError(f"analysis 'numerical_rank': rows must be positions or samples, got {self.rows!r}")

    def __call__(self, activations: torch.Tensor) -> dict[str, float]:
        rtol = self.variance_rtol
        tolerances = [rtol] if isinstance(rtol, (int, float)) else list(rtol)
        matrix = (channel_matrix(activations) if self.rows == "positions"
                  else activations.reshape(len(activations), -1))
        ranks = variance_ranks(matrix, tolerances)
        return {f"variance_rtol={float(t):g}": float(rank) for t, rank in zip(tolerances, ranks)}


@LAYER_ANALYSES.register("mutual_information")
@dataclass(frozen=True, kw_only=True)
class MutualInformation:
    """I(X; Z) of each block's output by a named estimator (eebench.analysis.information.MI_ESTIMATORS).

    ``kde`` (default; its ``noise`` and ``bound``) or ``binning`` (its ``bins``); each reads only its own keys. The
    estimators' keys are declared where the estimators take them (eebench.analysis.information's aliases)."""

    samples: Annotated[int, Param(
        "Test samples: Monte Carlo draws of X (either estimate is at most log samples).", ge=2)] = DEFAULT_SAMPLES
    estimator: Annotated[Literal[tuple(MI_ESTIMATORS.names())], Param(
        "kde: Kolchinsky & Tracey's (2017) pairwise-distance estimate of I(X; Z + noise) (Saxe et al. 2018), which "
        "does not saturate; binning: Shwartz-Ziv & Tishby's (2017), which paper B cites and which is log samples "
        "on every wide layer.")] = "kde"
    noise: Noise = DEFAULT_NOISE
    bound: Bound = "upper"
    bins: Bins = DEFAULT_BINS

    def __post_init__(self) -> None:
        MI_ESTIMATORS.get(self.estimator)  # an unknown estimator fails before any checkpoint is read

    def __call__(self, activations: torch.Tensor) -> float:
        function = MI_ESTIMATORS.get(self.estimator)
        return function(activations, **{key: getattr(self, key) for key in declared_parameters(function)})


def parameters(name: str) -> dict[str, Any]:
    """An analysis's config keys with their defaults (its declared fields, ``samples`` among them: how many test
    samples, the first in test order)."""
    return {key: list(p.default) if isinstance(p.default, tuple) else p.default
            for key, p in declared_parameters(LAYER_ANALYSES.get(name)).items()}


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

    accepted = parameters(name)
    unknown = sorted(dict(params or {}).keys() - accepted.keys())
    if unknown:
        raise ValueError(f"analysis {name!r}: unknown parameter {unknown[0]!r}; accepted: {', '.join(accepted)}")
    analysis = LAYER_ANALYSES.get(name)(**{**accepted, **dict(params or {})})
    samples = int(analysis.samples)
    if samples < 2:
        raise ValueError(f"analysis {name!r}: samples must be at least 2, got {samples}")
    model, saved = load_checkpoint(checkpoint, keys=("meta",))
    meta = saved["meta"]
    x = split_inputs(data, "test")[:samples]
    rows = []
    for block, output in enumerate(block_outputs(model, x)):
        values = analysis(output)
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
