"""The learned exit of paper A (§3 "Learning-based approaches", §4.2, Fig. 5), after BERxiT (Xin et al., 2021):
a small sigmoid classifier per head, on that head's logits, predicts whether the sample should exit there. It
is trained with the main model frozen — here on cached logits, so the network is never touched — with the
loss of eq. (1)-(2):

    L = sum_i L_{h_i},   L_{h_i} = 1 / (m (h_i + 1)) * ( alpha * sum_j (p_j - y_j)^2
                                                        + (1 - alpha) * sum_j (p_j (1 - y_j))^2 )

y_j = 1 when head h_i's prediction of sample j is right (the exit would lose nothing there), p_j the
classifier's output. BCE, L1 and hinge are the alternatives paper A tried. The classifier's output is the
criterion's score: "a value exceeding 0.5 indicating a decision to exit" is the operating point at threshold
0.5, and the sweep over its other thresholds comes for free.

Readings (README "Readings"): the classifiers are fitted on the validation split's logits (the sweep's
``fit_on``; the training split's logits of a trained model are overconfident, and the cache holds val and
test), and scored on both splits; "right" is the argmax equal to the label (single-label) or the exact label
set (multi-label); the head index h_i counts from 0, so the first head's weight is 1 ("a greater penalty on
the earlier heads"). That weighting is kept for fidelity but is inert under Adam (:func:`_head_weights`).
"""
from __future__ import annotations

from typing import Annotated, Literal

import numpy as np

from eebench.declare import Param
from eebench.exits.criteria import criterion
from eebench.tasks import Task

LOSSES = ("mse_regularised", "bce", "l1", "hinge")


def exit_targets(logits: np.ndarray, labels: np.ndarray, task: Task) -> np.ndarray:
    """[H, N] float: 1 where the head's prediction is right (accuracy: argmax, or the exact label set)."""
    return task.performance(logits, labels)["accuracy"]


@criterion("learned_exit", learns=True, operating_threshold=0.5)  # §4.2: "a value exceeding 0.5"
def learned_exit(
    logits: np.ndarray, task: Task, fit_on: tuple[np.ndarray, np.ndarray], *,
    loss: Annotated[Literal[LOSSES], Param(
        "The exit classifiers' loss: mse_regularised = paper A eq. (1)-(2); bce, l1 and hinge = the alternatives "
        "paper A tried.")] = "mse_regularised",
    alpha: Annotated[float, Param("Eq. (2)'s weight of the squared error against the regulariser (1 - alpha); "
                                  "mse_regularised only.", ge=0, le=1)] = 0.5,
    epochs: Annotated[int, Param("Full-batch Adam steps of the exit classifiers.", ge=1)] = 200,
    lr: Annotated[float, Param("Adam's learning rate.", gt=0)] = 0.05,
    seed: Annotated[int, Param("Seed of the exit classifiers' initialisation.", ge=0)] = 0,
) -> np.ndarray:
    """Paper A eq. (1)-(2): a sigmoid classifier per head on its logits, fitted on the validation split; its
    operating point is threshold 0.5.

    Per-head exit probability [H, N] from one logistic classifier per head, fitted on ``fit_on`` =
    (logits [H, M, C], labels) with ``loss`` (eq. (1)-(2) for ``mse_regularised``; ``alpha`` weighs its two
    terms), full-batch Adam for ``epochs`` steps at ``lr`` from a ``seed``-ed initialisation. The inputs are
    standardised per head with the fitting split's mean and std (logits of different heads differ in scale)."""
    if loss not in LOSSES:
        raise ValueError(f"exit criterion 'learned_exit': loss must be one of {', '.join(map(repr, LOSSES))}, "
                         f"got {loss!r}")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 <= alpha <= 1.0:
        raise ValueError(f"exit criterion 'learned_exit': alpha must be in [0, 1], got {alpha!r}")
    for key, value, least in (("epochs", epochs, 1), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
            raise ValueError(f"exit criterion 'learned_exit': {key} must be an integer >= {least}, got {value!r}")
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0:
        raise ValueError(f"exit criterion 'learned_exit': lr must be positive, got {lr!r}")
    import torch

    from eebench import torch_eager

    fit_logits, fit_labels = np.asarray(fit_on[0]), np.asarray(fit_on[1])
    targets = torch.from_numpy(exit_targets(fit_logits, fit_labels, task)).float()  # [H, M]
    mean = fit_logits.mean(axis=1, keepdims=True)
    std = fit_logits.std(axis=1, keepdims=True) + 1e-6
    features = torch.from_numpy(((fit_logits - mean) / std).astype(np.float32))  # [H, M, C]
    n_heads, _, n_classes = features.shape
    generator = torch.Generator().manual_seed(seed)
    weight = (torch.randn(n_heads, n_classes, generator=generator) * 0.01).requires_grad_()
    bias = torch.zeros(n_heads, requires_grad=True)
    optimiser = torch_eager.Adam([weight, bias], lr=lr)
    head_weight = _head_weights(n_heads)
    for _ in range(epochs):
        optimiser.zero_grad()
        scores = torch.einsum("hmc,hc->hm", features, weight) + bias[:, None]
        per_head = _loss(scores, targets, loss, alpha)  # [H], a mean over the samples
        (head_weight * per_head).sum().backward()
        optimiser.step()
    with torch.no_grad():  # scored in float64, as every criterion (float32 merges saturated outputs near 1)
        applied = torch.from_numpy((np.asarray(logits, dtype=np.float64) - mean) / std)
        return torch.sigmoid(torch.einsum("hmc,hc->hm", applied, weight.double()) + bias.double()[:, None]).numpy()


def _head_weights(n_heads: int):
    """Eq. (2)'s 1 / (h_i + 1), h_i from 0: [H] float32.

    Inert here (tests/exits/test_learned.py measures it): each head has its own classifier, so head h's weight
    scales only the gradient of head h's parameters, by a constant, and Adam's step m / (sqrt(v) + eps) is
    invariant to a constant gradient scale up to eps (1e-8). The weighting changes the loss's value, not the
    classifiers Adam fits; it would matter with SGD or with parameters shared across heads."""
    import torch

    return 1.0 / (torch.arange(n_heads, dtype=torch.float32) + 1.0)


def _loss(scores, targets, loss: str, alpha: float):
    """Per-head mean loss [H] of the classifiers' raw scores against the 0/1 exit targets."""
    import torch

    p = torch.sigmoid(scores)
    if loss == "mse_regularised":  # eq. (2): the regulariser penalises exiting where the head is wrong
        return alpha * ((p - targets) ** 2).mean(dim=1) + (1 - alpha) * ((p * (1 - targets)) ** 2).mean(dim=1)
    if loss == "bce":
        return torch.nn.functional.binary_cross_entropy_with_logits(scores, targets, reduction="none").mean(dim=1)
    if loss == "l1":
        return (p - targets).abs().mean(dim=1)
    return torch.clamp(1 - (2 * targets - 1) * scores, min=0).mean(dim=1)  # hinge on the signed margin
