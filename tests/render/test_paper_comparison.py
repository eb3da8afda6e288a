"""Issue 23, point 3: a paper-scale table that regenerates a transcribed table of paper B shows beside each cell
the paper's value and our difference, and marks a mean outside the paper's mean ± 2 std; its CSV holds the
comparison; the miniature says it does not compare. Every expected number below is read by hand from
src/eebench/paper_numbers/b_table*.csv and computed by hand from the synthetic seeds."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from eebench import acceptance, paper_numbers
from eebench.acceptance import COMPARISON_COLUMNS, paper_values
from eebench.render.spec import check_paper_matches, comparison_spec
from eebench.config import ConfigError, expand_includes, load_config
from eebench.render import TABLES, render_table
from eebench.render.layouts import EN_DASH

REPO = Path(__file__).resolve().parents[2]
NAN = np.nan
PAPER = "paper"


def frame(values: dict[tuple[str, str], list[list[float]]], budgets: list[str]) -> pd.DataFrame:
    """``values[(model, regime)][seed]`` = accuracy (a fraction) per budget, criterion confidence, rule last."""
    return pd.DataFrame([
        {"model": model, "regime": regime, "criterion": "confidence", "seed": seed, "rule": "last",
         "budget": budget, "accuracy": value, "accuracy_flops": 0.5}
        for (model, regime), per_seed in values.items()
        for seed, per_budget in enumerate(per_seed)
        for budget, value in zip(budgets, per_budget)
    ])


def same(per_budget: list[float]) -> list[list[float]]:
    return [list(per_budget) for _ in range(3)]


def compared(tables: list[str], scale: str = PAPER) -> dict:
    """The renderer's ``paper_comparison``, as the render rule passes it (eebench.render.spec.comparison_spec)."""
    return {"paper_comparison": {"scale": scale, "tables": tables}}


def rendered(tmp_path: Path, kind: str, data: pd.DataFrame, **spec) -> tuple[str, pd.DataFrame]:
    """Render through the rule's path (budget CSVs in, .tex and .csv out); the .tex and the CSV read back."""
    inputs = []
    for (model, regime), part in data.groupby(["model", "regime"]):
        inputs.append(str(tmp_path / f"{model}_{regime}.csv"))
        part.to_csv(inputs[-1], index=False)
    out = tmp_path / "tables" / f"{kind}.tex"
    render_table(kind, {"caption": "C.", "label": f"tab:{kind}", "rule": "last"} | spec, inputs, str(out))
    return out.read_text(), pd.read_csv(out.with_suffix(".csv"), keep_default_na=False, na_values=[""])


def tex_cells(tex: str, row: str) -> list[str]:
    line = next(line for line in tex.splitlines() if line.startswith(f"{row} &"))
    return [cell.strip() for cell in line.removesuffix("\\\\").split(" & ")][1:]


# B Table 10 (ViT-T CIFAR-100), printed: Disjoint 25% 28.33 ± 0.47, 50% 47.32 ± 0.81, Unlimited 63.99 ± 1.68;
# Mixed 25% 41.65 ± 0.19, 50% 64.07 ± 0.38, Unlimited 70.25 ± 0.56; Mixed-gradual 25% 40.61 ± 0.08.
TABLE10_BUDGETS = ["25%", "50%", "unlimited"]
TABLE10_RUNS = {
    ("vit", "disjoint"): [[0.28, 0.49, 0.64], [0.29, 0.495, 0.64], [0.30, 0.50, 0.64]],
    ("vit", "mixed"): [[0.4203, 0.60, 0.70], [0.4203, NAN, 0.70], [0.4203, 0.62, 0.70]],
    ("vit", "mixed_gradual"): same([0.40, 0.6483, 0.716]),
    ("vit", "disjoint_trained_final"): same([0.10, 0.10, 0.10]),
}
TABLE10 = {"model": "vit", "criterion": "confidence",
           "regimes": ["disjoint", "mixed", "mixed_gradual", "disjoint_trained_final"]}


