"""Mutual information I(X; Z) between a network's input and a layer's representation (paper B §3.4).

Two estimators, registered by the name the config uses (``analysis.mutual_information.estimator``):

- ``kde`` (the default): the noisy-representation estimator of Kolchinsky & Tracey (2017), as Saxe et al. (2018,
  "On the information bottleneck theory of deep learning") use it: Gaussian noise makes Z continuous, so
  I(X; Z) is finite and does not saturate at log n.
- ``binning``: Shwartz-Ziv & Tishby's (2017) binning, the estimator paper B cites. On a layer with hundreds of
  units every test sample falls in its own pattern of bins and the estimate is log n for every layer and
  regime (measured on the default CNN: 5.886 = log 360 everywhere), so it cannot show Fig. 5's differences.
"""
from __future__ import annotations

import math
from typing import Annotated, Callable, Literal

import numpy as np
import torch

from eebench.declare import Param
from eebench.registry import Registry

DEFAULT_BINS = 30
DEFAULT_NOISE = 0.25
BOUNDS = ("upper", "lower")

# (representation [n, ...], **params) -> I(X; Z) in nats; its keyword-only parameters are declared (eebench.declare)
# and are keys of the config's analysis.mutual_information beside `estimator` (eebench.analysis.layers).
Estimator = Callable[..., float]
MI_ESTIMATORS: Registry[Estimator] = Registry("MI estimator")

# The estimators' parameters, declared once: the estimators take them, and so does the mutual_information analysis
# (eebench.analysis.layers), whose config passes each estimator its own.
Bins = Annotated[int, Param("binning only: equal-width bins per unit over the layer's range (Shwartz-Ziv & "
                            "Tishby's 30).", ge=1)]
Noise = Annotated[float, Param(
    "kde only: the noise variance as a fraction of the layer's total variance tr Cov(Z) (invariant to the layer's "
    "scale and width); the estimate is at most 1/noise nats.", gt=0)]
Bound = Annotated[Literal[BOUNDS], Param(
    "kde only: from Kolchinsky & Tracey's KL upper bound (Saxe et al.'s estimate) or Bhattacharyya lower bound on "
    "the noisy representation's entropy (the lower estimate at a noise is the upper one at 4 x that noise).")]


def _rows(representation: torch.Tensor | np.ndarray) -> torch.Tensor:
    """[n samples, ...] as float64 rows, one flattened representation per sample."""
    z = torch.as_tensor(representation).detach().to(torch.float64)
    if z.ndim == 0 or len(z) == 0:
        raise ValueError("no samples")
    return z.reshape(len(z), -1)


@MI_ESTIMATORS.register("binning")
def binned_mutual_information(representation: torch.Tensor | np.ndarray, *, bins: Bins = DEFAULT_BINS) -> float:
    """I(X; Z) in nats by the binning estimator of Shwartz-Ziv & Tishby (2017), which paper B cites for it.

    Z = f(X) is a deterministic function of the input, so I(X; Z) = H(Z) - H(Z | X) = H(Z). Each unit of Z
    ([n samples, ...], flattened per sample) is discretised into ``bins`` equal-width bins over the range of
    that layer's values on these samples, and H is the entropy of the empirical distribution of the binned
    vectors over the n samples (each sample one Monte Carlo draw of X). The estimate is at most log n (every
    sample its own pattern) and grows with ``bins``: compare layers and regimes at one setting.

    Exact on a discrete case (k equiprobable distinct inputs mapped to distinct patterns: log k); on a wide
    continuous layer it saturates at log n (see the module docstring)."""
    if bins < 1:
        raise ValueError(f"bins must be positive, got {bins!r}")
    z = _rows(representation).numpy()
    low, high = z.min(), z.max()
    if high == low:
        return 0.0  # one pattern: no information
    edges = np.linspace(low, high, bins + 1)[1:-1]
    binned = np.digitize(z, edges)
    _, counts = np.unique(binned, axis=0, return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum())


@MI_ESTIMATORS.register("kde")
def kde_mutual_information(representation: torch.Tensor | np.ndarray, *, noise: Noise = DEFAULT_NOISE,
                           bound: Bound = "upper") -> float:
    """I(X; Z + ε) in nats, ε ~ N(0, σ²I), by the pairwise-distance bounds of Kolchinsky & Tracey (2017)
    on the entropy of a Gaussian mixture, as Saxe et al. (2018) estimate a layer's information.

    X is uniform over the n samples, so Z + ε is a mixture of n Gaussians N(z_i, σ²I) and
    I(X; Z + ε) = H(Z + ε) - H(ε). The KL bound on the mixture's entropy gives the upper estimate

        I ≈ -(1/n) Σ_i log (1/n) Σ_j exp(-‖z_i - z_j‖² / (2σ²)),

    and the Bhattacharyya bound the lower one (``bound: lower``: the same sum with σ² replaced by 4σ², so the
    lower estimate at ``noise`` is the upper one at 4 × ``noise``). Both lie in [0, log n]: 0 when all
    representations coincide, log k for k equal groups far apart at the scale σ.

    σ is relative: σ² = ``noise`` × the layer's total variance tr Cov(Z) (the mean squared distance of the
    representations from their mean; pairs are 2 tr Cov apart on average). Why not a fixed σ (Saxe et al.'s
    small networks), or a fraction of the per-unit variance: pairwise distances grow with the number of
    units D, so at a per-unit noise the exponent is ~D/noise and a layer of 256-1024 units is log n for any
    reasonable noise (measured on the default CNN: log 360 at every block even with noise 10 × the mean
    per-unit variance). Scaled by tr Cov(Z), the estimate is invariant to a global rescaling of Z (BatchNorm
    sets each layer's scale, not its information) and to duplicated units, and comparable across layers.
    By Jensen's inequality the upper estimate is at most 1/``noise`` (the mean exponent), whatever n; the
    default 0.25 (σ = half the layer's RMS radius) keeps that ceiling (4 nats) below log n of a few hundred
    samples, so the estimate measures how the representations cluster at that resolution, not the sample
    count (the default CNN's blocks on its 1077 training images instead of its 360 test images: within 1 %;
    at noise 0.1 the estimates are 4-5.4 nats, near log 360 = 5.9, and still grow with the samples)."""
    if bound not in BOUNDS:
        raise ValueError(f"bound must be one of {', '.join(BOUNDS)}, got {bound!r}")
    if not noise > 0:
        raise ValueError(f"noise must be positive, got {noise!r}")
    z = _rows(representation)
    z = z - z.mean(dim=0)
    spread = z.pow(2).sum(dim=1).mean()
    if spread == 0:
        return 0.0  # one point: no information
    variance = noise * spread * (4.0 if bound == "lower" else 1.0)
    squared = torch.cdist(z, z).pow(2)
    return float(math.log(len(z)) - torch.logsumexp(-squared / (2.0 * variance), dim=1).mean())
