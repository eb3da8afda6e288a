"""File-level steps: each reads its inputs from disk and writes one output atomically. The CLI exposes each
step as a subcommand and every Snakemake rule calls one of them."""
from __future__ import annotations

import json
import logging
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from eebench.data import load_split, read_info
from eebench.data.core import inputs_fingerprint, load_augmented_validation
from eebench.io import MODEL_CHECKPOINT, read_checkpoint, save_npz, save_torch
from eebench.models import ModelSpec, backbone_state, build_model, head_blocks, head_costs
from eebench.training import (
    BACKBONE_PHASE, REGIMES, ResumeFile, TrainingConfig, predict, process_world, select_device, train_phases,
)
from eebench.training.resume import file_sha256

log = logging.getLogger(__name__)
CACHE_BATCH_SIZE = 512  # evaluation batch of a logit cache (either path: the same batches, the same floats)


def _model_spec(data_path: str | Path, model: dict[str, Any]) -> tuple[ModelSpec, Any]:
    """The network of a model setting on a dataset, and the dataset's info with the task the model trains for
    (the setting's own ``task``, e.g. softmax heads on multi-label data, else the dataset's)."""
    info = read_info(data_path)
    if model.get("task") is not None:
        from eebench.tasks import TASKS

        own = TASKS.get(info.task)
        if TASKS.get(model["task"]).labels != own.labels:
            raise ValueError(f"task {model['task']!r} cannot learn {data_path}'s labels (a {own.name} dataset)")
        info = replace(info, task=model["task"])
    spec = ModelSpec(
        backbone=model["backbone"],
        backbone_params=model.get("params", {}),
        input_shape=tuple(info.input_shape),
        num_classes=info.num_classes,
        ic=model.get("ic", {"type": "linear"}),
        placement=model.get("placement"),
        truncate_at=model.get("truncate_at"),
    )
    return spec, info


def _run_meta(info, model: dict[str, Any], meta: dict[str, Any] | None, **run: Any) -> dict[str, Any]:
    """The names a run carries into its cache and CSVs: the model setting's and dataset entry's names (given by
    the workflow; by hand they default to the backbone and the loader), then backbone, regime, seed, ..."""
    names = {"model": model["backbone"], "dataset": info.name, **(meta or {})}
    return {**names, "backbone": model["backbone"], **run}


def _load_backbone(model: torch.nn.Module, spec: ModelSpec, init: str) -> list[dict]:
    """Start from a phase-1 run: its checkpoint must be the plain backbone of ``spec`` (no ICs); its weights
    fill the backbone group, and the ICs keep their fresh initialisation. Returns that run's training history
    (its epochs count towards this regime's training time, paper B §4.7)."""
    checkpoint = read_checkpoint(init, MODEL_CHECKPOINT, keys=("spec", "state_dict"))
    if ModelSpec.from_dict(checkpoint["spec"]) != spec.plain():
        raise ValueError(f"{init}: not the plain backbone of the requested model (its spec is "
                         f"{checkpoint['spec']}); train it with --regime backbone and the same network")
    expected = set(backbone_state(model))
    if set(checkpoint["state_dict"]) != expected:
        raise ValueError(f"{init}: its weights do not match the requested model's backbone group")
    model.load_state_dict(checkpoint["state_dict"], strict=False)
    return list(checkpoint.get("history", []))


def _fingerprint(data_path, spec, phases, config: TrainingConfig, seed: int, init: str | None, meta: dict,
                 world_size: int) -> dict[str, Any]:
    """What a resume checkpoint must agree with to be continued: everything that determines the trained
    weights. Input files enter by content (SHA-256), so a re-prepared dataset or retrained --init model
    invalidates it; ``checkpoint_every_batches`` does not enter, as it never changes the result."""
    return {
        "model": spec.to_dict(), "phases": [asdict(p) for p in phases], "training": config.identity(), "seed": seed,
        "meta": meta, "data_sha256": file_sha256(data_path),
        "init_sha256": file_sha256(init) if init is not None else None, "world_size": world_size,
    }


def _fit(data_path, spec, info, phases, training: dict, seed: int, init: str | None, meta: dict, out: str,
         resume: str | None = None, restart: bool = False, logits: str | None = None) -> None:
    """Train and write the model to ``out``; with ``logits``, also its logit cache there (as ``cache_logits``
    would write it from ``out``, without a second process loading torch, the model and the data again). With
    ``resume``, checkpoint there and continue from it (see ``eebench.training.resume``); the file is removed
    once ``out`` is written. Under torchrun every rank runs this, and rank 0 alone writes."""
    config = TrainingConfig(**training)
    with process_world() as world:
        # The weights start from a private generator (build_model), so the training stream below is the same
        # whatever ICs a variant has.
        model = build_model(spec, seed)
        torch.manual_seed(seed)
        np.random.seed(seed)
        init_history = _load_backbone(model, spec, init) if init is not None else []
        if world.rank > 0:
            # Decorrelate the ranks' augmentation draws; rank 0 keeps the single-process stream.
            rank_seed = int(np.random.SeedSequence([seed, world.rank]).generate_state(1)[0])
            torch.manual_seed(rank_seed)
            np.random.seed(rank_seed)
        train_set, _ = load_split(data_path, "train", augment=config.augment)
        # Early stopping's validation set (augmented as the authors' where asked); the cache's val is never.
        if config.augment and config.validation_augment:
            val_set = load_augmented_validation(data_path)
        else:
            val_set, _ = load_split(data_path, "val")
        resume_file = None
        if resume is not None:
            fingerprint = {**_fingerprint(data_path, spec, phases, config, seed, init, meta, world.size),
                           "task": info.task}
            resume_file = ResumeFile(resume, fingerprint, restart=restart)
        history = train_phases(model, phases, train_set, val_set, info.task, config, seed, world.device,
                               resume=resume_file, world=world)
        if world.rank == 0:
            costs = model_costs(spec)
            save_torch(out, {
                "spec": spec.to_dict(), "state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
                "meta": meta, "training": training, "history": history, "init_history": init_history,
                "costs": costs, "task": info.task,
            })
            if logits is not None:
                _write_cache(model, costs, data_path, logits, meta, info.task, world.device)
            if resume_file is not None:
                resume_file.remove()
        world.barrier()


