"""Numerical rank of a layer's activations (paper B §3.3, eq. 5; Masarczyk et al., 2024)."""
from __future__ import annotations

import numpy as np
import torch

DEFAULT_RTOL = 1e-3


def numerical_rank(activations: torch.Tensor | np.ndarray, rtol: float = DEFAULT_RTOL) -> int:
    """r = Rank(A), A the [n samples, m features] activation matrix (a conv map flattened per sample): the
    number of singular values above ``rtol`` times the largest.

    Reading (paper B gives no tolerance): exact rank is meaningless for float activations (noise makes every
    matrix full rank), so a relative tolerance; 1e-3 of the largest singular value by default, far above
    float32 rounding (~1e-7) and below any direction that carries signal. An all-zero matrix has rank 0."""
    matrix = torch.as_tensor(activations).detach().to(torch.float64)
    matrix = matrix.reshape(matrix.shape[0], -1)
    if not 0.0 <= rtol < 1.0:
        raise ValueError(f"rtol must lie in [0, 1), got {rtol!r}")
    singular = torch.linalg.svdvals(matrix)
    if singular.numel() == 0 or singular[0] == 0:
        return 0
    return int((singular > rtol * singular[0]).sum())
