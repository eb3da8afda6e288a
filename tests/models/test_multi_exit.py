from pathlib import Path

import pytest
import torch

from eebench.config import load_config
from eebench.models import BACKBONES, IC_TYPES, ModelSpec, backbone_state, build_model, head_blocks, head_costs

REPO = Path(__file__).resolve().parents[2]

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


# Tiny parameters of every backbone on (1, 8, 8) inputs; bert takes tokens (its own tests: test_bert.py).
TINY_PARAMS = {
    "cnn": CNN, "resnet18": {"cifar_stem": True}, "resnet34": {"cifar_stem": True},
    "resnet50": {"cifar_stem": True}, "resnet20": {},
    "vit": {"patch_size": 4, "hidden_dim": 16, "mlp_dim": 16, "num_layers": 2, "num_heads": 2},
}
TESTED_ELSEWHERE = {"bert": "test_bert.py (token inputs)", "msdnet": "test_msdnet.py (its own IC type)"}


@pytest.mark.parametrize("name", BACKBONES.names())
def test_every_backbone_runs_a_forward_pass(name):
    if name in TESTED_ELSEWHERE:
        pytest.skip(f"{name}: in {TESTED_ELSEWHERE[name]}")
    assert name in TINY_PARAMS, f"new backbone {name!r}: add tiny parameters to TINY_PARAMS"
    model = build_model(ModelSpec(name, TINY_PARAMS[name], (1, 8, 8), 3))
    assert all(o.shape == (2, 3) for o in model(torch.randn(2, 1, 8, 8)))


def test_resnet34_has_one_block_per_residual_block_and_the_papers_placement():
    # Paper B E.1 "positions {2, 4, ..., 14}", counted from 0 (§4.6: "from index 0 to 14"), plus the final
    # classifier after block 15; the shipped paper config must say exactly that.
    entry = load_config(REPO / "config/paper/resnet34_cifar100.yaml")["models"]["resnet34_cifar100"]
    assert entry["placement"] == [2, 4, 6, 8, 10, 12, 14]
    spec = ModelSpec("resnet34", {"cifar_stem": True}, (3, 32, 32), 100, placement=entry["placement"])
    model = build_model(spec)
    assert len(model.blocks) == 16 and model.head_blocks == [2, 4, 6, 8, 10, 12, 14, 15]
    costs, backbone = head_costs(model, (3, 32, 32))
    assert costs == sorted(costs) and costs[-1] > backbone
    assert round(backbone / 2e9, 2) == 1.16  # ResNet-34 on 32x32 inputs: 1.16 GMACs


@pytest.mark.parametrize("name", IC_TYPES.names())
def test_every_ic_type_builds(name):
    extra = {"mlp": {"hidden": [4]}, "sdn": {"pool_size": 2}, "gpf": {"state_dim": 5}}.get(name, {})
    head = IC_TYPES.get(name)(6, 3, **extra)
    width = extra.get("state_dim", 3)  # a gpf head outputs its state; the network's merge module makes logits
    assert head(torch.randn(2, 6, 4, 4)).shape == (2, width)


def test_phase1_weights_do_not_depend_on_the_ics():
    """Variants that differ in IC type or placement share the phase-1 run, so what phase 1 trains (blocks and
    final classifier) must start from bit-identical weights whatever the ICs."""
    variants = [spec(), spec(ic={"type": "mlp", "hidden": [7]}), spec(placement=[1]), spec().plain()]
    states = [backbone_state(build_model(v, seed=3)) for v in variants]
    for state in states[1:]:
        assert state.keys() == states[0].keys()
        assert all(torch.equal(state[key], states[0][key]) for key in state)
    other_seed = backbone_state(build_model(spec(), seed=4))
    assert not torch.equal(other_seed["blocks.0.0.weight"], states[0]["blocks.0.0.weight"])


def test_an_ic_starts_the_same_whatever_other_ics_exist():
    every, one = build_model(spec(), seed=3), build_model(spec(placement=[1]), seed=3)
    assert torch.equal(every.heads["1"][1].weight, one.heads["1"][1].weight)
    assert not torch.equal(every.heads["0"][1].weight[:, :16], every.heads["1"][1].weight[:, :16])


def test_a_static_head_starts_like_the_same_head_of_the_full_network():
    full = build_model(spec(), seed=5).state_dict()
    static = build_model(spec(placement=[1], truncate_at=1), seed=5).state_dict()
    assert set(static) == {k for k in full if k.startswith(("blocks.0.", "blocks.1.", "heads.1."))}
    assert all(torch.equal(value, full[key]) for key, value in static.items())


def test_building_leaves_the_global_rng_alone():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    build_model(spec(), seed=1)
    assert torch.equal(torch.rand(3), expected)


def test_plain_spec_has_only_the_final_classifier():
    model = build_model(spec(ic={"type": "mlp", "hidden": [7]}, placement=[0, 2]).plain())
    assert model.head_blocks == [3]
    assert set(backbone_state(model)) == set(model.state_dict())


def test_a_resnet_starts_from_a_local_torchvision_state_dict_without_its_classifier(tmp_path):
    """Paper A §3: "a pre-trained classification model with an unfrozen backbone" (ResNet-50; resnet18 here
    for speed, the same code): every backbone weight comes from the file, the ImageNet classifier is dropped,
    and a file of another network is refused naming it."""
    from torchvision.models import resnet18

    torch.manual_seed(1)
    pretrained = resnet18(weights=None)
    torch.save(pretrained.state_dict(), tmp_path / "resnet18.pth")
    blocks = BACKBONES.get("resnet18")((3, 32, 32), weights=str(tmp_path / "resnet18.pth")).blocks
    ours = dict(torch.nn.Sequential(*blocks).named_parameters())
    theirs = dict(pretrained.named_parameters())
    assert torch.equal(blocks[0][0][0].weight, theirs["conv1.weight"])  # the stem, inside block 0
    assert torch.equal(blocks[-1].conv2.weight, theirs["layer4.1.conv2.weight"])
    assert sum(p.numel() for p in ours.values()) == sum(p.numel() for k, p in theirs.items() if not k.startswith("fc."))
    with pytest.raises(ValueError, match="resnet18: the weights in .* do not fit"):
        BACKBONES.get("resnet18")((1, 32, 32), weights=str(tmp_path / "resnet18.pth"))  # a 1-channel stem
    with pytest.raises(FileNotFoundError, match="resnet50: weights file .*nope.pth not found"):
        BACKBONES.get("resnet50")((3, 32, 32), weights=str(tmp_path / "nope.pth"))