@pytest.fixture
def table10(tmp_path):
    return rendered(tmp_path, "budgets", frame(TABLE10_RUNS, TABLE10_BUDGETS), **TABLE10, **compared(["B Table 10"]))


def test_the_csv_holds_the_papers_value_the_difference_and_the_mark(table10):
    _, numbers = table10
    assert list(numbers.columns) == ["model", "regime", "criterion", "metric", "rule", "budget", "mean", "std",
                                     "n_seeds", *COMPARISON_COLUMNS]
    cell = numbers.set_index(["regime", "budget"])
    # Disjoint 25%: seeds 28, 29, 30 -> 29.00; 29.00 - 28.33 = +0.67, within 2 x 0.47 = 0.94.
    assert cell.loc[("disjoint", "25%"), ["paper_table", "paper_row", "paper_column"]].tolist() == [
        "B Table 10", "Disjoint", "25%"]
    assert cell.loc[("disjoint", "25%"), "paper_value"] == 28.33 and cell.loc[("disjoint", "25%"), "paper_std"] == 0.47
    assert cell.loc[("disjoint", "25%"), "difference"] == pytest.approx(0.67)
    assert cell.loc[("disjoint", "25%"), "outside_2std"] == False  # noqa: E712 - read back from CSV text
    # Disjoint 50%: 49, 49.5, 50 -> 49.50; +2.18 beyond 2 x 0.81 = 1.62: outside.
    assert cell.loc[("disjoint", "50%"), "difference"] == pytest.approx(2.18)
    assert cell.loc[("disjoint", "50%"), "outside_2std"] == True  # noqa: E712
    # Unlimited is the paper's column "Unlimited": 64.00 - 63.99 = +0.01.
    assert cell.loc[("disjoint", "unlimited"), "paper_column"] == "Unlimited"
    assert cell.loc[("disjoint", "unlimited"), "difference"] == pytest.approx(0.01)
    # Mixed 25%: 42.03 - 41.65 = +0.38, exactly 2 x 0.19: on the boundary, within.
    assert cell.loc[("mixed", "25%"), "difference"] == pytest.approx(0.38)
    assert cell.loc[("mixed", "25%"), "outside_2std"] == False  # noqa: E712
    # Mixed 50%: a seed has no operating point: the paper's 64.07 is shown, nothing compared.
    assert cell.loc[("mixed", "50%"), "paper_value"] == 64.07 and math.isnan(cell.loc[("mixed", "50%"), "difference"])
    assert math.isnan(cell.loc[("mixed", "50%"), "outside_2std"])
    assert cell.loc[("mixed", "50%"), "comparison_note"].startswith("not compared: our cell has no value")
    # Mixed-gradual 25%: 40.00 - 40.61 = -0.61, beyond 2 x 0.08 = 0.16.
    assert cell.loc[("mixed_gradual", "25%"), "paper_row"] == "Mixed-gradual"
    assert cell.loc[("mixed_gradual", "25%"), "difference"] == pytest.approx(-0.61)
    assert cell.loc[("mixed_gradual", "25%"), "outside_2std"] == True  # noqa: E712
    # A regime the paper has not: no counterpart, and the CSV says why.
    dtf = numbers[numbers["regime"] == "disjoint_trained_final"]
    assert dtf["paper_table"].isna().all() and dtf["paper_value"].isna().all() and dtf["difference"].isna().all()
    assert set(dtf["comparison_note"]) == {"not compared: paper B Table 10 has no row Disjoint (trained final)"}


