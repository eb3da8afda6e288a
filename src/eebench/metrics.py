"""Summaries of a threshold sweep: the performance within FLOPs budgets under paper B's budget rules (§4.3,
Table 1, Tables 8-20), and paper A's benefit of early exits over static heads,
B_EE_j = P_ee(E_closest(h_j)) - P_h_j (§3, "Early-Exit Benefits Evaluation"); and such files of one run written
by one process: its sweeps and budget tables (:func:`run_metrics`), its B_EE (:func:`run_bees`)."""
from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from eebench.exits.sweep import (
    CRITERION_PARAMS, OPERATING_THRESHOLD, SWEEP_COLUMNS, load_cache, read_sweep, run_sweep,
)
from eebench.io import write_csv
from eebench.tasks import LOWER_IS_BETTER, all_metrics, task_parameter_names

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


def _read_sweep(sweep_path: str | Path) -> tuple[pd.DataFrame, dict[str, object]]:
    """A sweep CSV (checked: :func:`eebench.exits.sweep.read_sweep`), and its identity columns (meta keys and
    criterion) with their single value each."""
    frame = read_sweep(sweep_path)
    value_columns = {*SWEEP_COLUMNS, *all_metrics(), "split"}
    identity_columns = [column for column in frame.columns if column not in value_columns]
    # Checked over the whole file, not per split: the val rule pairs the two splits of one run.
    mixed = [column for column in identity_columns if frame[column].nunique(dropna=False) > 1]
    if mixed:
        raise ValueError(f"{sweep_path}: column(s) {', '.join(mixed)} vary within the file; one run per file")
    return frame, {column: frame[column].iloc[0] for column in identity_columns}


def _metrics_of(frame: pd.DataFrame) -> list[str]:
    """The performance metrics a sweep frame holds (its task's), in the tasks' order."""
    return [metric for metric in all_metrics() if metric in frame.columns]


def _split_rows(frame: pd.DataFrame, split: str, sweep_path: str | Path) -> pd.DataFrame:
    rows = frame[frame["split"] == split].reset_index(drop=True)
    if rows.empty:
        raise ValueError(f"{sweep_path}: no rows for split {split!r} (splits: {sorted(frame['split'].unique())})")
    return rows


def _with_identity(frame: pd.DataFrame, identity: Mapping[str, object]) -> pd.DataFrame:
    return frame.assign(**identity)[[*identity, *frame.columns]]


def run_budgets(
    sweep_path: str | Path, budgets: Sequence[float], out_path: str | Path, rule: str = "best"
) -> pd.DataFrame:
    """Budget table of one sweep CSV under budget ``rule`` (see :func:`budget_performance`; ``val`` also reads
    the file's val rows). Columns: the identity columns (every meta key of the cache, and criterion), ``rule``,
    then budget, budget_fraction and per metric of the sweep <metric>, <metric>_flops (accuracy, f1 for
    classification; mse for regression)."""
    frame, identity = _read_sweep(sweep_path)
    test = _split_rows(frame, "test", sweep_path)
    val = _split_rows(frame, "val", sweep_path) if rule == "val" else None
    table = budget_performance(test, budgets, _metrics_of(frame), rule=rule, val_df=val)
    table.insert(0, "rule", rule)
    result = _with_identity(table, identity)
    write_csv(out_path, result)
    return result


