"""Mode connectivity between two multi-exit models trained under different regimes (paper B §3.2, eq. 4, Fig. 3).

Model B (the second checkpoint) is aligned to model A by weight matching (:mod:`eebench.analysis.permutation`,
Ainsworth et al.'s Algorithm 1 on the parameters Θ, backbone and heads alike), then the linear path

    Θ(λ) = (1 − λ) Θ_A + λ Π* Θ_B                                                         (eq. 4)

is evaluated at ``points`` values of λ evenly spaced in [0, 1] (both ends included). At every λ (the ends too,
so every point is measured the same way) BatchNorm's running statistics are recomputed on the first ``samples``
training samples (:func:`eebench.analysis.checkpoint.recompute_batch_norm`): interpolated weights match neither
model's statistics (``reset_bn: false`` interpolates the running statistics instead). Then each head's loss and
metrics, and the total (the sum of the heads' losses), are measured in eval mode on the first ``samples`` of each
of ``splits`` (default the training and the test split: paper B's Fig. 3 shows "the values of the loss function"
without naming the split; Ainsworth et al. plot both).
"""
from __future__ import annotations

from typing import Annotated, Any, Literal, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from eebench.analysis import checkpoint as ck
from eebench.analysis.permutation import apply_permutation, permutation_spec, weight_matching
from eebench.declare import Param

DEFAULT_POINTS = 11
DEFAULT_ITERATIONS = 100


def interpolate(state_a: Mapping[str, Tensor], state_b: Mapping[str, Tensor], lam: float) -> dict[str, Tensor]:
    """(1 − λ) A + λ B for every floating tensor (parameters and BN running statistics), exact at λ = 0 and 1;
    integer buffers (BN's batch counters) are A's."""
    return {key: ((1.0 - lam) * a + lam * state_b[key]) if a.is_floating_point() else a.clone()
            for key, a in state_a.items()}


def frobenius_distance(state_a: Mapping[str, Tensor], state_b: Mapping[str, Tensor], keys) -> float:
    return float(sum(((state_a[k].double() - state_b[k].double()) ** 2).sum() for k in keys) ** 0.5)


def connectivity_path(model: torch.nn.Module, spec_names: tuple[str, str], state_a: Mapping[str, Tensor],
                      state_b: Mapping[str, Tensor], bn_inputs: Tensor,
                      evaluations: Mapping[str, tuple[Tensor, Tensor]], task, *, points: int = DEFAULT_POINTS,
                      iterations: int = DEFAULT_ITERATIONS, match_seed: int = 0, reset_bn: bool = True,
                      batch_size: int = ck.DEFAULT_BATCH_SIZE) -> Any:
    """The path of eq. (4) between two states of ``model``'s network (``spec_names`` = its backbone and IC
    type): one row per (λ, split, head) with the loss and metrics, and ``distance_before`` / ``distance_after``
    = ||Θ_A − Θ_B||_F and ||Θ_A − Π*Θ_B||_F over the parameters (the quantity weight matching minimises).
    ``model`` is left holding the last point's weights."""
    import pandas as pd

    if points < 2:
        raise ValueError(f"mode connectivity: points must be at least 2 (both ends), got {points}")
    spec = permutation_spec(model, *spec_names)
    parameters = [name for name, _ in model.named_parameters()]
    state_a = {k: v.detach().cpu() for k, v in state_a.items()}
    state_b = {k: v.detach().cpu() for k, v in state_b.items()}
    perms = weight_matching(spec, state_a, state_b, keys=parameters, iterations=iterations, seed=match_seed)
    aligned = apply_permutation(spec, perms, state_b)
    before, after = (frobenius_distance(state_a, s, parameters) for s in (state_b, aligned))
    rows = []
    for lam in np.linspace(0.0, 1.0, points):
        model.load_state_dict(interpolate(state_a, aligned, float(lam)))
        if reset_bn:
            ck.recompute_batch_norm(model, bn_inputs, batch_size)
        for split, (x, y) in evaluations.items():
            for row in ck.head_rows(ck.head_logits(model, x, batch_size), y, task):
                rows.append({"lambda": float(lam), "split": split, **row})
    return pd.DataFrame(rows).assign(distance_before=before, distance_after=after)


@ck.register("mode_connectivity", checkpoints=2)
def mode_connectivity(
    checkpoints: Sequence[str], data: str, *,
    points: Annotated[int, Param("Values of lambda, evenly spaced in [0, 1] with both ends (paper B gives no grid).",
                                 ge=2)] = DEFAULT_POINTS,
    samples: Annotated[int, Param("The first samples of each split evaluated, and of the training split on which "
                                  "BatchNorm statistics are recomputed.", ge=1)] = ck.DEFAULT_SAMPLES,
    splits: Annotated[list[Literal["train", "test"]], Param(
        "Splits the loss and metrics are measured on (paper B's Fig. 3 does not name one).", min_length=1,
        json_schema_extra={"uniqueItems": True})] = ("train", "test"),
    iterations: Annotated[int, Param("At most this many coordinate-descent passes of weight matching (Ainsworth et "
                                     "al.'s max_iter); it stops at the first pass without improvement.",
                                     ge=1)] = DEFAULT_ITERATIONS,
    match_seed: Annotated[int, Param("Seed of the order in which each pass visits the permutation groups.",
                                     ge=0)] = 0,
    reset_bn: Annotated[bool, Param("Recompute BatchNorm's running statistics at every lambda on the training "
                                    "samples (cumulative average, train-mode forward, no gradients); false "
                                    "interpolates the running statistics.")] = True,
    batch_size: ck.BatchSize = ck.DEFAULT_BATCH_SIZE,
) -> Any:
    """Paper B §3.2 (eq. 4): B aligned to A by weight matching (Ainsworth et al.'s Algorithm 1 on the parameters),
    then the path evaluated at each lambda (eebench.analysis.connectivity).

    Columns: model, regime_a, regime_b, seed (from the checkpoints' meta), lambda, split, head ("1".."H",
    "total"), loss, the task's metrics, distance_before, distance_after."""
    run_a, run_b = (ck.load_run(path) for path in checkpoints)
    if run_a["spec"] != run_b["spec"]:
        raise ValueError(f"mode connectivity needs two models of one network: {checkpoints[0]} is {run_a['spec']}, "
                         f"{checkpoints[1]} is {run_b['spec']}")
    task = ck.run_task(run_a, data)
    bn_inputs, _ = ck.split_samples(data, "train", samples)
    evaluations = {split: ck.split_samples(data, split, samples) for split in splits}
    spec = run_a["spec"]
    frame = connectivity_path(run_a["model"], (spec.backbone, spec.ic["type"]), run_a["model"].state_dict(),
                              run_b["model"].state_dict(), bn_inputs, evaluations, task, points=points,
                              iterations=iterations, match_seed=match_seed, reset_bn=reset_bn,
                              batch_size=batch_size)
    meta_a, meta_b = run_a["meta"], run_b["meta"]
    frame.insert(0, "model", meta_a.get("model"))
    frame.insert(1, "regime_a", meta_a.get("regime"))
    frame.insert(2, "regime_b", meta_b.get("regime"))
    frame.insert(3, "seed", meta_a.get("seed"))
    return frame


__all__ = ["connectivity_path", "interpolate", "mode_connectivity"]
