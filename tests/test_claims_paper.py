"""Claims on the papers' own numbers (issue 23, point 5): each claim's check run on the values the paper prints
(eebench.paper_numbers) in the tables it declares, one setting at a time, and the verdict shown beside ours in
the claims table. Expected numbers are worked out by hand from the transcribed CSVs (quoted in the comments)."""
from __future__ import annotations

import pandas as pd
import pytest

from eebench import paper_numbers
from eebench.claim_checks import _weakest
from eebench.claims import CLAIMS, PAPER_FRAMES, Claim, on_paper
from eebench.render import TABLES, render_table


def paper(name: str):
    return on_paper(CLAIMS.get(name))


def by_setting(verdict) -> dict[str, object]:
    return {f"{item} {setting}".strip(): v for item, setting, v in verdict.settings}


@pytest.mark.parametrize("name", CLAIMS.names())
def test_every_claim_declares_what_decides_the_papers_verdict(name: str) -> None:
    claim = CLAIMS.get(name)
    assert bool(claim.paper_tables) != bool(claim.paper_missing), "paper_tables or paper_missing, one of them"
    if claim.paper_tables:
        assert set(claim.paper_tables) <= set(paper_numbers.tables())  # every one transcribed
        assert claim.reads in PAPER_FRAMES
        assert len(paper(name).settings) >= 1
    else:
        assert paper(name).holds is None and paper(name).verdict() == "not evaluable"


# Claims that do not hold on the paper's own numbers -----------------------------------------------------------


def test_disjoint_weakest_at_25_fails_on_sts_b_and_table_4_has_no_25_column() -> None:
    verdict = paper("disjoint_weakest_at_low_budget")
    assert verdict.tables == ("B Table 1", "B Table 2", "B Table 3", "B Table 4")
    settings = by_setting(verdict)
    # Tables 1 (6 settings), 2 (2), 3 (3), 4 (1): 12 settings, Table 4's first column is 35%, not 25%.
    assert len(settings) == 12 and verdict.evaluated == 11 and verdict.held == 10 and verdict.holds is False
    # Table 2, STS-B (an MSE: lower is better) at 25%: disjoint 2.37, joint 1.70, mixed 2.43; mixed errs more
    # than disjoint, so disjoint is not the weakest.
    sts_b = settings["B Table 2 STS-B (regr.)"]
    assert sts_b.holds is False and sts_b.numbers == "25%: disjoint 2.37, joint 1.70, mixed 2.43"
    assert settings["B Table 4"].holds is None and settings["B Table 4"].numbers == "25%: missing"
    # Table 1, ResNet-34 C-100: 52.57 < 62.84 and 62.24; no std printed, none shown.
    assert settings["B Table 1 ResNet-34 C-100"].numbers == "25%: disjoint 52.57, joint 62.84, mixed 62.24"
    assert settings["B Table 1 ResNet-34 C-100"].holds is True
    assert verdict.verdict() == "does not hold (holds in 10 of 11 settings; 1 not evaluable)"
    assert verdict.summary() == ("fails in B Table 2 STS-B (regr.): 25%: disjoint 2.37, joint 1.70, mixed 2.43; "
                                 "not evaluable in B Table 4: 25%: missing; holds in the other 10")


def test_mixed_gradual_is_below_mixed_on_20_newsgroups() -> None:
    verdict = paper("mixed_gradual_at_least_mixed")
    assert verdict.tables == ("B Table 8", "B Table 9", "B Table 10", "B Table 13", "B Table 14")
    settings = by_setting(verdict)
    # Table 13 (BERT-B 20 Newsgroups): Mixed-gradual 81.35 ± 1.24 at 75% and 100%, Mixed 85.25 ± 0.64.
    assert settings["B Table 13"].holds is False
    assert settings["B Table 13"].numbers == ("75%: mixed_gradual 81.35 ± 1.24 vs mixed 85.25 ± 0.64; "
                                              "100%: mixed_gradual 81.35 ± 1.24 vs mixed 85.25 ± 0.64")
    # Table 8: 76.08 >= 75.92 and 75.94 >= 75.88; Table 14 (MSE): 0.48 < 0.53 and 0.46 < 0.51, smaller is better.
    assert settings["B Table 8"].holds is True and settings["B Table 14"].holds is True
    assert settings["B Table 14"].numbers == ("75%: mixed_gradual 0.48 ± 0.00 vs mixed 0.53 ± 0.01; "
                                              "100%: mixed_gradual 0.46 ± 0.01 vs mixed 0.51 ± 0.00")
    assert (verdict.evaluated, verdict.held, verdict.holds) == (5, 4, False)


