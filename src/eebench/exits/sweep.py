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
from eebench.io import LOGIT_CACHE, ResultFileError, read_npz, write_csv
from eebench.tasks import TASKS, all_metrics, task_parameter_names

SWEEP_COLUMNS: tuple[str, ...] = ("threshold", "avg_exit_head", "flops_fraction")
SPLITS: tuple[str, ...] = ("val", "test")
CRITERION_PARAMS = "criterion_params"  # the sweep CSV's column of its criterion's parameters (JSON)
# The sweep CSV's column of a criterion's own operating threshold (the learned exit's 0.5), where it has one.
OPERATING_THRESHOLD = "operating_threshold"
CACHE_KEYS: tuple[str, ...] = (
    "val_logits", "test_logits", "val_labels", "test_labels", "head_flops", "backbone_flops", "task", "meta",
)


def load_cache(path: str | Path) -> dict[str, Any]:
    """Read a logit cache (.npz) into plain numpy arrays; ``meta`` becomes a dict, ``task`` the registered
    :class:`~eebench.tasks.Task` and ``backbone_flops`` a float. Extra keys are passed through. Raises
    ValueError naming the file on a missing key, an unknown task or inconsistent shapes, and ResultFileError
    (a ValueError) on a truncated or foreign file."""
    cache: dict[str, Any] = dict(read_npz(path, LOGIT_CACHE, keys=CACHE_KEYS))
    try:
        cache["meta"] = json.loads(str(cache["meta"]))
    except json.JSONDecodeError as error:
        raise ResultFileError(path, f"its 'meta' is not JSON ({error})", LOGIT_CACHE) from None
    if str(cache["task"]) not in TASKS:
        raise ResultFileError(path, f"its task {str(cache['task'])!r} is not registered (registered: "
                                    f"{', '.join(TASKS.names())})", LOGIT_CACHE)
    cache["task"] = TASKS.get(str(cache["task"]))
    cache["backbone_flops"] = float(cache["backbone_flops"])
    cache["head_flops"] = np.asarray(cache["head_flops"], dtype=np.float64)
    for split in SPLITS:
        logits, labels = cache[f"{split}_logits"], cache[f"{split}_labels"]
        expected_labels = cache["task"].label_shape(logits.shape) if logits.ndim == 3 else None
        if logits.ndim != 3 or labels.shape != expected_labels or cache["head_flops"].shape != logits.shape[:1]:
            raise ValueError(
                f"{path}: inconsistent {split} shapes: logits {logits.shape}, labels {labels.shape}, "
                f"head_flops {cache['head_flops'].shape}"
            )
    return cache


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
