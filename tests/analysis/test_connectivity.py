"""Mode connectivity (paper B §3.2, eq. 4): permutation specs, weight matching, the interpolation path and its
BatchNorm recomputation, on hand-made cases."""
import itertools

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from eebench.analysis.checkpoint import head_logits, recompute_batch_norm
from eebench.analysis.connectivity import connectivity_path, interpolate
from eebench.analysis.permutation import (
    HEAD_SPECS,
    PERMUTATION_SPECS,
    apply_permutation,
    permutation_spec,
    permute_axis,
    random_permutations,
    weight_matching,
)
from eebench.models import ModelSpec, build_model
from eebench.tasks import TASKS

# Tiny instances of every backbone with a spec (resnet20 on 8x8 inputs: the same 9 blocks and widths).
BACKBONES = {
    "cnn": ({"widths": [4, 6, 8], "strides": [1, 2, 1]}, (1, 8, 8)),
    "resnet20": ({}, (3, 8, 8)),
    "resnet20_B": ({"shortcut": "B"}, (3, 8, 8)),
}
ICS = {"linear": {"type": "linear"}, "mlp": {"type": "mlp", "hidden": [5, 7]}, "sdn": {"type": "sdn", "pool_size": 2}}


def test_every_registered_spec_is_exercised_here():
    assert {name.split("_")[0] for name in BACKBONES} == set(PERMUTATION_SPECS.names())
    assert set(ICS) == set(HEAD_SPECS.names())


def trained_like(backbone: str, ic: str, seed: int = 0) -> tuple[nn.Module, ModelSpec]:
    """A model whose BN layers have non-trivial affine parameters and running statistics, as after training (at
    initialisation they are 1, 0, 0, 1 for every channel, which no matching can tell apart)."""
    params, shape = BACKBONES[backbone]
    spec = ModelSpec(backbone.split("_")[0], params, shape, 3, ic=ICS[ic])
    model = build_model(spec, seed=seed)
    generator = torch.Generator().manual_seed(seed + 100)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.weight.data = torch.rand(module.weight.shape, generator=generator) + 0.5
            module.bias.data = 0.1 * torch.randn(module.bias.shape, generator=generator)
            module.running_mean = 0.1 * torch.randn(module.running_mean.shape, generator=generator)
            module.running_var = torch.rand(module.running_var.shape, generator=generator) + 0.5
    return model.eval(), spec


