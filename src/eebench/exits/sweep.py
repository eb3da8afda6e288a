"""Threshold sweep: every distinct operating point of a threshold criterion, computed in one sort.

A sample exits at the first head whose score is >= t, else at the last head. With M = the running max of its
scores over heads, it has passed head h (h < H-1) exactly when M[h] < t. Raising t therefore only ever moves
samples one head deeper, one "event" (h, n) at a time, in the order of M[h, n]. Sorting the events and
cumulative-summing their effects (+1 head, +FLOPs, +performance) gives every operating point at once, instead
of re-assigning all N samples for each of up to N*(H-1) thresholds.

A score of -inf means "never ready": no threshold, not even t = -inf, lets a sample exit at such a head (the
hybrid criterion forbids exits before its rank patience is reached, paper A §3; rank-patience with the paper's
patiences t in {2, ..., 6}, §4.2, forbids exits before a streak of 2). For every t > -inf this is the rule
above unchanged; it only removes the point "t = -inf, everyone exits at head 1", which such criteria forbid.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from eebench.exits.criteria import CRITERIA
from eebench.io import SWEEP_CSV, ResultFileError, read_csv, write_csv
# A sweep covers the logit cache's splits (eebench.logit_cache: its format, reader, writer and checks).
from eebench.logit_cache import CACHE_SPLITS as SPLITS, load_cache
from eebench.tasks import TASKS, all_metrics, task_parameter_names

SWEEP_COLUMNS: tuple[str, ...] = ("threshold", "avg_exit_head", "flops_fraction")
CRITERION_PARAMS = "criterion_params"  # the sweep CSV's column of its criterion's parameters (JSON)
# The sweep CSV's column of a criterion's own operating threshold (the learned exit's 0.5), where it has one.
OPERATING_THRESHOLD = "operating_threshold"
def sweep(
    scores: np.ndarray,
    performance: Mapping[str, np.ndarray],
    head_flops: np.ndarray,
    backbone_flops: float,
    max_points: int | None = None,
    keep_thresholds: tuple[float, ...] = (),
) -> pd.DataFrame:
    """One row per distinct operating point, by ascending threshold: columns ``threshold, avg_exit_head,
    flops_fraction`` and one per ``performance`` key (the mean over samples of performance[exit head, n]).

    Row k is the operating point of every threshold t in (threshold[k-1], threshold[k]] (the first row's: every
    t <= threshold[0]), so the point a threshold t selects is the *first* row whose threshold is >= t (at
    t = threshold[k] exactly the events below it have happened). The first row's threshold is the smallest
    finite running-max value: with finite scores, the smallest score at head 1, where everyone exits; a sample
    whose scores are -inf ("never ready", module docstring) up to head h exits at head h+1 at the earliest, so
    there is no row at t = -inf. Each further row's threshold is the next distinct running-max value, and the
    last row's is +inf (everyone reaches the last head). ``avg_exit_head`` is 1-based (paper A's E). With
    ``max_points``, an evenly spaced subset of rows is kept, always including both extremes and the rows that
    the thresholds in ``keep_thresholds`` select (a criterion's own operating point, e.g. the learned exit's
    0.5).
    """
    scores = np.asarray(scores, dtype=np.float64)
    head_flops = np.asarray(head_flops, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[1] == 0:
        raise ValueError(f"scores must be [H, N] with N > 0, got shape {scores.shape}")
    if np.isnan(scores).any() or np.isposinf(scores).any():
        # NaN fails every threshold; a +inf score would exit even at the last row's threshold, +inf.
        raise ValueError("scores contain NaN or +inf; a criterion's scores must be finite (or -inf)")
    n_heads, n_samples = scores.shape
    if head_flops.shape != (n_heads,):
        raise ValueError(f"head_flops must have shape ({n_heads},), got {head_flops.shape}")
    if not backbone_flops > 0:
        raise ValueError(f"backbone_flops must be positive, got {backbone_flops}")
    performance = {name: np.asarray(values, dtype=np.float64) for name, values in performance.items()}
    for name, values in performance.items():
        if values.shape != scores.shape:
            raise ValueError(f"performance {name!r} has shape {values.shape}, expected {scores.shape}")
    if max_points is not None and max_points < 2:
        raise ValueError(f"max_points must be at least 2 (the two extremes), got {max_points}")

    # Events: sample n passes head h (h < H-1) once the threshold exceeds the running max M[h, n].
    events = np.maximum.accumulate(scores[:-1], axis=0).ravel()  # index h * N + n
    order = np.argsort(events, kind="stable")
    sorted_events = events[order]
    event_heads = order // n_samples
    # Last position of each run of tied values: thresholds between two distinct values give one operating point.
    # (With a single head there are no events and a single row, at +inf.)
    is_group_end = np.append(sorted_events[1:] != sorted_events[:-1], True) if events.size else np.empty(0, bool)
    group_ends = np.flatnonzero(is_group_end)
    thresholds = np.append(sorted_events[group_ends], np.inf)
    # -inf is "never ready": the events of a -inf running max happen at every threshold, so the row before them
    # (threshold -inf, everyone at head 1 whatever their score) is no operating point. (Sorted: only group 0 can
    # be -inf.)
    first = int(events.size > 0 and np.isneginf(sorted_events[0]))
    thresholds = thresholds[first:]

    def totals_after_groups(cumulative: np.ndarray) -> np.ndarray:
        """Row k holds the events of the first k groups (those with values < thresholds[k])."""
        return np.concatenate([[0], cumulative[group_ends]])[first:]

    # Head counts are integers and FLOPs a sum over heads of (passes of that head) * (step cost), so neither
    # accumulates rounding over hundreds of thousands of events.
    passes = totals_after_groups(np.arange(1, events.size + 1))
    step_flops = np.diff(head_flops)
    extra_flops = np.zeros(thresholds.size)
    for head in range(n_heads - 1):
        extra_flops += step_flops[head] * totals_after_groups(np.cumsum(event_heads == head))
    columns: dict[str, np.ndarray] = {
        "threshold": thresholds,
        "avg_exit_head": 1.0 + passes / n_samples,
        "flops_fraction": (head_flops[0] * n_samples + extra_flops) / n_samples / backbone_flops,
    }
    for name, values in performance.items():
        gains = np.diff(values, axis=0).ravel()[order]
        columns[name] = (values[0].sum() + totals_after_groups(np.cumsum(gains))) / n_samples
    frame = pd.DataFrame(columns)

    if max_points is not None and len(frame) > max_points:
        keep = np.rint(np.linspace(0, len(frame) - 1, max_points)).astype(np.int64)
        selected = np.searchsorted(thresholds, np.asarray(keep_thresholds, dtype=np.float64), side="left")
        keep = np.unique(np.concatenate([keep, np.minimum(selected, len(frame) - 1)]))
        frame = frame.iloc[keep].reset_index(drop=True)
    return frame


def exit_heads(scores: np.ndarray, threshold: float) -> np.ndarray:
    """Each sample's exit head [N] (0-based) under the sweep's rule: the first head whose score is >= threshold
    and not -inf ("never ready"), else the last head."""
    scores = np.asarray(scores)
    ready = (scores >= threshold) & ~np.isneginf(scores)
    ready[-1] = True
    return ready.argmax(axis=0)


def criterion_scores(
    cache: Mapping[str, Any], criterion: str, params: Mapping[str, Any] | None = None, source: Any = "cache",
) -> tuple[Any, dict[str, np.ndarray]]:
    """The task (configured by the setting's task parameters) and the scores [H, N] of ``criterion`` (with
    ``params``) on each split of a loaded cache. A criterion that learns is fitted once, on the validation
    split, and applied to both."""
    score = CRITERIA.get(criterion)
    params = dict(params or {})
    # A setting's task parameters (a softmax multi-label model's positive threshold) configure the cache's task,
    # which decides both the criterion's positive labels and the performance; the rest are the criterion's.
    task_params = {key: params.pop(key) for key in list(params) if key in task_parameter_names()}
    try:
        task = cache["task"].configured(**task_params)
    except TypeError as error:
        raise TypeError(f"{source}: {error}") from None
    if not getattr(score, "learns", False):
        return task, {split: score(cache[f"{split}_logits"], task, **params) for split in SPLITS}
    joint = score(np.concatenate([cache[f"{split}_logits"] for split in SPLITS], axis=1), task,
                  fit_on=(cache["val_logits"], cache["val_labels"]), **params)
    edges = np.cumsum([cache[f"{split}_logits"].shape[1] for split in SPLITS])[:-1]
    return task, dict(zip(SPLITS, np.split(joint, edges, axis=1)))


def _csv_value(value: Any) -> Any:
    """Meta values become CSV cells: scalars as they are, anything nested as JSON text."""
    return value if value is None or np.isscalar(value) else json.dumps(value, sort_keys=True)


def run_sweep(
    logits_path: str | Path, criterion: str, out_path: str | Path, max_points: int | None = None,
    params: Mapping[str, Any] | None = None, name: str | None = None, cache: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Sweep ``criterion`` (a registered criterion, called with ``params``) over a logit cache's val and test
    splits and write one CSV (atomically). ``cache``: the file already read (:func:`load_cache`, never
    modified here), so that one process sweeps several criteria over one read (eebench.metrics.run_metrics).

    Columns: every ``meta`` key (in the cache's order), ``criterion`` (``name``, the config's name of the
    criterion with its parameters; default the registered name), ``criterion_params`` (``params`` as JSON,
    task parameters such as a softmax multi-label ``positive_threshold`` included: B_EE scores the static
    baselines with the same task parameters), for a criterion with an operating threshold of its own (the
    learned exit's 0.5, paper A §4.2) ``operating_threshold`` (and its row is kept under ``max_points``),
    ``split``, then the :func:`sweep` columns (``threshold, avg_exit_head, flops_fraction`` and the task's
    metrics: ``accuracy, f1`` for classification, ``mse`` for regression).
    """
    cache = load_cache(logits_path) if cache is None else cache
    task, scores = criterion_scores(cache, criterion, params, source=logits_path)
    operating = getattr(CRITERIA.get(criterion), "operating_threshold", None)
    identity = {key: _csv_value(value) for key, value in cache["meta"].items()}
    clashes = [key for key in identity if key in (*SWEEP_COLUMNS, *all_metrics(), "criterion", CRITERION_PARAMS,
                                                  OPERATING_THRESHOLD, "split")]
    if clashes:
        raise ValueError(f"{logits_path}: meta key(s) {', '.join(clashes)} clash with sweep columns")
    frames = []
    for split in SPLITS:
        logits, labels = cache[f"{split}_logits"], cache[f"{split}_labels"]
        frame = sweep(
            scores[split],
            task.performance(logits, labels),
            cache["head_flops"],
            cache["backbone_flops"],
            max_points=max_points,
            keep_thresholds=() if operating is None else (operating,),
        )
        labels_of_rows = {**identity, "criterion": name or criterion,
                          CRITERION_PARAMS: json.dumps(dict(params or {}), sort_keys=True),
                          **({} if operating is None else {OPERATING_THRESHOLD: float(operating)}), "split": split}
        frames.append(frame.assign(**labels_of_rows)[[*labels_of_rows, *frame.columns]])
    result = pd.concat(frames, ignore_index=True)
    write_csv(out_path, result)
    return result