def static_head_performance(
    static_cache_paths: Sequence[str | Path], split: str = "test", match: Mapping[str, object] | None = None,
    task_params: Mapping[str, Any] | None = None, caches: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, dict[int, float]]:
    """``{metric: {head (1-based): P_static}}`` (the caches' task's metrics) from static models' logit caches
    given in head order: the i-th
    path is the static model of head i (one head each; paths are the workflow's, where a static model may be
    shared with another setting, so its meta names that setting and the block, not the head). Their blocks
    (``head_blocks``) must increase. Each ``match`` key present in a cache's meta must have that value (as text,
    since CSVs lose types), so a static model of another dataset or backbone is refused rather than compared.
    ``task_params`` (the early-exit sweep's, e.g. a softmax multi-label ``positive_threshold``) configure each
    cache's task where it takes them, so both sides of B_EE decide positive labels alike; a static model of
    another output layer (``static_baseline`` lending sigmoid heads) keeps its own rule. ``caches``: the files
    already read (:func:`load_cache`, one per path, never modified here), so that one process scores the static
    heads for several sweeps over one read (:func:`run_bees`)."""
    if caches is not None and len(caches) != len(static_cache_paths):
        raise ValueError(f"{len(caches)} static caches read for {len(static_cache_paths)} paths")
    performance: dict[str, dict[int, float]] = {}
    previous_block, previous_path = -1, None
    for head, path in enumerate(static_cache_paths, start=1):
        cache = load_cache(path) if caches is None else caches[head - 1]
        for key, value in (match or {}).items():
            if key in cache["meta"] and str(cache["meta"][key]) != str(value):
                raise ValueError(f"{path}: static cache has {key}={cache['meta'][key]!r}, the sweep has {value!r}")
        logits = cache[f"{split}_logits"]
        if logits.shape[0] != 1:
            raise ValueError(f"{path}: a static model has one head, this cache has {logits.shape[0]}")
        block = int(np.asarray(cache.get("head_blocks", [head - 1]))[-1])
        if block <= previous_block:
            raise ValueError(f"{path}: static head {head} stops at block {block}, not after the previous head's "
                             f"block {previous_block} ({previous_path}); give the static caches in head order")
        previous_block, previous_path = block, path
        task = cache["task"]
        own_params = {key: value for key, value in (task_params or {}).items() if key in task.parameters}
        try:
            task = task.configured(**own_params)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{path}: {error}") from None
        per_sample = task.performance(logits, cache[f"{split}_labels"])
        for metric, values in per_sample.items():
            performance.setdefault(metric, {})[head] = float(values[0].mean())
    return performance


def _task_params_of(identity: Mapping[str, object], sweep_path: str | Path) -> dict[str, Any]:
    """The task parameters among a sweep's criterion parameters (its ``criterion_params`` column): the static
    baselines must be scored with them, so B_EE takes them from the sweep and no caller can pair them wrongly."""
    if CRITERION_PARAMS not in identity:
        raise ValueError(f"{sweep_path}: no {CRITERION_PARAMS!r} column (a sweep from before it was recorded?); "
                         f"rerun the sweep")
    try:
        params = json.loads(str(identity[CRITERION_PARAMS]))
    except json.JSONDecodeError as error:
        raise ValueError(f"{sweep_path}: its {CRITERION_PARAMS!r} is not JSON ({error})") from None
    if not isinstance(params, dict):
        raise ValueError(f"{sweep_path}: its {CRITERION_PARAMS!r} is not a JSON object")
    return {key: value for key, value in params.items() if key in task_parameter_names()}


