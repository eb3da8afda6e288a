"""Summaries of a threshold sweep, computed on its frame: the performance within FLOPs budgets under paper B's
budget rules (§4.3, Table 1, Tables 8-20), the area under a criterion's performance-speed-up curve (paper A §3),
and paper A's benefit of early exits over static heads, B_EE_j = P_ee(E_closest(h_j)) - P_h_j (§3, "Early-Exit
Benefits Evaluation"). The files of one run that hold them are eebench.metrics's."""
from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import numpy as np
import pandas as pd

from eebench.tasks import LOWER_IS_BETTER

# Slack on "flops_fraction <= budget", so a point exactly at a budget is not lost to rounding.
BUDGET_TOLERANCE = 1e-9
# Two average exit heads closer than this are equally close to a static head.
HEAD_DISTANCE_TOLERANCE = 1e-9
UNLIMITED = "unlimited"
BEE_COLUMNS: tuple[str, ...] = ("head", "E_closest", "P_ee", "P_static", "B_EE")
# How a B_EE row reads the sweep (the B_EE CSV's `reading` column). Paper A §3: every static head h_j against
# the operating point nearest its depth, E_closest(h_j), over the whole sweep; paper A §4.2 (Fig. 5): the learned
# exit is one operating point, its classifier's threshold 0.5 ("threshold_0.5", see threshold_reading).
NEAREST_TO_HEAD = "nearest_to_head"


def threshold_reading(threshold: float) -> str:
    """The ``reading`` of B_EE at one criterion's own operating threshold: 0.5 -> "threshold_0.5"."""
    return f"threshold_{threshold:g}"

# How a budget picks its operating point. Paper B §4.3 reports "the maximum averaged computational budget"
# without saying which point within it; its tables (e.g. Table 8, Joint: 74.32 at 75% but 74.17 at 100%) and
# released code take the most expensive one ("last"), which reads the test set only through the FLOPs.
BUDGET_RULES: tuple[str, ...] = ("best", "last", "val")
BUDGET_RULE_DESCRIPTIONS: dict[str, str] = {
    "best": "the best test performance among operating points within each budget; Unlimited: the best over "
            "all operating points",
    "last": "the most expensive operating point within each budget; Unlimited: every sample at the final head "
            "(paper B's tables)",
    "val": "the operating point with the best validation performance within each budget (validation FLOPs), "
           "its threshold applied to the test split; Unlimited: the best validation point",
}


def budget_label(fraction: float) -> str:
    """0.25 -> "25%"."""
    return f"{fraction * 100:g}%"


def _as_list(metrics: str | Sequence[str]) -> list[str]:
    return [metrics] if isinstance(metrics, str) else list(metrics)


