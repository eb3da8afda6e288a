"""The metric files of one run, each kind written by one process: its threshold sweeps and budget tables
(:func:`run_metrics`), its B_EE against the static heads (:func:`run_bees`); and the one-file jobs they are made
of (:func:`run_budgets`, :func:`run_bee`). The numbers in them are computed on a sweep's frame by
eebench.sweep_metrics (the budget rules, B_EE)."""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from eebench.exits.sweep import (
    CRITERION_PARAMS, OPERATING_THRESHOLD, SWEEP_COLUMNS, load_cache, read_sweep, run_sweep,
)
from eebench.io import write_csv
from eebench.sweep_metrics import (
    BUDGET_RULES, NEAREST_TO_HEAD, bee, bee_at_threshold, budget_performance, threshold_reading,
)
from eebench.tasks import all_metrics, task_parameter_names


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
