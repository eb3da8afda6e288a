"""File-level steps: each reads its inputs from disk and writes one output atomically. The CLI exposes each
step as a subcommand and every Snakemake rule calls one of them."""
from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from eebench.data import load_split
from eebench.io import save_npz, save_torch
from eebench.models import ModelSpec, build_model, head_costs
from eebench.training import (
    BACKBONE_PHASE, REGIMES, ResumeFile, TrainingConfig, predict, process_world, select_device, train_phases,
)
from eebench.training.resume import file_sha256

log = logging.getLogger(__name__)


def _model_spec(data_path: str | Path, model: dict[str, Any], truncate_at: int | None = None) -> tuple[ModelSpec, Any]:
    _, info = load_split(data_path, "val")
    spec = ModelSpec(
        backbone=model["backbone"],
        backbone_params=model.get("params", {}),
        input_shape=tuple(info.input_shape),
        num_classes=info.num_classes,
        ic=model.get("ic", {"type": "linear"}),
        placement=model.get("placement"),
        truncate_at=truncate_at,
    )
    return spec, info


def _fingerprint(data_path, spec, phases, config: TrainingConfig, seed: int, init: str | None, meta: dict,
                 world_size: int) -> dict[str, Any]:
    """What a resume checkpoint must agree with to be continued: everything that determines the trained
    weights. Input files enter by content (SHA-256), so a re-prepared dataset or retrained --init model
    invalidates it; ``checkpoint_every_batches`` does not enter, as it never changes the result."""
    settings = {k: v for k, v in asdict(config).items() if k != "checkpoint_every_batches"}
    return {
        "model": spec.to_dict(), "phases": [asdict(p) for p in phases], "training": settings, "seed": seed,
        "meta": meta, "data_sha256": file_sha256(data_path),
        "init_sha256": file_sha256(init) if init is not None else None, "world_size": world_size,
    }


def _fit(data_path, spec, info, phases, training: dict, seed: int, init: str | None, meta: dict, out: str,
         resume: str | None = None, restart: bool = False) -> None:
    """Train and write the model to ``out``. With ``resume``, checkpoint there and continue from it (see
    ``eebench.training.resume``); the file is removed once ``out`` is written. Under torchrun every rank runs
    this, and rank 0 alone writes."""
    config = TrainingConfig(**training)
    with process_world() as world:
        torch.manual_seed(seed)
        np.random.seed(seed)
        model = build_model(spec)
        if init is not None:
            checkpoint = torch.load(init, map_location="cpu", weights_only=False)
            if checkpoint["spec"] != spec.to_dict():
                raise ValueError(f"{init}: its model spec differs from the one requested; rebuild it")
            model.load_state_dict(checkpoint["state_dict"])
        if world.rank > 0:
            # Decorrelate the ranks' augmentation draws; rank 0 keeps the single-process stream.
            rank_seed = int(np.random.SeedSequence([seed, world.rank]).generate_state(1)[0])
            torch.manual_seed(rank_seed)
            np.random.seed(rank_seed)
        train_set, _ = load_split(data_path, "train", augment=config.augment)
        val_set, _ = load_split(data_path, "val")
        resume_file = None
        if resume is not None:
            fingerprint = _fingerprint(data_path, spec, phases, config, seed, init, meta, world.size)
            resume_file = ResumeFile(resume, fingerprint, restart=restart)
        history = train_phases(model, phases, train_set, val_set, info.multilabel, config, seed, world.device,
                               resume=resume_file, world=world)
        if world.rank == 0:
            save_torch(out, {
                "spec": spec.to_dict(), "state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
                "meta": meta, "training": training, "history": history,
            })
            if resume_file is not None:
                resume_file.remove()
        world.barrier()


def train_model(data: str, model: dict, training: dict, regime: str, seed: int, out: str, init: str | None = None,
                resume: str | None = None, restart: bool = False) -> None:
    """Train a multi-exit model under ``regime``; with ``init`` (the ``backbone`` regime's checkpoint) the
    regime's shared backbone phase is skipped. ``resume``: where to keep the resume checkpoint; not a declared
    output, as Snakemake deletes those when a job fails. ``restart`` discards an existing one."""
    entry = REGIMES.get(regime)
    if init is not None and not entry.reuses_backbone:
        raise ValueError(f"regime {regime!r} does not start with the backbone phase; --init makes no sense")
    if init is None and entry.reuses_backbone:
        log.warning("regime %s: no --init given, training its backbone phase from scratch", regime)
    spec, info = _model_spec(data, model)
    meta = {"dataset": info.name, "backbone": model["backbone"], "regime": regime, "seed": seed}
    _fit(data, spec, info, entry.phases_to_run(from_backbone=init is not None), training, seed, init, meta, out,
         resume, restart)


def train_static_head(data: str, model: dict, training: dict, head: int, seed: int, out: str,
                      resume: str | None = None, restart: bool = False) -> None:
    """Static baseline of paper A §3: the network truncated after head ``head`` (1-based), trained alone with
    its backbone unfrozen — the backbone phase applied to the truncated network."""
    spec, info = _model_spec(data, model, truncate_at=head - 1)
    meta = {"dataset": info.name, "backbone": model["backbone"], "regime": "static", "seed": seed, "head": head}
    _fit(data, spec, info, (BACKBONE_PHASE,), training, seed, None, meta, out, resume, restart)


def cache_logits(checkpoint: str, data: str, out: str, batch_size: int = 512) -> None:
    """One pass over validation and test for all heads -> logits [H, N, C], labels and per-head FLOPs."""
    saved = torch.load(checkpoint, map_location="cpu", weights_only=False)
    spec = ModelSpec.from_dict(saved["spec"])
    model = build_model(spec)
    model.load_state_dict(saved["state_dict"])
    device = select_device()
    model.to(device)
    arrays: dict[str, Any] = {}
    for split in ("val", "test"):
        dataset, info = load_split(data, split)
        arrays[f"{split}_logits"], arrays[f"{split}_labels"] = predict(model, dataset, batch_size, device)
    costs, backbone_cost = head_costs(model, spec.input_shape)
    if spec.truncate_at is not None:
        # A static model's 100% budget is still the full backbone's cost.
        full_model = build_model(ModelSpec.from_dict({**saved["spec"], "truncate_at": None}))
        _, backbone_cost = head_costs(full_model, spec.input_shape)
    save_npz(
        out, **arrays, head_flops=np.asarray(costs, dtype=np.float64), backbone_flops=np.float64(backbone_cost),
        multilabel=np.bool_(info.multilabel), head_blocks=np.asarray(model.head_blocks),
        meta=np.array(json.dumps(saved["meta"])),
    )
