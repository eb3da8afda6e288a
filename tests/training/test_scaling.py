"""Loss and gradient scaling (paper B §4.4): the gradients a hand-made two-head network receives under each
method, against gradients of the single heads' losses computed separately."""
import numpy as np
import pytest
import torch
from torch import nn

from eebench.training.regimes import BACKBONE_PHASE, JOINT_PHASE
from eebench.training.scaling import SCALINGS, GradientEquilibrium, HeadLayout, loss_scaling
from tests.fixtures import TOY_X, TOY_Y, first_step_grads, two_head_net

X = torch.tensor(TOY_X)
Y = torch.tensor(TOY_Y)



def single_head_grads(head):
    """Gradient of one head's loss alone, per parameter name."""
    net = two_head_net()
    loss = nn.functional.cross_entropy(net(X)[head], Y)
    loss.backward()
    return {n: (p.grad.clone() if p.grad is not None else torch.zeros_like(p)) for n, p in net.named_parameters()}


def loop_grads(monkeypatch, scaling, phase=JOINT_PHASE, max_epochs=4):
    """Gradients of the loop's first step (one batch = the whole set), and the epoch's log entry."""
    return first_step_grads(monkeypatch, phase, max_epochs, loss_scaling=scaling)


@pytest.mark.parametrize("scaling, alphas", [
    ("constant", [1.0, 1.0]),
    ("increasing", [0.5, 1.0]),
    ("decreasing", [1.0, 0.5]),
    # SDN: tau_0 = min(C_0, 0.01 + epoch * C_0 / E) with C_0 = 1/2 (head 0 sees one of two blocks), E = 4.
    ({"type": "sdn", "ramp_epochs": 4}, [0.01 + 0.5 / 4, 1.0]),
    ({"type": "sdn", "ramp_epochs": 1}, [0.5, 1.0]),
])
def test_loss_weights_scale_each_heads_gradient(monkeypatch, scaling, alphas):
    g0, g1 = single_head_grads(0), single_head_grads(1)
    grads, log = loop_grads(monkeypatch, scaling)
    a0, a1 = alphas
    torch.testing.assert_close(grads["heads.0.weight"], a0 * g0["heads.0.weight"])
    torch.testing.assert_close(grads["heads.1.weight"], a1 * g1["heads.1.weight"])
    torch.testing.assert_close(grads["blocks.1.weight"], a1 * g1["blocks.1.weight"])
    torch.testing.assert_close(grads["blocks.0.weight"], a0 * g0["blocks.0.weight"] + a1 * g1["blocks.0.weight"])
    assert log["loss_weights"] == pytest.approx(alphas)


def test_gradient_equilibrium_averages_the_backbone_gradient_only(monkeypatch):
    g0, g1 = single_head_grads(0), single_head_grads(1)
    grads, log = loop_grads(monkeypatch, "gradient_equilibrium")
    # Li et al. (2019): at head 0's block the two losses' gradients are averaged; the heads are untouched.
    torch.testing.assert_close(grads["blocks.0.weight"], (g0["blocks.0.weight"] + g1["blocks.0.weight"]) / 2)
    torch.testing.assert_close(grads["blocks.1.weight"], g1["blocks.1.weight"])
    torch.testing.assert_close(grads["heads.0.weight"], g0["heads.0.weight"])
    torch.testing.assert_close(grads["heads.1.weight"], g1["heads.1.weight"])
    assert log["loss_weights"] == [1.0, 1.0]


def test_a_single_head_loss_is_never_scaled(monkeypatch):
    # Eq. (1) has no alpha: phase 1 must be the same run whatever scaling a variant uses.
    g1 = single_head_grads(1)
    for scaling in ("decreasing", "gradient_equilibrium"):
        grads, log = loop_grads(monkeypatch, scaling, phase=BACKBONE_PHASE)
        torch.testing.assert_close(grads["blocks.0.weight"], g1["blocks.0.weight"])
        assert "loss_weights" not in log
        monkeypatch.undo()


def test_gradient_equilibrium_factors_are_imta_for_every_head_and_skip_uncounted_heads():
    blocks = nn.ModuleList([nn.Identity() for _ in range(4)])
    equilibrium = GradientEquilibrium(blocks, [0, 1, 3])
    equilibrium.set_heads([0, 1, 2])
    # Their code: gradient_rescale(x, 1 / (K - j)) before head j, (K - j - 1) after it, K = 3 heads.
    assert equilibrium.scales == {0: (1 / 3, 2.0), 1: (1 / 2, 1.0), 3: (1.0, 0.0)}
    equilibrium.set_heads([1, 2])  # head 0 not counted: identity there
    assert equilibrium.scales[0] == (1 / 2, 2.0) and equilibrium.scales[1] == (1 / 2, 1.0)
    equilibrium.remove()
    assert not blocks[0]._forward_hooks


def test_sdn_weights_ramp_to_the_relative_depth_and_stay():
    weights = SCALINGS.get("sdn")(ramp_epochs=10).weights
    layout = HeadLayout((0, 1, 3), 4)
    assert weights(layout, 1, 99) == pytest.approx([0.01 + 0.025, 0.01 + 0.05, 1.0])
    assert weights(layout, 10, 99) == pytest.approx([0.25, 0.5, 1.0])
    assert weights(layout, 30, 99) == pytest.approx([0.25, 0.5, 1.0])


def test_scaling_settings_name_or_dict_and_unknown_names_fail():
    assert np.allclose(loss_scaling(None).weights(HeadLayout((0, 1), 2), 1, 1), [1, 1])
    assert loss_scaling("gradient_equilibrium").gradient_equilibrium
    with pytest.raises(KeyError, match="unknown loss scaling 'linear'"):
        loss_scaling({"type": "linear"})


@pytest.mark.parametrize("settings, message", [
    ("sdn", "loss scaling 'sdn': missing a required argument: 'ramp_epochs'"),
    ({"type": "sdn"}, "missing a required argument: 'ramp_epochs'"),
    ({"type": "sdn", "ramp_epochs": 0}, "ramp_epochs must be an integer >= 1"),
    ({"type": "increasing", "ramp_epochs": 5}, "'increasing': got an unexpected keyword argument 'ramp_epochs'"),
])
def test_sdn_ramp_is_explicit_never_the_epoch_cap(settings, message):
    """SDN ramps over its fixed training length; ours stops early, so the cap (max_epochs) would be another
    schedule: the ramp's length is always given."""
    from eebench.training.scaling import loss_scaling

    with pytest.raises(ValueError, match=message):
        loss_scaling(settings)
    weights = loss_scaling({"type": "sdn", "ramp_epochs": 10}).weights
    layout = HeadLayout(head_blocks=(0, 3), num_blocks=4)
    # The same epoch gives the same weights whatever the cap: max_epochs plays no part.
    assert weights(layout, 5, 16).tolist() == weights(layout, 5, 3000).tolist() == [0.01 + 5 * 0.25 / 10, 1.0]
