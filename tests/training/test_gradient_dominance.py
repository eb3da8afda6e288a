"""Gradient dominance (paper B §3.1) logged by the one training loop: off by default, on per setting, and never
changing what is trained."""
import pytest
import torch

from eebench.data import prepare_dataset
from eebench.io import read_checkpoint
from eebench.steps import train_model

MODEL = {"backbone": "cnn", "params": {"widths": [8, 16, 16], "strides": [1, 2, 1]}, "ic": {"type": "linear"}}
TRAINING = {"batch_size": 64, "max_epochs": 2, "patience": 2, "restart_epochs": 2, "lr": 0.01, "augment": False}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "digits.npz"
    prepare_dataset("digits", {"split_seed": 0}, path)
    return str(path)


def trained(data, path, regime, **training):
    torch.set_num_threads(1)
    train_model(data, MODEL, {**TRAINING, **training}, regime, seed=0, out=str(path))
    return read_checkpoint(path, "a checkpoint")


def test_logging_gradient_dominance_never_changes_the_trained_model(data, tmp_path):
    plain = trained(data, tmp_path / "plain.pt", "mixed")
    logged = trained(data, tmp_path / "logged.pt", "mixed", gradient_dominance_every=5)
    for key, value in plain["state_dict"].items():
        assert torch.equal(value, logged["state_dict"][key]), key
    assert not any("gradient_dominance" in epoch for epoch in plain["history"])
    records = {epoch["phase"]: [] for epoch in logged["history"]}
    for epoch in logged["history"]:
        records[epoch["phase"]] += epoch.get("gradient_dominance", [])
    # Mixed = phase 1 (the final head alone: its gradient is the total, GD exactly 1) then joint (three heads:
    # ICs after blocks 0 and 1, the final classifier after block 2).
    backbone, joint = records["backbone"], records["joint"]
    steps_per_epoch = -(-1078 // 64)  # digits' training split at split_seed 0 has 1078 images
    assert [r["step"] for r in backbone][:4] == [0, 5, 10, 15] and len(joint) == len(backbone)
    assert all(r["heads"] == [2] and r["gd"] == [1.0] for r in backbone)
    assert all(r["heads"] == [0, 1, 2] and len(r["gd"]) == 3 for r in joint)
    assert all(-1.0 <= g <= 1.0 for r in joint for g in r["gd"])
    assert joint[-1]["step"] < 2 * steps_per_epoch


def test_a_phase_that_freezes_the_backbone_logs_nothing(data, tmp_path):
    # Disjoint: phase 2 trains the ICs on the frozen backbone, so there is no shared gradient to compare.
    logged = trained(data, tmp_path / "disjoint.pt", "disjoint", gradient_dominance_every=5)
    phases = {epoch["phase"]: "gradient_dominance" in epoch for epoch in logged["history"]}
    assert phases.pop("backbone") and len(phases) == 1 and not any(phases.values()), phases


def test_a_negative_period_is_refused_naming_the_key(data, tmp_path):
    with pytest.raises(ValueError, match="gradient_dominance_every"):
        trained(data, tmp_path / "bad.pt", "joint", gradient_dominance_every=-1)
