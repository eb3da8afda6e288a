"""Loss landscape (paper B Appendix B, eq. 6): filter-normalised directions, the grid, on hand-made cases."""
import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from eebench.analysis.checkpoint import analyze_checkpoints, parameters
from eebench.analysis.landscape import filter_normalized_direction, grid_coordinates, landscape_grid
from eebench.models import ModelSpec, MultiExitNet, build_model
from eebench.models.heads import GlobalPool
from eebench.tasks import TASKS


def test_parameters_are_the_config_keys_with_their_defaults():
    assert parameters("loss_landscape") == {"points": 11, "span": 1.0, "samples": 500, "direction_seed": 0,
                                            "batch_size": 500}
    assert parameters("mode_connectivity") == {"points": 11, "samples": 500, "splits": ("train", "test"),
                                               "iterations": 100, "match_seed": 0, "reset_bn": True,
                                               "batch_size": 500}


def test_directions_are_filter_normalised_and_zero_on_biases_and_batch_norm():
    model = build_model(ModelSpec("cnn", {"widths": [4, 6], "strides": [1, 2]}, (1, 8, 8), 3,
                                  ic={"type": "sdn", "pool_size": 2}), seed=0)
    theta = {name: p.detach().clone() for name, p in model.named_parameters()}
    direction = filter_normalized_direction(theta, torch.Generator().manual_seed(0))
    assert direction.keys() == theta.keys()
    multi = [name for name, value in theta.items() if value.dim() > 1]
    assert set(multi) == {"blocks.0.0.weight", "blocks.1.0.weight", "heads.0.linear.weight", "heads.1.1.weight"}
    for name in multi:  # each filter (slice along the first axis) has its own filter's norm in θ*
        own = theta[name].flatten(1).norm(dim=1)
        assert torch.allclose(direction[name].flatten(1).norm(dim=1), own, rtol=1e-5), name
        assert not torch.allclose(direction[name], theta[name])  # a random direction, not θ* itself
    # Biases, BN weights and biases, SDN's alpha: zero (Li et al.'s ignore='biasbn').
    assert all(torch.count_nonzero(direction[name]) == 0 for name in theta if name not in multi)
    # Deterministic given the seed; another seed, another direction.
    again = filter_normalized_direction(theta, torch.Generator().manual_seed(0))
    other = filter_normalized_direction(theta, torch.Generator().manual_seed(1))
    assert all(torch.equal(direction[name], again[name]) for name in theta)
    assert not torch.equal(direction["blocks.1.0.weight"], other["blocks.1.0.weight"])


def test_grid_is_symmetric_with_theta_star_at_its_centre():
    assert grid_coordinates(5, 2.0).tolist() == [-2.0, -1.0, 0.0, 1.0, 2.0]
    assert grid_coordinates(11, 1.0)[5] == 0.0 and grid_coordinates(11, 1.0)[0] == -1.0
    with pytest.raises(ValueError, match="span"):
        grid_coordinates(11, 0.0)


def test_the_grid_centre_is_the_models_own_loss_in_eval_mode():
    model = build_model(ModelSpec("cnn", {"widths": [4, 6], "strides": [1, 2]}, (1, 8, 8), 3), seed=0)
    model.blocks[0][1].running_mean.fill_(0.3)  # eval mode must use these, not batch statistics
    generator = torch.Generator().manual_seed(2)
    x, y = torch.randn(12, 1, 8, 8, generator=generator), torch.randint(0, 3, (12,), generator=generator)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    frame = landscape_grid(model, x, y, TASKS.get("single_label"), points=3, span=0.5, batch_size=5)
    assert len(frame) == 3 * 3 * 3 and sorted(frame["x"].unique()) == [-0.5, 0.0, 0.5]
    with torch.no_grad():
        logits = model.eval()(x)
    expected = [float(F.cross_entropy(head.double(), y)) for head in logits]
    centre = frame[(frame["x"] == 0.0) & (frame["y"] == 0.0)].set_index("head")
    assert centre.loc[["1", "2"], "loss"].tolist() == pytest.approx(expected, abs=1e-6)
    assert centre.loc["total", "loss"] == pytest.approx(sum(expected), abs=1e-6)
    assert centre.loc["2", "accuracy"] == pytest.approx(float((logits[1].argmax(1) == y).double().mean()))
    assert frame["loss"].max() > centre.loc["total", "loss"]  # the directions move the weights
    assert all(torch.equal(p, before[name]) for name, p in model.named_parameters())  # θ* restored