def test_the_tex_shows_the_papers_value_the_difference_and_a_dagger(table10):
    tex, _ = table10
    assert tex_cells(tex, "Disjoint") == [
        r"$29.00 \pm 1.00$ {\scriptsize (28.33; $+0.67$)}",
        r"$49.50 \pm 0.50^{\dagger}$ {\scriptsize (47.32; $+2.18$)}",
        r"$64.00 \pm 0.00$ {\scriptsize (63.99; $+0.01$)}",
    ]
    assert tex_cells(tex, "Mixed")[:2] == [r"$\mathbf{42.03 \pm 0.00}$ {\scriptsize (41.65; $+0.38$)}",
                                           EN_DASH + r" {\scriptsize (64.07)}"]
    assert tex_cells(tex, "Mixed-gradual")[0] == r"$40.00 \pm 0.00^{\dagger}$ {\scriptsize (40.61; $-0.61$)}"
    assert tex_cells(tex, "Disjoint (trained final)")[0] == r"$10.00 \pm 0.00$"  # no counterpart: as before
    assert ("Small print after a cell: the value of paper B Table~10 and our difference from it (ours $-$ paper, "
            "on the digits shown); $^{\\dagger}$: our mean lies outside the paper's mean $\\pm$ 2 std.") in tex
    assert ("No small print where the paper has no counterpart: paper B Table~10 has no row Disjoint (trained "
            "final).") in tex


def test_the_miniature_does_not_compare_and_says_so(tmp_path):
    data = frame(TABLE10_RUNS, TABLE10_BUDGETS)
    plain_tex, plain = TABLES.get("budgets")(data, caption="C.", label="t", rule="last", **TABLE10)
    tex, numbers = TABLES.get("budgets")(data, caption="C.", label="t", rule="last", **TABLE10,
                                         **compared(["B Table 10"], scale="miniature"))
    pd.testing.assert_frame_equal(numbers, plain)  # no comparison columns
    sentence = "Miniature scale: not compared with the paper's values (different data and models)."
    assert tex.count(sentence) == 1 and tex == plain_tex.replace("C. ", f"C. {sentence} ")
    assert "scriptsize" not in tex and "dagger" not in tex


# Main-text tables borrow the std of the appendix table that prints the same mean ------------------------------


def test_a_table1_cell_takes_the_std_of_its_appendix_twin_and_vit_s_is_unmarked(tmp_path):
    # B Table 1 prints ResNet-50 Tiny-IN Disjoint 25% = 38.49 (no std), which B Table 11 prints under 35% as
    # 38.49 ± 0.46; ViT-S IN-1k Disjoint 25% = 10.23, in no appendix table.
    data = frame({("r50", "disjoint"): same([0.3849, 0.70]), ("vits", "disjoint"): same([0.1123, 0.70])},
                 ["25%", "unlimited"])
    settings = {"settings": [{"model": "r50", "label": "ResNet-50 Tiny-IN"}, {"model": "vits", "label": "ViT-S IN-1k"}],
                "regimes": ["disjoint"], "criterion": "confidence"}
    tex, numbers = rendered(tmp_path, "settings", data, **settings, **compared(["B Table 1"]))
    cell = numbers.set_index(["block", "budget"])
    r50 = cell.loc[("ResNet-50 Tiny-IN", "25%")]
    assert (r50["paper_value"], r50["paper_std"], r50["difference"]) == (38.49, 0.46, 0.0)
    assert r50["outside_2std"] == False  # noqa: E712
    assert r50["comparison_note"] == "std of paper B Table 11, which prints the same mean"
    vits = cell.loc[("ViT-S IN-1k", "25%")]
    assert vits["paper_value"] == 10.23 and math.isnan(vits["paper_std"]) and math.isnan(vits["outside_2std"])
    assert vits["difference"] == pytest.approx(1.0)
    assert vits["comparison_note"].startswith("not marked: paper B Table 1 prints no std")
    assert cell.loc[("ResNet-50 Tiny-IN", "unlimited"), "comparison_note"] == (
        "not compared: paper B Table 1 has no column Unlimited")
    assert "Paper B Table~1 prints means only: the std is that of paper B Table~11, which prints the same means." in tex
    assert ("No $^{\\dagger}$ can be computed for the values of paper B Table~1 (ViT-S IN-1k): it prints no std, "
            "nor does an appendix table with the same means.") in tex


