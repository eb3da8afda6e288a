"""GPF (Liao et al., 2021) as in paper B's code (architectures/early_exits/gpf.py): merged IC logits, detached
past states, the imitation loss, costs, and how the variant builds."""
import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from eebench.models import ModelSpec, backbone_state, build_model, head_costs
from eebench.models.gpf import GPFMerge

CNN = {"widths": [16, 32, 64, 64], "strides": [1, 2, 1, 2]}
GPF = {"type": "gpf", "state_dim": 4}


def spec(**overrides):
    base = dict(backbone="cnn", backbone_params=CNN, input_shape=(1, 8, 8), num_classes=10, ic=GPF)
    return ModelSpec(**{**base, **overrides})


def set_weights(merge, imitators, reduction, gate, balance):
    with torch.no_grad():
        for module, (weight, bias) in zip(merge.imitators, imitators):
            module[0].weight.copy_(torch.tensor(weight))
            module[0].bias.copy_(torch.tensor(bias))
        merge.reduction_weight.copy_(torch.tensor(reduction[0]))
        merge.reduction_bias.copy_(torch.tensor(reduction[1]))
        merge.gate_weight.copy_(torch.tensor(gate[0]))
        merge.gate_bias.copy_(torch.tensor(gate[1]))
        merge.balance[1].weight.copy_(torch.tensor(balance[0]))
        merge.balance[1].bias.copy_(torch.tensor(balance[1]))


def test_two_ics_by_hand():
    merge = GPFMerge(num_ics=2, state_dim=2, num_classes=2)
    set_weights(
        merge,
        imitators=[([[1.0, 0.0], [0.0, 1.0]], [0.0, -3.0])],  # imitated s1 = relu(s0 + [0, -3])
        reduction=([[[1.0, 0.0], [0.0, 1.0]], [[0.0, 1.0], [1.0, 0.0]]], [[0.0, 0.0], [0.0, 0.0]]),
        gate=(np.zeros((2, 2, 2), dtype=np.float32), [[0.0, 0.0], [0.0, 0.0]]),
        balance=([[5.0, 7.0], [-1.0, 2.0]], [0.0, math.log(3.0)]),  # gate 0 -> relu 0 -> balance (1/2, 3/4)
    )
    s0, s1 = torch.tensor([[1.0, 2.0]]), torch.tensor([[3.0, 3.0]])
    (ic0, ic1), loss = merge([s0, s1])
    # IC 0: imitated s1 = [1, 0]; past+current = s0 @ I = [1, 2]; future = [1, 0] @ swap = [0, 1].
    assert torch.allclose(ic0, torch.tensor([[0.5 * 1 + 0.5 * 0, 0.75 * 2 + 0.25 * 1]]))
    # IC 1 (last): no future term, still gated: balance * (s0 @ I + s1 @ swap) = (1/2, 3/4) * [4, 5].
    assert torch.allclose(ic1, torch.tensor([[0.5 * 4, 0.75 * 5]]))
    # Imitation loss: 1 - cos([1, 0], [3, 3]), one IC with a future.
    assert torch.isclose(loss, torch.tensor(1 - 1 / math.sqrt(2)))
    assert torch.equal(merge.exit_logits([s0]), ic0) and torch.equal(merge.exit_logits([s0, s1]), ic1)


def reference(states, merge):
    """The formula of gpf.py:87-104 and 120-127 in numpy, one IC at a time."""
    relu = lambda v: np.maximum(v, 0.0)  # noqa: E731
    sigmoid = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    params = {k: v.detach().numpy().astype(np.float64) for k, v in merge.named_parameters()}
    wr, br, wg, bg = (params[k] for k in ("reduction_weight", "reduction_bias", "gate_weight", "gate_bias"))
    m = len(states)
    logits = []
    for i in range(m):
        imitated = [relu(states[i] @ params[f"imitators.{j - 1}.0.weight"].T + params[f"imitators.{j - 1}.0.bias"])
                    for j in range(i + 1, m)]
        xs = states[: i + 1] + imitated
        past_current = sum(xs[j] @ wr[j] + br[j] for j in range(i + 1))
        future = sum((xs[j] @ wr[j] + br[j] for j in range(i + 1, m)), np.zeros_like(past_current))
        gate = np.mean([xs[j] @ wg[j] + bg[j] for j in range(i + 1)], axis=0)
        balance = sigmoid(relu(gate) @ params["balance.1.weight"].T + params["balance.1.bias"])
        logits.append(balance * past_current + (1 - balance) * future)
    return logits


