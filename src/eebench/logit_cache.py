"""The logit cache: one run's outputs of every head on the validation and test splits, with the labels and what
exiting at each head costs, what every sweep, budget table and B_EE is computed from (README, "The logit cache":
every key, shape, dtype and meaning).

Training writes it (eebench.steps); :func:`write_cache` writes one from any network's outputs (numpy arrays or
torch tensors) and :func:`import_logits` from a plain .npz or .pt of per-head outputs (``eebench import-logits``);
every reader loads it with :func:`load_cache`. Writers and readers refuse the same inconsistencies
(:func:`check_cache`), in one line naming the file (eebench.io.ResultFileError), and a writer writes nothing then.
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from eebench.io import (
    LOGIT_CACHE, PLAIN_LOGITS, ResultFileError, file_kind, read_checkpoint, read_npz, read_npz_members, save_npz,
)
from eebench.tasks import TASKS

CACHE_SPLITS: tuple[str, ...] = ("val", "test")
CACHE_KEYS: tuple[str, ...] = (
    "val_logits", "test_logits", "val_labels", "test_labels", "head_flops", "backbone_flops", "task", "meta",
)
# Keys a cache may also hold: each head's 0-based block (a static model's says where it stops, and B_EE orders
# the static heads by it), and the fingerprint of the test inputs (the exit_heads figure compares runs by it).
OPTIONAL_CACHE_KEYS: tuple[str, ...] = ("head_blocks", "test_inputs")


def load_cache(path: str | os.PathLike) -> dict[str, Any]:
    """Read a logit cache (.npz) into plain numpy arrays; ``meta`` becomes a dict, ``task`` the registered
    :class:`~eebench.tasks.Task` and ``backbone_flops`` a float. Extra keys are passed through. Raises
    ResultFileError (a ValueError) naming the file on a truncated or foreign file, a missing key, an unknown
    task, and arrays that do not fit together (:func:`check_cache`): every command reading a cache gets these
    checks."""
    cache: dict[str, Any] = dict(read_npz(path, LOGIT_CACHE, keys=CACHE_KEYS))
    try:
        cache["meta"] = json.loads(str(cache["meta"]))
    except json.JSONDecodeError as error:
        raise ResultFileError(path, f"its 'meta' is not JSON ({error})", LOGIT_CACHE) from None
    if str(cache["task"]) not in TASKS:
        raise ResultFileError(path, f"its task {str(cache['task'])!r} is not registered (registered: "
                                    f"{', '.join(TASKS.names())})", LOGIT_CACHE)
    cache["task"] = TASKS.get(str(cache["task"]))
    try:
        cache["backbone_flops"] = float(cache["backbone_flops"])
        cache["head_flops"] = np.asarray(cache["head_flops"], dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ResultFileError(path, f"its FLOPs are not numbers ({error})", LOGIT_CACHE) from None
    check_cache(cache, path)
    return cache


def check_cache(cache: Mapping[str, Any], path: str | os.PathLike) -> None:
    """Refuse a logit cache whose arrays are well-formed but inconsistent, with ResultFileError naming ``path``
    and the first problem: shapes that disagree (heads, samples or classes of logits, labels and head_flops, and
    head_blocks where there are any), val and test logits with different class counts, FLOPs that are not finite
    and positive or head FLOPs not strictly increasing (a deeper head costs more), head blocks that are not
    increasing block indices, NaN or inf logits, and labels the task cannot have (class indices outside [0, C),
    multi-hot labels other than 0 and 1, non-finite regression targets)."""
    task, head_flops = cache["task"], cache["head_flops"]

    def refuse(problem: str) -> ResultFileError:
        return ResultFileError(path, problem, LOGIT_CACHE)

    for split in CACHE_SPLITS:
        logits, labels = cache[f"{split}_logits"], cache[f"{split}_labels"]
        try:
            expected_labels = task.label_shape(logits.shape) if logits.ndim == 3 else None
        except ValueError as error:  # a regression cache with several outputs
            raise refuse(f"its {split} logits do not fit its task {task.name!r}: {error}") from None
        if logits.ndim != 3 or labels.shape != expected_labels or head_flops.shape != logits.shape[:1]:
            raise refuse(f"inconsistent {split} shapes: logits {logits.shape}, labels {labels.shape}, "
                         f"head_flops {head_flops.shape}; a cache holds logits [heads, samples, classes], labels "
                         f"{_label_form(task)}, head_flops [heads]")
    classes = {split: cache[f"{split}_logits"].shape[2] for split in CACHE_SPLITS}
    if len(set(classes.values())) > 1:
        raise refuse(f"its val logits have {classes['val']} classes, its test logits {classes['test']}")
    flops = np.append(head_flops, cache["backbone_flops"])
    if not (np.isfinite(flops).all() and (flops > 0).all()):
        raise refuse(f"its FLOPs must be finite and positive: head_flops {head_flops.tolist()}, backbone_flops "
                     f"{cache['backbone_flops']}")
    if (np.diff(head_flops) <= 0).any():
        raise refuse(f"its head_flops {head_flops.tolist()} are not strictly increasing (a deeper head costs more)")
    if "head_blocks" in cache:
        blocks = np.asarray(cache["head_blocks"])
        if (blocks.shape != head_flops.shape or not np.issubdtype(blocks.dtype, np.integer) or (blocks < 0).any()
                or (np.diff(blocks) <= 0).any()):
            raise refuse(f"its head_blocks {blocks.tolist()} are not {head_flops.shape[0]} increasing block "
                         f"indices (0-based), one per head")
    for split in CACHE_SPLITS:
        logits, labels = cache[f"{split}_logits"], cache[f"{split}_labels"]
        if not np.issubdtype(logits.dtype, np.number) or np.iscomplexobj(logits):
            raise refuse(f"its {split}_logits are {logits.dtype}, not real numbers")
        # One pass without a mask the size of the logits; the mask only to say where (or an overflowing sum).
        if not np.isfinite(logits.sum(dtype=np.float64)):
            bad = ~np.isfinite(logits)
            if bad.any():
                head, sample, _ = np.argwhere(bad)[0]
                raise refuse(f"its {split}_logits hold {_non_finite(logits[bad])} (first at head {head + 1}, "
                             f"sample {sample})")
        problem = _label_problem(labels, task, logits.shape[2])
        if problem:
            raise refuse(f"its {split}_labels {problem}")


def _label_form(task: Any) -> str:
    """The shape of a task's labels, in words, for a message."""
    return {"class": "[samples] (class indices)", "multi_hot": "[samples, classes] (0 or 1)",
            "real": "[samples] (one output per sample)"}.get(task.labels, "of the task")


