"""Every paper-B table layout (kinds of eebench.render.TABLES besides ``budgets``, which test_tables.py covers):
hand-computed means, sample stds (ddof=1), differences, bold cells and en dashes on small hand-made frames;
exact LaTeX lines; the runs each entry lists; and the LaTeX structure (one tabular, a consistent column count
on every line, a booktabs \\midrule under the header and between blocks)."""
from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest

from eebench.io import save_torch
from eebench.render import TABLES, render_table
from eebench.render.base import RunKey
from eebench.render.layouts import EN_DASH, LOWER_IS_BETTER, RULE_SENTENCES

NAN = np.nan
BUDGETS = ["25%", "50%", "unlimited"]
FRACTIONS = {"25%": 0.25, "50%": 0.5, "unlimited": NAN}
KINDS = ["budgets", "differences", "ic_size", "loss_scaling", "methods", "placement", "settings", "side_by_side"]


def make_frame(values: dict[tuple[str, str, str], list[list[float]]], seeds=(0, 1, 2), rule: str = "last"
               ) -> pd.DataFrame:
    """``values[(model, regime, criterion)][i]`` = one value per budget for seed ``seeds[i]``. Accuracy and mse
    are the value, f1 half of it, so a test sees which metric a cell reads."""
    rows = [
        {
            "model": model, "dataset": "digits", "backbone": "cnn", "regime": regime, "seed": seed,
            "criterion": criterion, "rule": rule, "budget": budget, "budget_fraction": FRACTIONS[budget],
            "accuracy": value, "accuracy_flops": 0.5, "f1": value / 2, "f1_flops": 0.5, "mse": value,
        }
        for (model, regime, criterion), per_seed in values.items()
        for seed, per_budget in zip(seeds, per_seed)
        for budget, value in zip(BUDGETS, per_budget)
    ]
    return pd.DataFrame(rows)


def same(per_budget: list[float], seeds: int = 3) -> list[list[float]]:
    return [list(per_budget) for _ in range(seeds)]


def build(kind: str, frame: pd.DataFrame, **entry):
    spec = {"caption": "Cap.", "label": f"tab:{kind}", "rule": "last", "budgets": [0.25, 0.5]} | entry
    return TABLES.get(kind)(frame, **spec)


def cells(line: str) -> list[str]:
    """The cells of one LaTeX row (split on unescaped &)."""
    assert line.endswith(r"\\"), line
    return [cell.strip() for cell in re.split(r"(?<!\\)&", line[: -len(r"\\")])]


def structure(tex: str, n_blocks: int) -> list[list[str]]:
    """Check the table is one well-formed booktabs tabular and return the cells of its body rows."""
    lines = tex.splitlines()
    assert lines[0] == r"\begin{table}" and lines[-1] == r"\end{table}"
    assert tex.count(r"\begin{table}") == tex.count(r"\end{table}") == 1
    assert tex.count(r"\begin{tabular}") == tex.count(r"\end{tabular}") == 1
    n_columns = len(re.search(r"\\begin\{tabular\}\{([lc]+)\}", tex).group(1))
    assert lines.count(r"\toprule") == lines.count(r"\bottomrule") == 1
    inside = lines[lines.index(r"\toprule") + 1: lines.index(r"\bottomrule")]
    for line in inside:
        if line.endswith(r"\\"):
            spans = [int(m.group(1)) if (m := re.match(r"\\multicolumn\{(\d+)\}", cell)) else 1 for cell in cells(line)]
            assert sum(spans) == n_columns, line
        else:
            assert line == r"\midrule" or re.fullmatch(r"(\\cmidrule\(lr\)\{\d+-\d+\} ?)+", line), line
    midrules = [i for i, line in enumerate(inside) if line == r"\midrule"]
    assert len(midrules) == n_blocks  # one under the header, one between consecutive blocks
    body = inside[midrules[0] + 1:]
    for i in midrules[1:]:
        assert cells(inside[i + 1])[0] != ""  # a block starts with its label
    assert body and all(line == r"\midrule" or line.endswith(r"\\") for line in body)
    return [cells(line) for line in body if line != r"\midrule"]


def by_cell(numbers: pd.DataFrame, *keys: str) -> pd.DataFrame:
    return numbers.set_index([*keys, "budget"])


# Registry --------------------------------------------------------------------------------------------------


def test_every_paper_b_layout_is_registered_and_reads_budgets() -> None:
    assert [kind for kind in TABLES.names() if hasattr(TABLES.get(kind), "layout")] == sorted(KINDS)
    assert TABLES.get("training_time").reads == "models" and TABLES.get("claims").reads == "rendered"
    for kind in KINDS:
        assert TABLES.get(kind).reads == "budgets" and callable(TABLES.get(kind).runs)


# settings (Table 1) ----------------------------------------------------------------------------------------

SETTINGS = {
    "settings": [{"model": "a", "label": "Set A"}, {"model": "b", "label": "Set B", "metric": "f1"}],
    "regimes": ["disjoint", "mixed"], "criterion": "confidence",
}
SETTINGS_FRAME = {
    ("a", "disjoint", "confidence"): [[0.50, 0.60, 0.70], [0.52, 0.62, 0.72], [0.54, 0.64, 0.74]],
    ("a", "mixed", "confidence"): [[0.60, 0.61, NAN], [0.60, 0.63, 0.80], [0.60, 0.65, 0.80]],
    # read as f1 = half: disjoint 20, 30, 10; mixed 15, 35, 10 (ties at 10).
    ("b", "disjoint", "confidence"): same([0.40, 0.60, 0.20]),
    ("b", "mixed", "confidence"): same([0.30, 0.70, 0.20]),
}


def test_settings_blocks_numbers_and_bold_per_block() -> None:
    tex, numbers = build("settings", make_frame(SETTINGS_FRAME), **SETTINGS)
    assert list(numbers.columns) == ["block", "row", "group", "model", "regime", "criterion", "metric", "rule",
                                     "budget", "mean", "std", "n_seeds"]
    cell = by_cell(numbers, "block", "row")
    assert cell.loc[("Set A", "Disjoint", "25%"), "mean"] == pytest.approx(52.0)
    assert cell.loc[("Set A", "Disjoint", "25%"), "std"] == pytest.approx(2.0)  # sqrt((4 + 0 + 4) / 2)
    assert cell.loc[("Set A", "Mixed", "50%"), "mean"] == pytest.approx(63.0)
    assert math.isnan(cell.loc[("Set A", "Mixed", "unlimited"), "mean"])
    assert cell.loc[("Set A", "Mixed", "unlimited"), "n_seeds"] == 2
    assert cell.loc[("Set B", "Disjoint", "25%"), "mean"] == pytest.approx(20.0)  # f1, not accuracy
    assert cell.loc[("Set B", "Disjoint", "25%"), "metric"] == "f1"
    assert cell.loc[("Set B", "Mixed", "25%"), "model"] == "b"
    assert set(numbers["rule"]) == {"last"} and set(numbers["criterion"]) == {"confidence"}

    rows = structure(tex, n_blocks=2)
    assert r"Setting & Regime & 25\% & 50\% & Unlimited \\" in tex.splitlines()
    # Block A: mixed wins 25% and 50%, disjoint alone is finite at Unlimited. Block B is bolded on its own,
    # although all its cells are below block A's; its Unlimited tie (10.00) is bold twice.
    assert rows == [
        ["Set A", "Disjoint", r"$52.00 \pm 2.00$", r"$62.00 \pm 2.00$", r"$\mathbf{72.00 \pm 2.00}$"],
        ["", "Mixed", r"$\mathbf{60.00 \pm 0.00}$", r"$\mathbf{63.00 \pm 2.00}$", EN_DASH],
        ["Set B", "Disjoint", r"$\mathbf{20.00 \pm 0.00}$", r"$30.00 \pm 0.00$", r"$\mathbf{10.00 \pm 0.00}$"],
        ["", "Mixed", r"$15.00 \pm 0.00$", r"$\mathbf{35.00 \pm 0.00}$", r"$\mathbf{10.00 \pm 0.00}$"],
    ]