def train_model(data: str, model: dict, training: dict, regime: str, seed: int, out: str, init: str | None = None,
                resume: str | None = None, restart: bool = False, meta: dict | None = None,
                logits: str | None = None) -> None:
    """Train a multi-exit model under ``regime``; with ``init`` (a ``backbone`` run of the same network) the
    regime's shared backbone phase is skipped. A regime that never trains ICs (``backbone``) trains the plain
    network, so its run is the same for every IC variant. ``resume``: where to keep the resume checkpoint;
    not a declared output, as Snakemake deletes those when a job fails. ``restart`` discards an existing one.
    ``meta``: the names of the model setting and dataset entry, recorded in the checkpoint. ``logits``: where
    to write the trained model's logit cache as well."""
    entry = REGIMES.get(regime)
    if init is not None and not entry.reuses_backbone:
        raise ValueError(f"regime {regime!r} does not start with the backbone phase; --init makes no sense")
    if init is None and entry.reuses_backbone:
        log.warning("regime %s: no --init given, training its backbone phase from scratch", regime)
    spec, info = _model_spec(data, model)
    if not entry.uses_ics:
        spec = spec.plain()
    run_meta = _run_meta(info, model, meta, regime=regime, seed=seed)
    _fit(data, spec, info, entry.phases_to_run(from_backbone=init is not None), training, seed, init, run_meta,
         out, resume, restart, logits)


def train_static_head(data: str, model: dict, training: dict, block: int, seed: int, out: str,
                      resume: str | None = None, restart: bool = False, meta: dict | None = None,
                      logits: str | None = None) -> None:
    """Static baseline of paper A §3: the network truncated after ``block`` (0-based) with the classifier it
    has there, trained alone with its backbone unfrozen — the backbone phase applied to the truncated
    network. At the last block this is the plain backbone (the ``backbone`` regime's run)."""
    spec, info = _model_spec(data, model)
    heads = head_blocks(replace(spec, truncate_at=None))  # the workflow passes the static form already
    if block not in heads:
        raise ValueError(f"--block {block}: the model has heads after blocks {heads} only")
    spec = spec.plain() if block == heads[-1] else replace(spec, placement=[block], truncate_at=block)
    run_meta = _run_meta(info, model, meta, regime="static", seed=seed, block=block)
    _fit(data, spec, info, (BACKBONE_PHASE,), training, seed, None, run_meta, out, resume, restart, logits)


def model_costs(spec: ModelSpec) -> dict[str, Any]:
    """FLOPs of one sample: exiting at each head (``head_flops``) and the plain backbone (``backbone_flops``,
    the 100% budget; for a static model still the full backbone's)."""
    costs, backbone_cost = head_costs(build_model(spec), spec.input_shape)
    if spec.truncate_at is not None:
        _, backbone_cost = head_costs(build_model(replace(spec, truncate_at=None)), spec.input_shape)
    return {"head_flops": [float(c) for c in costs], "backbone_flops": float(backbone_cost)}


def cache_logits(checkpoint: str, data: str, out: str, batch_size: int = CACHE_BATCH_SIZE) -> None:
    """One pass over validation and test for all heads -> logits [H, N, C], labels and per-head FLOPs.

    The FLOPs come from the checkpoint when training recorded them (counting them here would first import
    torch's compiler stack, ~2 s per job, which a training process has already paid), else they are counted.
    The workflow's training jobs write the cache themselves (``--logits``); this is the same cache from a
    checkpoint alone."""
    saved = read_checkpoint(checkpoint, MODEL_CHECKPOINT, keys=("spec", "state_dict", "meta"))
    spec = ModelSpec.from_dict(saved["spec"])
    model = build_model(spec)
    model.load_state_dict(saved["state_dict"])
    device = select_device()
    model.to(device)
    task = saved.get("task") or read_info(data).task  # checkpoints before tasks were recorded: the dataset's
    _write_cache(model, saved.get("costs") or model_costs(spec), data, out, saved["meta"], task, device,
                 batch_size)


def _write_cache(model: torch.nn.Module, costs: dict[str, Any], data: str, out: str, meta: dict, task: str,
                 device: torch.device, batch_size: int = CACHE_BATCH_SIZE) -> None:
    arrays: dict[str, Any] = {}
    for split in ("val", "test"):
        dataset, _ = load_split(data, split)
        # fp32 and the default memory layout whatever training used, so a cache is the same from either path.
        arrays[f"{split}_logits"], arrays[f"{split}_labels"] = predict(model, dataset, batch_size, device)
    save_npz(
        out, **arrays, head_flops=np.asarray(costs["head_flops"], dtype=np.float64),
        backbone_flops=np.float64(costs["backbone_flops"]), task=np.array(task),
        head_blocks=np.asarray(model.head_blocks), meta=np.array(json.dumps(meta)),
        test_inputs=np.array(inputs_fingerprint(data, "test")),
    )