def _non_finite(values: np.ndarray) -> str:
    kinds = [name for name, found in (("NaN", np.isnan(values).any()), ("inf", np.isinf(values).any())) if found]
    return " and ".join(kinds)


def _label_problem(labels: np.ndarray, task: Any, n_classes: int) -> str | None:
    """What is wrong with a split's labels for ``task`` (logits with ``n_classes`` outputs), or None."""
    if labels.dtype == bool:
        labels = labels.astype(np.uint8)
    if not np.issubdtype(labels.dtype, np.number) or np.iscomplexobj(labels):
        return f"are {labels.dtype}, not numbers"
    if labels.size == 0:
        return None
    if not np.isfinite(labels).all():
        return f"hold {_non_finite(labels[~np.isfinite(labels)])}"
    if task.labels == "class":
        outside = (labels < 0) | (labels >= n_classes) | (labels != np.floor(labels))
        if outside.any():
            first = int(np.flatnonzero(outside)[0])
            return (f"hold {labels[first].item()!r} (sample {first}), not a class index in [0, {n_classes}); "
                    f"labels range over [{labels.min().item()!r}, {labels.max().item()!r}]")
    elif task.labels == "multi_hot":
        other = (labels != 0) & (labels != 1)
        if other.any():
            sample, label = np.argwhere(other)[0]
            return (f"hold {labels[sample, label].item()!r} (sample {sample}, label {label}); multi-hot labels "
                    f"are 0 or 1")
    return None


def _as_array(value: Any) -> np.ndarray:
    """A network's output as numpy: a torch tensor (on any device, bfloat16 widened to float32, which numpy
    lacks), a list of per-head arrays or tensors (stacked: a multi-exit forward's list of head outputs), or
    anything ``np.asarray`` takes."""
    if isinstance(value, (list, tuple)) and value and all(hasattr(part, "shape") for part in value):
        return np.stack([_as_array(part) for part in value])
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor, without importing torch for it
        value = value.detach().cpu()
        if str(value.dtype) == "torch.bfloat16":
            value = value.float()
        return value.numpy()
    return np.asarray(value)


