"""Exit criteria: pure functions of the cached logits ``[H, N, C]`` returning per-head readiness scores ``[H, N]``.

A higher score means "more ready to exit"; a sample exits at the first head whose score is >= the threshold,
and at the last head otherwise (the sweep in :mod:`eebench.exits.sweep` applies that rule). Multi-label heads
are sigmoid heads: a label is predicted positive when its sigmoid is >= 0.5, i.e. when its logit is >= 0
(the comparison on the logit is exact; the same rule is used by :mod:`eebench.exits.performance`).
"""
from __future__ import annotations

import functools
import inspect
from typing import Annotated, Any, Callable, Literal

import numpy as np

from eebench.declare import Param
from eebench.registry import Registry
from eebench.tasks import Task, task_of

Criterion = Callable[..., np.ndarray]  # (logits [H, N, C], task, **params) -> scores [H, N]

# learned.py registers the learned exit here (with `criterion` below).
CRITERIA: Registry[Criterion] = Registry("criterion", providers=("eebench.exits.learned",))
CLASSIFICATION = ("single_label", "multi_label", "multi_label_softmax")


def criterion(name: str, tasks: tuple[str, ...] = CLASSIFICATION, learns: bool = False,
              operating_threshold: float | None = None) -> Callable[[Criterion], Criterion]:
    """Register a criterion for the tasks it is defined on (``applies_to``, checked at DAG build and on call).
    Its parameters, if any, are keyword-only and declared (eebench.declare: type, one-line description,
    default): they are the keys a config's named criterion may set (``parameters``), as a dataset's ``prepare``
    parameters are its config keys, and the schema of those settings is generated from them
    (:func:`criterion_setting_schema`).

    A criterion that ``learns`` (the learned exit) is fitted on labelled logits given as ``fit_on=(logits,
    labels)`` (the sweep passes the validation split) and scores ``logits`` with what it learnt; the others
    ignore ``fit_on`` (a learning criterion takes it as a positional-or-keyword parameter, not a config key). A
    criterion with an ``operating_threshold`` has one operating point of its own (paper A §4.2: the learned exit
    exits where its classifier's output exceeds 0.5); its sweep still holds every threshold, and B_EE reports
    that point beside the whole-sweep reading (eebench.metrics.run_bee)."""

    def register(score: Criterion) -> Criterion:
        @functools.wraps(score)
        def checked(logits: np.ndarray, task: str | Task, fit_on: tuple[np.ndarray, np.ndarray] | None = None,
                    **params: Any) -> np.ndarray:
            task = task_of(task)
            if task.name not in tasks:
                raise ValueError(f"exit criterion {name!r} is defined for {', '.join(tasks)} outputs, not "
                                 f"{task.name}; criteria for {task.name}: {', '.join(applicable(task.name))}")
            unknown = sorted(params.keys() - parameters(name).keys())
            if unknown:
                raise TypeError(f"exit criterion {name!r}: unknown parameter {unknown[0]!r}; accepted: "
                                f"{', '.join(parameters(name)) or 'none'}")
            if not learns:
                return _float64_scores(score, np.asarray(logits), task, params)
            if fit_on is None:
                raise ValueError(f"exit criterion {name!r} learns from labelled logits: pass fit_on=(logits, "
                                 f"labels)")
            return score(np.asarray(logits), task, fit_on=fit_on, **params)

        checked.applies_to, checked.learns, checked.operating_threshold = tasks, learns, operating_threshold
        return CRITERIA.register(name, checked)

    return register


def _float64_scores(score: Criterion, logits: np.ndarray, task: Task, params: dict[str, Any]) -> np.ndarray:
    """``score`` on float64 logits, a chunk of samples at a time (a criterion scores each sample on its own).
    Scores in float64 keep every distinct operating point: float32 merges near-equal scores (a saturated
    softmax confidence rounds to 1.0), and the sweep's points are the distinct scores. Chunks bound the float64
    copy whatever N is."""
    if logits.ndim != 3:
        raise ValueError(f"logits must be [H, N, C], got shape {logits.shape}")
    out = np.empty(logits.shape[:2], dtype=np.float64)
    for chunk in _sample_chunks(logits.shape):
        out[:, chunk] = score(logits[:, chunk].astype(np.float64), task, **params)
    return out


def parameters(name: str) -> dict[str, inspect.Parameter]:
    """The keyword-only parameters of a registered criterion (its config keys), with their defaults."""
    return dict(_parameters(name))