def test_every_main_text_value_with_an_appendix_twin_has_its_std():
    for (table, setting), twin in acceptance.APPENDIX_TWINS.items():
        values = [v for v in paper_values(table).values() if v.setting == setting]
        assert values and all(v.std_from == twin and not math.isnan(v.std) for v in values), (table, setting)
    table1 = [v for v in paper_values("B Table 1").values()]
    assert sum(math.isnan(v.std) for v in table1) == 12  # the ViT-S IN-1k block: 3 regimes x 4 budgets
    assert all(math.isnan(v.std) for t in ("B Table 5", "B Table 6", "B Table 7") for v in paper_values(t).values())


# The words match whatever label column they sit in ------------------------------------------------------------


def test_table5_prints_regime_over_variant_and_differences_print_variant_over_regime(tmp_path):
    # B Table 5: setting Joint, row Inc., 25% = -1.7 (printed so, one decimal; no std). Ours: 48.5 - 50 = -1.50.
    data = frame({("r50", "joint"): same([0.50, 0.70]), ("inc", "joint"): same([0.485, 0.70])}, ["25%", "unlimited"])
    tex, numbers = rendered(tmp_path, "differences", data, reference="r50",
                            variants=[{"model": "inc", "label": "Inc."}], regimes=["joint"], criterion="confidence",
                            **compared(["B Table 5"]))
    row = numbers[numbers["budget"] == "25%"].iloc[0]
    assert (row["block"], row["row"]) == ("Inc.", "Joint")
    assert (row["paper_setting"], row["paper_row"], row["paper_value"]) == ("Joint", "Inc.", -1.7)
    assert row["difference"] == pytest.approx(0.2) and math.isnan(row["outside_2std"])
    assert r"$-1.50$ {\scriptsize ($-1.7$; $+0.20$)}" in tex
    assert ("No cell is marked as outside the paper's mean $\\pm$ 2 std: paper B Table~5 prints no std, nor does an "
            "appendix table with the same means.") in tex
    assert "$^{\\dagger}$:" not in tex  # no mark to explain


@pytest.mark.parametrize("table, setting, row, value, std", [
    ("B Table 20", "", "Disjoint 1L", 75.61, 0.10),  # one row "Disjoint 1L"
    ("B Table 6", "Disjoint", "1L", 26.35, NAN),  # a block "Disjoint", a row "1L", as our ic_size kind
])
def test_ic_size_matches_table6_and_table20(tmp_path, table, setting, row, value, std):
    data = frame({("a", "disjoint"): same([0.7561, 0.80])}, ["25%", "unlimited"])
    _, numbers = rendered(tmp_path, "ic_size", data, variants=[{"model": "a", "label": "1L"}], regimes=["disjoint"],
                          criterion="confidence", **compared([table]))
    hit = numbers[numbers["budget"] == "25%"].iloc[0]
    paper_setting = "" if pd.isna(hit["paper_setting"]) else hit["paper_setting"]  # "" is read back as NaN
    assert (hit["paper_table"], paper_setting, hit["paper_row"], hit["paper_value"]) == (table, setting, row, value)
    assert hit["paper_std"] == std if not math.isnan(std) else math.isnan(hit["paper_std"])


def test_every_transcribed_table_names_each_value_by_its_words_once():
    for name in paper_numbers.tables():
        if " Table " in name:
            assert len(paper_values(name)) == paper_numbers.counts()[name], name


