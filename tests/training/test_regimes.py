"""Which parameters train in each phase of each regime (paper B §2), checked by running one real step."""
import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from eebench.models import ModelSpec, build_model
from eebench.training import BACKBONE_PHASE, REGIMES, TrainingConfig
from eebench.training.loop import train_phase
from eebench.training.regimes import IC_PHASE, JOINT_PHASE, Phase, Regime

CNN = {"widths": [4, 6, 8], "strides": [1, 2, 1]}
EXPECTED_PHASES = {
    "backbone": [BACKBONE_PHASE],
    "disjoint": [BACKBONE_PHASE, IC_PHASE],
    "joint": [JOINT_PHASE],
    "mixed": [BACKBONE_PHASE, JOINT_PHASE],
}


def toy_data(n=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return TensorDataset(torch.randn(n, 1, 8, 8, generator=g), torch.randint(0, 3, (n,), generator=g))


def snapshot(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def changed_groups(model, before):
    """Which of blocks / final head / internal heads had any parameter or buffer change."""
    after = model.state_dict()
    changed = {k for k in after if not torch.equal(after[k], before[k])}
    final = f"heads.{len(model.blocks) - 1}."
    return {
        "blocks": any(k.startswith("blocks.") for k in changed),
        "final_head": any(k.startswith(final) for k in changed),
        "internal_heads": any(k.startswith("heads.") and not k.startswith(final) for k in changed),
    }


def test_registered_regimes_are_the_papers_phase_lists():
    assert {name: list(REGIMES.get(name).phases) for name in EXPECTED_PHASES} == EXPECTED_PHASES
    assert [n for n in REGIMES.names() if REGIMES.get(n).reuses_backbone] == ["disjoint", "mixed"]


def test_phase_rejects_unknown_groups_and_loss_heads():
    with pytest.raises(ValueError, match="unknown parameter groups"):
        Phase("x", trainable=("decoder",), loss_heads="all")
    with pytest.raises(ValueError, match="loss_heads"):
        Phase("x", trainable=("ics",), loss_heads="some")


@pytest.mark.parametrize("regime", REGIMES.names())
def test_each_phase_trains_exactly_its_groups(regime):
    expected = {
        "backbone": {"blocks": True, "final_head": True, "internal_heads": False},
        "ics": {"blocks": False, "final_head": False, "internal_heads": True},
        "joint": {"blocks": True, "final_head": True, "internal_heads": True},
    }
    torch.manual_seed(0)
    model = build_model(ModelSpec("cnn", CNN, (1, 8, 8), 3))
    config = TrainingConfig(max_epochs=1, patience=1, batch_size=8, augment=False)
    for phase in REGIMES.get(regime).phases:
        before = snapshot(model)
        # Scores that always improve, so the trained weights are the ones kept.
        train_phase(model, phase, toy_data(), toy_data(8, 1), False, config, torch.device("cpu"))
        assert changed_groups(model, before) == expected[phase.name], phase.name


def test_frozen_backbone_keeps_its_batch_norm_statistics():
    torch.manual_seed(0)
    model = build_model(ModelSpec("cnn", CNN, (1, 8, 8), 3))
    before = {k: v.clone() for k, v in model.state_dict().items() if "running" in k}
    config = TrainingConfig(max_epochs=2, patience=5, batch_size=8, augment=False)
    train_phase(model, IC_PHASE, toy_data(), toy_data(8, 1), False, config, torch.device("cpu"))
    after = model.state_dict()
    assert before and all(torch.equal(after[k], v) for k, v in before.items())


def test_loss_heads_per_phase():
    assert BACKBONE_PHASE.loss_head_indices(4) == [3]
    assert IC_PHASE.loss_head_indices(4) == [0, 1, 2]
    assert JOINT_PHASE.loss_head_indices(4) == [0, 1, 2, 3]


def test_phases_to_run_skips_the_shared_backbone_phase():
    mixed = REGIMES.get("mixed")
    assert mixed.phases_to_run(from_backbone=True) == (JOINT_PHASE,)
    assert mixed.phases_to_run(from_backbone=False) == (BACKBONE_PHASE, JOINT_PHASE)
    assert not Regime((BACKBONE_PHASE,)).reuses_backbone