@functools.lru_cache(maxsize=None)
def _parameters(name: str) -> tuple[tuple[str, inspect.Parameter], ...]:
    # Read once per criterion: the check runs on every call, and real exiting calls per sample and head.
    from eebench.declare import declared_parameters

    return tuple(declared_parameters(CRITERIA.get(name).__wrapped__).items())


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
    if task.multilabel:
        probabilities = task.probabilities(logits)
        positive = task.predicted_positive(logits)
        smallest_positive = np.where(positive, probabilities, 1.0).min(axis=-1)
        return np.where(positive.any(axis=-1), smallest_positive, probabilities.max(axis=-1))
    # max softmax = 1 / sum(exp(x - max x)); the shifted exponentials are <= 1, so nothing overflows.
    shifted = logits - logits.max(axis=-1, keepdims=True)
    np.exp(shifted, out=shifted)
    return 1.0 / shifted.sum(axis=-1)


@criterion("entropy")
def entropy(logits: np.ndarray, task: Task) -> np.ndarray:
    """1 - normalised entropy, so exiting at score >= t means normalised entropy <= 1 - t. Single-label: the
    softmax entropy divided by log C. Multi-label: the mean over labels of each sigmoid's binary entropy
    divided by log 2 (sigmoid heads; a softmax multi-label head's entropy is the softmax's, paper A §4.2). Both
    normalised entropies lie in [0, 1]."""
    from scipy.special import log_expit, log_softmax  # here: scipy costs a light job's import time otherwise

    if task.activation == "sigmoid":
        log_p, log_not_p = log_expit(logits), log_expit(-logits)
        bits = -(np.exp(log_p) * log_p + np.exp(log_not_p) * log_not_p) / np.log(2.0)
        normalised = bits.mean(axis=-1)
    else:
        n_classes = logits.shape[-1]
        if n_classes == 1:  # a single class leaves no uncertainty (and log C would be 0)
            return np.ones(logits.shape[:-1])
        log_p = log_softmax(logits, axis=-1)
        normalised = -(np.exp(log_p) * log_p).sum(axis=-1) / np.log(n_classes)
    return 1.0 - np.clip(normalised, 0.0, 1.0)


@criterion("patience")
def patience(logits: np.ndarray, task: Task) -> np.ndarray:
    """Patience-based exiting (PBEE, Zhou et al., 2020; paper B §4.3 and Table 3): the score at head h is the
    number of consecutive heads before h whose prediction equals h's (0 at the first head, and wherever the
    prediction just changed), so "score >= k" is PBEE's "the prediction stayed the same for k heads" and the
    sweep's thresholds 0, 1, ..., H-1 are the patiences. Predictions: the argmax (single-label) or the set of
    positive labels, logit >= 0 (multi-label: agreement is an identical set). Vectorised: the streak at head
    h is h minus the index of the last head <= h where the prediction changed."""
    predictions = task.predicted_positive(logits) if task.multilabel else logits.argmax(axis=-1)[..., None]
    agrees = np.zeros(logits.shape[:2], dtype=bool)  # [H, N]
    agrees[1:] = (predictions[1:] == predictions[:-1]).all(axis=-1)
    return _streak(agrees)


def _streak(agrees: np.ndarray) -> np.ndarray:
    """Per-head streak lengths [H, N] (float64) from ``agrees`` [H, N], "head h agrees with head h-1" (row 0
    is ignored: the first head starts a streak). The streak at head h is h minus the index of the last head
    <= h where the agreement broke (head 0 when none did), so it is vectorised over heads and samples."""
    breaks = ~np.asarray(agrees, dtype=bool)
    heads = np.arange(breaks.shape[0])[:, None]
    last_break = np.maximum.accumulate(np.where(breaks, heads, 0), axis=0)
    return (heads - last_break).astype(np.float64)


