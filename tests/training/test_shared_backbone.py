"""A phase-1 run is shared between variants with different ICs: training the `backbone` regime gives the plain
network whatever ICs the request names, and a later phase of any IC variant starts from it exactly."""
import numpy as np
import pytest
import torch

from eebench.data import prepare_dataset
from eebench.io import read_checkpoint
from eebench.models import ModelSpec, backbone_state, build_model
from eebench.steps import train_model, train_static_head

CNN = {"backbone": "cnn", "params": {"widths": [8, 8, 8], "strides": [1, 2, 1]}}
LINEAR = {**CNN, "ic": {"type": "linear"}, "placement": None}
MLP = {**CNN, "ic": {"type": "mlp", "hidden": [12]}, "placement": [1]}
TRAINING = {"batch_size": 128, "max_epochs": 1, "patience": 1, "augment": False}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("shared") / "digits.npz"
    prepare_dataset("digits", {"split_seed": 0}, path)
    return path


def load(path):
    return read_checkpoint(path, "a test checkpoint")


def test_phase1_is_the_same_plain_network_for_every_ic_variant(data, tmp_path):
    train_model(data, LINEAR, TRAINING, "backbone", 0, tmp_path / "a.pt")
    train_model(data, MLP, TRAINING, "backbone", 0, tmp_path / "b.pt")
    a, b = load(tmp_path / "a.pt"), load(tmp_path / "b.pt")
    assert a["spec"]["placement"] == [] and a["spec"]["ic"] == {"type": "linear"}
    assert a["spec"] == b["spec"]
    assert a["state_dict"].keys() == b["state_dict"].keys()
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])


@pytest.mark.parametrize("regime, frozen_prefix", [("disjoint_trained_final", "blocks."), ("disjoint", "")])
def test_a_variant_starts_from_the_shared_phase1_and_disjoint_keeps_it(data, tmp_path, regime, frozen_prefix):
    train_model(data, LINEAR, TRAINING, "backbone", 0, tmp_path / "backbone.pt")
    train_model(data, MLP, TRAINING, regime, 0, tmp_path / "disjoint.pt", init=str(tmp_path / "backbone.pt"),
                meta={"model": "cnn_mlp", "dataset": "digits"})
    phase1, disjoint = load(tmp_path / "backbone.pt"), load(tmp_path / "disjoint.pt")
    assert disjoint["meta"] == {"model": "cnn_mlp", "dataset": "digits", "backbone": "cnn", "regime": regime,
                                "seed": 0}
    # The phase-1 epochs travel with the run (they count towards its training time, paper B §4.7).
    assert disjoint["init_history"] == phase1["history"] and disjoint["init_history"]
    model = build_model(ModelSpec.from_dict(disjoint["spec"]))
    model.load_state_dict(disjoint["state_dict"])
    assert model.head_blocks == [1, 2]
    # Disjoint freezes the blocks and the final classifier (paper B's tables and code); eq. (3) read literally
    # trains the final classifier with the ICs.
    state = backbone_state(model)
    assert state.keys() == phase1["state_dict"].keys()
    frozen = [k for k in state if k.startswith(frozen_prefix)]
    assert all(torch.equal(state[k], phase1["state_dict"][k]) for k in frozen)
    final = [k for k in state if k.startswith("heads.")]
    assert (regime == "disjoint_trained_final") == any(not torch.equal(state[k], phase1["state_dict"][k])
                                                       for k in final)


def test_init_from_another_network_is_refused(data, tmp_path):
    other = {**CNN, "params": {"widths": [8, 8, 4], "strides": [1, 2, 1]}}
    train_model(data, other, TRAINING, "backbone", 0, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="other.pt: not the plain backbone of the requested model"):
        train_model(data, MLP, TRAINING, "mixed", 0, tmp_path / "mixed.pt", init=str(tmp_path / "other.pt"))
    assert not (tmp_path / "mixed.pt").exists()