def test_settings_a_regression_block_reads_its_own_criterion_and_bolds_the_least_mse() -> None:
    """Paper B Table 2: a classification block (accuracy, max-softmax) above a regression block (MSE under the
    regression criterion, shown as computed, the smallest bold)."""
    spec = {"settings": [{"model": "a", "label": "Newsgr."},
                         {"model": "s", "label": "STS-B", "metric": "mse", "criterion": "regression_patience"}],
            "regimes": ["disjoint", "mixed"], "criterion": "confidence"}
    tex, numbers = build("settings", make_frame(SIDE_FRAME), **spec)
    runs = TABLES.get("settings").runs(spec)
    assert RunKey("s", "mixed", "regression_patience") in runs and RunKey("s", "mixed", "confidence") not in runs
    assert structure(tex, n_blocks=2)[2:] == [
        ["STS-B", "Disjoint", r"$2.20 \pm 0.20$", r"$\mathbf{1.50 \pm 0.00}$", r"$\mathbf{0.50 \pm 0.00}$"],
        ["", "Mixed", r"$\mathbf{1.00 \pm 0.00}$", r"$1.60 \pm 0.00$", r"$\mathbf{0.50 \pm 0.00}$"],
    ]
    assert set(numbers.loc[numbers["block"] == "STS-B", "criterion"]) == {"regression_patience"}


def test_settings_runs_and_default_label() -> None:
    entry = {"kind": "settings", "settings": [{"model": "a"}, {"model": "b", "label": "B"}],
             "regimes": ["joint", "mixed"], "criterion": "entropy", "caption": "C", "rule": "last"}
    assert TABLES.get("settings").runs(entry) == [
        RunKey("a", "joint", "entropy"), RunKey("a", "mixed", "entropy"),
        RunKey("b", "joint", "entropy"), RunKey("b", "mixed", "entropy")]
    frame = make_frame({run: same([0.5, 0.5, 0.5]) for run in
                        [("a", "joint", "entropy"), ("a", "mixed", "entropy"),
                         ("b", "joint", "entropy"), ("b", "mixed", "entropy")]})
    tex, numbers = build("settings", frame, **{k: v for k, v in entry.items() if k not in ("kind", "caption")})
    assert list(pd.unique(numbers["block"])) == ["a", "B"]  # label defaults to the model name
    assert [row[0] for row in structure(tex, n_blocks=2)] == ["a", "", "B", ""]


# side_by_side (Table 2) ------------------------------------------------------------------------------------

SIDE = {
    "settings": [{"model": "a", "label": "Newsgr. (class.)"},
                 {"model": "s", "label": "STS-B (regr.)", "metric": "mse", "criterion": "regression_patience"}],
    "regimes": ["disjoint", "mixed"], "criterion": "confidence",
}
SIDE_FRAME = {
    ("a", "disjoint", "confidence"): same([0.60, 0.80, 0.90]),
    ("a", "mixed", "confidence"): same([0.70, 0.75, 0.90]),
    # mse, unscaled; lower is better: mixed wins 25%, disjoint 50%, Unlimited ties.
    ("s", "disjoint", "regression_patience"): [[2.0, 1.5, 0.5], [2.2, 1.5, 0.5], [2.4, 1.5, 0.5]],
    ("s", "mixed", "regression_patience"): same([1.0, 1.6, 0.5]),
}


def test_side_by_side_groups_and_lower_is_better() -> None:
    assert "mse" in LOWER_IS_BETTER
    tex, numbers = build("side_by_side", make_frame(SIDE_FRAME), **SIDE)
    lines = tex.splitlines()
    assert r" & \multicolumn{3}{c}{Newsgr. (class.)} & \multicolumn{3}{c}{STS-B (regr.)} \\" in lines
    assert r"\cmidrule(lr){2-4} \cmidrule(lr){5-7}" in lines
    assert r"Regime & 25\% & 50\% & Unlimited & 25\% & 50\% & Unlimited \\" in lines
    assert structure(tex, n_blocks=1) == [
        ["Disjoint", "$60.00 \\pm 0.00$", r"$\mathbf{80.00 \pm 0.00}$", r"$\mathbf{90.00 \pm 0.00}$",
         r"$2.20 \pm 0.20$", r"$\mathbf{1.50 \pm 0.00}$", r"$\mathbf{0.50 \pm 0.00}$"],
        ["Mixed", r"$\mathbf{70.00 \pm 0.00}$", r"$75.00 \pm 0.00$", r"$\mathbf{90.00 \pm 0.00}$",
         r"$\mathbf{1.00 \pm 0.00}$", r"$1.60 \pm 0.00$", r"$\mathbf{0.50 \pm 0.00}$"],
    ]
    cell = by_cell(numbers, "group", "row")
    assert cell.loc[("STS-B (regr.)", "Disjoint", "25%"), "mean"] == pytest.approx(2.2)
    assert cell.loc[("STS-B (regr.)", "Disjoint", "25%"), "std"] == pytest.approx(0.2)
    assert cell.loc[("STS-B (regr.)", "Disjoint", "25%"), "metric"] == "mse"
    assert cell.loc[("Newsgr. (class.)", "Mixed", "25%"), "mean"] == pytest.approx(70.0)
    assert set(numbers["block"]) == {""}
    assert TABLES.get("side_by_side").runs(SIDE) == [
        RunKey("a", "disjoint", "confidence"), RunKey("s", "disjoint", "regression_patience"),
        RunKey("a", "mixed", "confidence"), RunKey("s", "mixed", "regression_patience")]


# methods (Table 3) -----------------------------------------------------------------------------------------

METHODS = {
    "model": "vit", "regimes": ["disjoint", "mixed"], "criterion": "confidence",
    "methods": [{"criterion": "patience", "label": "PBEE"}, {"criterion": "entropy"}],
}


