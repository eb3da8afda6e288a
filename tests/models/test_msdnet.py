"""MSDNet backbone and IC type (eebench.models.msdnet).

Reference numbers come from the MSDNet authors' PyTorch code, kalviny/MSDNet-PyTorch @ f654595 models/msdnet.py,
built with its README's CIFAR-100 anytime settings (--nBlocks 7 --stepmode even --step 2 --base 4 --nChannels 16,
args.py defaults otherwise) and measured with torch's FlopCounterMode on one 3x32x32 input; with its weights
copied in parameter order, our blocks and classifiers give bit-identical logits (checked once, not here, to
keep that code out of the repository).
"""
import pytest
import torch
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

from eebench.models import BACKBONES, IC_TYPES, ModelSpec, backbone_state, build_model, head_blocks, head_costs
from eebench.models.msdnet import MSDNetBlocks, MSDNetClassifier, Scales, _DownNormal, _FirstLayer, _Layer, _Transition

msdnet = BACKBONES.get("msdnet")
msdnet_head = IC_TYPES.get("msdnet")

# 7 blocks of one layer each, 16x16 inputs: the finest scale goes after layers 4 and 7 (interval ceil(7/3) = 3).
TINY = {"base": 1, "step": 1, "channels": 4, "growth_rate": 2}
TINY_IC = {"type": "msdnet", "hidden_channels": 8}
# Reference FLOPs (FlopCounterMode: 2 per multiply-add) of the default network, 3x32x32 input, 100 classes: the
# blocks up to classifier k and classifiers 0..k; the last minus classifiers 0..5 is the plain backbone's.
REFERENCE_COSTS = [29934592, 50518016, 73561088, 91944960, 113867776, 133058560, 150975488]


def flops(module, x):
    with FlopCounterMode(display=False) as counter:
        out = module(x)
    return counter.get_total_flops(), out


def tiny_spec(**changes):
    base = dict(backbone="msdnet", backbone_params=TINY, input_shape=(3, 16, 16), num_classes=5, ic=TINY_IC)
    return ModelSpec(**{**base, **changes})


# --- The default configuration is the CIFAR MSDNet of paper B E.2 ----------------------------------------------


def test_default_is_the_cifar_msdnet_with_7_blocks_and_the_reference_sizes():
    built = msdnet((3, 32, 32))
    assert isinstance(built, MSDNetBlocks) and built.final_head == "msdnet"
    kinds = [[type(m).__name__ for m in block] for block in built.blocks]
    assert kinds == [["_FirstLayer", "_Layer", "_Layer", "_Layer", "_Layer"], ["_Layer", "_Layer"],
                     ["_Layer", "_Transition", "_Layer"], ["_Layer", "_Layer"], ["_Layer", "_Layer"],
                     ["_Layer", "_Transition", "_Layer"], ["_Layer", "_Layer"]]
    # Reference: channels of the coarsest scale after each block, parameters of each block and (100 classes)
    # of each classifier; 3,067,960 in all.
    assert built.widths == [160, 208, 140, 188, 236, 152, 200]
    assert [sum(p.numel() for p in b.parameters()) for b in built.blocks] == [
        88688, 42432, 76012, 43152, 50064, 88928, 73440]
    heads = [msdnet_head(w, 100) for w in built.widths]
    assert [sum(p.numel() for p in h.parameters()) for h in heads] == [
        345188, 400484, 322148, 377444, 432740, 335972, 391268]
    assert sum(p.numel() for m in [built.blocks, *heads] for p in m.parameters()) == 3_067_960
    # Reference: FLOPs of exiting at classifier k having evaluated classifiers 0..k on the way (head_costs).
    x, cumulative, costs, shapes = torch.zeros(1, 3, 32, 32), 0, [], []
    built.blocks.eval()
    with torch.no_grad():
        for block, head in zip(built.blocks, heads):
            block_flops, x = flops(block, x)
            head_flops, _ = flops(head.eval(), x)
            cumulative += block_flops + head_flops
            costs.append(cumulative)
            shapes.append([tuple(t.shape[1:]) for t in x])
    assert costs == REFERENCE_COSTS
    assert shapes[0] == [(40, 32, 32), (80, 16, 16), (160, 8, 8)]
    assert shapes[2] == [(70, 16, 16), (140, 8, 8)]
    assert shapes[6] == [(200, 8, 8)]


