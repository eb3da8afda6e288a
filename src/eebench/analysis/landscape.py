"""Training loss landscape of a multi-exit model (paper B Appendix B, eq. 6, Fig. 6).

    f(x, y) = L(θ* + x δ + y η)                                                             (eq. 6)

δ and η are Gaussian random directions over every parameter of the model, backbone and heads alike, one pair
for all heads ("common random directions for each IC"), drawn from ``direction_seed`` (δ first, then η, each in
the order of ``named_parameters``) and filter-normalised as Li et al. (2018, "Visualizing the Loss Landscape of
Neural Nets", §4): each filter d_i (a slice along a weight's first axis: a conv's output filter, a linear
layer's output row) is rescaled to ||θ*_i|| (d_i · ||θ*_i|| / (||d_i|| + 1e-10), as their ``net_plotter.py``
``normalize_direction``). One-dimensional parameters (biases, BatchNorm weights and biases, SDN's pooling
mix α) get a zero direction, as Li et al.'s code does with ``ignore='biasbn'`` (``normalize_directions_for_weights``;
the setting of all their 2-D plots), so they stay at θ*. BatchNorm's running statistics are buffers, not
parameters (Li et al.'s ``dir_type='weights'``), and the loss is evaluated in eval mode with θ*'s running
statistics, as Li et al.'s ``evaluation.eval_loss`` (``net.eval()``).

The grid is x, y ∈ ``span`` · linspace(−1, 1, ``points``) (the centre, for odd ``points``, exactly θ*). At every
point, each head's loss and metrics and the total (the sum of the heads' losses) on the first ``samples``
training samples (paper B: "training loss landscapes"), never augmented.
"""
from __future__ import annotations

from typing import Annotated, Any, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from eebench.analysis import checkpoint as ck
from eebench.declare import Param

DEFAULT_POINTS = 11
DEFAULT_SPAN = 1.0


def filter_normalized_direction(params: Mapping[str, Tensor], generator: torch.Generator) -> dict[str, Tensor]:
    """A Gaussian direction shaped like ``params``, filter-normalised (see the module docstring)."""
    direction = {}
    for name, theta in params.items():
        d = torch.randn(theta.shape, generator=generator, dtype=theta.dtype)
        if theta.dim() <= 1:
            d.zero_()
        else:
            scale = theta.flatten(1).norm(dim=1) / (d.flatten(1).norm(dim=1) + 1e-10)
            d *= scale.view(-1, *([1] * (theta.dim() - 1)))
        direction[name] = d
    return direction


def grid_coordinates(points: int, span: float) -> np.ndarray:
    if points < 1 or span <= 0:
        raise ValueError(f"loss landscape: points must be >= 1 and span > 0, got {points} and {span}")
    coordinates = span * np.linspace(-1.0, 1.0, points)
    if points % 2:
        coordinates[points // 2] = 0.0
    return coordinates


@torch.no_grad()
def landscape_grid(model: torch.nn.Module, x: Tensor, y: Tensor, task, *, points: int = DEFAULT_POINTS,
                   span: float = DEFAULT_SPAN, direction_seed: int = 0,
                   batch_size: int = ck.DEFAULT_BATCH_SIZE) -> Any:
    """f(x, y) on the grid for ``model`` (θ* = its parameters, restored afterwards): one row per (x, y, head)
    with the loss and the task's metrics."""
    import pandas as pd

    named = dict(model.named_parameters())
    theta = {name: p.detach().cpu().clone() for name, p in named.items()}
    generator = torch.Generator().manual_seed(int(direction_seed))
    delta = filter_normalized_direction(theta, generator)
    eta = filter_normalized_direction(theta, generator)
    coordinates = grid_coordinates(points, span)
    rows = []
    try:
        for a in coordinates:
            for b in coordinates:
                for name, p in named.items():
                    p.copy_(theta[name] + float(a) * delta[name] + float(b) * eta[name])
                for row in ck.head_rows(ck.head_logits(model, x, batch_size), y, task):
                    rows.append({"x": float(a), "y": float(b), **row})
    finally:
        for name, p in named.items():
            p.copy_(theta[name])
    return pd.DataFrame(rows)


@ck.register("loss_landscape", checkpoints=1)
def loss_landscape(
    checkpoints: Sequence[str], data: str, *,
    points: Annotated[int, Param("Grid points per axis.", ge=1)] = DEFAULT_POINTS,
    span: Annotated[float, Param("The grid spans [-span, span] on both axes (Li et al.'s plots: [-1, 1]).",
                                 gt=0)] = DEFAULT_SPAN,
    samples: Annotated[int, Param("The first training samples (never augmented) the loss is measured on.",
                                  ge=1)] = ck.DEFAULT_SAMPLES,
    direction_seed: Annotated[int, Param("Seed of the two random directions (delta drawn first).", ge=0)] = 0,
    batch_size: ck.BatchSize = ck.DEFAULT_BATCH_SIZE,
) -> Any:
    """Paper B Appendix B (eq. 6): f(x, y) = L(theta* + x delta + y eta), delta and eta Gaussian, filter-normalised
    as Li et al. (2018), over every parameter (backbone and heads), biases and BN parameters held at theta*;
    eval-mode BN; training samples (eebench.analysis.landscape).

    Columns: model, regime, seed (from the checkpoint's meta), x, y, head ("1".."H", "total"), loss, the
    task's metrics."""
    run = ck.load_run(checkpoints[0])
    x, y = ck.split_samples(data, "train", samples)
    frame = landscape_grid(run["model"], x, y, ck.run_task(run, data), points=points, span=span,
                           direction_seed=direction_seed, batch_size=batch_size)
    meta = run["meta"]
    frame.insert(0, "model", meta.get("model"))
    frame.insert(1, "regime", meta.get("regime"))
    frame.insert(2, "seed", meta.get("seed"))
    return frame


__all__ = ["filter_normalized_direction", "grid_coordinates", "landscape_grid", "loss_landscape"]