def test_methods_blocks_per_exit_criterion() -> None:
    assert TABLES.get("methods").runs(METHODS) == [
        RunKey("vit", "disjoint", "patience"), RunKey("vit", "mixed", "patience"),
        RunKey("vit", "disjoint", "entropy"), RunKey("vit", "mixed", "entropy")]
    frame = make_frame({
        ("vit", "disjoint", "patience"): same([0.19, 0.44, 0.64]),
        ("vit", "mixed", "patience"): same([0.29, 0.59, 0.70]),
        ("vit", "disjoint", "entropy"): same([0.27, 0.46, 0.71]),
        ("vit", "mixed", "entropy"): same([0.42, 0.62, 0.70]),
        # the entry's own criterion is not read: its rows are ignored
        ("vit", "mixed", "confidence"): same([0.99, 0.99, 0.99]),
    }, seeds=(0,))
    tex, numbers = build("methods", frame, **METHODS)
    assert r"EE Method & Regime & 25\% & 50\% & Unlimited \\" in tex.splitlines()
    # One seed: no "± std".
    assert structure(tex, n_blocks=2) == [
        ["PBEE", "Disjoint", "$19.00$", "$44.00$", "$64.00$"],
        ["", "Mixed", r"$\mathbf{29.00}$", r"$\mathbf{59.00}$", r"$\mathbf{70.00}$"],
        ["Entropy", "Disjoint", "$27.00$", "$46.00$", r"$\mathbf{71.00}$"],
        ["", "Mixed", r"$\mathbf{42.00}$", r"$\mathbf{62.00}$", "$70.00$"],
    ]
    assert set(numbers["criterion"]) == {"patience", "entropy"}
    assert numbers["std"].isna().all() and (numbers["n_seeds"] == 1).all()


# differences (Table 5) -------------------------------------------------------------------------------------

DIFFERENCES = {
    "reference": "ref", "variants": [{"model": "inc", "label": "Inc."}, {"model": "dec", "label": "Dec."}],
    "regimes": ["joint", "mixed"], "criterion": "confidence",
}
DIFFERENCES_FRAME = {
    ("ref", "joint", "confidence"): [[0.50, 0.60, 0.70], [0.52, 0.60, 0.72], [0.54, 0.60, 0.74]],
    ("ref", "mixed", "confidence"): [[NAN, 0.70, 0.80], [0.60, 0.71, 0.80], [0.60, 0.72, 0.80]],
    # per-seed differences: 25% +1 +1 +1; 50% -1 0 +1; unlimited 0 0 0
    ("inc", "joint", "confidence"): [[0.51, 0.59, 0.70], [0.53, 0.60, 0.72], [0.55, 0.61, 0.74]],
    # 25%: reference NaN for seed 0 -> dash; 50%: 0 -1 -2; unlimited 0
    ("inc", "mixed", "confidence"): same([0.60, 0.70, 0.80]),
    # 25%: -1 -2 -3; 50%: +0.4 each; unlimited: variant NaN for seed 2 -> dash
    ("dec", "joint", "confidence"): [[0.49, 0.604, 0.70], [0.50, 0.604, 0.72], [0.51, 0.604, NAN]],
    # 50%: -0.001 each, shown "+0.00" (never "-0.00")
    ("dec", "mixed", "confidence"): [[0.60, 0.69999, 0.80], [0.60, 0.70999, 0.80], [0.60, 0.71999, 0.80]],
}


def test_differences_paired_by_seed_signed_without_bold() -> None:
    tex, numbers = build("differences", make_frame(DIFFERENCES_FRAME), **DIFFERENCES)
    assert list(numbers.columns) == ["block", "row", "group", "model", "regime", "criterion", "metric", "rule",
                                     "budget", "mean", "std", "n_seeds", "reference", "reference_mean",
                                     "variant_mean"]
    assert r"Regime & Scaling & 25\% & 50\% & Unlimited \\" in tex.splitlines()
    assert r"\mathbf" not in tex
    assert structure(tex, n_blocks=2) == [
        ["Joint", "Inc.", "$+1.00$", "$+0.00$", "$+0.00$"],
        ["Mixed", "Inc.", EN_DASH, "$-1.00$", "$+0.00$"],
        ["Joint", "Dec.", "$-2.00$", "$+0.40$", EN_DASH],
        ["Mixed", "Dec.", EN_DASH, "$+0.00$", "$+0.00$"],  # 25%: the reference's NaN seed again
    ]
    cell = by_cell(numbers, "block", "row")
    joint_inc_50 = cell.loc[("Inc.", "Joint", "50%")]
    assert joint_inc_50["mean"] == pytest.approx(0.0, abs=1e-9) and joint_inc_50["std"] == pytest.approx(1.0)
    assert joint_inc_50["reference_mean"] == pytest.approx(60.0) and joint_inc_50["variant_mean"] == pytest.approx(60.0)
    assert joint_inc_50["model"] == "inc" and joint_inc_50["reference"] == "ref" and joint_inc_50["n_seeds"] == 3
    assert cell.loc[("Dec.", "Joint", "25%"), "mean"] == pytest.approx(-2.0)
    assert cell.loc[("Dec.", "Joint", "25%"), "std"] == pytest.approx(1.0)
    assert cell.loc[("Dec.", "Joint", "50%"), "mean"] == pytest.approx(0.4)
    assert cell.loc[("Dec.", "Mixed", "50%"), "mean"] == pytest.approx(-0.001)
    dashed = cell.loc[("Inc.", "Mixed", "25%")]  # the reference has a NaN seed
    assert math.isnan(dashed["mean"]) and math.isnan(dashed["reference_mean"])
    assert dashed["variant_mean"] == pytest.approx(60.0) and dashed["n_seeds"] == 2
    dashed = cell.loc[("Dec.", "Joint", "unlimited")]  # the variant has a NaN seed
    assert math.isnan(dashed["mean"]) and math.isnan(dashed["variant_mean"])
    assert dashed["reference_mean"] == pytest.approx(72.0)


def test_differences_runs_include_the_reference() -> None:
    assert TABLES.get("differences").runs(DIFFERENCES) == [
        RunKey("ref", "joint", "confidence"), RunKey("ref", "mixed", "confidence"),
        RunKey("inc", "joint", "confidence"), RunKey("inc", "mixed", "confidence"),
        RunKey("dec", "joint", "confidence"), RunKey("dec", "mixed", "confidence")]
    frame = make_frame({key: value for key, value in DIFFERENCES_FRAME.items() if key[0] != "ref"})
    with pytest.raises(ValueError, match=re.escape("('ref', 'joint', 'confidence')")):
        build("differences", frame, **DIFFERENCES)


# ic_size (Tables 6 and 20) ---------------------------------------------------------------------------------

IC_SIZE = {
    "variants": [{"model": "l1", "label": "1L"}, {"model": "l2", "label": "2L-1024"},
                 {"model": "l3", "label": "2L-2048"}],
    "regimes": ["disjoint", "mixed"], "criterion": "confidence",
}
IC_SIZE_FRAME = {  # two seeds
    # 25%: 51.004 and 50.996 both show 51.00 -> both bold
    ("l1", "disjoint", "confidence"): [[0.51004, 0.40, 0.50], [0.51004, 0.42, 0.52]],
    ("l2", "disjoint", "confidence"): [[0.50996, 0.45, 0.50], [0.50996, 0.45, 0.50]],
    ("l3", "disjoint", "confidence"): [[0.30, 0.44, 0.50], [0.30, 0.46, NAN]],
    ("l1", "mixed", "confidence"): [[0.44, 0.58, 0.60], [0.44, 0.58, 0.60]],
    ("l2", "mixed", "confidence"): [[0.45, 0.57, 0.59], [0.45, 0.57, 0.59]],
    ("l3", "mixed", "confidence"): [[0.44, 0.56, 0.60], [0.46, 0.58, 0.61]],
}