def test_of_several_regenerated_tables_the_first_holding_a_counterpart_is_compared_with(tmp_path):
    # vit_b_cifar100 regenerates B Tables 4 and 18: Table 4 prints 35%-100% (std of Table 18), Table 18 Unlimited.
    data = frame({("vitb", "disjoint"): same([0.285, 0.80])}, ["35%", "unlimited"])
    _, numbers = rendered(tmp_path, "budgets", data, model="vitb", regimes=["disjoint"], criterion="confidence",
                          **compared(["B Table 4", "B Table 18"]))
    assert numbers["paper_table"].tolist() == ["B Table 4", "B Table 18"]
    assert numbers["paper_value"].tolist()[0] == 28.50 and numbers["comparison_note"].tolist()[0] == (
        "std of paper B Table 18, which prints the same mean")


# paper_match: the entry option where the labels do not name the paper's values -----------------------------------


def test_paper_match_setting_and_labels(tmp_path):
    data = frame({("vits", "joint"): same([0.7644, 0.80])}, ["100%", "unlimited"])
    spec = {"model": "vits", "regimes": ["joint"], "criterion": "confidence"}
    # A budgets table of ViT-S has no label "ViT-S IN-1k": nothing matches B Table 1 without the option.
    _, alone = rendered(tmp_path, "budgets", data, **spec, **compared(["B Table 1"]))
    assert alone["paper_table"].isna().all()
    _, matched = rendered(tmp_path, "budgets", data, **spec, **compared(["B Table 1"]),
                          paper_match={"setting": "ViT-S IN-1k"})
    assert matched.loc[0, ["paper_setting", "paper_row", "paper_value", "difference"]].tolist() == [
        "ViT-S IN-1k", "Joint", 76.44, 0.0]
    # labels: our 25% against B Table 11's 35% (38.49 ± 0.46 for Disjoint).
    data = frame({("r50", "disjoint"): same([0.3849, 0.70])}, ["25%", "unlimited"])
    _, relabelled = rendered(tmp_path, "budgets", data, model="r50", regimes=["disjoint"], criterion="confidence",
                             **compared(["B Table 11"]), paper_match={"labels": {"25%": "35%"}})
    assert relabelled.loc[0, ["paper_column", "paper_value", "paper_std", "difference"]].tolist() == [
        "35%", 38.49, 0.46, 0.0]


@pytest.mark.parametrize("paper_match, message", [
    ({"labels": {"Mixed-gradul": "Mixed-gradual"}}, r"paper_match\.labels: 'Mixed-gradul' is not a label of this "
                                                    r"table \(its labels: Disjoint, Mixed, Mixed-gradual, "),
    ({"labels": {"Mixed-gradual": "Mixed gradual"}}, r"paper_match\.labels\.Mixed-gradual: 'Mixed gradual' is not a "
                                                     r"label of B Table 10 \(its labels: Disjoint, 25%"),
    ({"setting": "ViT-T C-100"}, r"paper_match\.setting: 'ViT-T C-100' is not a setting of B Table 10 \(its "
                                 r"settings: none: it has one label column\)"),
    ({"rows": {"Mixed": "Joint"}}, r"paper_match: takes 'setting' and 'labels'"),
])
def test_a_bad_paper_match_is_refused_naming_the_key(paper_match, message):
    with pytest.raises(ValueError, match=message):
        TABLES.get("budgets")(frame(TABLE10_RUNS, TABLE10_BUDGETS), caption="C.", label="t", rule="last", **TABLE10,
                              **compared(["B Table 10"]), paper_match=paper_match)


# The config's side: what the render rule passes, and the check when the workflow loads ----------------------------


def _config(path: str) -> dict:
    return expand_includes(load_config(REPO / path))


def test_comparison_spec_names_the_scale_and_the_transcribed_tables():
    config = _config("config.yaml")
    assert comparison_spec(config, "regimes") == {"paper_comparison": {
        "scale": "miniature", "tables": [f"B Table {n}" for n in range(8, 19)]}}
    assert comparison_spec(config, "ic_size")["paper_comparison"]["tables"] == ["B Table 6", "B Table 20"]
    for name in ("claims", "training_time", "fidelity_differences"):  # not a budget layout, or regenerates nothing
        assert comparison_spec(config, name) == {}
    paper = _config("config/paper/vit_b_cifar100.yaml")
    assert comparison_spec(paper, "vit_b_cifar100") == {"paper_comparison": {
        "scale": "paper", "tables": ["B Table 4", "B Table 18"]}}


