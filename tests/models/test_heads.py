import pytest
import torch
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

from eebench.models import IC_TYPES, ModelSpec, build_model, head_blocks
from eebench.models.heads import SDNHead

sdn = IC_TYPES.get("sdn")


def flops(module, x):
    with FlopCounterMode(display=False) as counter:
        module(x)
    return counter.get_total_flops()


@pytest.mark.parametrize("shape", [(3, 8, 32, 32), (3, 8, 16, 16), (2, 8, 7, 5), (2, 8, 4, 4), (2, 8, 3, 3),
                                   (1, 8, 1, 1), (2, 5, 8), (2, 8)])
def test_sdn_output_shape_for_any_spatial_size_and_tokens(shape):
    head = sdn(8, 10)
    assert tuple(head(torch.randn(*shape)).shape) == (shape[0], 10)


def test_sdn_linear_sees_channels_times_pool_size_squared():
    assert sdn(8, 10).linear.in_features == 8 * 16
    assert sdn(8, 10, pool_size=2).linear.in_features == 8 * 4
    assert sdn(8, 10, pool_size=1).linear.in_features == 8


@pytest.mark.parametrize("pool_size", [0, -1, 2.0, True, "4"])
def test_sdn_rejects_bad_pool_size(pool_size):
    with pytest.raises(ValueError, match="pool_size"):
        sdn(8, 10, pool_size=pool_size)


def test_sdn_alpha_is_a_trainable_scalar_drawn_like_sdn():
    torch.manual_seed(0)
    head = sdn(8, 10)
    torch.manual_seed(0)
    expected = torch.rand(1)  # SDN: nn.Parameter(torch.rand(1)), the head's first random draw
    alpha = head.pool.alpha
    assert isinstance(alpha, torch.nn.Parameter) and alpha.requires_grad and alpha.shape == (1,)
    assert torch.equal(alpha.detach(), expected)
    assert any(p is alpha for p in head.parameters())
    head(torch.randn(2, 8, 8, 8)).sum().backward()
    assert alpha.grad is not None and alpha.grad.abs().item() > 0


def test_sdn_hand_computed_forward_on_a_4x4_map():
    head = sdn(1, 2, pool_size=2)
    with torch.no_grad():
        head.pool.alpha.fill_(0.25)
        head.linear.weight.copy_(torch.tensor([[1.0, 2.0, 3.0, 4.0], [1.0, 0.0, 0.0, -1.0]]))
        head.linear.bias.copy_(torch.tensor([0.5, 0.0]))
    x = torch.arange(16.0).view(1, 1, 4, 4)
    # 2x2 quadrants: max 5, 7, 13, 15 and mean 2.5, 4.5, 10.5, 12.5; 0.25*max + 0.75*mean:
    mixed = [3.125, 5.125, 11.125, 13.125]
    assert torch.allclose(head.pool(x).flatten(), torch.tensor(mixed))
    expected = [3.125 + 2 * 5.125 + 3 * 11.125 + 4 * 13.125 + 0.5, 3.125 - 13.125]  # 99.75, -10
    assert torch.allclose(head(x), torch.tensor([expected]))


def test_sdn_pooling_equals_the_original_fixed_kernel_when_the_size_is_a_multiple_of_4():
    # Original SDN: kernel (and stride) floor(S / 4) for S >= 4 (aux_funcs.feature_reduction_formula).
    head = sdn(3, 5)
    for size in (4, 8, 16, 32):
        x = torch.randn(2, 3, size, size)
        k = size // 4
        a = head.pool.alpha
        original = a * F.max_pool2d(x, k) + (1 - a) * F.avg_pool2d(x, k)
        assert torch.allclose(head.pool(x), original, atol=1e-6)


def test_sdn_small_maps_are_repeated_up_to_the_pool_size():
    head = sdn(1, 3)
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    pooled = head.pool(x)
    assert torch.allclose(pooled, x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3))
    one = torch.randn(2, 1, 1, 1)
    assert torch.allclose(head.pool(one), one.expand(2, 1, 4, 4))


