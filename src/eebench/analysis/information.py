"""Mutual information I(X; Z) between a network's input and a layer's representation (paper B §3.4)."""
from __future__ import annotations

import numpy as np
import torch

DEFAULT_BINS = 30


def binned_mutual_information(representation: torch.Tensor | np.ndarray, bins: int = DEFAULT_BINS) -> float:
    """I(X; Z) in nats by the binning estimator of Shwartz-Ziv & Tishby (2017), which paper B cites for it.

    Z = f(X) is a deterministic function of the input, so I(X; Z) = H(Z) - H(Z | X) = H(Z). Each unit of Z
    ([n samples, ...], flattened per sample) is discretised into ``bins`` equal-width bins over the range of
    that layer's values on these samples, and H is the entropy of the empirical distribution of the binned
    vectors over the n samples (each sample one Monte Carlo draw of X). The estimate is at most log n (every
    sample its own pattern) and grows with ``bins``: compare layers and regimes at one setting.

    Why this estimator: it is the one the cited work uses, it needs no density model of a high-dimensional Z,
    and it is exact on a discrete case (k equiprobable distinct inputs mapped to distinct patterns: log k)."""
    z = torch.as_tensor(representation).detach().to(torch.float64).reshape(len(representation), -1).numpy()
    if bins < 1:
        raise ValueError(f"bins must be positive, got {bins!r}")
    if len(z) == 0:
        raise ValueError("no samples")
    low, high = z.min(), z.max()
    if high == low:
        return 0.0  # one pattern: no information
    edges = np.linspace(low, high, bins + 1)[1:-1]
    binned = np.digitize(z, edges)
    _, counts = np.unique(binned, axis=0, return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum())