def test_ic_size_blocks_per_regime_two_seeds() -> None:
    tex, numbers = build("ic_size", make_frame(IC_SIZE_FRAME, seeds=(0, 1)), **IC_SIZE)
    assert r"Regime & IC arch. & 25\% & 50\% & Unlimited \\" in tex.splitlines()
    # l1 disjoint 50%: 40, 42 -> mean 41, std sqrt(2) = 1.41; l3 mixed 25%: 44, 46 -> 45 +- 1.41, ties l2.
    assert structure(tex, n_blocks=2) == [
        ["Disjoint", "1L", r"$\mathbf{51.00 \pm 0.00}$", r"$41.00 \pm 1.41$", r"$\mathbf{51.00 \pm 1.41}$"],
        ["", "2L-1024", r"$\mathbf{51.00 \pm 0.00}$", r"$\mathbf{45.00 \pm 0.00}$", r"$50.00 \pm 0.00$"],
        ["", "2L-2048", r"$30.00 \pm 0.00$", r"$\mathbf{45.00 \pm 1.41}$", EN_DASH],
        ["Mixed", "1L", r"$44.00 \pm 0.00$", r"$\mathbf{58.00 \pm 0.00}$", r"$60.00 \pm 0.00$"],
        ["", "2L-1024", r"$\mathbf{45.00 \pm 0.00}$", r"$57.00 \pm 0.00$", r"$59.00 \pm 0.00$"],
        ["", "2L-2048", r"$\mathbf{45.00 \pm 1.41}$", r"$57.00 \pm 1.41$", r"$\mathbf{60.50 \pm 0.71}$"],
    ]
    cell = by_cell(numbers, "block", "row")
    assert cell.loc[("Disjoint", "1L", "50%"), "std"] == pytest.approx(math.sqrt(2))
    assert cell.loc[("Disjoint", "1L", "25%"), "mean"] == pytest.approx(51.004)
    assert cell.loc[("Mixed", "2L-2048", "unlimited"), "std"] == pytest.approx(math.sqrt(0.5))
    assert cell.loc[("Disjoint", "2L-2048", "unlimited"), "n_seeds"] == 1
    assert TABLES.get("ic_size").runs(IC_SIZE) == [
        RunKey(model, regime, "confidence") for regime in ("disjoint", "mixed") for model in ("l1", "l2", "l3")]


def test_bold_refuses_a_column_that_mixes_metrics() -> None:
    entry = IC_SIZE | {"variants": [*IC_SIZE["variants"][:2], {"model": "l3", "label": "F1", "metric": "f1"}]}
    with pytest.raises(ValueError, match="mixing metrics accuracy, f1"):
        build("ic_size", make_frame(IC_SIZE_FRAME, seeds=(0, 1)), **entry)


# placement (Table 7) ---------------------------------------------------------------------------------------

PLACEMENT = {
    "schemes": [{"model": "e1", "label": "Every-1"}, {"model": "ds", "label": "Dense-Sparse"}],
    "regimes": ["disjoint", "joint"], "criterion": "confidence",
}


def test_placement_blocks_per_scheme_and_a_missing_seed_is_a_dash() -> None:
    frame = make_frame({
        ("e1", "disjoint", "confidence"): same([0.39, 0.49, 0.66]),
        ("e1", "joint", "confidence"): same([0.52, 0.62, 0.65]),
        ("ds", "disjoint", "confidence"): same([0.37, 0.48, 0.66]),
        ("ds", "joint", "confidence"): same([0.40, 0.63, 0.60]),
    })
    # Seed 2 of ds/joint is lost for the 50% budget only: that cell is a dash, not the mean of two seeds.
    frame = frame[~((frame["model"] == "ds") & (frame["regime"] == "joint") & (frame["seed"] == 2)
                    & (frame["budget"] == "50%"))]
    tex, numbers = build("placement", frame, **PLACEMENT)
    assert r"Scheme & Regime & 25\% & 50\% & Unlimited \\" in tex.splitlines()
    assert structure(tex, n_blocks=2) == [
        ["Every-1", "Disjoint", r"$39.00 \pm 0.00$", r"$49.00 \pm 0.00$", r"$\mathbf{66.00 \pm 0.00}$"],
        ["", "Joint", r"$\mathbf{52.00 \pm 0.00}$", r"$\mathbf{62.00 \pm 0.00}$", r"$65.00 \pm 0.00$"],
        ["Dense-Sparse", "Disjoint", r"$37.00 \pm 0.00$", r"$\mathbf{48.00 \pm 0.00}$", r"$\mathbf{66.00 \pm 0.00}$"],
        ["", "Joint", r"$\mathbf{40.00 \pm 0.00}$", EN_DASH, r"$60.00 \pm 0.00$"],
    ]
    missing = by_cell(numbers, "block", "row").loc[("Dense-Sparse", "Joint", "50%")]
    assert math.isnan(missing["mean"]) and missing["n_seeds"] == 2
    assert TABLES.get("placement").runs(PLACEMENT) == [
        RunKey(model, regime, "confidence") for model in ("e1", "ds") for regime in ("disjoint", "joint")]


# loss_scaling (Table 19) -----------------------------------------------------------------------------------

LOSS_SCALING = {
    "variants": [{"model": "base", "label": ""}, {"model": "ge", "label": "GE"}, {"model": "inc", "label": "Inc."}],
    "regimes": ["joint", "mixed"], "criterion": "confidence",
}


def test_loss_scaling_flat_rows_bold_over_the_table() -> None:
    values = {"joint": {"base": 0.53, "ge": 0.54, "inc": 0.51}, "mixed": {"base": 0.52, "ge": 0.55, "inc": 0.50}}
    frame = make_frame({(model, regime, "confidence"): same([value, 0.60, 0.65 if model == "inc" else 0.64])
                        for regime, by_model in values.items() for model, value in by_model.items()})
    tex, numbers = build("loss_scaling", frame, **LOSS_SCALING)
    rows = structure(tex, n_blocks=1)
    assert [row[0] for row in rows] == ["Joint", "Joint GE", "Joint Inc.", "Mixed", "Mixed GE", "Mixed Inc."]
    bold = [[r"\mathbf" in cell for cell in row[1:]] for row in rows]
    # 25%: mixed GE alone (55); 50%: all tie at 60; Unlimited: both Inc. rows (65).
    assert bold == [[False, True, False], [False, True, False], [False, True, True],
                    [False, True, False], [True, True, False], [False, True, True]]
    assert list(pd.unique(numbers["row"])) == ["Joint", "Joint GE", "Joint Inc.", "Mixed", "Mixed GE", "Mixed Inc."]
    assert TABLES.get("loss_scaling").runs(LOSS_SCALING) == [
        RunKey(model, regime, "confidence") for regime in ("joint", "mixed") for model in ("base", "ge", "inc")]


