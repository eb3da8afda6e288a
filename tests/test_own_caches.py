"""A network this package did not train, evaluated by config alone (issue 26, points 1 and 2): its logit caches
written with ``eebench.logit_cache.write_cache`` (or ``eebench import-logits`` from a plain file), named by a model
entry's ``caches:``, and from there every table and figure that reads caches. The network here is defined in this
file, in plain PyTorch; the worked example (examples/own_model) is checked to produce what its config names."""
from __future__ import annotations

import copy
import runpy
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from torch import nn

from eebench.cli import main
from eebench.io import LOGIT_CACHE, PLAIN_LOGITS, ResultFileError
from eebench.logit_cache import import_logits, load_cache, write_cache

REPO = Path(__file__).resolve().parents[1]
FEATURES, WIDTH, CLASSES, DEPTH = 12, 16, 3, 3


class TinyMultiExit(nn.Module):
    """Blocks of Linear + ReLU with a linear classifier after each block in ``heads``: nothing of eebench."""

    def __init__(self, depth: int = DEPTH, heads: tuple[int, ...] = tuple(range(DEPTH))) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(nn.Sequential(nn.Linear(FEATURES if i == 0 else WIDTH, WIDTH), nn.ReLU())
                                    for i in range(depth))
        self.heads = nn.ModuleDict({str(block): nn.Linear(WIDTH, CLASSES) for block in heads})

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        for index, block in enumerate(self.blocks):
            x = block(x)
            if str(index) in self.heads:
                outputs.append(self.heads[str(index)](x))
        return outputs


def blobs() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Three noisy Gaussian clusters in 12 dimensions: train, val and test."""
    generator = torch.Generator().manual_seed(0)
    centres = torch.randn(CLASSES, FEATURES, generator=generator)
    splits = {}
    for split, n in (("train", 240), ("val", 90), ("test", 90)):
        y = torch.randint(0, CLASSES, (n,), generator=generator)
        splits[split] = (centres[y] + 1.5 * torch.randn(n, FEATURES, generator=generator), y)
    return splits


def trained(model: nn.Module, data, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    x, y = data
    for _ in range(40):
        loss = sum(nn.functional.cross_entropy(logits, y) for logits in model(x))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def multiply_adds(blocks: int, heads: int) -> float:
    """Multiply-adds of one sample through ``blocks`` blocks and ``heads`` classifiers (counted by hand)."""
    return float(FEATURES * WIDTH + (blocks - 1) * WIDTH * WIDTH + heads * WIDTH * CLASSES)


def write_network_caches(root: Path, seeds: tuple[int, ...]) -> dict[int, np.ndarray]:
    """The caches of the network (one per seed) and of its static models (one per head, trained once, the list
    form of ``static:``); returns each seed's final-head test accuracy, to compare the rendered table with."""
    data = blobs()
    final_accuracy = {}
    for seed in seeds:
        torch.manual_seed(seed)
        model = trained(TinyMultiExit(), data["train"], seed)
        with torch.no_grad():  # a list of per-head tensors, as the network returns them
            logits = {split: model(data[split][0]) for split in ("val", "test")}
        write_cache(root / f"seed{seed}.npz", val_logits=logits["val"], test_logits=logits["test"],
                    val_labels=data["val"][1], test_labels=data["test"][1],
                    head_flops=[multiply_adds(h + 1, h + 1) for h in range(DEPTH)],
                    backbone_flops=multiply_adds(DEPTH, 1), meta={"trained_by": "the test"})
        final_accuracy[seed] = float((logits["test"][-1].argmax(1) == data["test"][1]).float().mean())
    for block in range(DEPTH):  # the network truncated after each head, that head alone
        torch.manual_seed(100 + block)
        static = trained(TinyMultiExit(depth=block + 1, heads=(block,)), data["train"], 100 + block)
        with torch.no_grad():
            logits = {split: static(data[split][0]) for split in ("val", "test")}
        write_cache(root / f"static_head{block + 1}.npz", val_logits=logits["val"], test_logits=logits["test"],
                    val_labels=data["val"][1], test_labels=data["test"][1],
                    head_flops=[multiply_adds(block + 1, 1)], backbone_flops=multiply_adds(DEPTH, 1),
                    head_blocks=[block])
    return final_accuracy