@criterion("regression_patience", tasks=("regression",))
def regression_patience(logits: np.ndarray, task: Task) -> np.ndarray:
    """PABEE's criterion for regression (Zhou et al., 2020, the method paper B §4.3 evaluates; paper B names no
    criterion for its STS-B runs, Table 2/14, and its released code has none, so this is our reading, README
    "Readings"): a head's prediction counts as settled when it differs from the previous head's by less than
    a tolerance tau, with patience 1. The score at head h is -|y_h - y_(h-1)|, so "score >= t" is
    "|y_h - y_(h-1)| <= -t" and sweeping the threshold sweeps tau. The first head has no predecessor: its
    score is -inf, "never ready" (eebench.exits.sweep), so no sample exits at head 1, as in PABEE, whose
    counter must reach the patience (1) by agreeing with a previous head; the sweep's first point (tau = the
    largest change from head 1 to head 2) has every sample stop at head 2."""
    predictions = logits[..., 0].astype(np.float64)
    score = np.full(predictions.shape, -np.inf)
    score[1:] = -np.abs(np.diff(predictions, axis=0))
    return score


# Rank patience and hybrid (paper A §3 "Early-exiting strategies", §4.2) -------------------------------------

RANK_AGREEMENTS: tuple[str, ...] = ("ndcg", "kendall")
HYBRID_BASES: tuple[str, ...] = ("confidence", "entropy")
# Elements per sample chunk of an [H, n, C] block: bounds the temporaries (nDCG's sorts, Kendall's pairwise
# signs) to tens of MB whatever N is.
_CHUNK_ELEMENTS = 1 << 22


def _sample_chunks(shape: tuple[int, ...]) -> list[slice]:
    n_heads, n_samples, n_classes = shape
    step = max(1, _CHUNK_ELEMENTS // max(1, n_heads * n_classes))
    return [slice(start, start + step) for start in range(0, n_samples, step)]


def _ndcg(relevance: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """sklearn's ``ndcg_score`` per row: ``relevance`` [..., C] (non-negative) judged by the ranking of ``scores``
    [..., C], -> [...]. Ties in ``scores`` are handled as sklearn does by default: a tied group's gain is the mean
    relevance of the group times its summed discounts. A row with no relevance (ideal DCG 0) scores 0."""
    relevance = np.asarray(relevance, dtype=np.float64)
    n_classes = scores.shape[-1]
    discount = 1 / (np.log(np.arange(n_classes) + 2) / np.log(2))  # sklearn's expression, for equal rounding
    order = np.argsort(-scores, axis=-1, kind="stable")
    ranked_scores = np.take_along_axis(scores, order, axis=-1)
    gains = np.take_along_axis(relevance, order, axis=-1)
    tied = ranked_scores[..., 1:] == ranked_scores[..., :-1]  # position k+1 ties with position k
    if tied.any():
        positions = np.arange(n_classes)
        starts_group = np.concatenate([np.ones_like(tied[..., :1]), ~tied], axis=-1)
        ends_group = np.concatenate([~tied, np.ones_like(tied[..., :1])], axis=-1)
        start = np.maximum.accumulate(np.where(starts_group, positions, 0), axis=-1)
        end = np.minimum.accumulate(np.where(ends_group, positions, n_classes)[..., ::-1], axis=-1)[..., ::-1]
        cumulative = np.concatenate([np.zeros_like(gains[..., :1]), np.cumsum(gains, axis=-1)], axis=-1)
        group_sum = (np.take_along_axis(cumulative, end + 1, axis=-1)
                     - np.take_along_axis(cumulative, start, axis=-1))
        # Untied positions keep their own gain exactly (a cumsum difference would round it).
        gains = np.where(end > start, group_sum / (end - start + 1), gains)
    dcg = gains @ discount
    ideal = np.sort(relevance, axis=-1)[..., ::-1] @ discount
    return np.divide(dcg, ideal, out=np.zeros_like(dcg), where=ideal > 0)


def _consecutive_ndcg(logits: np.ndarray, task: Task) -> np.ndarray:
    """[H-1, N]: row h-1 is the nDCG of head h's ranking (its logits) against head h-1's class probabilities
    as relevances (softmax for single-label, sigmoid for multi-label)."""
    from scipy.special import expit, log_softmax

    n_heads, n_samples, _ = logits.shape
    out = np.empty((max(n_heads - 1, 0), n_samples))
    for chunk in _sample_chunks(logits.shape):
        block = logits[:, chunk]
        wide = block[:-1].astype(np.float64)
        if task.activation == "sigmoid":
            relevance = expit(wide)
        else:
            relevance = np.exp(log_softmax(wide, axis=-1))
        out[:, chunk] = _ndcg(relevance, block[1:])
    return out


def _consecutive_kendall(logits: np.ndarray) -> np.ndarray:
    """[H-1, N]: row h-1 is Kendall's tau-b between heads h-1 and h's logits over the C classes, equal to
    ``scipy.stats.kendalltau(logits[h-1, n], logits[h, n])`` (its default variant, ties included): NaN where a
    head's ranking is constant (tau undefined). Counted over the C(C-1)/2 class pairs, one class at a time
    (pairs (i, j > i)) per chunk of samples, vectorised over heads and samples."""
    n_heads, n_samples, n_classes = logits.shape
    concordance = np.zeros((max(n_heads - 1, 0), n_samples), dtype=np.int64)  # concordant - discordant pairs
    untied = np.zeros((n_heads, n_samples), dtype=np.int64)  # pairs not tied within each head
    for chunk in _sample_chunks(logits.shape):
        block = logits[:, chunk]
        for i in range(n_classes - 1):
            later, this = block[..., i + 1:], block[..., i:i + 1]
            # sign(x_j - x_i) by comparisons (exact; no inf - inf)
            sign = np.greater(later, this).view(np.int8) - np.less(later, this).view(np.int8)
            concordance[:, chunk] += (sign[1:] * sign[:-1]).sum(axis=-1, dtype=np.int32)
            untied[:, chunk] += np.count_nonzero(sign, axis=-1)
    # scipy's expression, in this order: con_minus_dis / sqrt(tot - xtie) / sqrt(tot - ytie), x the earlier head.
    # A constant head has no untied pair, so its concordance is 0 too: 0 / 0 gives scipy's NaN.
    with np.errstate(divide="ignore", invalid="ignore"):
        tau = concordance / np.sqrt(untied[:-1]) / np.sqrt(untied[1:])
    return np.clip(tau, -1.0, 1.0)


# The tolerance when a setting gives none: a middle value of paper A's grid for each agreement measure (§4.2:
# nDCG loss below {0.001, 0.01, 0.05, 0.1, 0.15}; Kendall's tau above {0.7, 0.8, 0.9, 0.95}).
DEFAULT_TOLERANCE = {"ndcg": 0.01, "kendall": 0.9}


def _check_rank_parameters(name: str, agreement: Any, tolerance: Any) -> float:
    """The tolerance to use (the agreement's default for None), or ValueError naming the bad parameter."""
    if agreement not in RANK_AGREEMENTS:
        raise ValueError(f"exit criterion {name!r}: agreement must be one of "
                         f"{', '.join(map(repr, RANK_AGREEMENTS))}, got {agreement!r}")
    if tolerance is None:
        return DEFAULT_TOLERANCE[agreement]
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float, np.integer, np.floating)):
        raise ValueError(f"exit criterion {name!r}: tolerance must be a number, got {tolerance!r}")
    if agreement == "ndcg" and not 0 < tolerance <= 1:
        raise ValueError(f"exit criterion {name!r}: tolerance (the largest nDCG loss 1 - nDCG that still agrees, "
                         f"strictly) must be in (0, 1] for agreement 'ndcg', got {tolerance!r}")
    if agreement == "kendall" and not -1 <= tolerance <= 1:
        raise ValueError(f"exit criterion {name!r}: tolerance (the smallest Kendall's tau that agrees) must be in "
                         f"[-1, 1] for agreement 'kendall', got {tolerance!r}")
    return float(tolerance)


