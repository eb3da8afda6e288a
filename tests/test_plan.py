"""``eebench plan``: the jobs a config plans, counted as Snakemake counts them, and their FLOPs, checked by hand on a
tiny config; the paper suite planned without any of its data."""
from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from pathlib import Path

import pytest
import yaml

from eebench import cost_model, plan
from eebench.cli import run

REPO = Path(__file__).resolve().parents[1]

# One model (two blocks, a linear IC after the first), two regimes, two seeds; a budget table of both regimes and a
# B_EE figure of the joint runs (which needs the static heads).
TINY = {
    "seeds": [0, 1],
    "datasets": {"digits": {"split_seed": 0, "val_fraction": 0.2, "test_fraction": 0.2}},
    "training": {"max_epochs": 3},
    "models": {"cnn": {"dataset": "digits", "backbone": "cnn", "params": {"widths": [4, 8], "strides": [1, 2]},
                       "ic": {"type": "linear"}}},
    "tables": {"regimes": {"kind": "budgets", "model": "cnn", "criterion": "confidence",
                           "regimes": ["joint", "disjoint"]}},
    "figures": {"bee": {"kind": "bee", "regime": "joint", "criterion": "confidence",
                        "lines": [{"label": "CNN", "models": ["cnn"]}]}},
}


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return path


def job(planned: plan.Plan, rule: str, **wildcards: str) -> plan.Job:
    (found,) = [j for j in planned.jobs if j.rule == rule and j.wildcards == wildcards]
    return found


def test_a_tiny_config_plans_the_jobs_snakemake_plans(tiny):
    counts = Counter(j.rule for j in plan.plan(tiny).jobs)
    assert counts == {
        "prepare_dataset": 1,
        # joint and disjoint per seed, and disjoint's phase 1 (the backbone run) per seed
        "train_model": 3 * 2,
        # B_EE of the joint runs: the static model of the first head per seed (the last head's is the backbone run)
        "train_static_head": 1 * 2,
        "compute_metrics": 2 * 2,  # both regimes' runs, each seed
        "compute_bee": 1 * 2,  # the joint runs
        "render_table": 1, "render_figure": 1, "render_body": 1, "render_readings": 1, "all": 1,
    }  # 20, as `snakemake -n` plans this config


# torch.utils.flop_counter counts 2 FLOPs per multiply-add of the convolutions and linear layers: block 0 (1 -> 4
# channels, 3x3, 8x8 out), block 1 (4 -> 8, stride 2, 4x4 out), the IC after block 0, the final classifier.
BLOCK0, BLOCK1, IC, FINAL = 2 * 1 * 4 * 9 * 64, 2 * 4 * 8 * 9 * 16, 2 * 4 * 10, 2 * 8 * 10
TRAIN, VAL, TEST = 1077, 360, 360  # the 1,797 digits: 20% test, 20% val


def by_hand(epochs: int) -> dict[str, int]:
    """Each training job's FLOPs at ``epochs`` per phase: per epoch a step per training sample (its forward + 2 x
    the forward of what it back-propagates through) and a validation forward per validation sample; then the
    logit cache's forward over val and test."""
    full, plain, static = BLOCK0 + BLOCK1 + IC + FINAL, BLOCK0 + BLOCK1 + FINAL, BLOCK0 + IC

    def job(forward: int, step: int) -> int:
        return epochs * (TRAIN * step + VAL * forward) + (VAL + TEST) * forward

    return {
        "joint": job(full, 3 * full),
        "backbone": job(plain, 3 * plain),  # phase 1 alone trains the plain backbone (no ICs)
        "disjoint": job(full, full + 2 * IC),  # phase 2 from it: the backbone frozen, only the IC back-propagates
        "static0": job(static, 3 * static),  # the static model of the first head: block 0 and the IC
    }


def training_jobs(planned: plan.Plan, seed: str) -> dict[str, plan.Job]:
    jobs = {regime: job(planned, "train_model", model="cnn", regime=regime, seed=seed)
            for regime in ("joint", "backbone", "disjoint")}
    return {**jobs, "static0": job(planned, "train_static_head", model="cnn", block="0", seed=seed)}


