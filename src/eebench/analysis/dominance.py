"""Gradient dominance (paper B §3.1): how well each head's gradient on the shared backbone aligns with the
total gradient."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor


def _flat_grad(loss: Tensor, params: Sequence[Tensor], retain_graph: bool) -> Tensor:
    grads = torch.autograd.grad(loss, params, retain_graph=retain_graph, allow_unused=True)
    return torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1) for g, p in zip(grads, params)])


def gradient_dominance(head_losses: Sequence[Tensor], total_loss: Tensor, params: Sequence[Tensor]) -> list[float]:
    """GD_i = cos(g_i, g_total) (§3.1), g_i the gradient of head i's loss and g_total that of the loss the
    regime trains (its weighted sum), both with respect to ``params`` (the backbone's shared parameters:
    heads' own parameters get no gradient from the other heads, so they would only dilute the comparison).

    A head whose loss does not reach ``params`` (no gradient), or a zero total gradient, has GD NaN. The graph
    is kept (``retain_graph``), so the training step can backpropagate ``total_loss`` afterwards."""
    params = [p for p in params if p.requires_grad]
    if not params:
        raise ValueError("gradient dominance needs trainable backbone parameters")
    total = _flat_grad(total_loss, params, retain_graph=True)
    total_norm = total.norm()
    scores = []
    for loss in head_losses:
        own = _flat_grad(loss, params, retain_graph=True)
        norm = own.norm() * total_norm
        scores.append(float(own.dot(total) / norm) if norm > 0 else float("nan"))
    return scores