def _rank_agreement(logits: np.ndarray, task: Task, agreement: str, tolerance: float) -> np.ndarray:
    """[H, N] bool: head h's class ranking agrees with head h-1's (row 0 False)."""
    agrees = np.zeros(logits.shape[:2], dtype=bool)
    if agreement == "ndcg":
        agrees[1:] = 1.0 - _consecutive_ndcg(logits, task) < tolerance
    else:
        with np.errstate(invalid="ignore"):  # an undefined tau (NaN) does not agree
            agrees[1:] = _consecutive_kendall(logits) >= tolerance
    return agrees


# Paper A §4.2: "patience thresholds (t in {2, 3, 4, 5, 6})".
PAPER_PATIENCES: tuple[int, ...] = (2, 3, 4, 5, 6)

# The rank agreement's parameters, shared by rank_patience and hybrid.
Agreement = Annotated[Literal[RANK_AGREEMENTS], Param(
    "How consecutive heads' class rankings are compared (paper A §4.2): ndcg = the nDCG loss 1 - nDCG of head h's "
    "ranking against head h-1's class probabilities below the tolerance; kendall = Kendall's tau-b between their "
    "logits at least the tolerance.")]
Tolerance = Annotated[float | None, Param(
    "The agreement's threshold: for ndcg the largest nDCG loss that still agrees, in (0, 1] (paper A: {0.001, 0.01, "
    "0.05, 0.1, 0.15}); for kendall the smallest tau that agrees, in [-1, 1] (paper A: {0.7, 0.8, 0.9, 0.95}); "
    "null = a middle value of paper A's grid (ndcg 0.01, kendall 0.9).", ge=-1, le=1)]