def read_sweep(path: str | Path) -> pd.DataFrame:
    """A sweep CSV (what :func:`run_sweep` writes), checked: ``split`` and the :data:`SWEEP_COLUMNS`, every
    metric of one task (a sweep holds its task's metrics, all of them), at least one row, splits among val and
    test, finite and positive FLOPs fractions, finite average exit heads and metrics, and thresholds that are
    numbers (the last is +inf). Raises ResultFileError naming ``path`` and the first problem: every command
    reading a sweep gets these checks."""
    frame = read_csv(path, SWEEP_CSV, columns=("split", *SWEEP_COLUMNS))

    def refuse(problem: str) -> ResultFileError:
        return ResultFileError(path, problem, SWEEP_CSV)

    if frame.empty:
        raise refuse("no rows, only a header line")
    present = [metric for metric in all_metrics() if metric in frame.columns]
    task_metrics = list(dict.fromkeys(TASKS.get(name).metrics for name in TASKS))
    if set(present) not in [set(metrics) for metrics in task_metrics]:
        fitting = [metrics for metrics in task_metrics if set(present) < set(metrics)]
        if not present:
            raise refuse(f"lacks a metric column (a sweep has its task's metrics: "
                   f"{' | '.join(', '.join(metrics) for metrics in task_metrics)})")
        if fitting:
            missing = [metric for metric in fitting[0] if metric not in present]
            raise refuse(f"lacks metric column(s) {', '.join(missing)} (it has {', '.join(present)}; a sweep has every "
                   f"metric of its task)")
        raise refuse(f"has metric columns of different tasks ({', '.join(present)})")
    unknown = sorted(set(frame["split"].astype(str)) - set(SPLITS))
    if unknown:
        raise refuse(f"its split column holds {unknown[0]!r} (a sweep's splits: {', '.join(SPLITS)})")
    for column in (*SWEEP_COLUMNS, *present):
        values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
        if column == "threshold":
            bad, wanted = np.isnan(values), "a number"
        elif column == "flops_fraction":
            bad, wanted = ~(np.isfinite(values) & (values > 0)), "a finite positive number"
        else:
            bad, wanted = ~np.isfinite(values), "a finite number"
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise refuse(f"its {column} in row {row + 1} is {_cell(frame[column].iloc[row])}, not {wanted}")
    return frame


def _cell(value: Any) -> str:
    """A CSV cell as read, for a message: NaN is how pandas reads an empty cell or "nan"."""
    if isinstance(value, (float, np.floating)):
        return "NaN (or empty)" if np.isnan(value) else f"{float(value):g}"
    return repr(value)