def test_alternating_beats_mixed_on_sts_b() -> None:
    verdict = paper("alternating_below_mixed")
    settings = by_setting(verdict)
    # Table 14 (STS-B MSE): Alternating 0.51 ± 0.01 at 75% and 0.50 ± 0.01 at 100%, Mixed 0.53 ± 0.01, 0.51 ± 0.00.
    assert settings["B Table 14"].holds is False
    assert settings["B Table 14"].numbers == ("75%: mixed 0.53 ± 0.01 vs alternating 0.51 ± 0.01; "
                                              "100%: mixed 0.51 ± 0.00 vs alternating 0.50 ± 0.01")
    # Table 13: 85.25 >= 83.92 at both budgets.
    assert settings["B Table 13"].holds is True
    assert (verdict.evaluated, verdict.held, verdict.holds) == (5, 4, False)


# Claims that hold on the paper's own numbers ------------------------------------------------------------------


def test_mixed_at_least_joint_holds_in_every_setting_of_tables_1_to_4() -> None:
    verdict = paper("mixed_at_least_joint_at_high_budgets")
    assert (verdict.evaluated, verdict.held, verdict.holds) == (12, 12, True)
    settings = by_setting(verdict)
    # STS-B (MSE) at 75% is a tie, 0.53 and 0.53: mixed is not worse, so it holds.
    assert settings["B Table 2 STS-B (regr.)"].numbers == "75%: mixed 0.53 vs joint 0.53; 100%: mixed 0.51 vs joint 0.52"
    assert settings["B Table 4"].numbers == "75%: mixed 88.06 vs joint 87.82; 100%: mixed 88.23 vs joint 87.85"
    assert verdict.verdict() == "holds (12 of 12 settings)"
    assert verdict.summary() == "holds in all 12 settings of B Tables 1, 2, 3, 4"


def test_loss_scaling_claims_on_table_5() -> None:
    # GE joint (0.31 + 0.4 + 0.73 + 0.71) / 4 = 0.5375; mixed (-1.16 - 0.11 + 0.02 - 0.02) / 4 = -0.3175.
    ge = paper("gradient_equilibrium_helps_joint_not_mixed")
    assert ge.holds is True and ge.verdict() == "holds"
    assert ge.numbers() == "B Table 5: GE mean difference over budgets (pp): joint +0.54, mixed -0.32"
    # SDN joint (-3.75 - 0.33 + 0.89 + 0.94) / 4 = -0.5625; mixed (-3.39 - 1.1 + 0.07 + 0.23) / 4 = -1.0475.
    scaling = paper("scaling_helps_mixed_less_than_joint")
    assert scaling.holds is True and "SDN joint -0.56, mixed -1.05" in scaling.numbers()


def test_ic_size_claim_reads_table_6_as_gains_over_the_1l_row() -> None:
    verdict = paper("larger_ics_help_disjoint_not_mixed")
    # 2L-2048 minus 1L at 25%: disjoint 33.96 - 26.35 = 7.61 (§4.5's "up to 7.6"), joint 43.60 - 42.47 = 1.13,
    # mixed 44.61 - 44.03 = 0.58; mixed over the budgets (0.58 - 0.97 - 0.24 - 0.13) / 4 = -0.19.
    assert verdict.holds is True
    assert verdict.numbers() == ("B Table 6: gain over the reference IC (pp), 2L-1024: at 25% disjoint +7.50, joint "
                                 "+3.12, mixed +0.89; mixed mean -0.52; 2L-2048: at 25% disjoint +7.61, joint +1.13, "
                                 "mixed +0.58; mixed mean -0.19")


def test_training_time_claim_on_section_4_7() -> None:
    verdict = paper("disjoint_fastest_mixed_before_joint")
    assert verdict.tables == ("B §4.7",) and verdict.holds is True
    assert verdict.numbers() == ("B §4.7 ResNet-50 Tinyimagenet: epochs: disjoint 523.00 ± 156.00, "
                                 "mixed 1166.00 ± 136.00, joint 1610.00 ± 395.00")


def test_figure_claims_are_not_evaluable_with_the_reason() -> None:
    for name in ("single_label_benefit_positive", "multi_label_benefit_below_single_label",
                 "rank_patience_below_confidence", "same_head_exits_rare"):
        verdict = paper(name)
        assert verdict.holds is None and verdict.settings == () and "paper A prints its results only as figures" \
            in verdict.numbers()
    assert "Fig. 2" in paper("last_ic_dominates_in_mixed").numbers()


def test_a_claim_no_setting_can_decide_is_not_evaluable() -> None:
    claim = Claim("test", "x", "budgets", _weakest("disjoint", ("joint", "mixed"), "25%"), paper_tables=("B Table 4",))
    verdict = on_paper(claim)
    assert verdict.holds is None and verdict.evaluated == 0 and verdict.verdict() == "not evaluable"
    with pytest.raises(ValueError, match="neither paper_tables nor paper_missing"):
        on_paper(Claim("test", "x", "budgets", claim.check))


