import pytest
import torch

from eebench.models import BACKBONES, IC_TYPES, ModelSpec, build_model, head_blocks, head_costs

CNN = {"widths": [16, 32, 64, 64], "strides": [1, 2, 1, 2]}


def spec(**overrides):
    base = dict(backbone="cnn", backbone_params=CNN, input_shape=(1, 8, 8), num_classes=10)
    return ModelSpec(**{**base, **overrides})


def test_one_head_per_block_by_default_and_logits_shapes():
    model = build_model(spec())
    outputs = model(torch.zeros(5, 1, 8, 8))
    assert model.head_blocks == [0, 1, 2, 3]
    assert [tuple(o.shape) for o in outputs] == [(5, 10)] * 4


def test_placement_always_keeps_the_final_classifier():
    assert head_blocks(spec(placement=[1])) == [1, 3]
    with pytest.raises(ValueError, match="out of range"):
        build_model(spec(placement=[4]))


def test_cumulative_flops_match_hand_count():
    # conv: 2 * H_out * W_out * C_out * C_in * 9 (no bias); linear head: 2 * C_in * 10.
    block = [2 * 64 * 16 * 1 * 9, 2 * 16 * 32 * 16 * 9, 2 * 16 * 64 * 32 * 9, 2 * 4 * 64 * 64 * 9]
    head = [2 * 16 * 10, 2 * 32 * 10, 2 * 64 * 10, 2 * 64 * 10]
    costs, backbone = head_costs(build_model(spec()), (1, 8, 8))
    expected, running = [], 0
    for b, h in zip(block, head):
        running += b + h
        expected.append(running)
    assert costs == expected
    # The plain backbone: every block plus only the final classifier.
    assert backbone == sum(block) + head[-1]


def test_truncated_static_model_keeps_only_the_blocks_it_needs():
    model = build_model(spec(truncate_at=1))
    assert len(model.blocks) == 2 and model.head_blocks == [1]
    costs, _ = head_costs(model, (1, 8, 8))
    assert costs == [2 * 64 * 16 * 9 + 2 * 16 * 32 * 16 * 9 + 2 * 32 * 10]


def test_mlp_ic_on_internal_heads_only():
    model = build_model(spec(ic={"type": "mlp", "hidden": [7]}))
    assert isinstance(model.heads["0"][1], torch.nn.Linear) and model.heads["0"][1].out_features == 7
    assert len(model.heads["3"]) == 2  # the final classifier stays pool + linear


def test_parameter_groups_partition_the_parameters():
    model = build_model(spec())
    groups = model.parameter_groups()
    ids = [id(p) for group in groups.values() for p in group]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))
    final_head = {id(p) for p in model.heads["3"].parameters()}
    assert final_head <= {id(p) for p in groups["backbone"]}


@pytest.mark.parametrize("name", BACKBONES.names())
def test_every_backbone_runs_a_forward_pass(name):
    params = {"cnn": CNN}.get(name, {"cifar_stem": True})
    model = build_model(ModelSpec(name, params, (1, 8, 8), 3))
    assert all(o.shape == (2, 3) for o in model(torch.randn(2, 1, 8, 8)))


def test_resnet34_has_one_block_per_residual_block_and_the_papers_placement():
    # Paper B E.1: ResNet-34 with exits after residual blocks 2, 4, ..., 14 (1-based) plus the final classifier.
    spec = ModelSpec("resnet34", {"cifar_stem": True}, (3, 32, 32), 100, placement=[1, 3, 5, 7, 9, 11, 13])
    model = build_model(spec)
    assert len(model.blocks) == 16 and model.head_blocks == [1, 3, 5, 7, 9, 11, 13, 15]
    costs, backbone = head_costs(model, (3, 32, 32))
    assert costs == sorted(costs) and costs[-1] > backbone
    assert round(backbone / 2e9, 2) == 1.16  # ResNet-34 on 32x32 inputs: 1.16 GMACs


@pytest.mark.parametrize("name", IC_TYPES.names())
def test_every_ic_type_builds(name):
    extra = {"mlp": {"hidden": [4]}}.get(name, {})
    head = IC_TYPES.get(name)(6, 3, **extra)
    assert head(torch.randn(2, 6, 4, 4)).shape == (2, 3)