def test_sdn_tokens_fall_back_to_linear_on_the_mean_token():
    head = sdn(6, 4)
    tokens = torch.randn(3, 5, 6)
    # the 4-D path on the mean token as a 1 x 1 map ...
    as_map = head(tokens.mean(dim=1)[:, :, None, None])
    # ... and a linear head with the summed weight
    weight = head.linear.weight.view(4, 6, 16).sum(-1)
    as_linear = tokens.mean(dim=1) @ weight.T + head.linear.bias
    assert torch.allclose(head(tokens), as_map, atol=1e-5)
    assert torch.allclose(head(tokens), as_linear, atol=1e-5)
    assert torch.allclose(head(tokens.mean(dim=1)), as_linear, atol=1e-5)
    # pool_size 1: exactly a linear head's weights
    linear1 = sdn(6, 4, pool_size=1)
    assert torch.allclose(linear1(tokens), tokens.mean(dim=1) @ linear1.linear.weight.T + linear1.linear.bias,
                          atol=1e-6)


def test_sdn_flops_are_its_linear_layer():
    head = sdn(64, 100)
    for hw in (32, 8, 2):
        assert flops(head, torch.zeros(2, 64, hw, hw)) == 2 * 2 * (64 * 16) * 100
    assert flops(sdn(64, 100, pool_size=2), torch.zeros(1, 64, 8, 8)) == 2 * (64 * 4) * 100
    # tokens: a linear head's cost
    assert flops(head, torch.zeros(1, 7, 64)) == 2 * 64 * 100


def test_sdn_builds_and_runs_on_the_meta_device():
    with torch.device("meta"):
        head = sdn(64, 100)
        out = head(torch.empty(2, 64, 8, 8))
    assert head.linear.weight.is_meta and head.pool.alpha.is_meta
    assert out.is_meta and tuple(out.shape) == (2, 100)


def test_sdn_in_a_resnet34_multi_exit_model_at_paper_b_positions():
    # Paper B App. E.1: ICs at positions {2, 4, ..., 14}; the final block (15) keeps the backbone's classifier.
    spec = ModelSpec(backbone="resnet34", backbone_params={"cifar_stem": True}, input_shape=(3, 32, 32),
                     num_classes=100, ic={"type": "sdn", "pool_size": 4}, placement=[2, 4, 6, 8, 10, 12, 14])
    assert head_blocks(spec) == [2, 4, 6, 8, 10, 12, 14, 15]
    with torch.device("meta"):
        model = build_model(spec)
    assert all(isinstance(model.heads[str(b)], SDNHead) for b in (2, 4, 6, 8, 10, 12, 14))
    assert not isinstance(model.heads["15"], SDNHead)


def test_sdn_heads_train_in_a_small_multi_exit_model():
    spec = ModelSpec(backbone="cnn", backbone_params={"widths": [8, 16, 16], "strides": [1, 2, 2]},
                     input_shape=(1, 8, 8), num_classes=5, ic={"type": "sdn"}, placement=[0, 1])
    model = build_model(spec, seed=0)
    outputs = model(torch.randn(4, 1, 8, 8))
    assert [tuple(o.shape) for o in outputs] == [(4, 5)] * 3
    sum(o.sum() for o in outputs).backward()
    assert model.heads["0"].pool.alpha.grad is not None


@pytest.mark.parametrize("activation, hidden_value", [("relu", 0.0), ("gelu", -0.15865525)])
def test_mlp_activation_by_hand(activation, hidden_value):
    """One hidden unit whose pre-activation is -1: ReLU gives 0, GELU (exact, as F.gelu in paper B's heads.py)
    -1 * Phi(-1) = -0.158655; the output layer copies it."""
    head = IC_TYPES.get("mlp")(2, 1, hidden=[1], activation=activation)
    with torch.no_grad():
        head[1].weight.copy_(torch.tensor([[1.0, 1.0]]))
        head[1].bias.fill_(0.0)
        head[3].weight.fill_(1.0)
        head[3].bias.fill_(0.0)
    out = head(torch.tensor([[-0.25, -0.75]]))  # [B, D] features pass the pool unchanged
    assert out.item() == pytest.approx(hidden_value, abs=1e-6)


