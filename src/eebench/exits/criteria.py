"""Exit criteria: pure functions of the cached logits ``[H, N, C]`` returning per-head readiness scores ``[H, N]``.

A higher score means "more ready to exit"; a sample exits at the first head whose score is >= the threshold,
and at the last head otherwise (the sweep in :mod:`eebench.exits.sweep` applies that rule). Multi-label heads
are sigmoid heads: a label is predicted positive when its sigmoid is >= 0.5, i.e. when its logit is >= 0
(the comparison on the logit is exact; the same rule is used by :mod:`eebench.exits.performance`).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from scipy.special import expit, log_expit, log_softmax

from eebench.registry import Registry
from eebench.tasks import Task, task_of

Criterion = Callable[[np.ndarray, Task], np.ndarray]

CRITERIA: Registry[Criterion] = Registry("criterion")
CLASSIFICATION = ("single_label", "multi_label")


def criterion(name: str, tasks: tuple[str, ...] = CLASSIFICATION) -> Callable[[Criterion], Criterion]:
    """Register a criterion for the tasks it is defined on (``applies_to``, checked at DAG build and on call)."""

    def register(score: Callable[[np.ndarray, Task], np.ndarray]) -> Criterion:
        def checked(logits: np.ndarray, task: str | Task) -> np.ndarray:
            task = task_of(task)
            if task.name not in tasks:
                raise ValueError(f"exit criterion {name!r} is defined for {', '.join(tasks)} outputs, not "
                                 f"{task.name}; criteria for {task.name}: {', '.join(applicable(task.name))}")
            return score(np.asarray(logits), task)

        checked.__doc__, checked.__name__, checked.applies_to = score.__doc__, score.__name__, tasks
        return CRITERIA.register(name, checked)

    return register


def applicable(task: str) -> list[str]:
    """The criteria defined for ``task``."""
    return [name for name in CRITERIA if task in CRITERIA.get(name).applies_to]


@criterion("confidence")
def confidence(logits: np.ndarray, task: Task) -> np.ndarray:
    """Single-label: the largest softmax probability. Multi-label (paper A: the threshold applies "to all
    positively classified labels"): the smallest sigmoid among the positively classified labels, so the score
    is >= t exactly when every positive label is. With no positive label the score is the largest sigmoid
    (< 0.5): the head has found nothing yet, so an empty prediction passes no threshold of 0.5 or more, and
    the score stays continuous and monotone in the logits. (Taken literally, "all positive labels" would be
    vacuously true there and every such sample would exit at the first head with an empty, always wrong,
    prediction.)"""
    if task.name == "multi_label":
        probabilities = expit(logits)
        positive = logits >= 0
        smallest_positive = np.where(positive, probabilities, 1.0).min(axis=-1)
        score = np.where(positive.any(axis=-1), smallest_positive, probabilities.max(axis=-1))
        return score.astype(logits.dtype, copy=False)
    # max softmax = 1 / sum(exp(x - max x)); the shifted exponentials are <= 1, so nothing overflows.
    shifted = logits - logits.max(axis=-1, keepdims=True)
    np.exp(shifted, out=shifted)
    return 1.0 / shifted.sum(axis=-1)


@criterion("entropy")
def entropy(logits: np.ndarray, task: Task) -> np.ndarray:
    """1 - normalised entropy, so exiting at score >= t means normalised entropy <= 1 - t. Single-label: the
    softmax entropy divided by log C. Multi-label: the mean over labels of each sigmoid's binary entropy
    divided by log 2. Both normalised entropies lie in [0, 1]."""
    if task.name == "multi_label":
        log_p, log_not_p = log_expit(logits), log_expit(-logits)
        bits = -(np.exp(log_p) * log_p + np.exp(log_not_p) * log_not_p) / np.log(2.0)
        normalised = bits.mean(axis=-1)
    else:
        n_classes = logits.shape[-1]
        if n_classes == 1:  # a single class leaves no uncertainty (and log C would be 0)
            return np.ones(logits.shape[:-1], dtype=logits.dtype)
        log_p = log_softmax(logits, axis=-1)
        normalised = -(np.exp(log_p) * log_p).sum(axis=-1) / np.log(n_classes)
    return (1.0 - np.clip(normalised, 0.0, 1.0)).astype(logits.dtype, copy=False)


@criterion("patience")
def patience(logits: np.ndarray, task: Task) -> np.ndarray:
    """Patience-based exiting (PBEE, Zhou et al., 2020; paper B §4.3 and Table 3): the score at head h is the
    number of consecutive heads before h whose prediction equals h's (0 at the first head, and wherever the
    prediction just changed), so "score >= k" is PBEE's "the prediction stayed the same for k heads" and the
    sweep's thresholds 0, 1, ..., H-1 are the patiences. Predictions: the argmax (single-label) or the set of
    positive labels, logit >= 0 (multi-label: agreement is an identical set). Vectorised: the streak at head
    h is h minus the index of the last head <= h where the prediction changed."""
    predictions = logits >= 0 if task.name == "multi_label" else logits.argmax(axis=-1)[..., None]
    changed = np.ones(logits.shape[:2], dtype=bool)  # [H, N]; head 0 starts a streak
    changed[1:] = (predictions[1:] != predictions[:-1]).any(axis=-1)
    heads = np.arange(logits.shape[0])[:, None]
    last_change = np.maximum.accumulate(np.where(changed, heads, 0), axis=0)
    return (heads - last_change).astype(np.float64)


@criterion("regression_patience", tasks=("regression",))
def regression_patience(logits: np.ndarray, task: Task) -> np.ndarray:
    """PABEE's criterion for regression (Zhou et al., 2020, the method paper B §4.3 evaluates; paper B names no
    criterion for its STS-B runs, Table 2/14, and its released code has none, so this is our reading, README
    "Readings"): a head's prediction counts as settled when it differs from the previous head's by less than
    a tolerance tau, with patience 1. The score at head h is -|y_h - y_(h-1)|, so "score >= t" is
    "|y_h - y_(h-1)| <= -t" and sweeping the threshold sweeps tau. The first head has no predecessor: its
    score is -inf, reached only at the sweep's first point, where every sample stops at head 1."""
    predictions = logits[..., 0].astype(np.float64)
    score = np.full(predictions.shape, -np.inf)
    score[1:] = -np.abs(np.diff(predictions, axis=0))
    return score