def test_layer_granularity_splits_the_same_network_into_its_19_modules():
    torch.manual_seed(0)
    per_block = msdnet((3, 32, 32))
    torch.manual_seed(0)
    per_layer = msdnet((3, 32, 32), granularity="layer")
    assert len(per_layer.blocks) == 19
    ends = [4, 6, 9, 11, 13, 16, 18]  # MSDNet's exits, counted in modules (the module docstring's table)
    assert [per_layer.widths[e] for e in ends] == per_block.widths
    a, b = per_block.blocks.state_dict(), per_layer.blocks.state_dict()
    assert len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a.values(), b.values()))
    x = y = torch.randn(1, 3, 32, 32)
    per_block.blocks.eval(), per_layer.blocks.eval()
    with torch.no_grad():
        block_outputs = []
        for block in per_block.blocks:
            x = block(x)
            block_outputs.append(x)
        for index, block in enumerate(per_layer.blocks):
            y = block(y)
            if index in ends:
                assert all(torch.equal(s, t) for s, t in zip(y, block_outputs[ends.index(index)]))


# --- A tiny instance in the multi-exit network --------------------------------------------------------------------


def test_tiny_instance_builds_and_every_block_feeds_its_exit():
    model = build_model(tiny_spec(), seed=0)
    assert len(model.blocks) == 7 and model.head_blocks == list(range(7))
    assert all(isinstance(head, MSDNetClassifier) for head in model.heads.values())
    x = torch.randn(2, 3, 16, 16)
    scales = []
    for block in model.blocks:
        x = block(x)
        assert isinstance(x, Scales)
        scales.append(len(x))
    assert scales == [3, 3, 3, 2, 2, 2, 1]
    outputs = model(torch.randn(2, 3, 16, 16))
    assert len(outputs) == 7 and all(o.shape == (2, 5) for o in outputs)


def test_head_costs_increase_and_the_backbone_is_the_blocks_plus_the_final_classifier():
    model = build_model(tiny_spec(), seed=0)
    costs, backbone = head_costs(model, (3, 16, 16))
    assert len(costs) == 7 and all(a < b for a, b in zip(costs, costs[1:]))
    x, block_total = torch.zeros(1, 3, 16, 16), 0
    model.eval()
    with torch.no_grad():
        for block in model.blocks:
            f, x = flops(block, x)
            block_total += f
        final, _ = flops(model.heads["6"], x)
    assert backbone == block_total + final and costs[-1] > backbone  # the ICs' cost is on top


def test_one_joint_optimiser_step_reaches_every_parameter():
    model = build_model(tiny_spec(), seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-2)
    x, y = torch.randn(4, 3, 16, 16), torch.randint(0, 5, (4,))
    loss = sum(F.cross_entropy(logits, y) for logits in model(x))
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    optimiser.step()
    after = model.state_dict()
    assert all(not torch.equal(after[k], before[k]) for k, p in model.named_parameters())


def test_a_loss_at_head_k_leaves_block_ks_finer_scale_convs_without_gradient():
    """Unlike a chain of single tensors, block k computes finer scales that only later blocks read: a loss at
    head k (branch-wise/separate phases, static heads) leaves them without gradient, so DDP must look for unused
    parameters there (training.loop._has_unused_trainable_parts assumes blocks up to the deepest head are used)."""
    model = build_model(tiny_spec(), seed=0)
    F.cross_entropy(model(torch.randn(2, 3, 16, 16))[2], torch.tensor([0, 1])).backward()
    unused = {".".join(name.split(".")[:4]) for name, p in model.blocks.named_parameters()
              if p.grad is None and int(name.split(".")[0]) <= 2}
    # Tiny: one layer per block, three scales up to block 3. Head 2 reads scale 2 of block 2, which needs
    # scales 1-2 of block 1 and all of block 0: block 2's scale-0 and scale-1 convs and block 1's scale-0 conv
    # (the finer scales of the two blocks before the head) serve later blocks only.
    assert unused == {"1.0.convs.0", "2.0.convs.0", "2.0.convs.1"}


def test_seeded_builds_and_phase1_weights_do_not_depend_on_the_ics():
    every, some, plain = (build_model(s, seed=3) for s in (tiny_spec(), tiny_spec(placement=[1, 4]),
                                                          tiny_spec().plain()))
    states = [backbone_state(m) for m in (every, some, plain)]
    assert all(s.keys() == states[0].keys() and all(torch.equal(s[k], states[0][k]) for k in s) for s in states)
    assert some.head_blocks == [1, 4, 6]
    assert torch.equal(every.heads["4"].linear.weight, some.heads["4"].linear.weight)