def run_bee(
    sweep_path: str | Path, static_cache_paths: Sequence[str | Path], out_path: str | Path | None,
    split: str = "test", static_caches: Sequence[Mapping[str, Any]] | None = None,
) -> pd.DataFrame:
    """B_EE of one sweep CSV against the static model of every head (``static_cache_paths`` in head order), in
    long format. Columns: the identity columns (model, dataset, backbone, regime, seed, criterion, ...), then
    head, metric (the task's: "accuracy" | "f1", or "mse"), reading, E_closest, P_ee, P_static, B_EE.

    ``reading`` "nearest_to_head": one row per head and metric, paper A's E_closest over the whole sweep (§3).
    A sweep of a criterion with an operating threshold of its own (its ``operating_threshold`` column: the
    learned exit's 0.5) also has one row per metric read "threshold_0.5" (:func:`bee_at_threshold`), the
    learned exit as paper A's Fig. 5 shows it; the B_EE figure picks one reading (``learned_exit_point``).
    ``static_caches``: the static caches already read (see :func:`static_head_performance`). ``out_path`` None:
    the table is returned, not written."""
    frame, identity = _read_sweep(sweep_path)
    rows = _split_rows(frame, split, sweep_path)
    task_params = _task_params_of(identity, sweep_path)
    heads = int(round(rows["avg_exit_head"].max()))  # the last operating point: every sample at the last head
    if len(static_cache_paths) != heads:
        raise ValueError(f"{sweep_path}: the model has {heads} heads, but {len(static_cache_paths)} static "
                         f"caches were given")
    match = {key: identity[key] for key in ("dataset", "backbone") if key in identity}
    static = static_head_performance(static_cache_paths, split, match, task_params, caches=static_caches)
    missing = [metric for metric in _metrics_of(rows) if metric not in static]
    if missing:
        raise ValueError(f"{sweep_path}: the static caches report no {', '.join(missing)} (another task?)")
    operating = float(identity.get(OPERATING_THRESHOLD, np.nan))
    frames = []
    for metric in _metrics_of(rows):
        readings = [(NEAREST_TO_HEAD, bee(rows, static[metric], metric))]
        if np.isfinite(operating):
            readings.append((threshold_reading(operating), bee_at_threshold(rows, static[metric], metric,
                                                                            operating)))
        for reading, frame in readings:
            frame.insert(1, "metric", metric)
            frame.insert(2, "reading", reading)
            frames.append(frame)
    result = _with_identity(pd.concat(frames, ignore_index=True), identity)
    if out_path is not None:
        write_csv(out_path, result)
    return result


# One run's metric files -------------------------------------------------------------------------------------
# A trained run's (model, regime, seed) sweeps and budget tables are written by one process into one directory
# (the workflow's results/metrics/<model>/<regime>/seed<seed>, eebench.targets.metrics_dir), and its B_EE tables,
# where a table or figure reads them, by another process into another (results/bee/<model>/<regime>/seed<seed>,
# eebench.targets.bee_dir): B_EE alone needs the static heads, so nothing else waits for them. Laid out as below:
# the criterion is its config name (a `criteria:` setting's, or a registered criterion's); budgets are spelled in
# the name, so tables with other budgets or rules never share (or overwrite) a file.

PLAN_KEYS: tuple[str, ...] = ("max_points", "sweeps", "budgets")


def budgets_slug(budgets: Sequence[float]) -> str:
    """[0.25, 0.5, 1.0] -> "25-50-100": the budgets as a budget table's file name spells them."""
    return "-".join(f"{float(b) * 100:g}" for b in budgets)


def sweep_file(criterion: str) -> str:
    """A sweep's file in its run's metric directory: sweeps/<criterion>.csv."""
    return f"sweeps/{criterion}.csv"


def budgets_file(criterion: str, rule: str, budgets: Sequence[float]) -> str:
    """A budget table's file in its run's metric directory: budgets/<criterion>/<rule>/<budgets slug>.csv."""
    return f"budgets/{criterion}/{rule}/{budgets_slug(budgets)}.csv"


def bee_file(criterion: str) -> str:
    """A B_EE table's file in its run's B_EE directory: <criterion>.csv."""
    return f"{criterion}.csv"


def _check_plan(plan: Mapping[str, Any]) -> None:
    """Refuse a plan that names what it does not sweep, before any file is written."""
    unknown = sorted(set(plan) - set(PLAN_KEYS))
    if unknown:
        raise ValueError(f"metrics plan: unknown key(s) {', '.join(unknown)} (known: {', '.join(PLAN_KEYS)}; "
                         f"B_EE is eebench bee-run's)")
    swept = [item["name"] for item in plan.get("sweeps", [])]
    if len(set(swept)) != len(swept):
        raise ValueError(f"metrics plan: a criterion is swept twice ({', '.join(swept)})")
    missing = [item["criterion"] for item in plan.get("budgets", []) if item["criterion"] not in swept]
    if missing:
        raise ValueError(f"metrics plan: budgets of {', '.join(missing)}, which it does not sweep "
                         f"(sweeps: {', '.join(swept) or 'none'})")
    for item in plan.get("budgets", []):
        if item["rule"] not in BUDGET_RULES:
            raise ValueError(f"metrics plan: unknown budget rule {item['rule']!r} (rules: {', '.join(BUDGET_RULES)})")


