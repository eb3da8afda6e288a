"""Tests for the regime x budget table (kind ``budgets``): exact numbers (sample std, ddof=1, as
numpy.std(ddof=1) and the pandas default), exact LaTeX cell strings, and the frame checks every kind shares.
The other kinds are tested in test_table_kinds.py."""
from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest

from eebench.render import TABLES, render_table
from eebench.render.base import RunKey
from eebench.render.layouts import RULE_SENTENCES

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


def budget_frame(model: str = "r34", criterion: str = "confidence", rule: str = "best", offset: float = 0.0
                 ) -> pd.DataFrame:
    rows = [
        {
            "model": model, "dataset": "cifar100", "backbone": "resnet34", "regime": regime, "seed": seed,
            "criterion": criterion, "rule": rule, "budget": budget, "budget_fraction": 0.25 * (i + 1),
            "accuracy": acc + offset, "accuracy_flops": 0.5, "f1": acc + offset, "f1_flops": 0.5,
        }
        for (regime, seed), accs in ACC.items()
        for i, (budget, acc) in enumerate(zip(BUDGETS, accs))
    ]
    return pd.DataFrame(rows)


SPEC = {"model": "r34", "criterion": "confidence", "regimes": ["mixed", "disjoint"], "caption": "Test caption.",
        "label": "tab:regimes"}


def build(frame: pd.DataFrame | None = None, **kwargs):
    return TABLES.get("budgets")(budget_frame() if frame is None else frame, **(SPEC | kwargs))


def test_numbers_are_mean_and_sample_std_in_percent() -> None:
    _, numbers = build()
    assert list(numbers.columns) == [
        "model", "regime", "criterion", "metric", "rule", "budget", "mean", "std", "n_seeds"]
    assert set(numbers["model"]) == {"r34"} and set(numbers["criterion"]) == {"confidence"}
    assert set(numbers["metric"]) == {"accuracy"} and set(numbers["rule"]) == {"best"}
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
    assert r"\caption{Test caption. " + RULE_SENTENCES["best"] + "}" in lines and r"\label{tab:regimes}" in lines
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


def test_frame_is_filtered_to_the_entry_model_criterion_and_rule() -> None:
    expected_tex, expected = build()
    others = [budget_frame(model="r50", offset=0.1), budget_frame(criterion="entropy", offset=0.1),
              budget_frame(rule="last", offset=0.1)]
    tex, numbers = build(pd.concat([budget_frame(), *others], ignore_index=True))
    assert tex == expected_tex
    pd.testing.assert_frame_equal(numbers, expected)


def test_runs_are_the_model_regimes_criterion() -> None:
    runs = TABLES.get("budgets").runs({"kind": "budgets"} | SPEC)
    assert runs == [RunKey("r34", "mixed", "confidence"), RunKey("r34", "disjoint", "confidence")]
    assert TABLES.get("budgets").reads == "budgets"


def test_missing_run_raises_naming_it() -> None:
    with pytest.raises(ValueError, match=re.escape("('r34', 'joint', 'confidence')")):
        build(regimes=["mixed", "joint"])
    with pytest.raises(ValueError, match=re.escape("('r34', 'mixed', 'entropy')")):
        build(criterion="entropy")


def test_rows_duplicated_per_seed_raise() -> None:
    doubled = pd.concat([budget_frame(), budget_frame().assign(dataset="cifar10")], ignore_index=True)
    with pytest.raises(ValueError, match=re.escape("several rows per seed and budget")):
        build(doubled)


def test_rule_must_match_the_frame() -> None:
    with pytest.raises(ValueError, match="not the table's rule 'last'"):
        build(rule="last")
    with pytest.raises(ValueError, match="unknown budget rule 'worst'"):
        build(rule="worst")


def test_caption_states_the_rule_and_the_settings() -> None:
    tex, _ = build(rule="last", frame=budget_frame(rule="last"), budgets=[0.25, 0.5, 0.75, 1.0],
                   model_descriptions={"r34": "cifar100, resnet34, linear ICs", "r50_unused": "not shown"})
    caption = next(line for line in tex.splitlines() if line.startswith(r"\caption{"))
    assert caption == (r"\caption{Test caption. " + RULE_SENTENCES["last"]
                       + r" Settings: r34 = cifar100, resnet34, linear ICs.}")
    assert "Unlimited: every sample at the final head" in RULE_SENTENCES["last"]


def test_render_table_writes_tex_and_csv(tmp_path) -> None:
    frame = budget_frame()
    paths = []
    for (regime, seed), part in frame.groupby(["regime", "seed"]):
        path = tmp_path / f"{regime}_{seed}.csv"
        part.to_csv(path, index=False)
        paths.append(str(path))
    out = tmp_path / "tables" / "regimes.tex"
    spec = {"model": "r34", "criterion": "confidence", "regimes": ["disjoint", "mixed"], "caption": "C.",
            "label": "tab:r", "metric": "f1", "rule": "best", "budgets": [0.25, 0.5, 0.75, 1.0]}
    render_table("budgets", spec, paths, str(out))
    tex, numbers = TABLES.get("budgets")(frame, **spec)
    assert out.read_text() == tex
    written = pd.read_csv(out.with_suffix(".csv"))
    pd.testing.assert_frame_equal(written, numbers, check_dtype=False)
    assert sorted(p.name for p in out.parent.iterdir()) == ["regimes.csv", "regimes.tex"]
