"""The performance-cost figure (paper B Fig. 1, Figs 7-17) on hand-made sweeps: two regimes, two seeds.

With grid_points=10 the grid is 0.2, 0.3, ..., 1.1 (cheapest to dearest point) plus the budget marks 0.25 and
0.75 (0.5 and 1.0 are already on it), so every expected value below can be read off the sweeps by hand."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from eebench.sweep_metrics import BUDGET_RULES, budget_performance
from eebench.render import FIGURES, render_figure

INF = np.inf
# Test-split operating points per (regime, seed): (threshold, flops_fraction, accuracy).
TEST_POINTS = {
    ("joint", 0): [(0.2, 0.3, 0.50), (0.5, 0.6, 0.70), (INF, 1.1, 0.65)],
    ("joint", 1): [(0.3, 0.4, 0.60), (0.6, 0.7, 0.80), (INF, 1.1, 0.75)],
    ("mixed", 0): [(0.2, 0.2, 0.40), (0.5, 0.5, 0.60), (INF, 1.05, 0.90)],
    ("mixed", 1): [(0.2, 0.2, 0.44), (0.5, 0.5, 0.64), (INF, 1.05, 0.86)],
}
BUDGETS = [0.25, 0.5, 0.75, 1.0]
GRID_PERCENT = [20, 25, 30, 40, 50, 60, 70, 75, 80, 90, 100, 110]
SPEC = {"model": "resnet34", "regimes": ["joint", "mixed"], "criterion": "confidence", "budgets": BUDGETS,
        "grid_points": 10}


def sweep_frame(models=("resnet34",)) -> pd.DataFrame:
    """Both splits of every run; the val split costs 1 pp more and ranks the points in reverse."""
    rows = []
    for model in models:
        for (regime, seed), points in TEST_POINTS.items():
            accuracies = [accuracy for _, _, accuracy in points]
            for (threshold, flops, accuracy), reversed_accuracy in zip(points, accuracies[::-1]):
                identity = {"model": model, "dataset": "cifar100", "regime": regime, "seed": seed,
                            "criterion": "confidence", "threshold": threshold, "avg_exit_head": 1.0}
                rows.append({**identity, "split": "val", "flops_fraction": flops + 0.01,
                             "accuracy": reversed_accuracy, "f1": reversed_accuracy})
                rows.append({**identity, "split": "test", "flops_fraction": flops, "accuracy": accuracy,
                             "f1": accuracy})
    return pd.DataFrame(rows)


def at(numbers: pd.DataFrame, regime: str, percent: float, model: str = "resnet34") -> pd.Series:
    rows = numbers[(numbers["model"] == model) & (numbers["regime"] == regime)
                   & np.isclose(numbers["flops_percent"], percent)]
    assert len(rows) == 1
    return rows.iloc[0]


def test_grid_and_columns():
    _, numbers = FIGURES.get("cost_curves")(sweep_frame(), **SPEC)
    assert list(numbers.columns) == ["model", "regime", "flops_percent", "mean", "std", "n_seeds"]
    assert numbers["regime"].tolist() == ["joint"] * 12 + ["mixed"] * 12
    np.testing.assert_allclose(numbers["flops_percent"], GRID_PERCENT * 2)
    # The budget marks are on the grid exactly, not approximately.
    assert {25.0, 50.0, 75.0, 100.0} <= set(numbers["flops_percent"])


def test_best_rule_hand_computed():
    _, numbers = FIGURES.get("cost_curves")(sweep_frame(), **SPEC, rule="best")
    # joint: seed 0 starts at 30% (50), seed 1 at 40% (60); the curve starts where both fit.
    for percent, n_seeds in [(20, 0), (25, 0), (30, 1)]:
        row = at(numbers, "joint", percent)
        assert math.isnan(row["mean"]) and math.isnan(row["std"]) and row["n_seeds"] == n_seeds
    for percent, mean in [(40, 55.0), (50, 55.0), (60, 65.0), (70, 75.0), (100, 75.0), (110, 75.0)]:
        row = at(numbers, "joint", percent)
        assert row["mean"] == pytest.approx(mean)
        assert row["std"] == pytest.approx(math.sqrt(50.0))  # two seeds 10 pp apart: sqrt(5^2 + 5^2)
        assert row["n_seeds"] == 2
    # mixed: 40 and 44 from 20%, 60 and 64 from 50%, 90 and 86 at 110%.
    for percent, mean in [(20, 42.0), (40, 42.0), (50, 62.0), (100, 62.0), (110, 88.0)]:
        row = at(numbers, "mixed", percent)
        assert row["mean"] == pytest.approx(mean)
        assert row["std"] == pytest.approx(math.sqrt(8.0))


def test_last_rule_drops_at_the_dearest_point():
    _, numbers = FIGURES.get("cost_curves")(sweep_frame(), **SPEC, rule="last")
    # joint at 60%: seed 0's 0.6 point (70), seed 1's 0.4 point (60). At 110%: both +inf rows, 65 and 75.
    for percent, mean in [(40, 55.0), (60, 65.0), (100, 75.0), (110, 70.0)]:
        assert at(numbers, "joint", percent)["mean"] == pytest.approx(mean)
    assert at(numbers, "mixed", 110)["mean"] == pytest.approx(88.0)
    assert math.isnan(at(numbers, "joint", 30)["mean"])


@pytest.mark.parametrize("rule", BUDGET_RULES)
def test_budget_marks_equal_the_budget_tables(rule):
    frame = sweep_frame()
    _, numbers = FIGURES.get("cost_curves")(frame, **SPEC, rule=rule)
    for regime in ("joint", "mixed"):
        per_seed = []
        for seed in (0, 1):
            run = frame[(frame["regime"] == regime) & (frame["seed"] == seed)]
            val = run[run["split"] == "val"] if rule == "val" else None
            table = budget_performance(run[run["split"] == "test"], BUDGETS, "accuracy", rule=rule, val_df=val)
            per_seed.append(table["accuracy"].to_numpy()[:-1] * 100.0)
        expected = np.mean(per_seed, axis=0)
        marks = numbers[(numbers["regime"] == regime) & numbers["flops_percent"].isin([25.0, 50.0, 75.0, 100.0])]
        np.testing.assert_array_equal(marks["mean"], expected)


def test_lines_draw_the_numbers_and_budget_marks():
    fig, numbers = FIGURES.get("cost_curves")(sweep_frame(), **SPEC, title="ResNet-34 CIFAR-100")
    (ax,) = fig.axes
    curves = [line for line in ax.get_lines() if not line.get_label().startswith("_")]
    assert [line.get_label() for line in curves] == ["Joint", "Mixed"]
    for line, regime in zip(curves, ("joint", "mixed")):
        curve = numbers[numbers["regime"] == regime]
        np.testing.assert_array_equal(line.get_xdata(), curve["flops_percent"])
        np.testing.assert_array_equal(line.get_ydata(), curve["mean"])
    marks = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert [list(line.get_xdata()) for line in marks] == [[25.0, 25.0], [50.0, 50.0], [75.0, 75.0], [100.0, 100.0]]
    assert len(ax.collections) == 2  # one std band per curve
    assert ax.get_title() == "ResNet-34 CIFAR-100"
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["Joint", "Mixed"]


def legend(frame, **spec):
    fig, _ = FIGURES.get("cost_curves")(frame, criterion="confidence", grid_points=10, **spec)
    return [text.get_text() for text in fig.axes[0].get_legend().get_texts()]


def test_legend_labels():
    two_models = sweep_frame(models=("resnet34", "vit_t"))
    assert legend(two_models, models=["vit_t", "resnet34"], regimes=["mixed"]) == ["vit_t", "resnet34"]
    assert legend(two_models, models=["resnet34", "vit_t"], regimes=["joint", "mixed"]) == [
        "resnet34 joint", "resnet34 mixed", "vit_t joint", "vit_t mixed"]
    assert legend(sweep_frame(), model="resnet34", regimes=["mixed", "joint"], labels={"joint": "Joint (ours)"}) == [
        "Mixed", "Joint (ours)"]
    # model_descriptions arrives with every config entry; it is accepted and not drawn.
    assert legend(sweep_frame(), model="resnet34", regimes=["joint"], model_descriptions={"resnet34": "x"}) == [
        "Joint"]


def test_refuses_missing_runs_and_mixed_sweeps():
    cost_curves = FIGURES.get("cost_curves")
    with pytest.raises(ValueError, match="resnet34/disjoint"):
        cost_curves(sweep_frame(), model="resnet34", regimes=["joint", "disjoint"], criterion="confidence")
    frame = sweep_frame()
    mixed = pd.concat([frame, frame.assign(criterion="entropy")], ignore_index=True)
    with pytest.raises(ValueError, match="several sweeps"):  # two files of one run (say of two datasets)
        cost_curves(pd.concat([frame, frame]), model="resnet34", regimes=["joint"], criterion="confidence")
    _, numbers = cost_curves(mixed, model="resnet34", regimes=["joint"], criterion="entropy", budgets=BUDGETS,
                             grid_points=10)
    assert at(numbers, "joint", 50)["mean"] == pytest.approx(55.0)  # the grid now spans joint's points only
    assert numbers["flops_percent"].min() == pytest.approx(25.0)  # the 25% mark, below joint's cheapest (30%)
    with pytest.raises(ValueError, match="model"):
        cost_curves(frame, regimes=["joint"], criterion="confidence")


def test_render_figure_writes_pdf_png_csv(tmp_path):
    frame = sweep_frame()
    paths = []
    for (regime, seed), part in frame.groupby(["regime", "seed"]):
        path = tmp_path / f"{regime}_{seed}.csv"
        part.to_csv(path, index=False)
        paths.append(str(path))
    out = tmp_path / "figures" / "curves.pdf"
    spec = {**SPEC, "rule": "last", "model_descriptions": {"resnet34": "ResNet-34 on CIFAR-100"}}
    render_figure("cost_curves", spec, paths, str(out))
    assert sorted(p.name for p in out.parent.iterdir()) == ["curves.csv", "curves.pdf", "curves.png"]
    assert out.read_bytes().startswith(b"%PDF")
    image = imread(out.with_suffix(".png"))
    assert image.ndim == 3 and image.shape[0] > 0 and image.shape[1] > 0
    _, numbers = FIGURES.get("cost_curves")(frame, **spec)
    pd.testing.assert_frame_equal(pd.read_csv(out.with_suffix(".csv")), numbers, check_dtype=False)
