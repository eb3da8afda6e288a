"""Tests for the regime x budget table: exact numbers (sample std, ddof=1, as numpy.std(ddof=1) and the
pandas default) and exact LaTeX cell strings."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from eebench.render import TABLES, render_table

BUDGETS = ["25%", "50%", "75%", "100%", "unlimited"]
# accuracy per (regime, seed), one value per budget; NaN where no operating point fits the budget.
ACC = {
    ("disjoint", 0): [np.nan, 0.60, 0.70, 0.74, 0.74],
    ("disjoint", 1): [np.nan, 0.62, 0.72, 0.75, 0.75],
    ("disjoint", 2): [np.nan, 0.64, 0.74, 0.76, 0.76],
    ("mixed", 0): [0.50, 0.70, 0.60, 0.73, 0.80],
    ("mixed", 1): [0.52, 0.72, np.nan, 0.75, 0.80],
    ("mixed", 2): [0.54, 0.74, 0.62, 0.77, 0.80],
}


def budget_frame() -> pd.DataFrame:
    rows = [
        {
            "dataset": "cifar100", "backbone": "resnet34", "regime": regime, "seed": seed,
            "criterion": "confidence", "budget": budget, "budget_fraction": 0.25 * (i + 1), "accuracy": acc,
            "f1": acc,
        }
        for (regime, seed), accs in ACC.items()
        for i, (budget, acc) in enumerate(zip(BUDGETS, accs))
    ]
    return pd.DataFrame(rows)


def build(**kwargs):
    spec = {"regimes": ["mixed", "disjoint"], "caption": "Test caption.", "label": "tab:regimes"} | kwargs
    return TABLES.get("budgets")(budget_frame(), **spec)


def test_numbers_are_mean_and_sample_std_in_percent() -> None:
    _, numbers = build()
    assert list(numbers.columns) == ["regime", "budget", "mean", "std", "n_seeds"]
    assert list(numbers["regime"]) == ["mixed"] * 5 + ["disjoint"] * 5
    assert list(numbers["budget"]) == BUDGETS * 2
    cell = numbers.set_index(["regime", "budget"])
    # mixed 25%: 50, 52, 54 -> mean 52, sample std sqrt((4 + 0 + 4) / 2) = 2.
    assert cell.loc[("mixed", "25%"), "mean"] == pytest.approx(52.0)
    assert cell.loc[("mixed", "25%"), "std"] == pytest.approx(2.0)
    # mixed 100%: 73, 75, 77 -> mean 75, std 2; disjoint 100%: 74, 75, 76 -> mean 75, std 1.
    assert cell.loc[("mixed", "100%"), "std"] == pytest.approx(2.0)
    assert cell.loc[("disjoint", "100%"), "mean"] == pytest.approx(75.0)
    assert cell.loc[("disjoint", "100%"), "std"] == pytest.approx(1.0)
    # mixed unlimited: all 80 -> std 0.
    assert cell.loc[("mixed", "unlimited"), "mean"] == pytest.approx(80.0)
    assert cell.loc[("mixed", "unlimited"), "std"] == pytest.approx(0.0)
    # All seeds NaN -> no value; some seeds NaN -> no value either, n_seeds counts the finite ones.
    assert math.isnan(cell.loc[("disjoint", "25%"), "mean"]) and cell.loc[("disjoint", "25%"), "n_seeds"] == 0
    assert math.isnan(cell.loc[("mixed", "75%"), "mean"]) and math.isnan(cell.loc[("mixed", "75%"), "std"])
    assert cell.loc[("mixed", "75%"), "n_seeds"] == 2
    assert cell.loc[("mixed", "50%"), "n_seeds"] == 3


def test_tex_cells_bold_best_and_en_dash() -> None:
    tex, _ = build()
    lines = tex.splitlines()
    assert lines[0] == r"\begin{table}" and lines[-1] == r"\end{table}"
    assert r"\caption{Test caption.}" in lines and r"\label{tab:regimes}" in lines
    assert r"\toprule" in lines and r"\midrule" in lines and r"\bottomrule" in lines
    assert r"Regime & 25\% & 50\% & 75\% & 100\% & Unlimited \\" in lines
    mixed = [line for line in lines if line.startswith("Mixed")]
    disjoint = [line for line in lines if line.startswith("Disjoint")]
    assert lines.index(mixed[0]) < lines.index(disjoint[0])  # requested row order, not alphabetical
    # 50%: mixed 72.00 beats disjoint 62.00; 75%: mixed partial -> dash, disjoint alone is best;
    # 100%: tie at 75.00 -> both bold.
    assert mixed[0] == (
        r"Mixed & $\mathbf{52.00 \pm 2.00}$ & $\mathbf{72.00 \pm 2.00}$ & – & "
        r"$\mathbf{75.00 \pm 2.00}$ & $\mathbf{80.00 \pm 0.00}$ \\"
    )
    assert disjoint[0] == (
        r"Disjoint & – & $62.00 \pm 2.00$ & $\mathbf{72.00 \pm 2.00}$ & "
        r"$\mathbf{75.00 \pm 1.00}$ & $75.00 \pm 1.00$ \\"
    )


def test_missing_regime_raises() -> None:
    with pytest.raises(ValueError, match="'joint'"):
        build(regimes=["mixed", "joint"])


def test_render_table_writes_tex_and_csv(tmp_path) -> None:
    frame = budget_frame()
    paths = []
    for (regime, seed), part in frame.groupby(["regime", "seed"]):
        path = tmp_path / f"{regime}_{seed}.csv"
        part.to_csv(path, index=False)
        paths.append(str(path))
    out = tmp_path / "tables" / "regimes.tex"
    spec = {"regimes": ["disjoint", "mixed"], "caption": "C.", "label": "tab:r", "metric": "f1"}
    render_table("budgets", spec, paths, str(out))
    tex, numbers = TABLES.get("budgets")(frame, **spec)
    assert out.read_text() == tex
    written = pd.read_csv(out.with_suffix(".csv"))
    pd.testing.assert_frame_equal(written, numbers, check_dtype=False)
    assert sorted(p.name for p in out.parent.iterdir()) == ["regimes.csv", "regimes.tex"]
