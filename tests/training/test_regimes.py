"""Which parameters train and which losses count, step by step, in each phase of each regime (paper B §2 and
Appendix A), checked by running real steps of the one training loop."""
import pytest
import torch
from torch.utils.data import TensorDataset

from eebench import torch_eager
from eebench.models import ModelSpec, build_model
from eebench.training import BACKBONE_PHASE, REGIMES, TrainingConfig
from eebench.training import losses as step_losses
from eebench.training.loop import train_phase, train_phases
from eebench.training.regimes import IC_PHASE, JOINT_PHASE, Phase, Regime, expand

CNN = {"widths": [4, 6, 8], "strides": [1, 2, 1]}
ALL = {"b0", "b1", "b2", "h0", "h1", "h2"}
BACKBONE = ({"b0", "b1", "b2", "h2"}, (2,))

# Per regime: per phase, per step (two steps an epoch, one epoch a phase): (parts receiving gradients, heads
# whose losses are summed). b<j> = block j, h<i> = head i (h2 = the final classifier).
EXPECTED_STEPS = {
    "backbone": {"backbone": [BACKBONE, BACKBONE]},
    "disjoint": {"backbone": [BACKBONE] * 2, "ics": [({"h0", "h1"}, (0, 1))] * 2},
    "disjoint_trained_final": {"backbone": [BACKBONE] * 2, "ics": [({"h0", "h1", "h2"}, (0, 1, 2))] * 2},
    "joint": {"joint": [(ALL, (0, 1, 2))] * 2},
    "mixed": {"backbone": [BACKBONE] * 2, "joint": [(ALL, (0, 1, 2))] * 2},
    "branchwise": {"branch1": [({"b0", "h0"}, (0,))] * 2, "branch2": [({"b1", "h1"}, (1,))] * 2,
                   "branch3": [({"b2", "h2"}, (2,))] * 2},
    "separate": {"separate1": [({"b0", "h0"}, (0,))] * 2, "separate2": [({"b0", "b1", "h0", "h1"}, (0, 1))] * 2,
                 "separate3": [(ALL, (0, 1, 2))] * 2},
    "alternating": {"alternating": [BACKBONE, (ALL, (0, 1, 2))]},
    "mixed_gradual": {"backbone": [BACKBONE] * 2, "gradual2": [({"b0", "b1", "b2", "h1", "h2"}, (1, 2))] * 2,
                      "gradual3": [(ALL, (0, 1, 2))] * 2},
}
# What each phase may train at all (requires_grad), beyond what gets gradients.
TRAINABLE = {"separate1": ALL, "separate2": ALL, "gradual2": ALL, "alternating": ALL}