def test_flops_of_the_tiny_config_by_hand(tiny):
    size = cost_model.dataset_size(TINY, "digits")
    assert (size.train, size.val, size.test, size.input_shape, size.num_classes) == (TRAIN, VAL, TEST, (1, 8, 8), 10)
    planned = plan.plan(tiny)
    for seed in ("0", "1"):
        jobs = training_jobs(planned, seed)
        assert {name: j.flops for name, j in jobs.items()} == by_hand(epochs=3)
        assert all(j.paper_flops == j.flops for j in jobs.values())  # no paper reports this setting's epochs
    # No GPU asked: one core's rate, the job holding its one thread.
    rates = plan.Rates(cost_model.DEVICE_KINDS["h100"], 0.5)
    trained = training_jobs(planned, "0")["joint"]
    assert rates.hours(trained, trained.flops) == (0.0, trained.flops / (cost_model.CPU_CORE.peak_flops * 0.5) / 3600)


def test_reported_epochs_count_in_the_paper_columns(tiny, monkeypatch):
    """A regime's reported total bounds each of its phases; phase 1 alone (the backbone job) takes the smallest
    total of a reported regime that reuses it: disjoint's 1, not mixed's 2."""
    reported = cost_model.ReportedEpochs("cnn", "digits", {"joint": 2, "disjoint": 1, "mixed": 2}, "a test")
    monkeypatch.setattr(plan, "REPORTED_EPOCHS", (reported,))
    jobs = training_jobs(plan.plan(tiny), "0")
    at_max, at_one, at_two = by_hand(epochs=3), by_hand(epochs=1), by_hand(epochs=2)
    assert {name: j.flops for name, j in jobs.items()} == at_max
    assert {name: j.paper_flops for name, j in jobs.items()} == {
        "joint": at_two["joint"], "backbone": at_one["backbone"], "disjoint": at_one["disjoint"],
        "static0": at_max["static0"]}  # no paper reports a static head's epochs


def test_the_paper_suite_plans_without_any_data(tmp_path, monkeypatch):
    """config/paper/all.yaml from a working directory holding the configs alone: no dataset root, weights file or
    BERT directory; the jobs are those `snakemake -n --configfile config/paper/all.yaml` plans
    (tests/workflow/test_paper_configs.py; the README's 1,308)."""
    shutil.copytree(REPO / "config" / "paper", tmp_path / "config" / "paper")
    monkeypatch.chdir(tmp_path)
    planned = plan.plan("config/paper/all.yaml")
    assert Counter(j.rule for j in planned.jobs) == {
        "prepare_dataset": 27, "train_model": 403, "train_static_head": 450, "connect_modes": 9,
        "map_loss_landscape": 3, "analyze_layers": 18, "compute_metrics": 312, "compute_bee": 30,
        "render_table": 30, "render_figure": 23, "render_body": 1, "render_readings": 1, "all": 1}
    assert {"data/imagenet", "models/resnet50-0676ba61.pth", "models/bert-base-uncased"} <= set(planned.absent)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config"]  # nothing written where it ran
    summary = planned.summary()
    assert summary["total"]["jobs"] == 1308 and summary["rules"]["train_model"]["gpu_hours"] > 0
    # Paper B §4.7's epochs cut the Tiny-ImageNet ResNet-50 runs below their 3,000-epoch cap, and nothing else.
    cut = {j.wildcards["model"] for j in planned.jobs if j.paper_flops < j.flops}
    assert cut and all(model.startswith("resnet50_tinyimagenet") for model in cut)


def test_the_cli_prints_the_plan_with_its_total(tiny, capsys):
    assert run(["plan", "--config", str(tiny), "--gpu", "a100", "--utilisation", "0.5"]) == 0
    text = capsys.readouterr().out
    assert "(an estimate)" in text and "A100" in text and "50% utilisation" in text
    assert re.search(r"^total\s+20\s", text, re.MULTILINE)
    assert run(["plan", "--config", str(tiny), "--format", "json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["assumptions"]["estimate"] is True and printed["total"]["jobs"] == 20
    assert run(["plan", "--config", str(tiny), "--gpu", "x100"]) == 2
    assert "unknown GPU kind 'x100'" in capsys.readouterr().err


def test_local_rules_are_the_workflows():
    text = (REPO / "workflow" / "rules" / "common.smk").read_text()
    block = re.search(r"^localrules:\n((?:\s+\w+,\n)+)", text, re.MULTILINE).group(1)
    assert set(cost_model.LOCAL_RULES) == set(re.findall(r"(\w+),", block))
