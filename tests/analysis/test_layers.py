"""Per-layer analyses read from a trained checkpoint (paper B §3.3-3.4)."""
import math

import numpy as np
import pandas as pd
import pytest
import torch

from eebench.analysis import binned_mutual_information, kde_mutual_information, variance_ranks
from eebench.analysis.layers import analyze, block_outputs, parameters, run_analysis
from eebench.data import prepare_dataset
from eebench.inference import load_trained, split_inputs
from eebench.steps import train_model

MODEL = {"backbone": "cnn", "params": {"widths": [4, 8], "strides": [1, 2]}, "ic": {"type": "linear"}}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("analysis")
    data = root / "digits.npz"
    prepare_dataset("digits", {"split_seed": 0}, data)
    torch.set_num_threads(1)
    train_model(str(data), MODEL, {"max_epochs": 1, "patience": 1, "restart_epochs": 1, "augment": False},
                "joint", seed=0, out=str(root / "model.pt"), meta={"model": "tiny"})
    return str(root / "model.pt"), str(data)


def test_each_blocks_value_is_the_measure_of_that_blocks_output(trained, tmp_path):
    checkpoint, data = trained
    model, x = load_trained(checkpoint), split_inputs(data)[:100]
    outputs = block_outputs(model, x)
    # The blocks' outputs are what the heads see: the last one's classifier gives the model's last logits.
    with torch.no_grad():
        assert torch.allclose(model.heads[str(len(model.blocks) - 1)](outputs[-1]), model(x)[-1])
    ranks = analyze("numerical_rank", checkpoint, data, {"samples": 100, "variance_rtol": [0.001, 0.01]})
    assert ranks["block"].tolist() == [0, 0, 1, 1] and (ranks["samples"] == 100).all()
    assert ranks["variant"].tolist() == ["variance_rtol=0.001", "variance_rtol=0.01"] * 2
    assert ranks["features"].tolist() == [4 * 8 * 8] * 2 + [8 * 4 * 4] * 2 and ranks["channels"].tolist() == [4, 4, 8, 8]
    # Rows are the samples (one flattened output each), centred: rank <= min(samples - 1, features).
    by_sample = [rank for o in outputs for rank in variance_ranks(o.reshape(100, -1), [0.001, 0.01])]
    assert ranks["value"].tolist() == by_sample
    assert (ranks["value"] <= np.minimum(99, ranks["features"])).all()
    looser, stricter = (ranks.loc[ranks["variant"] == f"variance_rtol={t}", "value"].to_numpy() for t in (0.01, 0.001))
    assert (looser <= stricter).all()
    by_position = analyze("numerical_rank", checkpoint, data, {"samples": 100, "variance_rtol": [0.01], "rows": "positions"})
    assert by_position["value"].tolist() == [
        variance_ranks(o.permute(0, 2, 3, 1).reshape(-1, o.shape[1]), [0.01])[0] for o in outputs]
    assert (by_position["value"] <= by_position["channels"]).all()
    assert ranks[["model", "regime", "seed"]].drop_duplicates().values.tolist() == [["tiny", "joint", 0]]
    out = tmp_path / "mi.csv"
    run_analysis("mutual_information", checkpoint, data, str(out), {"samples": 100})
    information = pd.read_csv(out)
    assert information["value"].tolist() == pytest.approx([kde_mutual_information(o, noise=0.25) for o in outputs])
    assert information["variant"].isna().all()  # one value per block
    assert (information["value"] <= min(math.log(100), 1 / 0.25) + 1e-12).all()
    binned = analyze("mutual_information", checkpoint, data, {"samples": 100, "estimator": "binning", "bins": 10})
    assert binned["value"].tolist() == pytest.approx([binned_mutual_information(o, bins=10) for o in outputs])
    with pytest.raises(KeyError, match="unknown MI estimator 'mine'"):
        analyze("mutual_information", checkpoint, data, {"estimator": "mine"})


def test_analysis_parameters_are_the_measures_keywords_plus_samples(trained):
    assert parameters("numerical_rank") == {"samples": 500, "variance_rtol": [1e-3, 1e-2], "rows": "samples"}
    assert parameters("mutual_information") == {"samples": 500, "estimator": "kde", "noise": 0.25, "bound": "upper",
                                                "bins": 30}
    checkpoint, data = trained
    with pytest.raises(ValueError, match="unknown parameter 'tolerance'"):
        analyze("numerical_rank", checkpoint, data, {"tolerance": 0.1})
    with pytest.raises(KeyError, match="unknown analysis 'entropy'"):
        analyze("entropy", checkpoint, data)