def toy_data(n=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return TensorDataset(torch.randn(n, 1, 8, 8, generator=g), torch.randint(0, 3, (n,), generator=g))


def snapshot(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def part_of(name):
    kind, index = name.split(".")[:2]
    return ("b" if kind == "blocks" else "h") + str(["0", "1", "2"].index(index) if kind == "heads" else index)


class Recorder:
    """Records, at every optimiser step, the phase's optimiser, its learning rate, the parts with a non-zero
    gradient and with requires_grad, and which heads' outputs the loss used."""

    def __init__(self, monkeypatch, model):
        self.steps, self.used = [], []
        outputs = []
        real_forward = model.forward

        def forward(x):
            outputs[:] = real_forward(x)
            return list(outputs)

        model.forward = forward
        real_loss = step_losses.loss_function

        def loss_function(task):
            criterion = real_loss(task)

            def recording(logits, y):
                self.used.append(next(i for i, o in enumerate(outputs) if o is logits))
                return criterion(logits, y)
            return recording

        monkeypatch.setattr(step_losses, "loss_function", loss_function)
        recorder = self
        real_step = torch_eager.AdamW.step

        def step(optimizer, *args, **kwargs):
            named = list(model.named_parameters())
            recorder.steps.append({
                "optimizer": optimizer, "lr": optimizer.param_groups[0]["lr"],
                "grads": {part_of(n) for n, p in named if p.grad is not None and p.grad.abs().sum() > 0},
                "trainable": {part_of(n) for n, p in named if p.requires_grad},
                "losses": tuple(sorted(recorder.used)),
            })
            recorder.used.clear()
            return real_step(optimizer, *args, **kwargs)

        monkeypatch.setattr(torch_eager.AdamW, "step", step)


def test_registered_regimes_are_the_ones_tested():
    assert set(REGIMES.names()) == set(EXPECTED_STEPS)
    assert [n for n in REGIMES.names() if REGIMES.get(n).reuses_backbone] == [
        "disjoint", "disjoint_trained_final", "mixed", "mixed_gradual"]
    assert [n for n in REGIMES.names() if not REGIMES.get(n).uses_ics] == ["backbone"]


@pytest.mark.parametrize("regime", sorted(EXPECTED_STEPS))
def test_each_step_trains_exactly_its_parts_on_its_losses(monkeypatch, regime):
    torch.manual_seed(0)
    model = build_model(ModelSpec("cnn", CNN, (1, 8, 8), 3), seed=0)
    recorder = Recorder(monkeypatch, model)
    config = TrainingConfig(max_epochs=1, patience=1, batch_size=8, augment=False, lr=0.01, restart_epochs=2)
    history = train_phases(model, REGIMES.get(regime).phases, toy_data(), toy_data(8, 1), "single_label", config, 0,
                           torch.device("cpu"))
    expected = EXPECTED_STEPS[regime]
    assert [h["phase"] for h in history] == list(expected)
    steps = iter(recorder.steps)
    optimizers = []
    for phase, phase_steps in expected.items():
        for index, (parts, losses) in enumerate(phase_steps):
            step = next(steps)
            assert (step["grads"], step["losses"]) == (parts, losses), (phase, index)
            assert step["trainable"] == TRAINABLE.get(phase, parts), (phase, index)
            if index == 0:
                # A new optimiser, and a new scheduler: the phase starts again at the full learning rate.
                assert all(step["optimizer"] is not o for o in optimizers) and step["lr"] == pytest.approx(0.01), phase
                optimizers.append(step["optimizer"])
            else:
                assert step["optimizer"] is optimizers[-1] and step["lr"] < 0.01
    assert next(steps, None) is None


def test_alternating_keeps_alternating_across_epochs(monkeypatch):
    model = build_model(ModelSpec("cnn", CNN, (1, 8, 8), 3), seed=0)
    recorder = Recorder(monkeypatch, model)
    config = TrainingConfig(max_epochs=2, patience=5, batch_size=8, augment=False)
    train_phases(model, REGIMES.get("alternating").phases, toy_data(24), toy_data(8, 1), "single_label", config, 0,
                 torch.device("cpu"))
    assert [s["losses"] for s in recorder.steps] == [(2,), (0, 1, 2)] * 3  # 3 steps an epoch, 2 epochs


def test_per_head_phases_follow_the_placement():
    # Heads after blocks 1 and 3 of five: branch-wise trains blocks 0-1 with head 0, then blocks 2-4 with head 1.
    [branch] = REGIMES.get("branchwise").phases
    plans = branch.plans([1, 4], 5)
    assert [(p.name, p.blocks, p.heads, p.loss_sets) for p in plans] == [
        ("branch1", (0, 1), (0,), ((0,),)), ("branch2", (2, 3, 4), (1,), ((1,),))]
    # The other reading of branch-wise, as a phase: the whole backbone up to head i trains with it.
    prefix = Phase("prefix", trainable=("blocks_to_head", "head"), loss_heads="head", per_head=True)
    assert [(p.blocks, p.heads) for p in prefix.plans([1, 4], 5)] == [((0, 1), (0,)), ((0, 1, 2, 3, 4), (1,))]
    gradual = expand(REGIMES.get("mixed_gradual").phases, [0, 1, 2, 3], 4)
    assert [(p.name, p.loss_sets) for p in gradual] == [
        ("backbone", ((3,),)), ("gradual2", ((2, 3),)), ("gradual3", ((1, 2, 3),)), ("gradual4", ((0, 1, 2, 3),))]


def test_phase_rejects_unknown_parts_and_loss_heads():
    with pytest.raises(ValueError, match="unknown parts"):
        Phase("x", trainable=("decoder",), loss_heads="all")
    with pytest.raises(ValueError, match="loss_heads"):
        Phase("x", trainable=("ics",), loss_heads="some")
    with pytest.raises(ValueError, match="per_head"):
        Phase("x", trainable=("segment",), loss_heads="all")


def test_frozen_backbone_keeps_its_batch_norm_statistics():
    torch.manual_seed(0)
    model = build_model(ModelSpec("cnn", CNN, (1, 8, 8), 3))
    before = {k: v.clone() for k, v in model.state_dict().items() if "running" in k}
    config = TrainingConfig(max_epochs=2, patience=5, batch_size=8, augment=False)
    train_phase(model, IC_PHASE, toy_data(32), toy_data(8, 1), "single_label", config, torch.device("cpu"))
    after = model.state_dict()
    assert before and all(torch.equal(after[k], v) for k, v in before.items())


def test_phases_to_run_skips_the_shared_backbone_phase():
    mixed = REGIMES.get("mixed")
    assert mixed.phases_to_run(from_backbone=True) == (JOINT_PHASE,)
    assert mixed.phases_to_run(from_backbone=False) == (BACKBONE_PHASE, JOINT_PHASE)
    assert not Regime((BACKBONE_PHASE,)).reuses_backbone