def outputs(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return torch.stack(model.eval()(x))


def permuted_copy(model: nn.Module, spec: ModelSpec, seed: int) -> tuple[nn.Module, object, dict]:
    permutations = permutation_spec(model, spec.backbone, spec.ic["type"])
    perms = random_permutations(permutations, seed)
    copy = build_model(spec)
    copy.load_state_dict(apply_permutation(permutations, perms, model.state_dict()))
    return copy.eval(), permutations, perms


@pytest.mark.parametrize("ic", ICS)
@pytest.mark.parametrize("backbone", BACKBONES)
def test_a_permuted_copy_computes_the_same_function_and_weight_matching_undoes_the_permutation(backbone, ic):
    model, spec = trained_like(backbone, ic)
    x = torch.randn(6, *spec.input_shape, generator=torch.Generator().manual_seed(1))
    copy, permutations, perms = permuted_copy(model, spec, seed=3)
    reference = outputs(model, x)
    # The spec is a symmetry: every head's logits are unchanged (float rounding aside) ...
    assert torch.allclose(outputs(copy, x), reference, atol=1e-5, rtol=1e-5)
    # ... though the copy's weights differ (every group is permuted; a few units may stay in place).
    changed = [key for key, value in copy.state_dict().items() if not torch.equal(value, model.state_dict()[key])]
    assert len(changed) >= len(permutations.keys()) - 2
    # Weight matching on the parameters recovers the permutation: the aligned copy is the original, tensor for
    # tensor, BN running statistics included.
    parameters = [name for name, _ in model.named_parameters()]
    found = weight_matching(permutations, model.state_dict(), copy.state_dict(), keys=parameters)
    aligned = apply_permutation(permutations, found, copy.state_dict())
    assert all(torch.equal(aligned[key], value) for key, value in model.state_dict().items())


def test_a_permutation_of_one_axis_alone_changes_the_function():
    """The check above can fail: permuting a conv's output channels without its BN and the next layer's inputs
    (a spec missing an axis) changes the outputs."""
    model, spec = trained_like("resnet20", "sdn")
    x = torch.randn(4, *spec.input_shape, generator=torch.Generator().manual_seed(1))
    permutations = permutation_spec(model, "resnet20", "sdn")
    name = "block3_padded"  # stage 2's new channels (option A: the channels the shortcut pads with zeros)
    axis = permutations.perm_to_axes[name][0]
    assert axis.key == "blocks.3.conv2.weight" and axis.axis == 0
    state = dict(model.state_dict())
    state[axis.key] = permute_axis(state[axis.key], axis, torch.arange(permutations.sizes[name]).flip(0))
    broken = build_model(spec)
    broken.load_state_dict(state)
    assert not torch.allclose(outputs(broken, x), outputs(model, x), atol=1e-3)


def test_option_a_stream_carries_each_stage_on_the_padded_channels():
    """ResNet-20 option A: stage 2's 32 channels are 8 new, stage 1's 16 (channels 8..23), 8 new; stage 3's 64
    channels hold stage 2's 32 at 16..47, so stage 1's 16 at 24..39."""
    model, _ = trained_like("resnet20", "linear")
    permutations = permutation_spec(model, "resnet20", "linear")
    stage3 = {name: axis.positions for name, axes in permutations.perm_to_axes.items() for axis in axes
              if axis.key == "blocks.8.bn2.weight"}
    assert stage3 == {"stage_stem": tuple(range(24, 40)),
                      "block3_padded": tuple(range(16, 24)) + tuple(range(40, 48)),
                      "block6_padded": tuple(range(0, 16)) + tuple(range(48, 64))}
    # Stage 3's head reads those channels, and its input axis follows the same groups.
    head = {name for name, axes in permutations.perm_to_axes.items() for axis in axes if axis.key == "heads.8.1.weight"}
    assert head == set(stage3)


def test_weight_matching_finds_the_exhaustive_optimum_of_one_group():
    """One hidden group (a one-block CNN, its linear head): the assignment that minimises ||Θ_A − ΠΘ_B||_F over
    the parameters, by enumerating all 4! permutations, is the one weight matching returns."""
    spec = ModelSpec("cnn", {"widths": [4], "strides": [1]}, (1, 4, 4), 3)
    a, b = build_model(spec, seed=0), build_model(spec, seed=1)
    for model, seed in ((a, 5), (b, 6)):  # BN affine parameters different per channel
        generator = torch.Generator().manual_seed(seed)
        model.blocks[0][1].weight.data = torch.rand(4, generator=generator) + 0.5
        model.blocks[0][1].bias.data = torch.randn(4, generator=generator)
    permutations = permutation_spec(a, "cnn", "linear")
    assert permutations.sizes == {"block0": 4}
    parameters = [name for name, _ in a.named_parameters()]

    def distance(perm):
        aligned = apply_permutation(permutations, {"block0": torch.tensor(perm)}, b.state_dict())
        return sum(float(((a.state_dict()[k] - aligned[k]) ** 2).sum()) for k in parameters)

    best = min(itertools.permutations(range(4)), key=distance)
    found = weight_matching(permutations, a.state_dict(), b.state_dict(), keys=parameters)
    assert found["block0"].tolist() == list(best)
    assert distance(best) < distance(tuple(range(4)))  # a real alignment, not the identity


def evaluation_sets(spec: ModelSpec, n: int = 16):
    generator = torch.Generator().manual_seed(7)
    x = torch.randn(n, *spec.input_shape, generator=generator)
    y = torch.randint(0, 3, (n,), generator=generator)
    return x, {"test": (x, y)}


@pytest.mark.parametrize("backbone", ["cnn", "resnet20"])
def test_the_path_between_a_model_and_its_permuted_copy_is_flat(backbone):
    model, spec = trained_like(backbone, "linear")
    copy, _, _ = permuted_copy(model, spec, seed=3)
    x, sets = evaluation_sets(spec)
    frame = connectivity_path(build_model(spec), (spec.backbone, "linear"), model.state_dict(), copy.state_dict(),
                              x, sets, TASKS.get("single_label"), points=5, batch_size=8)
    assert sorted(frame["lambda"].unique()) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert frame["distance_before"].iloc[0] > 1.0 and frame["distance_after"].iloc[0] == 0.0
    for head, rows in frame.groupby("head"):
        assert np.ptp(rows["loss"].to_numpy()) < 1e-5, head
    totals = frame[frame["head"] == "total"].set_index("lambda")["loss"]
    heads = frame[frame["head"] != "total"].groupby("lambda")["loss"].sum()
    assert np.allclose(totals, heads[totals.index], atol=1e-12)


def test_interpolation_ends_reproduce_model_a_and_aligned_model_b():
    model_a, spec = trained_like("cnn", "mlp", seed=0)
    model_b, _ = trained_like("cnn", "mlp", seed=1)  # another model: its own weights and statistics
    x, sets = evaluation_sets(spec)
    state_a, state_b = model_a.state_dict(), model_b.state_dict()
    assert all(torch.equal(interpolate(state_a, state_b, 0.0)[k], v) for k, v in state_a.items())
    assert all(torch.equal(interpolate(state_a, state_b, 1.0)[k], v) for k, v in state_b.items())
    middle = interpolate(state_a, state_b, 0.25)
    key = "blocks.1.0.weight"
    assert torch.allclose(middle[key], 0.75 * state_a[key] + 0.25 * state_b[key])
    assert torch.equal(middle["blocks.1.1.num_batches_tracked"], state_a["blocks.1.1.num_batches_tracked"])
    # Through the whole path code, without BN recomputation: λ = 0 is A's loss, λ = 1 is B's own (alignment
    # keeps B's function), each computed here from the models' own logits.
    frame = connectivity_path(build_model(spec), ("cnn", "mlp"), state_a, state_b, x, sets,
                              TASKS.get("single_label"), points=3, reset_bn=False, batch_size=16)
    _, y = sets["test"]
    for lam, model in ((0.0, model_a), (1.0, model_b)):
        rows = frame[(frame["lambda"] == lam) & (frame["head"] != "total")]
        expected = [float(F.cross_entropy(logits.double(), y)) for logits in outputs(model, x)]
        assert rows["loss"].tolist() == pytest.approx(expected, abs=1e-5)
        accuracy = (outputs(model, x).argmax(-1) == y).double().mean(1)
        assert rows["accuracy"].tolist() == pytest.approx(accuracy.tolist())
    assert frame["distance_after"].iloc[0] < frame["distance_before"].iloc[0]


def test_batch_norm_recompute_gives_the_hand_computed_statistics():
    """BN, ReLU, BN on 6 samples in batches of 3: momentum None averages the two batches' means and unbiased
    variances; the second BN sees the first one's train-mode output (normalised by batch statistics)."""
    model = nn.Sequential(nn.BatchNorm2d(2), nn.ReLU(), nn.BatchNorm2d(2))
    model[0].weight.data = torch.tensor([2.0, 0.5])
    model[0].bias.data = torch.tensor([0.3, -0.1])
    for bn in (model[0], model[2]):
        bn.running_mean.fill_(7.0)  # stale statistics, to be replaced
        bn.running_var.fill_(9.0)
    x = torch.randn(6, 2, 2, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64).float()
    recompute_batch_norm(model, x, batch_size=3)

    def stats(values):  # values [n, C, H, W] numpy -> per-channel mean, unbiased var
        per_channel = values.transpose(1, 0, 2, 3).reshape(2, -1)
        return per_channel.mean(1), per_channel.var(1, ddof=1), per_channel.var(1, ddof=0)

    data = x.double().numpy()
    first, second = [], []
    for batch in (data[:3], data[3:]):
        mean, var, biased = stats(batch)
        first.append((mean, var))
        gamma, beta = np.array([2.0, 0.5]), np.array([0.3, -0.1])
        shape = (1, 2, 1, 1)
        hidden = np.maximum(0.0, (batch - mean.reshape(shape)) / np.sqrt(biased.reshape(shape) + 1e-5)
                            * gamma.reshape(shape) + beta.reshape(shape))
        second.append(stats(hidden)[:2])
    for bn, expected in ((model[0], first), (model[2], second)):
        assert np.allclose(bn.running_mean.numpy(), np.mean([m for m, _ in expected], axis=0), atol=1e-6)
        assert np.allclose(bn.running_var.numpy(), np.mean([v for _, v in expected], axis=0), atol=1e-6)
        assert bn.momentum == 0.1 and not bn.training and int(bn.num_batches_tracked) == 2


def test_head_logits_are_eval_mode_outputs_in_batches():
    model, spec = trained_like("cnn", "linear")
    x, _ = evaluation_sets(spec, n=10)
    model.train()
    assert torch.allclose(head_logits(model, x, batch_size=4), outputs(model, x), atol=1e-6)
    assert not model.training


def test_a_mode_connectivity_figure_on_a_network_without_a_spec_fails_at_dag_build():
    from pathlib import Path

    from eebench.config import ConfigError, load_config
    from eebench.config_checks import check_config

    config = load_config(Path(__file__).resolve().parents[2] / "config.yaml")
    config["models"]["r18"] = {"dataset": "digits", "backbone": "resnet18", "params": {"cifar_stem": True}}
    config["figures"]["mode_connectivity"]["model"] = "r18"
    with pytest.raises(ConfigError, match=r"figures\.mode_connectivity: model 'r18': backbone 'resnet18' has no "
                                          r"permutation spec .*cnn, resnet20"):
        check_config(config)
    config["figures"]["mode_connectivity"]["model"] = "cnn_gpf"  # GPF merges the ICs' outputs
    with pytest.raises(ConfigError, match=r"figures\.mode_connectivity: model 'cnn_gpf': IC type 'gpf' has no "
                                          r"permutation spec"):
        check_config(config)
    config["figures"]["mode_connectivity"].update(model="cnn", pairs=[["joint", "mixd"]])
    with pytest.raises(ConfigError, match="unknown regime 'mixd'"):
        check_config(config)


def test_cli_writes_the_path_between_two_checkpoints(tmp_path):
    """eebench connect-modes on two checkpoints (a model and its permuted copy, saved as training saves them):
    one row per (λ, split, head), flat, the alignment exact."""
    from eebench.cli import main
    from eebench.data import prepare_dataset
    from eebench.io import save_torch

    data = tmp_path / "digits.npz"
    prepare_dataset("digits", {"split_seed": 0}, data)
    spec = ModelSpec("cnn", {"widths": [4, 6], "strides": [1, 2]}, (1, 8, 8), 10)
    model = build_model(spec, seed=0)
    permutations = permutation_spec(model, "cnn", "linear")
    copy = apply_permutation(permutations, random_permutations(permutations, 1), model.state_dict())
    for regime, state in (("disjoint", model.state_dict()), ("mixed", copy)):
        save_torch(tmp_path / f"{regime}.pt", {"spec": spec.to_dict(), "state_dict": state, "task": "single_label",
                                               "meta": {"model": "tiny", "regime": regime, "seed": 0}})
    out = tmp_path / "path.csv"
    assert main(["connect-modes", "--checkpoints", str(tmp_path / "disjoint.pt"), str(tmp_path / "mixed.pt"),
                 "--data", str(data), "--params", '{"points": 3, "samples": 40}', "--out", str(out)]) == 0
    frame = pd.read_csv(out, dtype={"head": str})
    assert list(frame.columns[:4]) == ["model", "regime_a", "regime_b", "seed"]
    assert frame[["regime_a", "regime_b"]].drop_duplicates().values.tolist() == [["disjoint", "mixed"]]
    assert len(frame) == 3 * 2 * 3  # λ x splits x (2 heads + total)
    assert set(frame["head"]) == {"1", "2", "total"} and set(frame["split"]) == {"train", "test"}
    assert (frame["distance_after"] == 0).all() and (frame["distance_before"] > 0).all()
    assert frame.groupby(["split", "head"])["loss"].apply(np.ptp).max() < 1e-5
    assert main(["connect-modes", "--checkpoints", str(tmp_path / "disjoint.pt"), str(tmp_path / "mixed.pt"),
                 "--data", str(data), "--params", '{"point": 3}', "--out", str(out)]) == 2