def test_static_head_at_the_last_block_is_the_phase1_run(data, tmp_path):
    train_model(data, MLP, TRAINING, "backbone", 0, tmp_path / "backbone.pt")
    train_static_head(data, MLP, TRAINING, 2, 0, tmp_path / "static2.pt")
    train_static_head(data, MLP, TRAINING, 1, 0, tmp_path / "static1.pt")
    phase1, static2, static1 = (load(tmp_path / f"{n}.pt") for n in ("backbone", "static2", "static1"))
    assert static2["spec"] == phase1["spec"]
    assert all(torch.equal(static2["state_dict"][k], phase1["state_dict"][k]) for k in phase1["state_dict"])
    assert static1["spec"]["truncate_at"] == 1 and static1["meta"]["block"] == 1
    assert build_model(ModelSpec.from_dict(static1["spec"])).head_blocks == [1]
    # The workflow passes the static form of the network (eebench.config.static_settings): the same model.
    train_static_head(data, {**MLP, "placement": [1], "truncate_at": 1}, TRAINING, 1, 0, tmp_path / "again.pt")
    again = load(tmp_path / "again.pt")
    assert again["spec"] == static1["spec"]
    assert all(torch.equal(again["state_dict"][k], static1["state_dict"][k]) for k in static1["state_dict"])
    with pytest.raises(ValueError, match="--block 0: the model has heads after blocks \\[1, 2\\] only"):
        train_static_head(data, MLP, TRAINING, 0, 0, tmp_path / "static0.pt")


def test_cached_costs_from_the_checkpoint_equal_counted_costs(data, tmp_path):
    """Training records the FLOPs in the checkpoint; the cache must be the same as when they are counted."""
    from eebench.io import save_torch
    from eebench.steps import cache_logits

    train_static_head(data, MLP, TRAINING, 1, 0, tmp_path / "static.pt")
    saved = load(tmp_path / "static.pt")
    save_torch(tmp_path / "no_costs.pt", {k: v for k, v in saved.items() if k != "costs"})
    cache_logits(str(tmp_path / "static.pt"), str(data), str(tmp_path / "a.npz"))
    cache_logits(str(tmp_path / "no_costs.pt"), str(data), str(tmp_path / "b.npz"))
    with np.load(tmp_path / "a.npz") as a, np.load(tmp_path / "b.npz") as b:
        assert a["head_flops"].tolist() == b["head_flops"].tolist() == saved["costs"]["head_flops"]
        # A static model's 100% budget is the full backbone's: blocks 0-2 and the final classifier.
        assert a["backbone_flops"] == b["backbone_flops"] > a["head_flops"][0]


@pytest.mark.parametrize("step", ["train_model", "train_static_head"])
def test_the_training_jobs_cache_equals_caching_its_checkpoint(data, tmp_path, step):
    """The workflow's training jobs write the logit cache themselves (--logits); it must be the cache
    `cache-logits` makes from the written checkpoint, array for array."""
    from eebench.steps import cache_logits

    if step == "train_model":
        train_model(data, LINEAR, TRAINING, "joint", 0, tmp_path / "m.pt", logits=tmp_path / "in_job.npz")
    else:
        train_static_head(data, MLP, TRAINING, 1, 0, tmp_path / "m.pt", logits=tmp_path / "in_job.npz")
    cache_logits(str(tmp_path / "m.pt"), str(data), str(tmp_path / "from_checkpoint.npz"))
    with np.load(tmp_path / "in_job.npz") as a, np.load(tmp_path / "from_checkpoint.npz") as b:
        assert sorted(a.files) == sorted(b.files)
        for key in a.files:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
        assert a["val_logits"].shape[0] == (3 if step == "train_model" else 1)


def test_a_softmax_multi_label_model_trains_on_the_label_distribution_and_caches_its_task(data, tmp_path):
    from eebench.exits.sweep import load_cache
    from eebench.training import losses

    composite = tmp_path / "composite.npz"
    prepare_dataset("digits_composite", {"split_seed": 0, "train_samples": 200, "val_samples": 50,
                                         "test_samples": 50}, composite)
    soft = {**LINEAR, "task": "multi_label_softmax"}
    train_model(composite, soft, TRAINING, "joint", 0, tmp_path / "m.pt", logits=tmp_path / "c.npz")
    assert load(tmp_path / "m.pt")["task"] == "multi_label_softmax"
    cache = load_cache(tmp_path / "c.npz")
    assert cache["task"].name == "multi_label_softmax" and cache["test_labels"].shape == (50, 10)
    assert losses.loss_function("multi_label_softmax") is not None
    with pytest.raises(ValueError, match="task 'multi_label_softmax' cannot learn .*digits.npz's labels"):
        train_model(data, soft, TRAINING, "joint", 0, tmp_path / "x.pt")