OWN_CONFIG = {
    "seeds": [0, 1],
    "models": {"mine": {"caches": {
        "seeds": {0: "caches/seed0.npz", 1: "caches/seed1.npz"},
        "static": [f"caches/static_head{head}.npz" for head in range(1, DEPTH + 1)],
        "dataset": "blobs", "backbone": "tiny MLP"}}},
    "tables": {"mine_budgets": {"kind": "budgets", "model": "mine", "criterion": "confidence", "regimes": ["joint"],
                                "rule": "last"}},
    "figures": {
        "mine_cost": {"kind": "cost_curves", "model": "mine", "regimes": ["joint"], "criterion": "confidence",
                      "rule": "last"},
        "mine_bee": {"kind": "bee", "models": ["mine"], "regime": "joint", "criterion": "confidence"},
    },
}


def test_a_network_defined_here_goes_by_config_alone_to_a_budgets_table_a_cost_curve_and_b_ee(tmp_path):
    """One Snakemake run from caches to a budgets table, a cost-curve figure and a B_EE figure: nothing trained,
    the caches imported under the config's names, the table's numbers those of the network's own outputs."""
    from tests.workflow.conftest import snakemake

    final_accuracy = write_network_caches(tmp_path / "caches", seeds=(0, 1))
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(OWN_CONFIG, sort_keys=False))
    started = time.monotonic()
    snakemake(tmp_path, "--cores", "2")
    print(f"workflow from own caches: {time.monotonic() - started:.1f} s", file=sys.stderr)

    assert not (tmp_path / "results" / "models").exists() and not (tmp_path / "results" / "data").exists()
    imported = load_cache(tmp_path / "results/logits/mine/joint/seed1.npz")
    assert imported["meta"] == {"trained_by": "the test", "model": "mine", "dataset": "blobs",
                                "backbone": "tiny MLP", "regime": "joint", "seed": 1}
    table = pd.read_csv(tmp_path / "paper/tables/mine_budgets.csv")
    unlimited = table[(table["budget"] == "unlimited") & (table["metric"] == "accuracy")]
    assert list(unlimited["model"]) == ["mine"] and list(unlimited["regime"]) == ["joint"]
    # rule last, Unlimited: every sample at the final head, in percent, mean over the seeds
    assert unlimited["mean"].iloc[0] == pytest.approx(100 * np.mean(list(final_accuracy.values())))
    assert "dataset blobs, backbone tiny MLP" in (tmp_path / "paper/tables/mine_budgets.tex").read_text()
    assert (tmp_path / "paper/figures/mine_cost.pdf").stat().st_size > 0
    bee = pd.read_csv(tmp_path / "paper/figures/mine_bee.csv")
    assert sorted(bee.loc[bee["metric"] == "accuracy", "head"]) == [1, 2, 3]
    assert bee["mean"].notna().all()


def test_a_cache_with_a_wrong_shape_fails_in_one_line_and_is_not_written(tmp_path, capsys):
    """The writer refuses what every reader refuses (eebench.logit_cache.check_cache), naming the file, writing nothing;
    so does `eebench import-logits`, the workflow's import job, naming its source."""
    logits = np.zeros((DEPTH, 6, CLASSES), dtype=np.float32)
    arrays = dict(val_logits=logits, test_logits=logits, val_labels=np.zeros(6, np.int64),
                  test_labels=np.zeros(5, np.int64), head_flops=[1.0, 2.0, 3.0])
    with pytest.raises(ResultFileError) as error:
        write_cache(tmp_path / "out.npz", **arrays)
    line = str(error.value)
    assert "\n" not in line and line.startswith(f"{tmp_path / 'out.npz'}: inconsistent test shapes: logits (3, 6, 3), "
                                                f"labels (5,)") and LOGIT_CACHE in line, line
    assert not (tmp_path / "out.npz").exists()

    np.savez(tmp_path / "plain.npz", **arrays)
    status = main(["import-logits", "--source", str(tmp_path / "plain.npz"), "--meta", '{"model": "mine"}',
                   "--out", str(tmp_path / "cache.npz")])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert status == 2 and len(lines) == 1, lines
    assert lines[0].startswith(f"eebench import-logits: error: {tmp_path / 'plain.npz'}: inconsistent test shapes")
    assert not (tmp_path / "cache.npz").exists()


