"""Paper B's analysis measures on hand-made cases: known ranks, known mutual information, known gradients."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from eebench.analysis import binned_mutual_information, gradient_dominance, numerical_rank


def test_numerical_rank_of_a_known_low_rank_activation_matrix():
    rng = np.random.default_rng(0)
    low = rng.normal(size=(200, 3)) @ rng.normal(size=(3, 50))          # rank 3
    assert numerical_rank(low) == 3
    # Noise 1e-6 of the signal is below the tolerance; a fourth direction at 10% of it is above.
    assert numerical_rank(low + 1e-6 * rng.normal(size=low.shape)) == 3
    fourth = np.outer(rng.normal(size=200), rng.normal(size=50))
    assert numerical_rank(low + 0.1 * fourth * np.abs(low).max() / np.abs(fourth).max()) == 4
    # A conv map [n, C, H, W] is flattened per sample; rank <= min(n, C*H*W).
    maps = torch.randn(10, 2, 3, 3)
    assert numerical_rank(maps) == 10
    assert numerical_rank(np.zeros((5, 4))) == 0
    # Stricter tolerance, fewer directions: singular values 1, 0.01, 0.0001.
    diag = np.diag([1.0, 1e-2, 1e-4])
    assert [numerical_rank(diag, rtol) for rtol in (1e-5, 1e-3, 1e-1)] == [3, 2, 1]
    with pytest.raises(ValueError, match="rtol"):
        numerical_rank(diag, rtol=1.0)


def test_binned_mutual_information_is_exact_on_discrete_inputs():
    # k equiprobable distinct inputs, each its own pattern: I = H(Z) = log k.
    k = 8
    z = np.repeat(np.eye(k), 5, axis=0)  # 40 samples, 8 distinct one-hot patterns, 5 each
    assert binned_mutual_information(z) == pytest.approx(math.log(k))
    # A two-to-one map merges patterns: log(k / 2).
    merged = np.repeat(np.eye(k // 2), 10, axis=0)
    assert binned_mutual_information(merged) == pytest.approx(math.log(k // 2))
    # Unequal frequencies: 30 of one pattern, 10 of another -> the entropy of (0.75, 0.25).
    skewed = np.array([[0.0]] * 30 + [[1.0]] * 10)
    assert binned_mutual_information(skewed) == pytest.approx(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))
    # A constant layer carries nothing; the estimate never exceeds log n.
    assert binned_mutual_information(np.ones((20, 3))) == 0.0
    assert binned_mutual_information(np.random.default_rng(0).normal(size=(50, 10))) == pytest.approx(math.log(50))
    # Fewer bins merge nearby values: 0.0 and 0.1 share a bin of 2 over [0, 1], not of 30.
    close = np.array([[0.0], [0.1], [1.0]])
    assert binned_mutual_information(close, bins=2) == pytest.approx(-(2 / 3 * math.log(2 / 3) + 1 / 3 * math.log(1 / 3)))
    assert binned_mutual_information(close, bins=30) == pytest.approx(math.log(3))


def test_gradient_dominance_by_hand():
    torch.manual_seed(0)
    backbone = nn.Linear(3, 3)
    x = torch.randn(8, 3)
    features = backbone(x)
    params = list(backbone.parameters())
    loss_a = features[:, 0].pow(2).mean()
    loss_b = features[:, 1].pow(2).mean()
    # One head: its gradient is the total gradient.
    assert gradient_dominance([loss_a], loss_a, params) == pytest.approx([1.0])
    # Two heads on disjoint output units: orthogonal gradients; each against the sum is cos = |g_i| / |g_a + g_b|.
    g_a = torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss_a, params, retain_graph=True)])
    g_b = torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss_b, params, retain_graph=True)])
    assert float(g_a.dot(g_b)) == pytest.approx(0.0, abs=1e-7)
    total = g_a + g_b
    expected = [float(g_a.norm() / total.norm()), float(g_b.norm() / total.norm())]
    assert gradient_dominance([loss_a, loss_b], loss_a + loss_b, params) == pytest.approx(expected, rel=1e-6)
    # Identical losses are identical gradients: 1 each; the opposite loss: -1.
    assert gradient_dominance([loss_a, loss_a], 2 * loss_a, params) == pytest.approx([1.0, 1.0])
    assert gradient_dominance([-loss_a], loss_a, params) == pytest.approx([-1.0])
    # A head that does not reach the parameters has no gradient: NaN.
    unrelated = nn.Linear(3, 1)(x).mean()
    assert math.isnan(gradient_dominance([unrelated], loss_a, params)[0])
    # The graph survives: the training step can still backpropagate the total loss.
    (loss_a + loss_b).backward()
    assert backbone.weight.grad is not None