def test_a_hand_made_two_head_product_network_follows_its_closed_form():
    """Flat inputs, two blocks (1x1 linear maps w1, w2), a head after each (h1 with a bias b1, h2): regression
    outputs h1·w1·x + b1 and h2·w2·w1·x. A 1x1 weight's filter-normalised direction is ±|w|; the bias stays.
    f(a, b) = MSE_1 + MSE_2 at every grid point, in closed form."""
    blocks = nn.ModuleList([nn.Linear(1, 1, bias=False), nn.Linear(1, 1, bias=False)])
    heads = {0: nn.Sequential(GlobalPool(), nn.Linear(1, 1)), 1: nn.Sequential(GlobalPool(), nn.Linear(1, 1, bias=False))}
    model = MultiExitNet(blocks, heads)
    values = {"blocks.0.weight": 0.8, "blocks.1.weight": -1.5, "heads.0.1.weight": 1.2, "heads.0.1.bias": 0.4,
              "heads.1.1.weight": 0.7}
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.fill_(values[name])
    x = torch.linspace(-1.0, 1.0, 9).unsqueeze(1)
    y = torch.sin(3 * x[:, 0])
    frame = landscape_grid(model, x, y, TASKS.get("regression"), points=5, span=1.0, direction_seed=4)
    theta = {name: p.detach().clone() for name, p in model.named_parameters()}
    generator = torch.Generator().manual_seed(4)
    delta, eta = (filter_normalized_direction(theta, generator) for _ in range(2))
    for name in ("blocks.0.weight", "blocks.1.weight", "heads.0.1.weight", "heads.1.1.weight"):
        assert abs(float(delta[name])) == pytest.approx(abs(values[name]), rel=1e-6)
    assert float(delta["heads.0.1.bias"]) == 0.0 and float(eta["heads.0.1.bias"]) == 0.0
    xs, ys = x[:, 0].double().numpy(), y.double().numpy()
    for _, row in frame[frame["head"] != "total"].iterrows():
        w = {name: values[name] + row["x"] * float(delta[name]) + row["y"] * float(eta[name])
             for name in values}
        hidden = w["blocks.0.weight"] * xs
        if row["head"] == "1":
            out = w["heads.0.1.weight"] * hidden + values["heads.0.1.bias"]
        else:
            out = w["heads.1.1.weight"] * w["blocks.1.weight"] * hidden
        assert row["loss"] == pytest.approx(float(np.mean((out - ys) ** 2)), rel=1e-5, abs=1e-7)
    totals = frame[frame["head"] == "total"].set_index(["x", "y"])["loss"]
    sums = frame[frame["head"] != "total"].groupby(["x", "y"])["loss"].sum()
    assert np.allclose(totals, sums[totals.index])


def test_the_checkpoint_entry_reads_training_samples_and_names_the_run(tmp_path):
    from eebench.data import prepare_dataset
    from eebench.io import save_torch

    data = tmp_path / "digits.npz"
    prepare_dataset("digits", {"split_seed": 0}, data)
    spec = ModelSpec("cnn", {"widths": [4], "strides": [1]}, (1, 8, 8), 10)
    save_torch(tmp_path / "m.pt", {"spec": spec.to_dict(), "state_dict": build_model(spec, seed=0).state_dict(),
                                   "meta": {"model": "tiny", "regime": "joint", "seed": 3}})  # no task: the data's
    frame = analyze_checkpoints("loss_landscape", [str(tmp_path / "m.pt")], str(data),
                                {"points": 3, "samples": 30, "direction_seed": 1})
    assert frame[["model", "regime", "seed"]].drop_duplicates().values.tolist() == [["tiny", "joint", 3]]
    assert len(frame) == 9 * 2 and set(frame["head"]) == {"1", "total"}
    assert isinstance(frame, pd.DataFrame) and frame["loss"].notna().all()
    with pytest.raises(ValueError, match="reads 1 checkpoint"):
        analyze_checkpoints("loss_landscape", [str(tmp_path / "m.pt")] * 2, str(data))
