"""The three budget rules of eebench.sweep_metrics (best, last, val) on hand-made sweeps, and run_budgets on a CSV.

Every expected value below is read off the frames by hand; the comments say which point each budget picks."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from eebench.cli import build_parser
from eebench.metrics import run_budgets
from eebench.sweep_metrics import BUDGET_RULE_DESCRIPTIONS, BUDGET_RULES, budget_performance

INF = np.inf
# A test split shaped like paper B Table 8, Joint (25%: 62.84, 50%: 72.80, 75%: 74.32, 100%: 74.17,
# Unlimited: 74.19). Rows by ascending threshold; the +inf row (every sample at the final head) is the dearest.
TEST = pd.DataFrame({
    "threshold": [0.1, 0.3, 0.5, 0.7, 0.9, INF],
    "avg_exit_head": [1.0, 1.6, 2.2, 2.8, 2.9, 3.0],
    "flops_fraction": [0.20, 0.45, 0.70, 0.95, 1.00, 1.02],
    "accuracy": [0.6284, 0.7280, 0.7432, 0.7410, 0.7417, 0.7419],
    "f1": [0.51, 0.62, 0.66, 0.69, 0.64, 0.63],
})
# The validation split of the same run: other thresholds and costs. 0.95 lies above every finite test threshold.
VAL = pd.DataFrame({
    "threshold": [0.15, 0.35, 0.55, 0.95, INF],
    "avg_exit_head": [1.1, 1.7, 2.3, 2.8, 3.0],
    "flops_fraction": [0.22, 0.48, 0.72, 0.93, 1.03],
    "accuracy": [0.60, 0.75, 0.75, 0.77, 0.76],
    "f1": [0.50, 0.55, 0.70, 0.60, 0.65],
})
BUDGETS = [0.25, 0.5, 0.75, 1.0]
METRICS = ["accuracy", "f1"]


def test_rule_names_and_descriptions():
    assert BUDGET_RULES == ("best", "last", "val")
    assert list(BUDGET_RULE_DESCRIPTIONS) == list(BUDGET_RULES)
    assert "most expensive" in BUDGET_RULE_DESCRIPTIONS["last"]


def test_columns_are_the_same_for_every_rule():
    for rule in BUDGET_RULES:
        table = budget_performance(TEST, BUDGETS, METRICS, rule=rule, val_df=VAL if rule == "val" else None)
        assert list(table.columns) == ["budget", "budget_fraction", "accuracy", "accuracy_flops", "f1", "f1_flops"]
        assert table["budget"].tolist() == ["25%", "50%", "75%", "100%", "unlimited"]
        assert table["budget_fraction"].tolist() == [0.25, 0.5, 0.75, 1.0, INF]


# best ----------------------------------------------------------------------------------------------------


def test_best_keeps_the_peak_once_it_fits():
    table = budget_performance(TEST, BUDGETS, METRICS)
    # 25%: only the 0.20 point; 50%: 0.45; from 75% on the 0.70 point (74.32) stays the best accuracy.
    np.testing.assert_array_equal(table["accuracy"], [0.6284, 0.7280, 0.7432, 0.7432, 0.7432])
    np.testing.assert_array_equal(table["accuracy_flops"], [0.20, 0.45, 0.70, 0.70, 0.70])
    # f1 peaks at the 0.95 point (0.69): it fits 100% and unlimited.
    np.testing.assert_array_equal(table["f1"], [0.51, 0.62, 0.66, 0.69, 0.69])
    np.testing.assert_array_equal(table["f1_flops"], [0.20, 0.45, 0.70, 0.95, 0.95])


def test_best_nothing_fits_everything_fits():
    table = budget_performance(TEST, [0.1, 2.0], "accuracy")
    np.testing.assert_array_equal(table["accuracy"], [np.nan, 0.7432, 0.7432])
    np.testing.assert_array_equal(table["accuracy_flops"], [np.nan, 0.70, 0.70])


def test_best_performance_ties_report_the_cheaper_point():
    tied = pd.DataFrame({"flops_fraction": [0.6, 0.3, 0.9], "accuracy": [0.8, 0.8, 0.7]})
    table = budget_performance(tied, [1.0], "accuracy")
    assert table["accuracy"].tolist() == [0.8, 0.8]
    assert table["accuracy_flops"].tolist() == [0.3, 0.3]


def test_best_at_the_budget_fits_just_above_does_not():
    at = pd.DataFrame({"flops_fraction": [0.3, 0.5, 0.5 + 1e-6], "accuracy": [0.5, 0.6, 0.9]})
    table = budget_performance(at, [0.5], "accuracy")
    assert table["accuracy"].tolist() == [0.6, 0.9]  # 0.5 exactly fits; 0.5 + 1e-6 only fits unlimited
    assert table["accuracy_flops"].tolist() == [0.5, 0.5 + 1e-6]


def test_best_ignores_nan_performance():
    holes = pd.DataFrame({"flops_fraction": [0.2, 0.4], "accuracy": [0.5, np.nan]})
    assert budget_performance(holes, [0.5], "accuracy")["accuracy"].tolist() == [0.5, 0.5]


def test_best_minimises_lower_is_better_metrics():
    errors = pd.DataFrame({"flops_fraction": [0.2, 0.4, 0.8], "mse": [2.0, 0.6, 0.7], "accuracy": [0.1, 0.2, 0.3]})
    table = budget_performance(errors, [0.5, 1.0], ["mse", "accuracy"], lower_is_better={"mse"})
    assert table["mse"].tolist() == [0.6, 0.6, 0.6]
    assert table["mse_flops"].tolist() == [0.4, 0.4, 0.4]
    assert table["accuracy"].tolist() == [0.2, 0.3, 0.3]  # not listed: larger is still better


# last ----------------------------------------------------------------------------------------------------


def test_last_reproduces_paper_b_table_8_decrease():
    table = budget_performance(TEST, BUDGETS, METRICS, rule="last")
    # The dearest point within each budget: 0.20, 0.45, 0.70, 1.00 (exactly at 100%), then the +inf row.
    np.testing.assert_array_equal(table["accuracy"], [0.6284, 0.7280, 0.7432, 0.7417, 0.7419])
    np.testing.assert_array_equal(table["accuracy_flops"], [0.20, 0.45, 0.70, 1.00, 1.02])
    assert table["accuracy"][3] < table["accuracy"][2]  # 74.17 at 100% < 74.32 at 75%, as in the paper
    np.testing.assert_array_equal(table["f1"], [0.51, 0.62, 0.66, 0.64, 0.63])
    np.testing.assert_array_equal(table["f1_flops"], [0.20, 0.45, 0.70, 1.00, 1.02])


def test_last_nothing_fits_everything_fits():
    table = budget_performance(TEST, [0.19, 5.0], "accuracy", rule="last")
    # Unlimited is the +inf-threshold row, not the best one.
    np.testing.assert_array_equal(table["accuracy"], [np.nan, 0.7419, 0.7419])
    np.testing.assert_array_equal(table["accuracy_flops"], [np.nan, 1.02, 1.02])


def test_last_at_the_budget_fits_just_above_does_not():
    at = pd.DataFrame({"flops_fraction": [0.3, 0.5, 0.5 + 1e-6], "accuracy": [0.5, 0.6, 0.9]})
    table = budget_performance(at, [0.5, 0.5 - 1e-12], "accuracy", rule="last")
    # 0.5 - 1e-12 still takes the 0.5 point (within BUDGET_TOLERANCE).
    assert table["accuracy"].tolist() == [0.6, 0.6, 0.9]
    assert table["accuracy_flops"].tolist() == [0.5, 0.5, 0.5 + 1e-6]


def test_last_flops_ties_go_to_the_better_value():
    tied = pd.DataFrame({"flops_fraction": [0.3, 0.7, 0.7, 0.9], "accuracy": [0.5, 0.74, 0.70, 0.72],
                         "mse": [1.0, 0.4, 0.3, 0.2]})
    table = budget_performance(tied, [0.75], ["accuracy", "mse"], rule="last", lower_is_better=["mse"])
    assert table["accuracy"].tolist() == [0.74, 0.72]
    assert table["mse"].tolist() == [0.3, 0.2]  # for a lower-is-better metric the smaller value wins the tie
    assert table["accuracy_flops"].tolist() == table["mse_flops"].tolist() == [0.7, 0.9]


# val -----------------------------------------------------------------------------------------------------


def test_val_chooses_on_val_and_reports_test():
    table = budget_performance(TEST, BUDGETS, METRICS, rule="val", val_df=VAL)
    # accuracy on val: 25% -> 0.60 at t=0.15 -> first test threshold >= 0.15 is 0.3 (test cost 0.45 > 25%).
    # 50% -> 0.75 at t=0.35 -> test 0.5 row. 75%: 0.75 at val cost 0.48 and 0.72, the cheaper wins -> t=0.35.
    # 100% -> 0.77 at t=0.95, above every finite test threshold -> the +inf row. Unlimited: the same point.
    np.testing.assert_array_equal(table["accuracy"], [0.7280, 0.7432, 0.7432, 0.7419, 0.7419])
    np.testing.assert_array_equal(table["accuracy_flops"], [0.45, 0.70, 0.70, 1.02, 1.02])
    # f1 chooses its own point: 75% -> val f1 0.70 at t=0.55 -> test 0.7 row (cost 0.95, above the budget).
    # 100% and unlimited: still 0.70 (the 0.95 and +inf val points score 0.60 and 0.65).
    np.testing.assert_array_equal(table["f1"], [0.62, 0.66, 0.69, 0.69, 0.69])
    np.testing.assert_array_equal(table["f1_flops"], [0.45, 0.70, 0.95, 0.95, 0.95])


def test_val_reports_test_cost_above_the_budget():
    table = budget_performance(TEST, [0.25], "accuracy", rule="val", val_df=VAL)
    assert table["accuracy_flops"][0] == 0.45 > table["budget_fraction"][0]


def test_val_nothing_fits_everything_fits():
    table = budget_performance(TEST, [0.21, 3.0], "accuracy", rule="val", val_df=VAL)
    # Val's cheapest point costs 0.22 (the test split's 0.20 point does not count).
    np.testing.assert_array_equal(table["accuracy"], [np.nan, 0.7419, 0.7419])
    np.testing.assert_array_equal(table["accuracy_flops"], [np.nan, 1.02, 1.02])


def test_val_budget_is_checked_on_val_flops_at_and_just_above():
    val = pd.DataFrame({"threshold": [0.2, 0.6, INF], "flops_fraction": [0.3, 0.5, 0.5 + 1e-6],
                        "accuracy": [0.5, 0.6, 0.9]})
    table = budget_performance(TEST, [0.5], "accuracy", rule="val", val_df=val)
    # 50%: the val point at exactly 0.5 fits (t=0.6 -> test 0.7 row); the one 1e-6 above (t=inf) does not.
    assert table["accuracy"].tolist() == [0.7410, 0.7419]
    assert table["accuracy_flops"].tolist() == [0.95, 1.02]


def test_val_threshold_mapping():
    # Each val point is the only one within its budget, so the budget picks its threshold.
    val = pd.DataFrame({"threshold": [0.05, 0.3, 0.4, 0.9, 0.91, INF],
                        "flops_fraction": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], "accuracy": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]})
    table = budget_performance(TEST, [0.1, 0.2, 0.3, 0.4, 0.5], "accuracy", rule="val", val_df=val)
    # t=0.05 below every test threshold -> first row (0.1); t=0.3 equal to a test threshold -> that row;
    # t=0.4 between 0.3 and 0.5 -> the 0.5 row; t=0.9 -> the 0.9 row; t=0.91 above every finite one -> +inf.
    np.testing.assert_array_equal(table["accuracy_flops"], [0.20, 0.45, 0.70, 1.00, 1.02, 1.02])
    np.testing.assert_array_equal(table["accuracy"], [0.6284, 0.7280, 0.7432, 0.7417, 0.7419, 0.7419])


def test_val_ties_go_to_lower_val_flops_then_lower_threshold():
    val = pd.DataFrame({"threshold": [0.45, 0.25, 0.05, INF], "flops_fraction": [0.4, 0.4, 0.45, 1.0],
                        "accuracy": [0.8, 0.8, 0.8, 0.7]})
    table = budget_performance(TEST, [0.5], "accuracy", rule="val", val_df=val)
    # Three points score 0.8; 0.45 costs more; of the two at 0.4, t=0.25 < 0.45 -> test 0.3 row (not 0.5).
    assert table["accuracy"].tolist() == [0.7280, 0.7280]
    assert table["accuracy_flops"].tolist() == [0.45, 0.45]


def test_val_minimises_lower_is_better_metrics():
    test = TEST.assign(mse=[3.0, 2.0, 1.0, 0.5, 0.4, 0.3])
    val = VAL.assign(mse=[2.5, 1.5, 1.6, 0.9, 1.0])
    table = budget_performance(test, [0.5, 0.75], "mse", rule="val", val_df=val, lower_is_better=("mse",))
    # 50% and 75%: val mse 1.5 at t=0.35 -> test 0.5 row (mse 1.0); unlimited: 0.9 at t=0.95 -> +inf row.
    assert table["mse"].tolist() == [1.0, 1.0, 0.3]


def test_rule_arguments_are_checked():
    with pytest.raises(ValueError, match="pass val_df"):
        budget_performance(TEST, BUDGETS, "accuracy", rule="val")
    with pytest.raises(ValueError, match="does not read val_df"):
        budget_performance(TEST, BUDGETS, "accuracy", rule="last", val_df=VAL)
    with pytest.raises(ValueError, match="unknown budget rule 'first'.*best, last, val"):
        budget_performance(TEST, BUDGETS, "accuracy", rule="first")
    with pytest.raises(ValueError, match=r"\+inf threshold"):
        budget_performance(TEST.iloc[:-1], BUDGETS, "accuracy", rule="val", val_df=VAL)
    with pytest.raises(ValueError, match="threshold"):
        budget_performance(TEST.drop(columns="threshold"), BUDGETS, "accuracy", rule="val", val_df=VAL)


# run_budgets and the CLI option ---------------------------------------------------------------------------


@pytest.fixture
def sweep_csv(tmp_path):
    identity = {"model": "resnet34", "dataset": "cifar100", "regime": "joint", "seed": 1, "criterion": "confidence"}
    frames = [frame.assign(**identity, split=split) for split, frame in (("val", VAL), ("test", TEST))]
    columns = [*identity, "split", "threshold", "avg_exit_head", "flops_fraction", "accuracy", "f1"]
    path = tmp_path / "sweep.csv"
    pd.concat(frames, ignore_index=True)[columns].to_csv(path, index=False)
    return path


EXPECTED_COLUMNS = ["model", "dataset", "regime", "seed", "criterion", "rule", "budget", "budget_fraction",
                    "accuracy", "accuracy_flops", "f1", "f1_flops"]


def test_run_budgets_last(sweep_csv, tmp_path):
    run_budgets(sweep_csv, [0.75, 1.0], tmp_path / "last.csv", rule="last")
    written = pd.read_csv(tmp_path / "last.csv")
    assert list(written.columns) == EXPECTED_COLUMNS
    assert written["rule"].tolist() == ["last"] * 3
    assert written["model"].tolist() == ["resnet34"] * 3
    assert written["budget"].tolist() == ["75%", "100%", "unlimited"]
    np.testing.assert_array_equal(written["accuracy"], [0.7432, 0.7417, 0.7419])
    np.testing.assert_array_equal(written["accuracy_flops"], [0.70, 1.00, 1.02])


def test_run_budgets_val(sweep_csv, tmp_path):
    result = run_budgets(sweep_csv, [0.25, 0.75], tmp_path / "val.csv", rule="val")
    written = pd.read_csv(tmp_path / "val.csv")
    assert list(written.columns) == EXPECTED_COLUMNS
    assert written["rule"].tolist() == ["val"] * 3
    np.testing.assert_array_equal(written["accuracy"], [0.7280, 0.7432, 0.7419])
    np.testing.assert_array_equal(written["f1"], [0.62, 0.69, 0.69])
    np.testing.assert_array_equal(written["f1_flops"], [0.45, 0.95, 0.95])
    pd.testing.assert_frame_equal(written, result, check_dtype=False)


def test_run_budgets_refuses_a_file_mixing_runs(sweep_csv, tmp_path):
    frame = pd.read_csv(sweep_csv)
    frame.loc[frame["split"] == "val", "seed"] = 2
    frame.to_csv(sweep_csv, index=False)
    with pytest.raises(ValueError, match="seed vary within the file"):
        run_budgets(sweep_csv, [0.5], tmp_path / "out.csv", rule="val")
    assert not (tmp_path / "out.csv").exists()


def test_cli_budgets_rule_option():
    parser = build_parser()
    base = ["budgets", "--sweep", "s.csv", "--budgets", "0.5", "--out", "o.csv"]
    assert parser.parse_args(base).rule == "best"
    assert parser.parse_args([*base, "--rule", "val"]).rule == "val"
    with pytest.raises(SystemExit):
        parser.parse_args([*base, "--rule", "first"])