def run_metrics(logits_path: str | Path, plan: Mapping[str, Any], out_dir: str | Path) -> list[Path]:
    """The sweeps and budget tables of one run, in one process: what ``eebench sweep`` and ``eebench budgets``
    write one file at a time, each file as they write it (atomically), laid out in ``out_dir`` as
    :func:`sweep_file` and :func:`budgets_file` say. The logit cache is read once.

    ``plan`` (eebench.targets.metrics_plan): ``max_points`` (0 or absent: every operating point), ``sweeps``
    (``[{"name", "criterion", "params"}]``: the config's name, its registered criterion and parameters) and
    ``budgets`` (``[{"criterion", "rule", "budgets"}]``: a budget table of a swept criterion's name). Returns the
    files written, in that order; ``out_dir`` exists afterwards even for an empty plan. B_EE, which reads these
    sweeps and the static heads, is :func:`run_bees`'s."""
    _check_plan(plan)
    cache = load_cache(logits_path) if plan.get("sweeps") else None  # a bad cache is refused before any write
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if cache is not None:
        for item in plan["sweeps"]:
            written.append(out / sweep_file(item["name"]))
            run_sweep(logits_path, item["criterion"], written[-1], max_points=plan.get("max_points") or None,
                      params=item.get("params", {}), name=item["name"], cache=cache)
    for item in plan.get("budgets", []):
        written.append(out / budgets_file(item["criterion"], item["rule"], item["budgets"]))
        run_budgets(out / sweep_file(item["criterion"]), item["budgets"], written[-1], rule=item["rule"])
    return written


def run_bees(metrics_dir: str | Path, criteria: Sequence[str], static_cache_paths: Sequence[str | Path],
             out_dir: str | Path) -> list[Path]:
    """B_EE of several criteria of one run, in one process: for each criterion name (eebench.targets.bee_plan),
    what ``eebench bee`` writes of the sweep ``metrics_dir``/:func:`sweep_file` (a directory :func:`run_metrics`
    wrote) against the static model of every head (``static_cache_paths``, in head order, each read once), as
    it writes it (atomically), into ``out_dir``/:func:`bee_file`. Returns the files written, in ``criteria``'s
    order; ``out_dir`` exists afterwards even for no criteria. Refuses a repeated criterion, a missing or bad
    sweep and missing or bad static caches before any file is written."""
    criteria = list(criteria)
    if len(set(criteria)) != len(criteria):
        raise ValueError(f"B_EE plan: a criterion is named twice ({', '.join(criteria)})")
    sweeps = [Path(metrics_dir) / sweep_file(criterion) for criterion in criteria]
    missing = [str(path) for path in sweeps if not path.is_file()]
    if missing:
        raise ValueError(f"B_EE plan: no sweep {', '.join(missing)} (the run's metrics plan must sweep every "
                         f"criterion whose B_EE is read)")
    if criteria and not static_cache_paths:
        raise ValueError("B_EE plan: B_EE needs the static heads' logit caches (--static)")
    static_caches = [load_cache(path) for path in static_cache_paths] if criteria else None
    # Every table first, then the files: a bad sweep or static cache leaves no file written (the tables are
    # small; the sweeps, every operating point each, are read one at a time).
    tables = [run_bee(sweep, static_cache_paths, None, static_caches=static_caches) for sweep in sweeps]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for criterion, table in zip(criteria, tables):
        written.append(out / bee_file(criterion))
        write_csv(written[-1], table)
    return written
