"""Numerical rank of a layer's activations (paper B §3.3, eq. 5; Masarczyk et al., 2024, "The tunnel effect")."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

DEFAULT_RTOL = 1e-3
DEFAULT_VARIANCE_RTOL = 1e-3


def singular_values(activations: torch.Tensor | np.ndarray, *, center: bool = False) -> torch.Tensor:
    """The singular values (descending, float64) of A = the activations as [n rows, ...] flattened per row,
    with each column's mean over the rows removed first when ``center``."""
    matrix = torch.as_tensor(activations).detach().to(torch.float64)
    matrix = matrix.reshape(matrix.shape[0], -1)
    if center:
        matrix = matrix - matrix.mean(dim=0)
    return torch.linalg.svdvals(matrix)


def _count(singular: torch.Tensor, squared_rtol: float) -> int:
    if singular.numel() == 0 or singular[0] == 0:
        return 0
    squares = singular.pow(2)
    return int((squares > squared_rtol * squares[0]).sum())


def numerical_rank(activations: torch.Tensor | np.ndarray, rtol: float = DEFAULT_RTOL, *,
                   center: bool = False) -> int:
    """r = Rank(A) (eq. 5), A the [n samples, m features] activation matrix (a conv map flattened per sample):
    the number of singular values above ``rtol`` times the largest (torch.linalg.matrix_rank's convention).

    Exact rank is meaningless for float activations (rounding makes every matrix full rank), hence a relative
    tolerance; 1e-3 by default, far above float32 rounding (~1e-7). An all-zero matrix has rank 0."""
    if not 0.0 <= rtol < 1.0:
        raise ValueError(f"rtol must lie in [0, 1), got {rtol!r}")
    return _count(singular_values(activations, center=center), rtol * rtol)


def variance_ranks(activations: torch.Tensor | np.ndarray, variance_rtols: Sequence[float]) -> list[int]:
    """The numerical rank with the tolerance stated on variances, once per tolerance t: the number of
    principal directions of the rows of A whose variance is above t times the largest, i.e. the numerical
    rank of A's covariance matrix (rank(centred A) = rank(Cov A), whose eigenvalues are the centred singular
    values squared over n - 1): singular values of the centred A above √t times the largest. One SVD.

    This is how the tunnel effect (Masarczyk et al., 2024, cited by paper B for eq. 5) is reproduced in
    public code: the mean-centred [samples, features] matrix (its covariance), 1e-3 of the largest
    eigenvalue. Read on the singular values of A instead (1e-3 of σ_max = 1e-6 of the variance), the rank of
    the default CNN's blocks is capped by the samples (359 of 360 test images at every block wider than 360
    features) and says nothing; read on the variances it is nearly independent of the number of samples
    (block 1 of the backbone: 160, 175, 178 directions from 360, 1077 and 1797 digits)."""
    tolerances = [float(t) for t in variance_rtols]
    bad = [t for t in tolerances if not 0.0 <= t < 1.0]
    if not tolerances or bad:
        raise ValueError(f"variance_rtol must lie in [0, 1), got {(bad or list(variance_rtols))!r}")
    singular = singular_values(activations, center=True)
    return [_count(singular, t) for t in tolerances]


def variance_rank(activations: torch.Tensor | np.ndarray, variance_rtol: float = DEFAULT_VARIANCE_RTOL) -> int:
    """:func:`variance_ranks` at one tolerance."""
    return variance_ranks(activations, [variance_rtol])[0]