# The claims table ----------------------------------------------------------------------------------------------

PAPER_COLUMNS = ["paper_tables", "paper_holds", "paper_verdict", "paper_settings", "paper_settings_held",
                 "paper_numbers"]


def regimes_numbers() -> pd.DataFrame:
    """A run's regimes table CSV (entry "regimes"): disjoint weakest at 25%, mixed above joint."""
    return pd.DataFrame([{"model": "cnn", "regime": regime, "criterion": "confidence", "metric": "accuracy",
                          "rule": "last", "budget": budget, "mean": mean + bump, "std": 0.5, "n_seeds": 3,
                          "entry": "regimes"}
                         for regime, mean in (("disjoint", 50.0), ("joint", 60.0), ("mixed", 61.0))
                         for budget, bump in (("25%", 0.0), ("75%", 5.0), ("100%", 6.0))])


def test_claims_table_shows_the_papers_verdict_beside_ours(tmp_path) -> None:
    checks = [{"claim": "disjoint_weakest_at_low_budget", "entry": "regimes"},
              {"claim": "mixed_at_least_joint_at_high_budgets", "entry": "regimes"}]
    tex, numbers = TABLES.get("claims")(regimes_numbers(), checks=checks, caption="Cap.", label="tab:claims")
    assert set(PAPER_COLUMNS) <= set(numbers.columns)
    assert list(numbers["holds"]) == [True, True]  # this run
    assert list(numbers["paper_holds"]) == [False, True]  # the paper's own numbers
    assert list(numbers["paper_settings"]) == [11, 12] and list(numbers["paper_settings_held"]) == [10, 12]
    assert numbers["paper_tables"][0] == "B Table 1; B Table 2; B Table 3; B Table 4"
    assert "B Table 2 STS-B (regr.): 25%: disjoint 2.37, joint 1.70, mixed 2.43" in numbers["paper_numbers"][0]
    header = next(line for line in tex.splitlines() if "Verdict" in line)
    assert header.split("&")[2:4] == [" The paper's numbers ", " Paper "]
    rows = [line for line in tex.splitlines() if line.rstrip().endswith("\\\\") and "Verdict" not in line]
    assert "\\textbf{does not hold} (holds in 10 of 11)" in rows[0] and "holds (12 of 12)" in rows[1]
    assert "fails in B Table 2 STS-B (regr.)" in rows[0] and tex.count("\\begin{table}") == 1
    assert rows[0].rstrip(" \\").endswith("& holds")  # ours stays last

    # Written by the renderer: the CSV beside the .tex has the paper's columns.
    (tmp_path / "regimes.csv").write_text(regimes_numbers().drop(columns="entry").to_csv(index=False))
    render_table("claims", {"checks": checks, "caption": "Cap.", "label": "tab:claims"},
                 [str(tmp_path / "regimes.csv")], str(tmp_path / "claims.tex"))
    written = pd.read_csv(tmp_path / "claims.csv")
    assert list(written.columns[-len(PAPER_COLUMNS):]) == PAPER_COLUMNS
    assert list(written["paper_verdict"]) == ["does not hold (holds in 10 of 11 settings; 1 not evaluable)",
                                              "holds (12 of 12 settings)"]


def test_a_long_claims_table_is_split_into_page_sized_floats() -> None:
    """A float taller than the page runs off it: the claims go into floats of at most CLAIMS_FLOAT_LINES
    estimated lines, the first with the caption and label, the rest "(continued)" under the same number."""
    from eebench.render.tables import CLAIMS_FLOAT_LINES, _claims_lines

    checks = [{"claim": claim, "entry": "regimes"} for claim in ("disjoint_weakest_at_low_budget",
                                                                 "mixed_at_least_joint_at_high_budgets")] * 4
    tex, numbers = TABLES.get("claims")(regimes_numbers(), checks=checks, caption="Cap.", label="tab:claims")
    assert len(numbers) == 8
    floats = tex.split("\\end{table}")[:-1]
    assert len(floats) > 1 and tex.count("\\label{tab:claims}") == 1 and "\\label" in floats[0]
    for i, part in enumerate(floats):
        rows = [line for line in part.splitlines() if line.rstrip().endswith("\\\\") and "Verdict" not in line]
        assert "Verdict" in part and rows  # each repeats the header
        assert sum(_claims_lines([cell.strip() for cell in row.rstrip(" \\").split(" & ")]) for row in rows) \
            <= CLAIMS_FLOAT_LINES
        if i:
            assert "\\addtocounter{table}{-1}\n\\caption{(continued)}" in part
    assert sum(part.count("& holds \\\\") for part in floats) == 8  # every claim once, this run's verdict last
