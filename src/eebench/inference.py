"""Real early exiting: inference that stops running a sample's blocks once it has exited.

The sweep (:mod:`eebench.exits.sweep`) evaluates every threshold from cached logits of *all* heads; its FLOPs
are what exiting would cost. Here the network really exits, at one threshold: blocks run in order on the
samples still in flight, and after each block carrying a head that head's logits are computed for them, the
criterion's score at that head is taken from the logits of this and the earlier heads of those samples, and
the samples whose score is >= the threshold leave with this head's logits; the last head takes everyone left
(the rule of :mod:`eebench.exits.criteria`). No block and no head ever runs on a sample after it has exited.
Every registered criterion is causal (its score at head h depends only on heads <= h), so the exit heads are
those the cache-based sweep implies, up to floating-point rounding (below).

Two paths:

- :func:`exit_heads_batched`: one batch, which shrinks as samples leave (the throughput path).
- :func:`exit_heads_one_by_one`: batch 1, sample after sample (the latency path): a sample's blocks stop at
  its exit.

What a block may be: anything the multi-exit forward calls in sequence on one input, a tensor whose first
dimension is the batch (cnn, ResNets, ViT) or a list of such tensors (MSDNet's multi-scale ``Scales``). BERT's
blocks also read an attention mask that block 0 records for the whole batch in a holder shared by the network's
BERT blocks (:mod:`eebench.models.backbones`); when the batch shrinks, that mask is cut to the same rows. A
mask of any other kind than a tensor with the batch first (or None) is refused (NotImplementedError).

IC types with a merge module (GPF): IC i's logits come from the ICs' outputs 0..i through
``merge.exit_logits`` (the call ``head_costs`` counts, and what the forward computes for IC i: GPF imitates
the later states from state i, so it is causal). A merge module without ``exit_logits`` is refused
(ValueError): its ICs' logits might need later ICs.

Rounding. On the CPU, a network's per-sample outputs can differ in the last bits between batch sizes (e.g.
oneDNN convolutions and MKL's matrix-vector products at batch 1, ~1e-7 on the logits). The cache is computed
in batches of 512, so a sample whose cached score lies within that rounding of the threshold may exit one
head earlier or later here than the sweep says; every other sample exits at the same head.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np
import torch
from torch import Tensor, nn

from eebench.exits import criteria as _criteria
from eebench.tasks import Task, task_of

Scorer = Callable[[np.ndarray], np.ndarray]  # logits [h+1, n, C] -> scores [h+1, n]


def load_trained(checkpoint: str) -> nn.Module:
    """A trained model from its checkpoint, in eval mode."""
    return load_checkpoint(checkpoint)[0]


def load_checkpoint(checkpoint: str, keys: tuple[str, ...] = ()) -> tuple[nn.Module, dict]:
    """A trained model from its checkpoint, in eval mode, and the whole saved dict (``keys`` must be in it)."""
    from eebench.io import MODEL_CHECKPOINT, read_checkpoint

    saved = read_checkpoint(checkpoint, MODEL_CHECKPOINT, keys=("spec", "state_dict", *keys))
    return model_of(saved, checkpoint).eval(), saved


def model_of(saved: Mapping[str, Any], checkpoint: Any) -> nn.Module:
    """The network of a checkpoint's dict (read from ``checkpoint``: its ``spec``) with its ``state_dict`` loaded.
    A spec that builds no network, or weights that do not fit it (a key lacking or extra, a shape), is one line
    naming the file (ResultFileError), not a KeyError or torch's many-line RuntimeError."""
    from eebench.io import MODEL_CHECKPOINT, ResultFileError, load_state_dict
    from eebench.models import ModelSpec, build_model

    try:
        model = build_model(ModelSpec.from_dict(saved["spec"]))
    except (KeyError, TypeError, ValueError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        raise ResultFileError(checkpoint, f"its spec builds no model ({message})", MODEL_CHECKPOINT) from None
    load_state_dict(model, saved["state_dict"], checkpoint, MODEL_CHECKPOINT)
    return model


def split_inputs(data: str, split: str = "test") -> Tensor:
    """Every input of a prepared dataset's split, in the order of its logit cache."""
    from torch.utils.data import DataLoader

    from eebench.data import load_split

    dataset, _ = load_split(data, split)
    return torch.cat([batch for batch, _ in DataLoader(dataset, batch_size=512, shuffle=False)])


def scorer(criterion: str | Callable[..., np.ndarray], task: str | Task,
           params: Mapping[str, Any] | None = None) -> Scorer:
    """``logits [h+1, n, C] -> scores [h+1, n]`` for ``criterion``: a registered name (its task and parameter
    names are checked here, once, as the registry's wrapper checks them on every call, which then is skipped:
    it costs an ``inspect.signature`` per call, significant at batch 1) or a callable
    ``(logits, task, **params) -> scores``."""
    task = task_of(task)
    params = dict(params or {})
    if callable(criterion):
        return lambda logits: np.asarray(criterion(logits, task, **params))
    checked = _criteria.CRITERIA.get(criterion)
    if task.name not in checked.applies_to:
        raise ValueError(f"exit criterion {criterion!r} is defined for {', '.join(checked.applies_to)} outputs, "
                         f"not {task.name}; criteria for {task.name}: "
                         f"{', '.join(_criteria.applicable(task.name))}")
    accepted = _criteria.parameters(criterion)
    unknown = sorted(params.keys() - accepted.keys())
    if unknown:
        raise TypeError(f"exit criterion {criterion!r}: unknown parameter {unknown[0]!r}; accepted: "
                        f"{', '.join(accepted) or 'none'}")
    raw = getattr(checked, "__wrapped__", checked)
    # float64 as the sweep scores the cache (criteria._float64_scores), so real exiting meets the same thresholds
    return lambda logits: raw(np.asarray(logits, dtype=np.float64), task, **params)


class _Plan:
    """What a model's exiting needs: its blocks, the head after each block (None where there is none), the
    final block, the merge module's ``exit_logits`` (None without a merge module) and the BERT mask holders."""

    def __init__(self, model: nn.Module) -> None:
        for attribute in ("blocks", "heads", "head_blocks"):
            if not hasattr(model, attribute):
                raise TypeError(f"real exiting needs a multi-exit network (MultiExitNet): {type(model).__name__} "
                                f"has no {attribute!r}")
        self.blocks = list(model.blocks)
        self.final = len(self.blocks) - 1
        self.heads: list[nn.Module | None] = [
            model.heads[str(b)] if str(b) in model.heads else None for b in range(len(self.blocks))]
        if self.heads[self.final] is None:
            raise ValueError("real exiting needs a head after the last block (the final classifier)")
        merge = getattr(model, "merge", None)
        self.exit_logits: Callable[[list[Tensor]], Tensor] | None = None
        if merge is not None:
            self.exit_logits = getattr(merge, "exit_logits", None)
            if self.exit_logits is None:
                raise ValueError(
                    f"real exiting: this model's ICs are combined by a merge module ({type(merge).__name__}) "
                    f"without an exit_logits method, so an IC's logits may need later ICs' outputs and a sample "
                    f"cannot stop at it; a merge module must provide exit_logits(outputs of ICs 0..i) -> logits "
                    f"of IC i (as GPF's does)")
        self.shared_masks = _shared_masks(model)
        try:
            self.device = next(model.parameters()).device
        except StopIteration:
            self.device = torch.device("cpu")

    def head_logits(self, block: int, features: Any, states: list[Tensor]) -> Tensor:
        """The logits of the head after ``block``; an IC's output joins ``states`` when a merge module makes
        the logits."""
        out = self.heads[block](features)
        if self.exit_logits is None or block == self.final:
            return out
        states.append(out)
        return self.exit_logits(states)


def _shared_masks(model: nn.Module) -> list[Any]:
    """The distinct attention-mask holders of the model's BERT blocks (none for other backbones)."""
    from eebench.models.backbones import BertBlock, BertInput

    holders: dict[int, Any] = {}
    for module in model.modules():
        if isinstance(module, (BertInput, BertBlock)):
            holders[id(module.shared)] = module.shared
    return list(holders.values())


def _take(x: Any, rows: Tensor) -> Any:
    """The rows ``rows`` of a block's output: a tensor (batch first) or a list/tuple of them (MSDNet)."""
    if isinstance(x, Tensor):
        return x.index_select(0, rows)
    if isinstance(x, (list, tuple)):
        return type(x)(_take(part, rows) for part in x)
    raise TypeError(f"real exiting: cannot select samples from a block output of type {type(x).__name__} "
                    f"(expected a tensor with the batch first, or a list of them)")


def _shrink_masks(plan: _Plan, rows: Tensor, batch: int) -> None:
    """Cut the BERT attention mask recorded for a batch of ``batch`` samples to ``rows``."""
    for shared in plan.shared_masks:
        mask = shared.mask
        if mask is not None:
            if not isinstance(mask, Tensor):
                raise NotImplementedError(
                    f"real exiting: BERT's attention mask is a {type(mask).__name__}, which cannot be cut to the "
                    f"samples still in flight (a tensor with the batch first, or None, is supported)")
            if mask.shape[0] == batch:  # a batch dimension of 1 broadcasts: it stays
                shared.mask = mask.index_select(0, rows.to(mask.device))
        if shared.shape is not None:
            shared.shape = (int(rows.numel()), *shared.shape[1:])


class _EvalMode:
    """``model.eval()`` for the duration, the previous mode restored afterwards."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def __enter__(self) -> None:
        self.was_training = self.model.training
        self.model.eval()

    def __exit__(self, *exc: Any) -> None:
        self.model.train(self.was_training)


def exit_heads_batched(model: nn.Module, x: Tensor, criterion: str | Callable[..., np.ndarray], threshold: float,
                       task: str | Task, params: Mapping[str, Any] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Exit every sample of the batch ``x`` at the first head whose ``criterion`` score (with ``params``) is
    >= ``threshold``, else at the last head, running each block on the samples still in flight only.

    Returns ``exit_head`` [N] int64 (0-based head index; the sweep's ``avg_exit_head`` is 1-based) and the
    exit head's logits [N, C] float32, both numpy, in the order of ``x``."""
    plan = _Plan(model)
    score = scorer(criterion, task, params)
    n = len(x)
    exit_head = np.full(n, -1, dtype=np.int64)
    exit_logits: np.ndarray | None = None
    with torch.no_grad(), _EvalMode(model):
        features: Any = x.to(plan.device)
        alive = np.arange(n)  # the in-flight samples' positions in x
        history: list[np.ndarray] = []  # each passed head's logits [n_alive, C] of the in-flight samples
        states: list[Tensor] = []  # a merge module's IC outputs of the in-flight samples
        head = 0
        for index, block in enumerate(plan.blocks):
            if n == 0:
                break
            features = block(features)
            if plan.heads[index] is None:
                continue
            logits = plan.head_logits(index, features, states).float().cpu().numpy()
            if exit_logits is None:
                exit_logits = np.empty((n, *logits.shape[1:]), dtype=np.float32)
            if index == plan.final:
                leave = np.ones(len(alive), dtype=bool)
            else:
                history.append(logits)
                leave = score(np.stack(history))[-1] >= threshold  # NaN passes no threshold
            exit_head[alive[leave]] = head
            exit_logits[alive[leave]] = logits[leave]
            if leave.all():
                break
            if leave.any():
                stay = ~leave
                rows = torch.from_numpy(np.flatnonzero(stay)).to(plan.device)
                _shrink_masks(plan, rows, len(alive))
                features = _take(features, rows)
                states = [s.index_select(0, rows) for s in states]
                history = [h[stay] for h in history]
                alive = alive[stay]
            head += 1
    if exit_logits is None:  # no sample
        exit_logits = np.empty((0, 0), dtype=np.float32)
    return exit_head, exit_logits


def exit_heads_one_by_one(model: nn.Module, x: Tensor, criterion: str | Callable[..., np.ndarray],
                          threshold: float, task: str | Task,
                          params: Mapping[str, Any] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`exit_heads_batched` at batch 1: each sample of ``x`` runs alone, its blocks stopping at its exit
    (the latency of serving one request at a time). Same returns."""
    plan = _Plan(model)
    score = scorer(criterion, task, params)
    n = len(x)
    exit_head = np.empty(n, dtype=np.int64)
    exit_logits: np.ndarray | None = None
    with torch.no_grad(), _EvalMode(model):
        for sample in range(n):
            features: Any = x[sample:sample + 1].to(plan.device)
            history: list[np.ndarray] = []
            states: list[Tensor] = []
            head = 0
            for index, block in enumerate(plan.blocks):
                features = block(features)
                if plan.heads[index] is None:
                    continue
                logits = plan.head_logits(index, features, states).float().cpu().numpy()
                if index == plan.final:
                    break
                history.append(logits)
                if score(np.stack(history))[-1, 0] >= threshold:
                    break
                head += 1
            if exit_logits is None:
                exit_logits = np.empty((n, *logits.shape[1:]), dtype=np.float32)
            exit_head[sample] = head
            exit_logits[sample] = logits[0]
    if exit_logits is None:
        exit_logits = np.empty((0, 0), dtype=np.float32)
    return exit_head, exit_logits


def backbone_logits(model: nn.Module, x: Tensor, one_by_one: bool = False) -> np.ndarray:
    """The plain backbone's output on ``x``: every block, then the final classifier only (no IC), [N, C]
    float32 numpy: the 100% budget that FLOPs speed-ups are relative to, and the baseline of wall-clock ones.
    ``one_by_one``: at batch 1, sample after sample (the baseline of :func:`exit_heads_one_by_one`)."""
    plan = _Plan(model)
    final_head = plan.heads[plan.final]
    with torch.no_grad(), _EvalMode(model):
        batches = [x[i:i + 1] for i in range(len(x))] if one_by_one else [x]
        outputs = []
        for batch in batches:
            features: Any = batch.to(plan.device)
            for block in plan.blocks:
                features = block(features)
            outputs.append(final_head(features).float().cpu().numpy())
    return np.concatenate(outputs) if outputs else np.empty((0, 0), dtype=np.float32)