def write_cache(
    path: str | os.PathLike, *, val_logits: Any, test_logits: Any, val_labels: Any, test_labels: Any,
    head_flops: Any, backbone_flops: float | None = None, task: Any = "single_label", head_blocks: Any = None,
    meta: Mapping[str, Any] | None = None, test_inputs: str | None = None, source: str | os.PathLike | None = None,
) -> None:
    """Write a logit cache at ``path`` (atomically), the format every sweep, budget table and B_EE reads: a
    network's outputs of every head on the validation and test splits, the labels and the cost of exiting at
    each head. Nothing is written unless it passes the checks every reader makes (:func:`check_cache`); a
    refusal is one line naming ``source`` (the file the arrays came from) or else ``path``.

    - ``val_logits``, ``test_logits``: [H, N, C] (heads in order, the last the final classifier; samples; classes,
      or 1 output for regression), or a list of H arrays [N, C]; numpy arrays or torch tensors. Kept in their
      floating dtype (training writes float32).
    - ``val_labels``, ``test_labels``: [N] class indices (``single_label``), [N, C] 0/1 (``multi_label``,
      ``multi_label_softmax``) or [N] real targets (``regression``).
    - ``head_flops``: [H], the cost per sample of exiting at each head (every block and head up to it), strictly
      increasing. ``backbone_flops``: the cost of the network without its early exits, the 100% budget every
      FLOPs fraction is relative to (default: ``head_flops[-1]``, the full multi-exit network).
    - ``task``: a registered task name (eebench.tasks). ``head_blocks``: [H], the 0-based block after which
      each head sits (optional; a static model's one head says where it stops). ``meta``: names carried into
      every CSV made from the cache (e.g. model, dataset, regime, seed), JSON-serialisable. ``test_inputs``: a
      fingerprint of the test inputs (optional; figures comparing runs per example check it)."""
    refused = source if source is not None else path

    def refuse(problem: str) -> ResultFileError:
        return ResultFileError(refused, problem, LOGIT_CACHE)

    arrays = {}
    for key, value in (("val_logits", val_logits), ("test_logits", test_logits), ("val_labels", val_labels),
                       ("test_labels", test_labels)):
        try:
            arrays[key] = _as_array(value)
        except (TypeError, ValueError, RuntimeError) as error:
            shapes = [tuple(part.shape) for part in value] if isinstance(value, (list, tuple)) else []
            raise refuse(f"its {key} are per-head arrays of different shapes {shapes}" if len(set(shapes)) > 1
                         else f"its {key} are not an array ({error})") from None
    task_name = getattr(task, "name", task)
    if not isinstance(task_name, str) or task_name not in TASKS:
        raise refuse(f"its task {task_name!r} is not registered (registered: {', '.join(TASKS.names())})")
    try:
        flops = np.asarray(_as_array(head_flops), dtype=np.float64)
        if backbone_flops is not None:
            total = float(backbone_flops)
        else:  # a cache without heads is refused for its shapes below
            total = float(flops.reshape(-1)[-1]) if flops.size else float("nan")
    except (TypeError, ValueError) as error:
        raise refuse(f"its FLOPs are not numbers ({error})") from None
    if meta is not None and not isinstance(meta, Mapping):
        raise refuse(f"its meta is a {type(meta).__name__}, not a mapping of names")
    try:
        meta_text = json.dumps(dict(meta or {}), sort_keys=False)
    except (TypeError, ValueError) as error:
        raise refuse(f"its meta is not JSON-serialisable ({error})") from None
    extra: dict[str, np.ndarray] = {}
    if head_blocks is not None:
        extra["head_blocks"] = _as_array(head_blocks)
    if test_inputs is not None:
        extra["test_inputs"] = np.array(str(test_inputs))
    check_cache({**arrays, **extra, "head_flops": flops, "backbone_flops": total, "task": TASKS.get(task_name)},
                refused)
    save_npz(path, **arrays, head_flops=flops, backbone_flops=np.float64(total), task=np.array(task_name),
             meta=np.array(meta_text), **extra)


def read_logits(path: str | os.PathLike) -> dict[str, Any]:
    """The arrays of a plain file of per-head outputs (what :func:`import_logits` reads): a .npz, or a torch
    .pt holding a dict (loaded with ``weights_only=True``: tensors, lists of them, numbers, strings, dicts).
    Tensors and lists of per-head tensors become numpy arrays; ``task`` a string and ``meta`` a dict (a .npz's
    JSON text parsed). Raises FileNotFoundError or ResultFileError naming ``path``."""
    if file_kind(path, PLAIN_LOGITS) in ("a torch checkpoint", "a torch checkpoint (legacy format)"):
        raw: dict[str, Any] = read_checkpoint(path, PLAIN_LOGITS)
    else:
        raw = dict(read_npz(path, PLAIN_LOGITS))
    arrays: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "meta":
            if not isinstance(value, Mapping):
                try:
                    value = json.loads(str(value))
                except json.JSONDecodeError as error:
                    raise ResultFileError(path, f"its 'meta' is not JSON ({error})", PLAIN_LOGITS) from None
            if not isinstance(value, Mapping):
                raise ResultFileError(path, f"its 'meta' is a {type(value).__name__}, not a mapping",
                                      PLAIN_LOGITS)
            arrays[key] = dict(value)
        elif key in ("task", "test_inputs"):
            arrays[key] = str(value.item() if isinstance(value, np.ndarray) else value)
        else:
            try:
                arrays[key] = _as_array(value)
            except (TypeError, ValueError, RuntimeError) as error:
                shapes = [tuple(part.shape) for part in value] if isinstance(value, (list, tuple)) else []
                problem = (f"its {key!r} is a list of per-head arrays of different shapes {shapes}" if
                           len(set(shapes)) > 1 else f"its {key!r} is not an array ({error})")
                raise ResultFileError(path, problem, PLAIN_LOGITS) from None
    return arrays