def _check_patiences(patiences: Any) -> np.ndarray | None:
    """The patiences as a sorted int array (None: every patience), or ValueError."""
    if patiences is None:
        return None
    values = list(patiences) if isinstance(patiences, (list, tuple)) else None
    if not values or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0 for v in values):
        raise ValueError(f"exit criterion 'rank_patience': patiences must be a non-empty list of integers >= 0 "
                         f"(or null: every patience), got {patiences!r}")
    return np.unique(np.asarray(values, dtype=np.int64))


@criterion("rank_patience")
def rank_patience(logits: np.ndarray, task: Task, *, agreement: Agreement = "ndcg", tolerance: Tolerance = None,
                  patiences: Annotated[list[Annotated[int, Param("A patience t.", ge=0)]] | None, Param(
                      "The patiences t, the criterion's operating points: a sample exits at the first head where "
                      "the ranking has agreed for t consecutive heads (paper A §4.2: t in {2, 3, 4, 5, 6}, the "
                      "default). A model with H heads never exits early for t >= H-1 (that point is every sample "
                      "at the last head); null = every patience 0, ..., H-1.", min_length=1,
                      json_schema_extra={"uniqueItems": True})] = PAPER_PATIENCES) -> np.ndarray:
    """Rank-patience exiting (paper A §3, "the model is permitted to exit if the rank of class probabilities
    remains adequately consistent across consecutive layers", and §4.2, Fig. 4): consecutive heads' class
    rankings agree by nDCG or Kendall's tau.

    The streak at head h is the number of consecutive heads before h whose class ranking agrees with the next
    one's, as ``patience`` counts identical predictions: 0 at the first head and wherever the agreement breaks.
    "streak >= t" is "the ranking stayed consistent for t heads": a sample exits at the first head whose streak
    reaches the patience t.

    The patiences t are ``patiences``, paper A's {2, ..., 6} by default (§4.2): the score is the largest t in
    ``patiences`` that the streak reaches, and -inf ("never ready", eebench.exits.sweep) where it reaches none,
    so the sweep's operating points are exactly one per patience (thresholds t), plus the sweep's +inf row,
    every sample at the last head. With H heads a streak is at most H-1, so a patience t >= H-1 never exits
    early: its point is the +inf row's (the default CNN's 4 heads: t = 2 is the only early-exit point, t = 3
    exits at the last head anyway, t = 4, 5, 6 are never reached). ``patiences=None`` is the raw streak,
    every patience 0, ..., H-1 (0: everyone exits at head 1).

    Head h agrees with head h-1 when (our readings of paper A, which gives no formula; ``tolerance`` None is
    ``DEFAULT_TOLERANCE[agreement]``, a middle value of the paper's grid):

    - ``agreement="ndcg"``: 1 - nDCG < ``tolerance``. Paper A's "nDCG scores values below {0.001, ..., 0.15}"
      is read as the nDCG *loss* 1 - nDCG below the tolerance (nDCG itself near 0 would be no agreement). nDCG is
      sklearn's ``ndcg_score(y_true=[head h-1's class probabilities], y_score=[head h's logits])``: the previous
      head's probabilities (softmax for single-label, sigmoid for multi-label) are the relevances and the current
      head's ranking is judged. Ties in the current head's logits are averaged as sklearn does by default.
    - ``agreement="kendall"``: Kendall's tau-b (``scipy.stats.kendalltau``'s default) between the two heads'
      logits over the C classes >= ``tolerance``, here the minimum correlation (paper A: {0.7, 0.8, 0.9, 0.95}).
      A constant ranking (tau undefined) does not
      agree. Logits rank classes as their probabilities do, without the ties of saturated probabilities.
    """
    tolerance = _check_rank_parameters("rank_patience", agreement, tolerance)
    allowed = _check_patiences(patiences)
    streak = _streak(_rank_agreement(logits, task, agreement, tolerance))
    if allowed is None:
        return streak
    reached = np.searchsorted(allowed, streak, side="right") - 1  # index of the largest patience <= streak
    return np.where(reached >= 0, allowed[np.maximum(reached, 0)].astype(np.float64), -np.inf)