def _require_columns(frame: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise ValueError(f"sweep frame lacks column(s) {', '.join(missing)}")


def _require_one_split(frame: pd.DataFrame) -> None:
    """Points of different splits (or runs) must not compete for the same budget or head."""
    if "split" in frame.columns and frame["split"].nunique() > 1:
        raise ValueError(f"sweep frame mixes splits {sorted(frame['split'].unique())}; select one first")


def _ranking_key(values: np.ndarray, lower_is_better: bool) -> np.ndarray:
    """Larger key = better point. NaN ranks below every number, so it is never preferred to a real value."""
    key = -values if lower_is_better else values
    return np.where(np.isnan(key), -np.inf, key)


def _last_fitting_position(sorted_flops: np.ndarray, budgets: np.ndarray) -> np.ndarray:
    """Per budget, the position in ascending ``sorted_flops`` of the last point within it; -1 when none fits."""
    return np.searchsorted(sorted_flops, budgets + BUDGET_TOLERANCE, side="right") - 1


def _best_within(
    flops: np.ndarray, key: np.ndarray, budgets: np.ndarray, thresholds: np.ndarray | None = None
) -> np.ndarray:
    """Per budget, the row of the largest ``key`` among points with flops <= budget (-1 when none fits).
    Ties go to the lower flops, then to the lower threshold.

    One sort for all budgets: in order of ascending flops (then threshold), a running argmax that moves only
    on a strict improvement keeps the first of the best points so far, i.e. the cheapest, then the lowest
    threshold.
    """
    if flops.size == 0:
        return np.full(budgets.shape, -1)
    order = np.lexsort((flops,) if thresholds is None else (thresholds, flops))  # the last key is the primary one
    sorted_key = key[order]
    improves = np.append(True, sorted_key[1:] > np.maximum.accumulate(sorted_key)[:-1])
    best_so_far = np.maximum.accumulate(np.where(improves, np.arange(order.size), 0))
    position = _last_fitting_position(flops[order], budgets)
    return np.where(position >= 0, order[best_so_far[position]], -1)


def _last_within(flops: np.ndarray, key: np.ndarray, budgets: np.ndarray) -> np.ndarray:
    """Per budget, the row of the most expensive point with flops <= budget (-1 when none fits); ties in
    flops go to the larger ``key``."""
    order = np.lexsort((key, flops))
    position = _last_fitting_position(flops[order], budgets)
    return np.where(position >= 0, order[position], -1) if order.size else position


def _test_rows_at(test_thresholds: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """The test row that threshold t selects: the first row, by ascending threshold, whose threshold is >= t.

    A sweep row with threshold thr[k] stands for every threshold in (thr[k-1], thr[k]]: a sample passes a
    head when its running-max score is < t (eebench.exits.sweep), and no score lies strictly between
    thr[k-1] and thr[k], so every t in that interval lets exactly the same samples pass as thr[k]. The last
    row's threshold is +inf, so such a row always exists. (With ``max_points`` subsampling the kept row is
    the next point at or above t, the nearest kept point on the expensive side.)
    """
    order = np.argsort(test_thresholds, kind="stable")
    position = np.searchsorted(test_thresholds[order], thresholds, side="left")
    return order[position]


def _at(values: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``values[rows]``, NaN where a row is -1 (no point fits)."""
    picked = np.full(rows.shape, np.nan)
    fits = rows >= 0
    picked[fits] = values[rows[fits]]
    return picked


def budget_performance(
    test_df: pd.DataFrame,
    budgets: Sequence[float],
    metrics: str | Sequence[str],
    rule: str = "best",
    val_df: pd.DataFrame | None = None,
    lower_is_better: Collection[str] = LOWER_IS_BETTER,
) -> pd.DataFrame:
    """One row per budget (a fraction of the backbone's FLOPs), in the given order, then an ``unlimited`` row.

    Columns ``budget`` ("25%", ..., "unlimited"), ``budget_fraction`` (inf for unlimited) and, per metric,
    ``<metric>`` (the test value of the operating point the rule picks, NaN when none fits) and
    ``<metric>_flops`` (that point's test flops_fraction, NaN when none fits). A point fits a budget when its
    flops_fraction <= budget + BUDGET_TOLERANCE. The point is picked per metric; metrics named in
    ``lower_is_better`` (by default the tasks' LOWER_IS_BETTER: the MSE) count the smaller value as better.
    Rules (BUDGET_RULES):

    - ``best``: the best test value among points within the budget (ties: the cheaper point); Unlimited is
      the best over all points. Selects on the test set.
    - ``last`` (paper B's tables and code): the most expensive point within the budget (ties in flops: the
      better value); Unlimited is the most expensive point overall, the +inf-threshold row where every sample
      reaches the final head. A larger budget can therefore score lower (paper B Table 8, Joint: 74.32 at 75%,
      74.17 at 100%).
    - ``val``: no selection on test. Among ``val_df``'s points within the budget (val flops), the best val
      value (ties: the lower val flops, then the lower threshold); its threshold is applied to the test split
      (see :func:`_test_rows_at`), whose value and flops are reported even when those test flops exceed the
      budget. Unlimited is the best val point overall, mapped the same way. Needs ``val_df`` and a
      ``threshold`` column in both frames.
    """
    metrics = _as_list(metrics)
    if rule not in BUDGET_RULES:
        raise ValueError(f"unknown budget rule {rule!r}; known: {', '.join(BUDGET_RULES)}")
    if rule == "val" and val_df is None:
        raise ValueError("budget rule 'val' chooses points on the validation split: pass val_df")
    if rule != "val" and val_df is not None:
        raise ValueError(f"budget rule {rule!r} does not read val_df; only rule 'val' does")
    needed = ["flops_fraction", *metrics, *(["threshold"] if rule == "val" else [])]
    _require_columns(test_df, needed)
    _require_one_split(test_df)
    fractions = np.array([*map(float, budgets), np.inf])
    test_flops = test_df["flops_fraction"].to_numpy(dtype=float)
    if rule == "val":
        _require_columns(val_df, needed)
        _require_one_split(val_df)
        test_thresholds = test_df["threshold"].to_numpy(dtype=float)
        if not np.isposinf(test_thresholds).any():
            raise ValueError("the test split has no +inf threshold (every sample at the final head), so a val "
                             "threshold above its largest one selects no test point")
        val_flops = val_df["flops_fraction"].to_numpy(dtype=float)
        val_thresholds = val_df["threshold"].to_numpy(dtype=float)

    table: dict[str, object] = {"budget": [*map(budget_label, budgets), UNLIMITED], "budget_fraction": fractions}
    for metric in metrics:
        smaller_is_better = metric in lower_is_better
        values = test_df[metric].to_numpy(dtype=float)
        if rule == "best":
            chosen = _best_within(test_flops, _ranking_key(values, smaller_is_better), fractions)
        elif rule == "last":
            chosen = _last_within(test_flops, _ranking_key(values, smaller_is_better), fractions)
        else:
            val_key = _ranking_key(val_df[metric].to_numpy(dtype=float), smaller_is_better)
            on_val = _best_within(val_flops, val_key, fractions, val_thresholds)
            chosen = np.full(on_val.shape, -1)
            chosen[on_val >= 0] = _test_rows_at(test_thresholds, val_thresholds[on_val[on_val >= 0]])
        table[metric] = _at(values, chosen)
        table[f"{metric}_flops"] = _at(test_flops, chosen)
    return pd.DataFrame(table)


def achievable_curve(sweep_df: pd.DataFrame, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """A criterion's performance-speed-up curve as the speed-up 1 / flops_fraction of each operating point
    (ascending) and the best ``metric`` among the points at that speed-up or more: what the criterion can
    deliver when asked for at least that speed-up. A step function (non-increasing for a higher-is-better
    metric); between two points it holds the faster point's value, never a straight line between them."""
    _require_columns(sweep_df, ["flops_fraction", metric])
    _require_one_split(sweep_df)
    speedup = 1.0 / sweep_df["flops_fraction"].to_numpy(dtype=float)
    order = np.argsort(speedup, kind="stable")
    values = sweep_df[metric].to_numpy(dtype=float)[order]
    best = np.minimum if metric in LOWER_IS_BETTER else np.maximum
    return speedup[order], best.accumulate(values[::-1])[::-1]


def speedup_area(sweep_df: pd.DataFrame, metric: str) -> float:
    """The area under a criterion's performance-speed-up curve (paper A §3: "The effectiveness of a strategy is
    indicated by the area under this curve; the larger the area, the more effective the strategy"): the
    integral of :func:`achievable_curve` over the speed-up, from the slowest to the fastest operating point.

    Reading: the curve is the achievable envelope, a step function, not straight lines between points. A
    trapezoid rule would credit a criterion with few operating points for performance it never delivers: one
    whose only points are "everyone at head 1" (fast, wrong) and "everyone at the last head" (slow, right)
    would get half the rectangle between them, several times the area of a dense criterion that really
    trades performance for speed. A threshold criterion's sweep spans the speed-ups from all samples at the
    first head it allows to all at the last, so the areas compare; a criterion that forbids early heads (the
    hybrid, before its rank patience; rank-patience, before its smallest patience: their -inf scores, "never
    ready") has no point at head 1's speed-up and is credited with none. A learned exit, one point, has no
    area."""
    speedup, best = achievable_curve(sweep_df, metric)
    return float(np.sum(np.diff(speedup) * best[1:]))


def e_closest(sweep_df: pd.DataFrame, head: int, metric: str):
    """Index label of the operating point whose avg_exit_head is closest to ``head`` (1-based): paper A's
    E_closest(h_j) = argmin_E |E - h_j|. Ties (equal distance within 1e-9, e.g. E = 1.5 and 2.5 for head 2,
    or several thresholds with the same E) go to the best ``metric`` value (the smallest for a LOWER_IS_BETTER
    metric): the early-exit model is credited with its best point at that depth. Remaining ties go to the
    lower flops_fraction, then to the first row."""
    _require_columns(sweep_df, ["avg_exit_head", "flops_fraction", metric])
    if sweep_df.empty:
        raise ValueError("sweep frame is empty")
    distance = (sweep_df["avg_exit_head"] - head).abs()
    nearest = sweep_df[distance <= distance.min() + HEAD_DISTANCE_TOLERANCE]
    best = nearest[metric].min() if metric in LOWER_IS_BETTER else nearest[metric].max()
    if not np.isnan(best):
        nearest = nearest[nearest[metric] == best]
    return nearest["flops_fraction"].idxmin()


def bee(sweep_df: pd.DataFrame, static_performance: Mapping[int, float], metric: str) -> pd.DataFrame:
    """B_EE per static head, sorted by head: columns ``head`` (1-based), ``E_closest`` (the chosen point's
    average exit head), ``P_ee`` (its performance), ``P_static`` and ``B_EE = P_ee - P_static`` (positive:
    early exits beat the static model at equal depth). For a LOWER_IS_BETTER metric (an MSE) B_EE is
    ``P_static - P_ee``, so that a positive benefit still means the early-exit model is better (paper A
    defines B_EE for classification only; README "Readings")."""
    _require_one_split(sweep_df)
    rows = []
    for head in sorted(static_performance):
        point = sweep_df.loc[e_closest(sweep_df, head, metric)]
        p_ee, p_static = float(point[metric]), float(static_performance[head])
        benefit = p_static - p_ee if metric in LOWER_IS_BETTER else p_ee - p_static
        rows.append({"head": int(head), "E_closest": float(point["avg_exit_head"]), "P_ee": p_ee,
                     "P_static": p_static, "B_EE": benefit})
    return pd.DataFrame(rows, columns=list(BEE_COLUMNS))


def operating_point(sweep_df: pd.DataFrame, threshold: float) -> pd.Series:
    """The sweep row (operating point) that ``threshold`` selects: the first row, by ascending threshold, whose
    threshold is >= it (a sample exits at the first head whose score is >= t: see :func:`_test_rows_at`)."""
    _require_columns(sweep_df, ["threshold"])
    _require_one_split(sweep_df)
    if sweep_df.empty:
        raise ValueError("sweep frame is empty")
    thresholds = sweep_df["threshold"].to_numpy(dtype=float)
    if not np.isposinf(thresholds).any():
        raise ValueError("the sweep has no +inf threshold (every sample at the final head), so a threshold above "
                         "its largest one selects no point")
    return sweep_df.iloc[int(_test_rows_at(thresholds, np.array([float(threshold)]))[0])]


def bee_at_threshold(sweep_df: pd.DataFrame, static_performance: Mapping[int, float], metric: str,
                     threshold: float) -> pd.DataFrame:
    """B_EE of the one operating point ``threshold`` selects (:func:`operating_point`), paper A Fig. 5's form of
    the learned exit ("a value exceeding 0.5 indicating a decision to exit", §4.2: one point per setting): a
    single row, at the static head nearest that point's average exit head E (the head for which it is
    E_closest; at equal distance the deeper head, the static model at least as costly as the point). Columns
    as :func:`bee`."""
    point = operating_point(sweep_df, threshold)
    depth = float(point["avg_exit_head"])
    heads = np.array(sorted(static_performance))
    distance = np.abs(heads - depth)
    head = int(heads[distance <= distance.min() + HEAD_DISTANCE_TOLERANCE].max())
    p_ee, p_static = float(point[metric]), float(static_performance[head])
    benefit = p_static - p_ee if metric in LOWER_IS_BETTER else p_ee - p_static
    return pd.DataFrame([{"head": head, "E_closest": depth, "P_ee": p_ee, "P_static": p_static, "B_EE": benefit}],
                        columns=list(BEE_COLUMNS))