def test_three_ics_match_the_formula_and_the_loss_matches_cosine_similarity():
    torch.manual_seed(0)
    merge = GPFMerge(num_ics=3, state_dim=2, num_classes=3)
    states = [torch.rand(4, 2) for _ in range(3)]
    logits, loss = merge(states)
    for got, expected in zip(logits, reference([s.double().numpy() for s in states], merge)):
        assert np.allclose(got.detach().numpy(), expected, atol=1e-6)
    imitate = lambda j, i: merge.imitators[j - 1](states[i])  # noqa: E731
    # IC 0 imitates states 1 and 2 (rows of both averaged together), IC 1 imitates state 2.
    ic0 = torch.cat([1 - F.cosine_similarity(imitate(j, 0), states[j]) for j in (1, 2)]).mean()
    ic1 = (1 - F.cosine_similarity(imitate(2, 1), states[2])).mean()
    assert torch.isclose(loss, (ic0 + ic1) / 2)


def test_a_single_ic_has_no_imitators_and_zero_imitation_loss():
    merge = GPFMerge(num_ics=1, state_dim=2, num_classes=3)
    assert len(merge.imitators) == 0
    _, loss = merge([torch.rand(2, 2)])
    assert loss.item() == 0.0


def grads(loss, modules):
    params = [p for m in modules for p in m.parameters()]
    got = torch.autograd.grad(loss, params, allow_unused=True, retain_graph=True)
    return [g is not None and bool(g.abs().sum() > 0) for g in got]


def test_past_states_are_detached_the_current_one_is_not():
    model = build_model(spec(), seed=0)
    x = torch.randn(3, 1, 8, 8)
    heads, merge = model.heads, model.merge
    # IC 1's logits: no gradient into state head 0 (past), gradient into state head 1 (current) and into
    # imitator 2 (IC 1 imitates state 2 from its own state); imitator 1 is not used at IC 1.
    ic1 = model(x)[1].sum()
    assert grads(ic1, [heads["0"]]) == [False, False]
    assert grads(ic1, [heads["1"]]) == [True, True]
    assert grads(ic1, [merge.imitators[1], merge.imitators[0]]) == [True, True, False, False]
    # The last IC's logits use no imitation at all.
    ic2 = model(x)[2].sum()
    assert not any(grads(ic2, [merge.imitators, heads["0"], heads["1"]]))
    # The imitation loss trains the imitating state heads, not the imitated ones (those are detached).
    model(x)
    assert all(grads(model.auxiliary_loss, [heads["0"], merge.imitators]))
    assert not any(grads(model.auxiliary_loss, [heads["2"], merge.balance]))


def test_model_forward_merges_ics_and_keeps_the_final_classifier_plain():
    model = build_model(spec(), seed=1).eval()
    x = torch.randn(2, 1, 8, 8)
    outputs = model(x)
    features, states = x, []
    for index, block in enumerate(model.blocks):
        features = block(features)
        if index < 3:
            states.append(model.heads[str(index)](features))
    assert [tuple(o.shape) for o in outputs] == [(2, 10)] * 4
    with torch.no_grad():
        expected = reference([s.double().numpy() for s in states], model.merge)
        for got, want in zip(outputs[:3], expected):
            assert np.allclose(got.numpy(), want, atol=1e-5)
        assert torch.equal(outputs[3], model.heads["3"](features))
        assert isinstance(model.heads["3"][1], torch.nn.Linear) and len(model.heads["3"]) == 2
        _, expected_loss = model.merge(states)
    assert torch.isclose(model.auxiliary_loss, expected_loss)


