"""Summaries of a threshold sweep: the best performance within FLOPs budgets, and paper A's benefit of early
exits over static heads, B_EE_j = P_ee(E_closest(h_j)) - P_h_j (§3, "Early-Exit Benefits Evaluation")."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from eebench.exits.performance import PERFORMANCE_METRICS, per_sample_performance
from eebench.exits.sweep import SWEEP_COLUMNS, load_cache
from eebench.io import write_csv

# Slack on "flops_fraction <= budget", so a point exactly at a budget is not lost to rounding.
BUDGET_TOLERANCE = 1e-9
# Two average exit heads closer than this are equally close to a static head.
HEAD_DISTANCE_TOLERANCE = 1e-9
UNLIMITED = "unlimited"
BEE_COLUMNS: tuple[str, ...] = ("head", "E_closest", "P_ee", "P_static", "B_EE")


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


def budget_performance(
    sweep_df: pd.DataFrame, budgets: Sequence[float], metrics: str | Sequence[str]
) -> pd.DataFrame:
    """One row per budget (a fraction of the backbone's FLOPs), in the given order, then an ``unlimited`` row.

    Columns ``budget`` ("25%", ..., "unlimited"), ``budget_fraction`` (inf for unlimited) and one per metric:
    the best value among operating points with flops_fraction <= budget (+1e-9), NaN when none fits.
    """
    metrics = _as_list(metrics)
    _require_columns(sweep_df, ["flops_fraction", *metrics])
    _require_one_split(sweep_df)
    flops = sweep_df["flops_fraction"].to_numpy(dtype=float)
    rows = []
    for label, fraction in [*((budget_label(b), float(b)) for b in budgets), (UNLIMITED, np.inf)]:
        fits = flops <= fraction + BUDGET_TOLERANCE
        row: dict[str, object] = {"budget": label, "budget_fraction": fraction}
        for metric in metrics:
            row[metric] = float(sweep_df.loc[fits, metric].max()) if fits.any() else np.nan
        rows.append(row)
    return pd.DataFrame(rows, columns=["budget", "budget_fraction", *metrics])


def e_closest(sweep_df: pd.DataFrame, head: int, metric: str):
    """Index label of the operating point whose avg_exit_head is closest to ``head`` (1-based): paper A's
    E_closest(h_j) = argmin_E |E - h_j|. Ties (equal distance within 1e-9, e.g. E = 1.5 and 2.5 for head 2,
    or several thresholds with the same E) go to the best ``metric`` value: the early-exit model is credited
    with its best point at that depth. Remaining ties go to the lower flops_fraction, then to the first row."""
    _require_columns(sweep_df, ["avg_exit_head", "flops_fraction", metric])
    if sweep_df.empty:
        raise ValueError("sweep frame is empty")
    distance = (sweep_df["avg_exit_head"] - head).abs()
    nearest = sweep_df[distance <= distance.min() + HEAD_DISTANCE_TOLERANCE]
    best = nearest[metric].max()
    if not np.isnan(best):
        nearest = nearest[nearest[metric] == best]
    return nearest["flops_fraction"].idxmin()


def bee(sweep_df: pd.DataFrame, static_performance: Mapping[int, float], metric: str) -> pd.DataFrame:
    """B_EE per static head, sorted by head: columns ``head`` (1-based), ``E_closest`` (the chosen point's
    average exit head), ``P_ee`` (its performance), ``P_static`` and ``B_EE = P_ee - P_static`` (positive:
    early exits beat the static model at equal depth)."""
    _require_one_split(sweep_df)
    rows = []
    for head in sorted(static_performance):
        point = sweep_df.loc[e_closest(sweep_df, head, metric)]
        p_ee, p_static = float(point[metric]), float(static_performance[head])
        rows.append({"head": int(head), "E_closest": float(point["avg_exit_head"]), "P_ee": p_ee,
                     "P_static": p_static, "B_EE": p_ee - p_static})
    return pd.DataFrame(rows, columns=list(BEE_COLUMNS))


def _read_sweep_split(sweep_path: str | Path, split: str) -> tuple[pd.DataFrame, dict[str, object]]:
    """The rows of one split of a sweep CSV, and its identity columns (meta keys and criterion) with their
    single value each."""
    frame = pd.read_csv(sweep_path)
    if "split" not in frame.columns:
        raise ValueError(f"{sweep_path}: not a sweep CSV (no 'split' column)")
    rows = frame[frame["split"] == split].reset_index(drop=True)
    if rows.empty:
        raise ValueError(f"{sweep_path}: no rows for split {split!r} (splits: {sorted(frame['split'].unique())})")
    value_columns = {*SWEEP_COLUMNS, *PERFORMANCE_METRICS, "split"}
    identity_columns = [column for column in frame.columns if column not in value_columns]
    mixed = [column for column in identity_columns if rows[column].nunique(dropna=False) > 1]
    if mixed:
        raise ValueError(f"{sweep_path}: column(s) {', '.join(mixed)} vary within split {split!r}; one run per file")
    return rows, {column: rows[column].iloc[0] for column in identity_columns}


def _with_identity(frame: pd.DataFrame, identity: Mapping[str, object]) -> pd.DataFrame:
    return frame.assign(**identity)[[*identity, *frame.columns]]


def run_budgets(
    sweep_path: str | Path, budgets: Sequence[float], out_path: str | Path, split: str = "test"
) -> pd.DataFrame:
    """Budget table of one sweep CSV. Columns: the identity columns (dataset, backbone, regime, seed,
    criterion: every meta key of the cache), then budget, budget_fraction, accuracy, f1."""
    rows, identity = _read_sweep_split(sweep_path, split)
    result = _with_identity(budget_performance(rows, budgets, PERFORMANCE_METRICS), identity)
    write_csv(out_path, result)
    return result


def static_head_performance(
    static_cache_paths: Sequence[str | Path], split: str = "test", match: Mapping[str, object] | None = None
) -> dict[str, dict[int, float]]:
    """``{metric: {head (1-based): P_static}}`` from static models' logit caches (one head each, meta["head"]).
    Each ``match`` key present in a cache's meta must have that value (as text, since CSVs lose types), so a
    static model of another dataset or backbone is refused rather than compared."""
    performance: dict[str, dict[int, float]] = {metric: {} for metric in PERFORMANCE_METRICS}
    source_of_head: dict[int, str | Path] = {}
    for path in static_cache_paths:
        cache = load_cache(path)
        if "head" not in cache["meta"]:
            raise ValueError(f"{path}: static logit cache has no meta['head'] (the 1-based head it stops at)")
        head = int(cache["meta"]["head"])
        for key, value in (match or {}).items():
            if key in cache["meta"] and str(cache["meta"][key]) != str(value):
                raise ValueError(f"{path}: static cache has {key}={cache['meta'][key]!r}, the sweep has {value!r}")
        if head in source_of_head:
            raise ValueError(f"{path}: static head {head} duplicates {source_of_head[head]}")
        logits = cache[f"{split}_logits"]
        if logits.shape[0] != 1:
            raise ValueError(f"{path}: a static model has one head, this cache has {logits.shape[0]}")
        source_of_head[head] = path
        per_sample = per_sample_performance(logits, cache[f"{split}_labels"], cache["multilabel"])
        for metric in PERFORMANCE_METRICS:
            performance[metric][head] = float(per_sample[metric][0].mean())
    return performance


def run_bee(
    sweep_path: str | Path, static_cache_paths: Sequence[str | Path], out_path: str | Path, split: str = "test"
) -> pd.DataFrame:
    """B_EE of one sweep CSV against static heads, in long format. Columns: the identity columns (dataset,
    backbone, regime, seed, criterion), then head, metric ("accuracy" | "f1"), E_closest, P_ee, P_static, B_EE."""
    rows, identity = _read_sweep_split(sweep_path, split)
    match = {key: identity[key] for key in ("dataset", "backbone") if key in identity}
    static = static_head_performance(static_cache_paths, split, match)
    frames = []
    for metric in PERFORMANCE_METRICS:
        frame = bee(rows, static[metric], metric)
        frame.insert(1, "metric", metric)
        frames.append(frame)
    result = _with_identity(pd.concat(frames, ignore_index=True), identity)
    write_csv(out_path, result)
    return result
