"""ResNet-20 for CIFAR (He et al. 2016 §4.2): layout, option A/B shortcuts, hand-counted costs and parameters,
a training step."""
import pytest
import torch
from torch.nn import functional as F

from eebench.models import BACKBONES, ModelSpec, build_model, head_costs
from eebench.models.backbones import CifarBasicBlock


def spec(**overrides):
    base = dict(backbone="resnet20", backbone_params={}, input_shape=(3, 32, 32), num_classes=10)
    return ModelSpec(**{**base, **overrides})


def count(module):
    return sum(p.numel() for p in module.parameters())


def test_nine_basic_blocks_in_three_stages_with_the_stem_in_block_0():
    built = BACKBONES.get("resnet20")((3, 32, 32))
    assert built.widths == [16] * 3 + [32] * 3 + [64] * 3 and built.token_pool == "mean"
    stem, first = built.blocks[0]
    assert [type(m) for m in stem] == [torch.nn.Conv2d, torch.nn.BatchNorm2d, torch.nn.ReLU]
    assert stem[0].kernel_size == (3, 3) and stem[0].stride == (1, 1) and stem[0].out_channels == 16
    residual = [first, *built.blocks[1:]]
    assert all(isinstance(b, CifarBasicBlock) for b in residual)
    assert [b.conv1.stride[0] for b in residual] == [1, 1, 1, 2, 1, 1, 2, 1, 1]
    x, shapes = torch.randn(2, 3, 32, 32), []
    for block in built.blocks:
        x = block(x)
        shapes.append(tuple(x.shape[1:]))
    assert shapes == [(16, 32, 32)] * 3 + [(32, 16, 16)] * 3 + [(64, 8, 8)] * 3


def test_option_a_is_a_parameter_free_subsampled_identity_padded_with_zero_channels():
    built = BACKBONES.get("resnet20")((3, 32, 32))
    assert count(built.blocks) == 269_072  # 267,696 conv weights + 1,376 BN parameters (0.27M with the classifier)
    shortcut = built.blocks[3].shortcut
    x = torch.randn(2, 16, 32, 32)
    out = shortcut(x)
    assert out.shape == (2, 32, 16, 16) and count(shortcut) == 0
    assert torch.equal(out[:, 8:24], x[:, :, ::2, ::2])
    assert torch.count_nonzero(out[:, :8]) == 0 and torch.count_nonzero(out[:, 24:]) == 0
    assert isinstance(built.blocks[4].shortcut, torch.nn.Identity)


def test_option_b_projects_where_the_shape_changes():
    built = BACKBONES.get("resnet20")((3, 32, 32), shortcut="B")
    projections = [b.shortcut for b in built.blocks[1:] if not isinstance(b.shortcut, torch.nn.Identity)]
    assert len(projections) == 2 and all(p[0].kernel_size == (1, 1) and p[0].stride == (2, 2) for p in projections)
    assert count(built.blocks) == 269_072 + (16 * 32 + 2 * 32) + (32 * 64 + 2 * 64)
    with pytest.raises(ValueError, match="shortcut"):
        BACKBONES.get("resnet20")((3, 32, 32), shortcut="C")


def test_convolutions_start_from_he_init():
    torch.manual_seed(0)
    conv = BACKBONES.get("resnet20")((3, 32, 32)).blocks[8].conv2
    assert abs(conv.weight.std().item() - (2 / (64 * 9)) ** 0.5) < 0.002  # fan_out = 64 * 3 * 3


def test_costs_are_positive_increasing_and_match_he_et_al():
    model = build_model(spec(), seed=0)
    costs, backbone = head_costs(model, (3, 32, 32))
    conv = lambda hw, c_in, c_out: 2 * hw * hw * c_in * c_out * 9  # noqa: E731
    blocks = [conv(32, 3, 16) + 2 * conv(32, 16, 16), 2 * conv(32, 16, 16), 2 * conv(32, 16, 16),
              conv(16, 16, 32) + conv(16, 32, 32), 2 * conv(16, 32, 32), 2 * conv(16, 32, 32),
              conv(8, 32, 64) + conv(8, 64, 64), 2 * conv(8, 64, 64), 2 * conv(8, 64, 64)]
    heads = [2 * w * 10 for w in [16] * 3 + [32] * 3 + [64] * 3]
    expected, running = [], 0
    for b, h in zip(blocks, heads):
        running += b + h
        expected.append(running)
    assert costs == expected and all(c > 0 for c in costs) and costs == sorted(costs)
    assert backbone == sum(blocks) + heads[-1] == 2 * (40_550_400 + 640)  # ResNet-20: 41M multiply-adds


def test_one_optimiser_step_of_the_joint_loss_trains_blocks_and_heads():
    model = build_model(spec(placement=[2, 5]), seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimiser = torch.optim.SGD(model.parameters(), lr=0.1)
    outputs = model(torch.randn(4, 3, 32, 32))
    assert [tuple(o.shape) for o in outputs] == [(4, 10)] * 3
    loss = sum(F.cross_entropy(o, torch.tensor([0, 1, 2, 3])) for o in outputs)
    loss.backward()
    optimiser.step()
    after = model.state_dict()
    for key in ("blocks.0.0.0.weight", "blocks.0.1.conv1.weight", "blocks.8.conv2.weight", "heads.2.1.weight",
                "heads.8.1.weight"):
        assert not torch.equal(before[key], after[key]), key


def test_other_input_channels():
    model = build_model(spec(input_shape=(1, 8, 8)), seed=0)
    assert all(o.shape == (2, 10) for o in model(torch.randn(2, 1, 8, 8)))