def test_import_logits_turns_a_plain_pt_of_per_head_tensors_into_a_cache(tmp_path):
    """A .pt of per-head tensor lists (what a multi-exit forward returns) and labels, with the FLOPs and task
    given on the command line, becomes the cache write_cache writes; the file's meta is kept, the given merged
    over it; a value given that the file states otherwise is refused."""
    generator = torch.Generator().manual_seed(0)
    heads = [torch.randn(8, 4, generator=generator) for _ in range(2)]
    labels = torch.randint(0, 4, (8,), generator=generator)
    torch.save({"val_logits": heads, "test_logits": [h + 1 for h in heads], "val_labels": labels,
                "test_labels": labels, "meta": {"source": "pt"}}, tmp_path / "outputs.pt")
    assert main(["import-logits", "--source", str(tmp_path / "outputs.pt"), "--head-flops", "10", "30",
                 "--backbone-flops", "25", "--meta", '{"model": "mine"}', "--out", str(tmp_path / "c.npz")]) == 0
    cache = load_cache(tmp_path / "c.npz")
    np.testing.assert_array_equal(cache["test_logits"], torch.stack(heads).numpy() + 1)
    assert cache["head_flops"].tolist() == [10.0, 30.0] and cache["backbone_flops"] == 25.0
    assert cache["task"].name == "single_label" and cache["meta"] == {"source": "pt", "model": "mine"}

    with pytest.raises(ResultFileError, match=r"outputs\.npz: its head_flops is \[10\.0, 30\.0\], the one given "
                                              r"\[10\.0, 20\.0\]") as error:
        np.savez(tmp_path / "outputs.npz", **{key: np.asarray(value) for key, value in load_cache(
            tmp_path / "c.npz").items() if key in ("val_logits", "test_logits", "val_labels", "test_labels",
                                                  "head_flops")})
        import_logits(tmp_path / "outputs.npz", tmp_path / "d.npz", head_flops=[10, 20])
    assert PLAIN_LOGITS in str(error.value) and not (tmp_path / "d.npz").exists()


def test_the_worked_example_writes_the_caches_its_config_names(tmp_path, monkeypatch):
    """examples/own_model: train.py (one epoch here) writes every cache config.yaml names, and the config passes
    the workflow's checks (README, "Evaluate your own model")."""
    from eebench.targets import checked_config

    example = REPO / "examples" / "own_model"
    shutil.copy(example / "config.yaml", tmp_path / "config.yaml")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["train.py", "--epochs", "1"])
    runpy.run_path(str(example / "train.py"), run_name="__main__")
    config = checked_config("config.yaml")
    caches = config["models"]["digits_cnn"]["caches"]
    named = [*caches["seeds"].values(), *(path for paths in caches["static"].values() for path in paths)]
    assert named and all(Path(path).is_file() for path in named)
    assert load_cache(caches["seeds"][0])["head_flops"].shape == (3,)


def test_an_external_entry_resolves_without_dataset_backbone_or_training():
    """What every consumer of a resolved entry reads: labels for captions, the regime, seeds as text, the static
    list given once made every seed's; it shares no run and names no checkpoint."""
    from eebench import config as ee
    from eebench import targets

    config = copy.deepcopy(OWN_CONFIG)
    entry = ee.resolve_models(config)["mine"]
    assert entry["dataset"] == "blobs" and entry["backbone"] == "tiny MLP"
    assert entry["caches"]["regime"] == "joint" and list(entry["caches"]["seeds"]) == ["0", "1"]
    assert entry["caches"]["static"]["1"] == OWN_CONFIG["models"]["mine"]["caches"]["static"]
    assert ee.describe_model(entry) == "blobs, tiny MLP, evaluated from its own logit caches (regime joint)"
    assert targets.metrics_inputs(config, "mine", "joint", 1)["logits"] == "results/logits/mine/joint/seed1.npz"
    assert targets.bee_inputs(config, "mine", "joint", 0)["static"] == [
        f"results/logits/mine/static/head{head}/seed0.npz" for head in (1, 2, 3)]
    assert targets.external_source(config, "mine", 0, head=2) == "caches/static_head2.npz"
    assert targets.trained_runs(config, "figures", "mine_bee") == []
    assert targets.external_models(config, external=False) == [] and targets.external_models(config) == ["mine"]