# Shared behaviour ------------------------------------------------------------------------------------------

ENTRIES = {
    "budgets": ({"model": "a", "regimes": ["disjoint", "mixed"], "criterion": "confidence"}, SETTINGS_FRAME),
    "settings": (SETTINGS, SETTINGS_FRAME),
    "side_by_side": (SIDE, SIDE_FRAME),
    "differences": (DIFFERENCES, DIFFERENCES_FRAME),
    "ic_size": (IC_SIZE, IC_SIZE_FRAME),
    "placement": ({"schemes": [{"model": "a", "label": "Every-1"}], "regimes": ["disjoint", "mixed"],
                   "criterion": "confidence"}, SETTINGS_FRAME),
    "loss_scaling": ({"variants": [{"model": "a", "label": ""}, {"model": "b", "label": "B"}],
                      "regimes": ["disjoint", "mixed"], "criterion": "confidence"}, SETTINGS_FRAME),
    "methods": ({"model": "a", "regimes": ["disjoint", "mixed"], "criterion": "confidence",
                 "methods": [{"criterion": "confidence"}]}, SETTINGS_FRAME),
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("rule", sorted(RULE_SENTENCES))
def test_every_kind_states_rule_and_settings_in_the_caption(kind: str, rule: str) -> None:
    entry, values = ENTRIES[kind]
    seeds = (0, 1) if kind == "ic_size" else (0, 1, 2)
    runs = TABLES.get(kind).runs(entry)
    descriptions = {run.model: f"digits, cnn_{run.model}, linear ICs" for run in runs}
    tex, numbers = build(kind, make_frame(values, seeds=seeds, rule=rule), rule=rule,
                         model_descriptions=descriptions, **entry)
    caption = next(line for line in tex.splitlines() if line.startswith(r"\caption{"))
    named = "; ".join(f"{model} = digits, cnn\\_{model}, linear ICs" for model in dict.fromkeys(r.model for r in runs))
    assert caption == rf"\caption{{Cap. {RULE_SENTENCES[rule]} Settings: {named}.}}"
    assert set(numbers["rule"]) == {rule}
    assert {"model", "regime", "criterion", "budget", "mean", "std", "n_seeds", "rule"} <= set(numbers.columns)
    assert set(zip(numbers["model"], numbers["regime"], numbers["criterion"])) <= {
        (run.model, run.regime, run.criterion) for run in runs}


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_refuses_missing_runs_and_duplicated_rows(kind: str) -> None:
    entry, values = ENTRIES[kind]
    seeds = (0, 1) if kind == "ic_size" else (0, 1, 2)
    frame = make_frame(values, seeds=seeds)
    last = TABLES.get(kind).runs(entry)[-1]
    without = frame[~((frame["model"] == last.model) & (frame["regime"] == last.regime)
                      & (frame["criterion"] == last.criterion))]
    with pytest.raises(ValueError, match=re.escape(str((last.model, last.regime, last.criterion)))):
        build(kind, without, **entry)
    doubled = frame[(frame["model"] == last.model) & (frame["regime"] == last.regime)
                    & (frame["criterion"] == last.criterion)].head(1)
    with pytest.raises(ValueError, match="several rows per seed and budget"):
        build(kind, pd.concat([frame, doubled], ignore_index=True), **entry)


def test_render_table_writes_a_blocked_kind(tmp_path) -> None:
    from eebench.render import render_table

    frame = make_frame(SETTINGS_FRAME)
    paths = []
    for (model, regime), part in frame.groupby(["model", "regime"]):
        paths.append(str(tmp_path / f"{model}_{regime}.csv"))
        part.to_csv(paths[-1], index=False)
    out = tmp_path / "paper" / "settings.tex"
    spec = {"caption": "C.", "label": "tab:s", "rule": "last", "budgets": [0.25, 0.5]} | SETTINGS
    render_table("settings", spec, paths, str(out))
    tex, numbers = TABLES.get("settings")(frame, **spec)
    assert out.read_text() == tex
    written = pd.read_csv(out.with_suffix(".csv"), keep_default_na=False, na_values=[""])
    assert list(written.columns) == list(numbers.columns)
    np.testing.assert_allclose(written["mean"], numbers["mean"])
    assert list(written["block"]) == list(numbers["block"])


# methods with a per-method model (GPF) ---------------------------------------------------------------------


def test_a_method_with_its_own_model_reads_that_models_runs() -> None:
    frame = make_frame({("cnn", "joint", "patience"): same([0.1, 0.2]),
                        ("cnn_gpf", "joint", "confidence"): same([0.3, 0.4])})
    spec = {"model": "cnn", "regimes": ["joint"], "criterion": "confidence",
            "methods": [{"criterion": "patience", "label": "PBEE"},
                        {"criterion": "confidence", "model": "cnn_gpf", "label": "GPF"}]}
    assert TABLES.get("methods").runs(spec) == [RunKey("cnn", "joint", "patience"),
                                                 RunKey("cnn_gpf", "joint", "confidence")]
    _, numbers = build("methods", frame, **spec)
    gpf = numbers[numbers["block"] == "GPF"]
    assert list(gpf["model"].unique()) == ["cnn_gpf"] and list(gpf["mean"]) == pytest.approx([30.0, 40.0])


# training_time (§4.7) --------------------------------------------------------------------------------------


def write_run(path, regime, seed, phases, init_phases=()):
    """A checkpoint with a history of ``phases`` = [(phase name, epochs, seconds per epoch)]."""
    def history(entries):
        return [{"phase": name, "epoch": e + 1, "seconds": seconds}
                for name, epochs, seconds in entries for e in range(epochs)]
    save_torch(path, {"spec": {}, "state_dict": {}, "meta": {"model": "cnn", "regime": regime, "seed": seed},
                      "history": history(phases), "init_history": history(init_phases)})
    return str(path)


def test_training_time_counts_every_phase_and_the_shared_phase1(tmp_path) -> None:
    paths = [
        write_run(tmp_path / "m0.pt", "mixed", 0, [("joint", 4, 1.0)], init_phases=[("backbone", 10, 0.5)]),
        write_run(tmp_path / "m1.pt", "mixed", 1, [("joint", 6, 1.0)], init_phases=[("backbone", 12, 0.5)]),
        write_run(tmp_path / "j0.pt", "joint", 0, [("joint", 9, 2.0)]),
        write_run(tmp_path / "j1.pt", "joint", 1, [("joint", 11, 2.0)]),
        # Branch-wise: per-head phases, no phase 1.
        write_run(tmp_path / "b0.pt", "branchwise", 0, [("branch1", 3, 1.0), ("branch2", 2, 1.0)]),
        write_run(tmp_path / "b1.pt", "branchwise", 1, [("branch1", 3, 1.0), ("branch2", 4, 1.0)]),
    ]
    out = tmp_path / "time.tex"
    render_table("training_time", {"model": "cnn", "regimes": ["mixed", "joint", "branchwise"], "caption": "T.",
                                   "label": "tab:t"}, paths, str(out))
    numbers = pd.read_csv(tmp_path / "time.csv").set_index(["regime", "quantity"])
    assert numbers.loc[("mixed", "epochs"), "mean"] == 16 and numbers.loc[("mixed", "phase1_epochs"), "mean"] == 11
    assert numbers.loc[("mixed", "seconds"), "mean"] == pytest.approx((4 + 5 + 6 + 6) / 2)
    assert numbers.loc[("joint", "epochs"), "std"] == pytest.approx(np.std([9, 11], ddof=1))
    assert numbers.loc[("branchwise", "phase1_epochs"), "mean"] == 0
    body = [cells(line) for line in out.read_text().splitlines() if line.startswith(("Mixed", "Joint", "Branch"))]
    assert body[0] == ["Mixed", "$16 \\pm 3$", "$11 \\pm 1$", "$10.5 \\pm 2.1$"]
    assert body[2][0] == "Branch-wise"


# claims ----------------------------------------------------------------------------------------------------


def budget_numbers(frame: pd.DataFrame, regimes: list[str], criterion: str = "confidence", **entry) -> pd.DataFrame:
    """What a claim reads: the CSV of a ``budgets`` table of model ``frame``'s first model, as entry "tab"."""
    model = frame["model"].iloc[0]
    _, numbers = build("budgets", frame, model=model, regimes=regimes, criterion=criterion, **entry)
    return numbers.assign(entry="tab")


def check(*claims: str, frame: pd.DataFrame, entry: str = "tab"):
    return build("claims", frame, checks=[{"claim": claim, "entry": entry} for claim in claims])


def test_claims_table_states_holds_and_does_not_hold_with_the_budget_tables_numbers() -> None:
    frame = make_frame({("cnn", "disjoint", "confidence"): same([0.10, 0.50]),
                        ("cnn", "joint", "confidence"): same([0.40, 0.70]),
                        ("cnn", "mixed", "confidence"): [[0.30, 0.60], [0.32, 0.62], [0.34, 0.64]]})
    claims = ("disjoint_weakest_at_low_budget", "mixed_at_least_joint_at_high_budgets", "mixed_gradual_at_least_mixed")
    assert TABLES.get("claims").runs({"checks": []}) == []  # it reads other entries' numbers, not runs
    tex, numbers = check(*claims, frame=budget_numbers(frame, ["disjoint", "joint", "mixed"]))
    # Budgets here are 25% and 50%: the high-budget claims find no 75% column.
    assert list(numbers["holds"]) == [True, None, None] and list(numbers["entry"]) == ["tab"] * 3
    assert numbers["numbers"][0] == "25%: disjoint 10.00 ± 0.00, joint 40.00 ± 0.00, mixed 32.00 ± 2.00"
    frame.loc[frame["budget"] == "50%", "budget"] = "75%"
    frame = pd.concat([frame, frame[frame["budget"] == "75%"].assign(budget="100%")])
    _, numbers = check(*claims, frame=budget_numbers(frame, ["disjoint", "joint", "mixed"]))
    assert list(numbers["holds"]) == [True, False, None]
    assert "does not hold" in check(*claims, frame=budget_numbers(frame, ["disjoint", "joint", "mixed"]))[0]
    # Regime names and percent signs are escaped in the LaTeX; the CSV keeps plain text.
    frame = pd.concat([frame, frame[frame["regime"] == "mixed"].assign(regime="mixed_gradual")])
    tex, numbers = check(*claims, frame=budget_numbers(frame, ["disjoint", "joint", "mixed", "mixed_gradual"]))
    assert "75\\%: mixed\\_gradual 62.00 $\\pm$ 2.00 vs mixed" in tex
    assert numbers["numbers"][2].startswith("75%: mixed_gradual 62.00 ± 2.00 vs mixed")
    # A budgets table of several settings is ambiguous.
    two = pd.concat([frame, frame.assign(model="other")])
    with pytest.raises(ValueError, match="one model, criterion and metric"):
        check("disjoint_weakest_at_low_budget", frame=pd.concat([
            budget_numbers(two, ["disjoint", "joint", "mixed"]),
            budget_numbers(two[two["model"] == "other"], ["disjoint", "joint", "mixed"])]))


def test_a_verdict_never_turns_on_rounding() -> None:
    """The default run's case: one mean summed in two orders, 98.6111111111111 < 98.61111111111113 as floats,
    both printed 98.61, so "mixed >= joint" holds; a difference that shows (98.60 vs 98.61) still decides."""
    from eebench.claims import CLAIMS

    def means(joint: float, mixed: float) -> pd.DataFrame:
        return pd.DataFrame([{"model": "cnn", "criterion": "confidence", "metric": "accuracy", "regime": regime,
                              "budget": budget, "mean": value, "std": 0.5}
                             for budget in ("75%", "100%") for regime, value in (("joint", joint), ("mixed", mixed))])

    at_least = CLAIMS.get("mixed_at_least_joint_at_high_budgets").check
    assert 98.6111111111111 < 98.61111111111113
    verdict = at_least(means(joint=98.61111111111113, mixed=98.6111111111111))
    assert verdict.holds is True and "mixed 98.61 ± 0.50 vs joint 98.61 ± 0.50" in verdict.numbers
    assert at_least(means(joint=98.61, mixed=98.6049)).holds is False  # 98.60 vs 98.61 as printed
    # A strict comparison: equal as printed is not weaker.
    weakest = CLAIMS.get("disjoint_weakest_at_low_budget").check
    frame = pd.DataFrame([{"model": "cnn", "criterion": "confidence", "metric": "accuracy", "regime": regime,
                           "budget": "25%", "mean": value, "std": 0.0}
                          for regime, value in (("disjoint", 50.001), ("joint", 50.004), ("mixed", 60.0))])
    assert weakest(frame).holds is False
    assert weakest(frame.assign(mean=[50.001, 50.006, 60.0])).holds is True


def test_a_verdict_read_on_runs_that_hit_their_epoch_cap_is_marked_with_the_count(tmp_path) -> None:
    frame = budget_numbers(make_frame({("cnn", "disjoint", "confidence"): same([0.10, 0.50]),
                                       ("cnn", "joint", "confidence"): same([0.40, 0.70]),
                                       ("cnn", "mixed", "confidence"): same([0.30, 0.60])}),
                           ["disjoint", "joint", "mixed"])
    converged = write_run(tmp_path / "a.pt", "joint", 0, [("joint", 3, 1.0)])
    capped = str(tmp_path / "b.pt")  # its phase 1 (carried in the run's init history) hit max_epochs
    save_torch(capped, {"spec": {}, "state_dict": {}, "meta": {"model": "cnn", "regime": "mixed", "seed": 0},
                        "init_history": [{"phase": "backbone", "epoch": 1}, {"phase": "backbone", "epoch": 2,
                                                                             "end": "max_epochs"}],
                        "history": [{"phase": "joint", "epoch": 1, "end": "early_stopping"}]})
    checks = [{"claim": "disjoint_weakest_at_low_budget", "entry": "tab", "runs": [converged]},
              {"claim": "mixed_at_least_joint_at_high_budgets", "entry": "tab", "runs": [converged, capped]}]
    tex, numbers = build("claims", frame, checks=checks)
    assert list(numbers["runs"]) == [1, 2] and list(numbers["capped_runs"]) == [0, 1]
    rows = [line for line in tex.splitlines() if line.rstrip().endswith("\\\\") and "Verdict" not in line]
    assert rows[0].rstrip(" \\").endswith("& holds")  # read on converged runs only: unmarked
    assert rows[1].rstrip(" \\").endswith("$^\\dagger$ (1 of 2)")
    assert "epoch cap" in tex
    # Without a capped run the caption says nothing of caps.
    assert "epoch cap" not in build("claims", frame, checks=checks[:1])[0]


def test_claims_on_an_mse_count_the_smaller_error_as_better() -> None:
    frame = make_frame({("s", "disjoint", "regression_patience"): same([2.40, 0.50]),
                        ("s", "joint", "regression_patience"): same([1.70, 0.52]),
                        ("s", "mixed", "regression_patience"): same([2.43, 0.51])})
    regimes = ["disjoint", "joint", "mixed"]
    numbers = budget_numbers(frame, regimes, criterion="regression_patience", metric="mse")
    _, verdicts = check("disjoint_weakest_at_low_budget", frame=numbers)
    # Paper B Table 14's pattern: at 25% mixed (2.43) errs more than disjoint (2.40), so disjoint is not the
    # weakest; the MSE is shown as computed, not in percent.
    assert list(verdicts["holds"]) == [False]
    assert verdicts["numbers"][0] == "25%: disjoint 2.40 ± 0.00, joint 1.70 ± 0.00, mixed 2.43 ± 0.00"
    frame.loc[(frame["regime"] == "mixed") & (frame["budget"] == "25%"), "mse"] = 2.0
    numbers = budget_numbers(frame, regimes, criterion="regression_patience", metric="mse")
    assert list(check("disjoint_weakest_at_low_budget", frame=numbers)[1]["holds"]) == [True]


def bee_numbers(means: dict[str, list[float]], p: dict[str, float]) -> pd.DataFrame:
    """A bee figure's CSV: F1 (and accuracy) B_EE per line and head, p_below_first on every line but the first."""
    return pd.DataFrame([{"line": line, "metric": metric, "head": head + 1, "mean": value, "std": 1.0,
                          "n_values": 3, "p_below_first": p.get(line, np.nan), "entry": "tab"}
                         for metric in ("accuracy", "f1") for line, values in means.items()
                         for head, value in enumerate(values)])


def test_paper_a_benefit_claims_read_the_bee_figures_numbers() -> None:
    numbers = bee_numbers({"Single": [2.0, -1.0, 0.5, 0.1], "Multi": [-5.0, -6.0, -2.0, 0.0]}, {"Multi": 0.01})
    _, verdicts = check("single_label_benefit_positive", "multi_label_benefit_below_single_label",
                        "rank_patience_below_confidence", frame=numbers)
    assert list(verdicts["holds"]) == [True, True, True]  # 3 of 4 heads positive; p 0.01 <= 0.05
    assert verdicts["numbers"][1] == "Single: mean 0.40 pp; Multi: mean -3.25 pp, p = 0.01"
    numbers = bee_numbers({"Single": [2.0, -1.0, -0.5, 0.1], "Multi": [0.0] * 4, "Third": [-9.0] * 4},
                          {"Multi": 0.2, "Third": 0.001})
    _, verdicts = check("single_label_benefit_positive", "multi_label_benefit_below_single_label", frame=numbers)
    assert list(verdicts["holds"]) == [False, False]  # 2 of 4 is not "predominantly"; one line not significant
    assert list(check("rank_patience_below_confidence",
                      frame=bee_numbers({"Only": [1.0]}, {}))[1]["holds"]) == [None]


def test_same_head_exits_are_rare_when_at_most_one_example_in_ten_has_them() -> None:
    # 20 examples of two present classes each (and an absent one); in 2 of them (10%) both exit at head 3.
    rows = []
    for example in range(20):
        same_head = example < 2
        for model, present in (("a", True), ("b", True), ("c", False)):
            rows.append({"example": example, "model": model, "present": present, "entry": "tab",
                         "same_head": same_head and present or (model == "c" and example == 5)})
    numbers = pd.DataFrame(rows)
    _, verdicts = check("same_head_exits_rare", frame=numbers)
    assert list(verdicts["holds"]) == [True] and verdicts["numbers"][0].startswith("2 of 20 examples (10%)")
    numbers.loc[(numbers["example"] == 2) & numbers["present"], "same_head"] = True
    assert list(check("same_head_exits_rare", frame=numbers)[1]["holds"]) == [False]  # 3 of 20


def test_paper_b_analysis_claims_read_their_figures_numbers() -> None:
    dominance = pd.DataFrame([{"regime": regime, "head": head, "epochs": step, "mean": value, "entry": "tab"}
                              for regime, values in {"joint": [0.1, 0.5, 0.6], "mixed": [0.1, 0.4, 0.8]}.items()
                              for head, value in enumerate(values, start=1) for step in (0.0, 1.0)])
    assert list(check("last_ic_dominates_in_mixed", frame=dominance)[1]["holds"]) == [True]
    dominance.loc[(dominance["regime"] == "joint") & (dominance["head"] == 3), "mean"] = 0.9
    assert list(check("last_ic_dominates_in_mixed", frame=dominance)[1]["holds"]) == [False]  # joint's is larger

    paths = pd.DataFrame([{"regime_a": a, "regime_b": b, "split": split, "lambda": lam, "barrier_mean": barrier,
                           "barrier_std": 0.01, "entry": "tab"}
                          for (a, b), barrier in {("disjoint", "mixed"): 0.02, ("joint", "mixed"): 0.5,
                                                  ("disjoint", "joint"): 0.4}.items()
                          for split in ("train", "test") for lam in (0.0, 1.0)])
    _, verdicts = check("disjoint_and_mixed_share_a_basin", frame=paths)
    assert list(verdicts["holds"]) == [True]
    assert verdicts["numbers"][0] == ("test-loss barrier: disjoint-mixed 0.02 ± 0.01; joint-mixed 0.50 ± 0.01; "
                                      "disjoint-joint 0.40 ± 0.01")
    paths.loc[paths["regime_a"] == "joint", "barrier_mean"] = 0.01
    assert list(check("disjoint_and_mixed_share_a_basin", frame=paths)[1]["holds"]) == [False]

    def profile(values: dict[str, list[float]], variant: str = "") -> pd.DataFrame:
        return pd.DataFrame([{"variant": variant, "regime": regime, "block": block, "mean": value, "entry": "tab"}
                             for regime, per_block in values.items() for block, value in enumerate(per_block, 1)])

    ranks = pd.concat([profile({"backbone": [10, 8], "joint": [12, 9], "mixed": [11, 8]}, "variance_rtol=0.001"),
                       profile({"backbone": [9, 9], "joint": [1, 1], "mixed": [1, 1]}, "variance_rtol=0.01")])
    _, verdicts = check("ics_raise_numerical_rank", frame=ranks)  # the first tolerance's profile
    assert list(verdicts["holds"]) == [True]
    assert verdicts["numbers"][0] == "mean rank over blocks: backbone 9.0, joint 10.5, mixed 9.5"
    information = profile({"backbone": [3.0, 2.0], "joint": [3.2, 1.9], "mixed": [3.1, 1.8]})
    assert list(check("ics_shift_information_to_early_layers", frame=information)[1]["holds"]) == [True]
    information.loc[information["regime"] == "mixed", "mean"] = [2.9, 1.8]  # lower than backbone's at block 1
    assert list(check("ics_shift_information_to_early_layers", frame=information)[1]["holds"]) == [False]


def differences_numbers(values: dict[tuple[str, str], list[float]],
                        budgets=("25%", "50%", "75%", "100%")) -> pd.DataFrame:
    """A differences table's CSV: (variant block, regime) -> the mean difference (pp) per budget; the unlimited
    column says something else on purpose (the checks must leave it out)."""
    return pd.DataFrame([{"block": block, "regime": regime, "budget": budget, "mean": value, "std": 0.1,
                          "entry": "tab"}
                         for (block, regime), per_budget in values.items()
                         for budget, value in zip((*budgets, "unlimited"), (*per_budget, 99.0))])


# Paper B Table 5 (ResNet-50 / TinyImageNet), as printed.
TABLE_5 = {("Inc.", "joint"): [-1.7, 0.4, 0.98, 1.06], ("Inc.", "mixed"): [-1.08, -0.27, 0.22, 0.25],
           ("Dec.", "joint"): [0.6, -0.29, -0.08, 0.0], ("Dec.", "mixed"): [0.69, 0.32, -0.44, -0.46],
           ("SDN", "joint"): [-3.75, -0.33, 0.89, 0.94], ("SDN", "mixed"): [-3.39, -1.1, 0.07, 0.23],
           ("GE", "joint"): [0.31, 0.4, 0.73, 0.71], ("GE", "mixed"): [-1.16, -0.11, 0.02, -0.02]}


def test_loss_scaling_claims_hold_on_paper_b_table_5_and_fail_when_mixed_gains_more() -> None:
    claims = ("scaling_helps_mixed_less_than_joint", "gradient_equilibrium_helps_joint_not_mixed")
    _, verdicts = check(*claims, frame=differences_numbers(TABLE_5))
    assert list(verdicts["holds"]) == [True, True]
    assert verdicts["numbers"][1] == "GE mean difference over budgets (pp): joint +0.54, mixed -0.32"
    assert "Dec. joint +0.06, mixed +0.03" in verdicts["numbers"][0]
    mixed_gains = {**TABLE_5, ("GE", "mixed"): [0.5, 0.5, 0.8, 0.8]}
    assert list(check(*claims, frame=differences_numbers(mixed_gains))[1]["holds"]) == [False, False]
    unlabelled = {key: value for key, value in TABLE_5.items() if key[0] != "GE"}
    assert list(check(*claims, frame=differences_numbers(unlabelled))[1]["holds"]) == [True, None]


def test_ic_size_claim_reads_paper_b_table_6_gains() -> None:
    # Table 6 (ViT-T / TinyImageNet), 2L-1024 minus 1L: disjoint +7.50 at 25%, joint +3.12, mixed +0.89;
    # mixed's mean over the budgets is -0.52.
    table_6 = {("2L-1024", "disjoint"): [7.50, 5.52, 1.91, 0.0], ("2L-1024", "joint"): [3.12, 1.87, 1.71, 1.63],
               ("2L-1024", "mixed"): [0.89, -0.80, -1.10, -1.06]}
    _, verdicts = check("larger_ics_help_disjoint_not_mixed", frame=differences_numbers(table_6))
    assert list(verdicts["holds"]) == [True]
    assert verdicts["numbers"][0] == ("gain over the reference IC (pp), 2L-1024: at 25% disjoint +7.50, joint "
                                      "+3.12, mixed +0.89; mixed mean -0.52")
    table_6[("2L-1024", "mixed")] = [0.89, 0.80, -1.10, -0.06]  # mixed gains on average: the trend holds there
    assert list(check("larger_ics_help_disjoint_not_mixed", frame=differences_numbers(table_6))[1]["holds"]) == [False]


def test_training_time_claim_orders_the_regimes_epochs() -> None:
    # Paper B §4.7: disjoint 523 +- 156, joint 1610 +- 395, mixed 1166 +- 136 epochs.
    rows = [{"regime": regime, "quantity": quantity, "mean": mean if quantity == "epochs" else 1.0, "std": std,
             "n_seeds": 3, "entry": "tab"}
            for regime, mean, std in (("disjoint", 523, 156), ("joint", 1610, 395), ("mixed", 1166, 136))
            for quantity in ("epochs", "phase1_epochs", "seconds")]
    frame = pd.DataFrame(rows)
    _, verdicts = check("disjoint_fastest_mixed_before_joint", frame=frame)
    assert list(verdicts["holds"]) == [True]
    assert verdicts["numbers"][0] == "epochs: disjoint 523.00 ± 156.00, mixed 1166.00 ± 136.00, joint 1610.00 ± 395.00"
    frame.loc[(frame["regime"] == "mixed") & (frame["quantity"] == "epochs"), "mean"] = 1700
    assert list(check("disjoint_fastest_mixed_before_joint", frame=frame)[1]["holds"]) == [False]


# presets (the fidelity presets' differences) ----------------------------------------------------------------


def test_presets_table_lists_every_switch_the_presets_set_differently_and_reads_no_runs(tmp_path) -> None:
    from eebench.fidelity import SWITCHES
    from eebench.render.base import kind_of

    presets = TABLES.get("presets")
    assert presets.runs({"kind": "presets"}) == [] and kind_of("tables", "presets").regenerates is None
    out = tmp_path / "tables" / "presets.tex"
    render_table("presets", {"caption": "C.", "label": "tab:presets", "model_descriptions": {}}, [], str(out))
    numbers = pd.read_csv(out.with_suffix(".csv"), keep_default_na=False)
    differing = [switch for switch in SWITCHES if switch.values["paper"] != switch.values["authors_code"]]
    assert list(numbers.columns) == ["key", "paper", "authors_code", "reading"]
    assert numbers["key"].tolist() == [switch.path for switch in differing] and len(differing) > 0
    row = numbers.set_index("key")
    assert row.loc["training.label_smoothing", "paper"] == "0.0"
    assert row.loc["training.validation_augment"].tolist() == ["false", "true", "The authors' validation split"]
    tex = out.read_text()
    assert "\\caption{C.}" in tex and "\\label{tab:presets}" in tex
    assert "Config key & paper & authors\\_code & Reading \\\\" in tex
    assert ("\\texttt{training.early\\_stopping} & \\texttt{ours} & \\texttt{authors} & Early stopping \\\\"
            in tex)
    assert tex.count("\\texttt{") == 3 * len(differing)