def test_mlp_activation_defaults_to_relu_and_refuses_others():
    assert isinstance(IC_TYPES.get("mlp")(4, 3, hidden=[5])[2], torch.nn.ReLU)
    with pytest.raises(ValueError, match="activation"):
        IC_TYPES.get("mlp")(4, 3, hidden=[5], activation="tanh")
    spec = ModelSpec("cnn", {"widths": [4, 4], "strides": [1, 1]}, (1, 4, 4), 3,
                     ic={"type": "mlp", "hidden": [5], "activation": "gelu"})
    model = build_model(spec, seed=0)
    assert any(isinstance(m, torch.nn.GELU) for m in model.heads.modules())


def ic_valid(ic) -> bool:
    """Whether ``ic`` is valid under the generated ``$defs/ic`` (eebench.models.ic_schema)."""
    import jsonschema

    from eebench.models import ic_schema

    return jsonschema.Draft202012Validator(ic_schema()).is_valid(ic)


def test_ic_schema_takes_activation_on_mlp_only():
    assert ic_valid({"type": "mlp", "hidden": [8], "activation": "gelu"})
    for bad in ({"type": "linear", "activation": "gelu"}, {"type": "mlp", "hidden": [8], "activation": "tanh"}):
        assert not ic_valid(bad)


def test_mlp_with_pool_size_is_an_sdn_ic_with_hidden_layers():
    torch.manual_seed(0)
    head = IC_TYPES.get("mlp")(8, 3, hidden=[5, 4], pool_size=2)
    torch.manual_seed(0)
    reference = sdn(8, 5, pool_size=2)  # the same draws: SDN's alpha, then its linear layer
    first = head[0]
    assert isinstance(first, SDNHead) and first.linear.in_features == 8 * 4 and first.linear.out_features == 5
    assert torch.equal(first.pool.alpha, reference.pool.alpha) and torch.equal(first.linear.weight, reference.linear.weight)
    x = torch.randn(2, 8, 6, 6)
    expected = head[4](head[3](head[2](torch.relu(reference(x)))))  # relu, linear 5->4, relu, linear 4->3
    assert torch.allclose(head(x), expected)
    assert [type(m).__name__ for m in head] == ["SDNHead", "ReLU", "Linear", "ReLU", "Linear"]
    # Without pool_size: the global-pool layers as before (state-dict keys unchanged).
    assert [type(m).__name__ for m in IC_TYPES.get("mlp")(8, 3, hidden=[5])] == ["GlobalPool", "Linear", "ReLU", "Linear"]
    with pytest.raises(ValueError, match="hidden"):
        IC_TYPES.get("mlp")(8, 3, hidden=[])


def test_ic_schema_takes_pool_size_on_sdn_and_mlp_only():
    assert ic_valid({"type": "mlp", "hidden": [8], "pool_size": 4}) and ic_valid({"type": "sdn", "pool_size": 2})
    assert not ic_valid({"type": "linear", "pool_size": 4})


def test_sdn_pool_on_a_map_of_its_own_size_matches_adaptive_pooling_with_gradients():
    from eebench.models.heads import SDNPool

    torch.manual_seed(0)
    pool = SDNPool(4)
    x = torch.randn(3, 5, 4, 4, requires_grad=True)
    weights = torch.randn(3, 5, 4, 4)
    (pool(x) * weights).sum().backward()
    ours = (pool(x).detach(), x.grad.clone(), pool.alpha.grad.clone())
    x.grad, pool.alpha.grad = None, None
    alpha = pool.alpha
    adaptive = alpha * F.adaptive_max_pool2d(x, 4) + (1 - alpha) * F.adaptive_avg_pool2d(x, 4)
    (adaptive * weights).sum().backward()
    assert torch.equal(ours[0], adaptive.detach()) and torch.equal(ours[1], x.grad)
    assert torch.equal(ours[2], pool.alpha.grad)  # zero: max = avg on one-position bins
