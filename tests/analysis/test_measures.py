"""Paper B's analysis measures on hand-made cases: known ranks, known mutual information, known gradients."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from eebench.analysis import (MI_ESTIMATORS, binned_mutual_information, gradient_dominance,
                              kde_mutual_information, numerical_rank, variance_rank, variance_ranks)


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


def test_variance_rank_counts_principal_directions_above_a_fraction_of_the_largest_variance():
    rng = np.random.default_rng(0)
    n = 300
    # Five orthogonal centred directions with variances proportional to 1, 4e-2, 2.5e-3, 1e-4, 1e-6, in 20
    # features, plus a constant offset (a mean, which is not a direction of variation).
    directions = rng.normal(size=(n, 5))
    basis, _ = np.linalg.qr(directions - directions.mean(axis=0))  # orthonormal columns of mean zero
    mixing, _ = np.linalg.qr(rng.normal(size=(20, 5)))
    scales = np.sqrt([1.0, 4e-2, 2.5e-3, 1e-4, 1e-6])
    activations = basis @ np.diag(scales) @ mixing.T + 5.0 * rng.normal(size=20)
    assert variance_ranks(activations, [1e-7, 1e-5, 1e-3, 1e-2, 0.1]) == [5, 4, 3, 2, 1]
    assert variance_rank(activations) == 3  # default 1e-3, the tunnel effect's
    # On the singular values the same tolerance keeps more (1e-3 of sigma = 1e-6 of the variance).
    assert numerical_rank(activations, 1e-3 ** 0.5, center=True) == 3
    assert numerical_rank(activations, 1e-3, center=True) == 5
    # Without centring the mean is one more direction, and the largest: relative to it fewer pass.
    assert numerical_rank(activations, 1e-6) == 6 and numerical_rank(activations, 1e-6, center=True) == 5
    assert numerical_rank(activations, 1e-3 ** 0.5) == 1
    # Global scale does not matter; a rank never exceeds samples - 1 once centred.
    assert variance_ranks(1e3 * activations, [1e-3]) == [3]
    assert variance_rank(rng.normal(size=(10, 50)), 1e-6) == 9
    assert variance_rank(np.ones((5, 4))) == 0
    with pytest.raises(ValueError, match="variance_rtol"):
        variance_ranks(activations, [1e-3, 1.0])
    with pytest.raises(ValueError, match="variance_rtol"):
        variance_ranks(activations, [])


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


def test_mutual_information_estimators_are_registered_by_name():
    assert MI_ESTIMATORS.names() == ["binning", "kde"]
    assert MI_ESTIMATORS.get("kde") is kde_mutual_information
    with pytest.raises(KeyError, match="unknown MI estimator 'mine'"):
        MI_ESTIMATORS.get("mine")


def test_kde_mutual_information_of_separated_groups_is_the_entropy_of_their_sizes():
    # k equal groups of negligible spread, far apart at the noise's scale: I = log k (upper and lower bound).
    rng = np.random.default_rng(0)
    k = 8
    groups = np.repeat(np.eye(k), 5, axis=0) + 1e-6 * rng.normal(size=(40, k))
    for bound in ("upper", "lower"):
        assert kde_mutual_information(groups, noise=0.01, bound=bound) == pytest.approx(math.log(k), abs=1e-6)
    # Unequal groups: 30 and 10 samples -> the entropy of (0.75, 0.25).
    skewed = np.array([[0.0]] * 30 + [[1.0]] * 10)
    assert kde_mutual_information(skewed, noise=0.01) == pytest.approx(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))
    # At a larger noise the groups overlap and the estimate falls below log k.
    assert kde_mutual_information(groups, noise=0.25) < math.log(k) - 0.05


def test_kde_mutual_information_bounds_and_invariances():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(60, 30)) @ rng.normal(size=(30, 30))
    estimate = kde_mutual_information(z)
    # Identical representations carry nothing; any estimate lies in [0, min(log n, 1 / noise)] (Jensen).
    assert kde_mutual_information(np.ones((20, 3))) == 0.0
    for noise in (1e-4, 0.1, 0.25, 1.0, 10.0):
        value = kde_mutual_information(z, noise=noise)
        assert 0.0 <= value <= min(math.log(60), 1.0 / noise) + 1e-12
    assert kde_mutual_information(z, noise=1e-4) == pytest.approx(math.log(60))  # all distinguishable
    assert kde_mutual_information(z, bound="lower") < estimate
    # The noise is relative to the layer's total variance: a global rescaling, a shift or duplicated units
    # change nothing (as a layer's BatchNorm scale or width should not).
    assert kde_mutual_information(7.5 * z + 3.0) == pytest.approx(estimate, rel=1e-9)
    assert kde_mutual_information(np.concatenate([z, z], axis=1)) == pytest.approx(estimate, rel=1e-9)
    # A conv map [n, C, H, W] is flattened per sample; a torch tensor is accepted.
    maps = torch.as_tensor(z).reshape(60, 2, 3, 5)
    assert kde_mutual_information(maps) == pytest.approx(estimate, rel=1e-9)
    with pytest.raises(ValueError, match="noise"):
        kde_mutual_information(z, noise=0.0)
    with pytest.raises(ValueError, match="bound"):
        kde_mutual_information(z, bound="middle")


@pytest.mark.parametrize("dims", [1, 2, 4])
def test_kde_mutual_information_of_a_noisy_gaussian_converges_to_its_closed_form_and_brackets_the_truth(dims):
    """Z = X ~ N(0, s^2 I_d), noise sigma^2 = noise * tr Cov(Z) = noise * d * s^2, so r = s^2 / sigma^2 = 1 / (noise d).
    True I(X; Z + eps) = d/2 log(1 + r). As n grows the estimator tends to (Gaussian integrals of its sums)
    upper: d/2 [log(1 + r) + r / (1 + r)],  lower: d/2 [log(1 + r/4) + r / (r + 4)],
    which bracket the truth (Kolchinsky & Tracey's bounds, here in their large-sample limit)."""
    noise = 1.0 / dims  # r = 1
    r = 1.0 / (noise * dims)
    true = dims / 2 * math.log(1 + r)
    upper = dims / 2 * (math.log(1 + r) + r / (1 + r))
    lower = dims / 2 * (math.log(1 + r / 4) + r / (r + 4))
    assert lower < true < upper

    def errors(n):
        samples = [np.random.default_rng(seed).normal(size=(n, dims)) for seed in range(4)]
        return (np.mean([abs(kde_mutual_information(x, noise=noise) - upper) for x in samples]),
                np.mean([abs(kde_mutual_information(x, noise=noise, bound="lower") - lower) for x in samples]))

    small, large = errors(40), errors(1500)
    assert large[0] < 0.01 * upper and large[1] < 0.01 * lower
    assert large[0] < small[0] and large[1] < small[1]
    x = np.random.default_rng(9).normal(size=(1500, dims))
    assert kde_mutual_information(x, noise=noise, bound="lower") < true < kde_mutual_information(x, noise=noise)