def test_static_truncated_model_keeps_the_blocks_up_to_its_head():
    model = build_model(tiny_spec(placement=[2], truncate_at=2), seed=0)
    assert len(model.blocks) == 3 and model.head_blocks == [2]
    (logits,) = model(torch.randn(2, 3, 16, 16))
    assert logits.shape == (2, 5)


def test_head_blocks_on_the_meta_device():
    assert head_blocks(tiny_spec()) == list(range(7))
    assert head_blocks(ModelSpec("msdnet", {}, (3, 32, 32), 100, ic={"type": "msdnet"}, placement=[0, 3])) == [
        0, 3, 6]
    assert head_blocks(ModelSpec("msdnet", {"granularity": "layer"}, (3, 32, 32), 100,
                                 ic={"type": "msdnet"}, placement=list(range(18)))) == list(range(19))


def test_build_model_gives_msdnet_its_own_final_classifier():
    # build_model reads Blocks.final_head; the plain network (phase 1) has it too.
    for spec in (tiny_spec(), tiny_spec().plain()):
        model = build_model(spec, seed=0)
        assert isinstance(model.heads["6"], MSDNetClassifier)
        assert model.heads["6"].linear.in_features == 128  # ic params (hidden_channels 8) are for the ICs only
        assert model(torch.randn(2, 3, 16, 16))[-1].shape == (2, 5)


# --- The classifier and the parameters ----------------------------------------------------------------------------


def test_classifier_reads_the_coarsest_scale_or_a_feature_map():
    head = msdnet_head(6, 3, hidden_channels=4).eval()
    coarse = torch.randn(2, 6, 4, 4)
    expected = head(coarse)
    assert expected.shape == (2, 3)
    assert torch.equal(head(Scales([torch.randn(2, 2, 16, 16), torch.randn(2, 3, 8, 8), coarse])), expected)
    assert torch.equal(head([coarse]), expected)
    with pytest.raises(ValueError, match="feature map"):
        head(torch.randn(2, 5, 6))


def test_classifier_layout_and_init_follow_msdnet():
    head = msdnet_head(10, 7)
    convs = [m for m in head.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride, c.bias) for c in convs] == [
        (10, 128, (3, 3), (2, 2), None), (128, 128, (3, 3), (2, 2), None)]
    assert head.linear.in_features == 128 and torch.count_nonzero(head.linear.bias) == 0


def test_other_ic_types_fail_on_the_scales_with_a_message_naming_msdnet():
    scales = msdnet((3, 16, 16), **TINY).blocks[0](torch.randn(1, 3, 16, 16))
    with pytest.raises(AttributeError, match="msdnet"):
        IC_TYPES.get("linear")(16, 3)(scales)


def test_modules_wire_scales_like_msdnet():
    first = _FirstLayer(3, 4, [1, 2, 4])
    assert [tuple(t.shape) for t in first(torch.zeros(1, 3, 8, 8))] == [(1, 4, 8, 8), (1, 8, 4, 4), (1, 16, 2, 2)]
    keep = _Layer(4, 2, 3, 3, 3, [1, 2, 4], [1, 2, 4], True)
    drop = _Layer(4, 2, 3, 2, 3, [1, 2, 4], [1, 2, 4], True)
    assert isinstance(drop.convs[0], _DownNormal) and len(drop.convs) == 2 and len(keep.convs) == 3
    x = first(torch.zeros(1, 3, 8, 8))
    assert [t.shape[1] for t in keep(x)] == [6, 12, 24] and [t.shape[1] for t in drop(x)] == [12, 24]
    assert [t.shape[1] for t in _Transition(6, 3, 2, 3, [1, 2, 4])(drop(x))] == [6, 12]


@pytest.mark.parametrize(("params", "match"), [
    ({"growth_factor": [1, 2], "bottleneck_factor": [1, 2, 4]}, "equal length"),
    ({"growth_rate": 3, "growth_factor": [1, 1, 2]}, "even"),
    ({"step_mode": "odd"}, "step_mode"),
    ({"prune": "none"}, "prune"),
    ({"reduction": 1.5}, "reduction"),
    ({"num_blocks": 0}, "num_blocks"),
    ({"granularity": "scale"}, "granularity"),
])
def test_bad_parameters_are_refused(params, match):
    with pytest.raises(ValueError, match=match):
        msdnet((3, 32, 32), **params)