@pytest.mark.parametrize("path", ["config.yaml", *sorted(p.relative_to(REPO).as_posix()
                                                         for p in (REPO / "config/paper").glob("*.yaml"))])
def test_every_shipped_config_passes_the_check(path, monkeypatch):
    monkeypatch.chdir(REPO)  # a suite's include paths are relative to the working directory
    check_paper_matches(_config(path))


def test_the_shipped_paper_tables_match_their_cells():
    from eebench.render.budget_tables import table_layout

    def matched(path: str, name: str, headers: list[str]) -> int:
        config = _config(path)
        comparison = acceptance.Comparison.of(comparison_spec(config, name)["paper_comparison"],
                                              config["tables"][name].get("paper_match"))
        cells = table_layout(config["tables"][name]["kind"], config["tables"][name]).cell_labels()
        return sum(comparison.counterpart(labels, header) is not None for labels in cells for header in headers)

    every = ["25%", "50%", "75%", "100%", "Unlimited"]
    assert matched("config/paper/vit_t_cifar100.yaml", "vit_t_cifar100", every) == 35  # 7 regimes x 5
    assert matched("config/paper/table1.yaml", "table1", every) == 72  # 6 settings x 3 regimes x 4 (no Unlimited)
    assert matched("config/paper/vit_s_imagenet.yaml", "vit_s_imagenet", every) == 12  # through paper_match
    assert matched("config/paper/resnet50_tinyimagenet.yaml", "resnet50_tinyimagenet_placement", every) == 75
    assert matched("config/paper/vit_t_ic_size.yaml", "vit_t_imagenette_ic_size", every) == 45


def test_the_check_names_the_key_of_what_cannot_match():
    config = _config("config/paper/vit_s_imagenet.yaml")
    del config["tables"]["vit_s_imagenet"]["paper_match"]
    with pytest.raises(ConfigError, match=r"^tables\.vit_s_imagenet: no cell matches a value of paper B Table 1 "
                                          r"\(its labels: .*ViT-S IN-1k.*\); say which with paper_match"):
        check_paper_matches(config)
    config["tables"]["vit_s_imagenet"]["paper_match"] = {"setting": "ViT-S ImageNet"}
    with pytest.raises(ConfigError, match=r"^tables\.vit_s_imagenet\.paper_match\.setting: 'ViT-S ImageNet' is not a "
                                          r"setting of B Table 1"):
        check_paper_matches(config)
    config["tables"]["vit_s_imagenet"]["paper_match"] = {"labels": {"Mixed-gradual": "Mixed"}}
    with pytest.raises(ConfigError, match=r"^tables\.vit_s_imagenet\.paper_match\.labels: 'Mixed-gradual' is not a "
                                          r"label of this table \(its labels: Disjoint, Joint, Mixed, 25%"):
        check_paper_matches(config)
    config["tables"]["vit_s_imagenet"]["regenerates"] = "B Fig. 17"
    with pytest.raises(ConfigError, match=r"^tables\.vit_s_imagenet\.paper_match: the entry regenerates no table"):
        check_paper_matches(config)


def test_the_workflow_check_runs_it_so_check_config_catches_a_bad_paper_match():
    from eebench.targets import prepare_config

    config = _config("config.yaml")
    config["tables"]["regimes"]["paper_match"] = {"labels": {"Nope": "Mixed"}}
    with pytest.raises(ConfigError, match=r"^tables\.regimes\.paper_match\.labels: 'Nope' is not a label"):
        prepare_config(config)