@criterion("hybrid")
def hybrid(logits: np.ndarray, task: Task, *,
           base: Annotated[Literal[HYBRID_BASES], Param("The registered criterion whose score is thresholded.")]
           = "confidence", agreement: Agreement = "ndcg", tolerance: Tolerance = None,
           patience: Annotated[int, Param("Heads the ranking must have agreed for (its rank_patience streak) "
                                          "before a sample may exit.", ge=1)] = 2) -> np.ndarray:
    """Hybrid exiting (paper A §3, after PCEE-BERT): the base criterion (confidence or entropy) once the ranking
    has agreed for patience heads.

    The base criterion's score (the registered ``confidence``
    or ``entropy``) where the ``rank_patience`` streak (same ``agreement`` and ``tolerance``) at that head is
    >= ``patience``, and -inf ("never ready", eebench.exits.sweep: no threshold lets a sample exit there, so
    the sweep has no point where a sample exits before its streak reaches ``patience``; in particular none at
    head 1) elsewhere. "score >= t" is "confident (or low-entropy) enough AND the ranking
    stayed consistent for ``patience`` heads": a head that meets the threshold still waits for a stable
    ranking ("allowing the model to process additional layers before deciding to exit, even if the confidence
    or entropy threshold has been met"), and the sweep runs over the base's thresholds. (Our reading of paper A:
    PCEE-BERT itself counts consecutive confident layers; paper A makes the patience factor the rank's.)"""
    if base not in HYBRID_BASES:
        raise ValueError(f"exit criterion 'hybrid': base must be one of {', '.join(map(repr, HYBRID_BASES))}, "
                         f"got {base!r}")
    if isinstance(patience, bool) or not isinstance(patience, (int, np.integer)) or patience < 1:
        raise ValueError(f"exit criterion 'hybrid': patience must be an integer >= 1, got {patience!r}")
    tolerance = _check_rank_parameters("hybrid", agreement, tolerance)
    streak = _streak(_rank_agreement(logits, task, agreement, tolerance))
    return np.where(streak >= patience, CRITERIA.get(base)(logits, task), -np.inf)



def criterion_setting_schema() -> dict[str, Any]:
    """The config schema's ``$defs/criterion_setting`` (an entry under ``criteria:``), generated from the criteria's
    declarations (eebench.declare): ``criterion`` names a registered criterion, and the keys beside it are that
    criterion's keyword-only parameters, with their defaults, and the evaluation parameters of the tasks it
    applies to (e.g. a softmax multi-label task's ``positive_threshold``), one ``if``/``then`` per criterion
    (another key is unknown). The schema check fills the defaults in, so a sweep's ``criterion_params`` column
    lists every parameter its criterion was called with."""
    return {
        "type": "object",
        "required": ["criterion"],
        "description": "A registered exit criterion with parameters (its keyword-only parameters in "
                       "eebench.exits.criteria, and the evaluation parameters of the tasks it applies to; checked by "
                       "calling it once when the config is loaded), e.g. {criterion: rank_patience, agreement: "
                       "kendall, tolerance: 0.9}. Its name is a path segment and the `criterion` column of its CSVs.",
        "properties": {"criterion": {"$ref": "#/$defs/criterion_name"}},
        "allOf": [{"if": {"properties": {"criterion": {"const": name}}, "required": ["criterion"]},
                   "then": CRITERIA.parameters_schema(
                       name, extra={"criterion": {"const": name}, **_task_parameters_schema(name)})}
                  for name in CRITERIA.names()],
    }


def _task_parameters_schema(name: str) -> dict[str, dict[str, Any]]:
    """The evaluation parameters of the tasks criterion ``name`` applies to, as schema properties. The tasks check
    their values (when the config is loaded, by calling the criterion). No schema default: the task's default
    applies where its task is evaluated, and a single-label task takes no positive threshold."""
    from eebench.tasks import TASKS

    properties: dict[str, dict[str, Any]] = {}
    for task in CRITERIA.get(name).applies_to:
        for key, default in TASKS.get(task).parameters.items():
            properties.setdefault(key, {"description": f"An evaluation parameter of the {task} task (eebench.tasks); "
                                                      f"{default!r} when omitted."})
    return properties