def import_logits(
    source: str | os.PathLike, out: str | os.PathLike, *, task: str | None = None, head_flops: Any = None,
    backbone_flops: float | None = None, head_blocks: Any = None, meta: Mapping[str, Any] | None = None,
) -> None:
    """Write the logit cache ``out`` from ``source``, a plain .npz or .pt of per-head outputs (:func:`read_logits`)
    or a logit cache: its ``val_logits``, ``test_logits``, ``val_labels``, ``test_labels`` and, where it has
    them, ``head_flops``, ``backbone_flops``, ``task``, ``head_blocks``, ``meta``, ``test_inputs`` (other keys are
    not copied). ``task``, ``head_flops``, ``backbone_flops`` and ``head_blocks`` given here fill in what the file
    lacks (where it has them too, they must agree); ``meta`` is merged over the file's. Defaults as
    :func:`write_cache` (task ``single_label``). Checked as every cache (:func:`check_cache`); a refusal is one line
    naming ``source``, and nothing is written."""
    arrays = read_logits(source)
    missing = [f"{split}_{kind}" for split in CACHE_SPLITS for kind in ("logits", "labels")
               if f"{split}_{kind}" not in arrays]
    if missing:
        raise ResultFileError(source, f"lacks key(s) {', '.join(missing)} (it has: "
                                      f"{', '.join(sorted(arrays)) or 'none'})", PLAIN_LOGITS)
    given = {"task": task, "head_flops": head_flops, "backbone_flops": backbone_flops, "head_blocks": head_blocks}
    settings: dict[str, Any] = {}
    for key, value in given.items():
        if key in arrays and value is not None and not _same(arrays[key], value):
            raise ResultFileError(source, f"its {key} is {_shown(arrays[key])}, the one given {_shown(value)}",
                                  PLAIN_LOGITS)
        settings[key] = arrays.get(key, value)
    if settings["head_flops"] is None:
        raise ResultFileError(source, f"lacks key(s) head_flops (it has: {', '.join(sorted(arrays))}); give the "
                                      "cost of exiting at each head (--head-flops)", PLAIN_LOGITS)
    if settings["backbone_flops"] is not None:
        total = np.asarray(settings["backbone_flops"]).reshape(-1)
        if total.size != 1:
            raise ResultFileError(source, f"its backbone_flops is {_shown(total)}, not one number", PLAIN_LOGITS)
        settings["backbone_flops"] = total[0]
    write_cache(out, **{key: arrays[key] for key in ("val_logits", "test_logits", "val_labels", "test_labels")},
                head_flops=settings["head_flops"], backbone_flops=settings["backbone_flops"],
                task=settings["task"] or "single_label", head_blocks=settings["head_blocks"],
                meta={**arrays.get("meta", {}), **(meta or {})}, test_inputs=arrays.get("test_inputs"), source=source)


def _same(stored: Any, given: Any) -> bool:
    if isinstance(stored, str) or isinstance(given, str):
        return str(stored) == str(given)
    try:
        return bool(np.array_equal(np.asarray(stored, dtype=np.float64).reshape(-1),
                                   np.asarray(given, dtype=np.float64).reshape(-1)))
    except (TypeError, ValueError):
        return False


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    try:
        return str(np.asarray(value, dtype=np.float64).tolist())
    except (TypeError, ValueError):
        return repr(value)


def read_cache_summary(path: str | os.PathLike) -> dict[str, Any]:
    """A logit cache's task name and number of heads, read without its logits: what a config's model entry
    evaluated from its own caches is checked against before any job. Raises FileNotFoundError or ResultFileError
    naming ``path``; the whole cache is checked when a job reads it (:func:`load_cache`)."""
    members = read_npz_members(path, LOGIT_CACHE, keys=CACHE_KEYS, read=("task", "head_flops"))
    return {"task": str(members["task"]), "heads": int(np.asarray(members["head_flops"]).reshape(-1).size)}