def test_auxiliary_loss_is_none_without_a_merge_module():
    linear = build_model(spec(ic={"type": "linear"}))
    linear(torch.zeros(1, 1, 8, 8))
    assert linear.merge is None and linear.auxiliary_loss is None
    plain = build_model(spec().plain())
    assert plain.merge is None and plain.head_blocks == [3]
    assert build_model(spec(placement=[])).merge is None  # no IC, nothing to merge


def test_merge_cost_is_counted_at_each_ic():
    # Per IC i of m = 3 (d = 4 state, C = 10 classes): state head 2 * in * d; merge: imitators of the later
    # ICs 2 * (m-1-i) * d * d, projections of all m positions 2 * m * d * C, gate projections of positions
    # 0..i 2 * (i+1) * d * C, balance Linear(C, C) 2 * C * C. The final classifier is the plain one.
    d, c, m = 4, 10, 3
    block = [2 * 64 * 16 * 1 * 9, 2 * 16 * 32 * 16 * 9, 2 * 16 * 64 * 32 * 9, 2 * 4 * 64 * 64 * 9]
    widths = [16, 32, 64, 64]
    head = [2 * widths[i] * d + 2 * (m - 1 - i) * d * d + 2 * m * d * c + 2 * (i + 1) * d * c + 2 * c * c
            for i in range(m)] + [2 * 64 * c]
    costs, backbone = head_costs(build_model(spec()), (1, 8, 8))
    assert costs == list(np.cumsum(np.add(block, head)))
    assert backbone == sum(block) + 2 * 64 * c


def test_seeded_build_is_deterministic_and_shares_the_backbone_with_linear_ics():
    first, second = build_model(spec(), seed=3).state_dict(), build_model(spec(), seed=3).state_dict()
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)
    gpf = backbone_state(build_model(spec(), seed=3))
    linear = backbone_state(build_model(spec(ic={"type": "linear"}), seed=3))
    assert gpf.keys() == linear.keys() and all(torch.equal(gpf[k], linear[k]) for k in gpf)
    other = build_model(spec(), seed=4).state_dict()
    assert not torch.equal(first["merge.reduction_weight"], other["merge.reduction_weight"])


def test_merge_module_trains_with_the_ics_only():
    from eebench.training.loop import _parts
    from eebench.training.regimes import BACKBONE_PHASE, IC_PHASE_FROZEN_FINAL

    model = build_model(spec())
    for phase, trains in ((IC_PHASE_FROZEN_FINAL, True), (BACKBONE_PHASE, False)):
        (plan,) = phase.plans(model.head_blocks, len(model.blocks))
        parts = _parts(model, plan)
        assert dict((id(m), on) for m, on in parts)[id(model.merge)] is trains
        ids = [id(p) for module, _ in parts for p in module.parameters()]
        assert len(ids) == len(set(ids)) == len(list(model.parameters()))


def test_no_static_form_at_an_ic():
    with pytest.raises(ValueError, match="no static form"):
        build_model(spec(placement=[1], truncate_at=1))
    assert build_model(spec(truncate_at=3)).merge is None  # at the last block: the plain backbone


def test_dropout_acts_in_training_only():
    torch.manual_seed(0)
    merge = GPFMerge(num_ics=2, state_dim=8, num_classes=3, dropout=0.5)
    states = [torch.rand(4, 8) for _ in range(2)]
    merge.eval()
    eval_logits, _ = merge(states)
    clean = GPFMerge(num_ics=2, state_dim=8, num_classes=3)
    clean.load_state_dict(merge.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(eval_logits, clean.eval()(states)[0]))
    merge.train()
    assert not torch.equal(merge(states)[0][0], eval_logits[0])
