"""File-level steps: each reads its inputs from disk and writes one output atomically. The CLI exposes each
step as a subcommand and every Snakemake rule calls one of them."""
from __future__ import annotations

import contextlib
import logging
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from eebench.data import load_split, read_info
from eebench.data.core import inputs_fingerprint, load_augmented_validation
from eebench.io import (
    MODEL_CHECKPOINT, PREPARED_DATASET, ResultFileError, load_state_dict, read_checkpoint, read_npz,
    save_torch,
)
from eebench.logit_cache import write_cache
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


def data_identity(data_path: str | Path) -> dict[str, Any]:
    """What a model is trained on, as its checkpoint records it (``data``) and :func:`check_trained_on` compares
    it: the prepared dataset's name, task, class count and input shape, every array's shape, and the SHA-256 of
    the arrays (name, dtype, shape and bytes of each, by name). The arrays, not the file: re-preparing a dataset
    the same way gives the same identity (the archive's timestamps differ), and the preparation ``params``
    (which name local directories) are left out."""
    import hashlib

    from eebench.data.core import _stored_info  # read_info's check of the arrays read here (one read, not two)

    arrays = read_npz(data_path, PREPARED_DATASET, keys=("info",))
    info = _stored_info(data_path, arrays)
    digest, shapes = hashlib.sha256(), {}
    for key in sorted(set(arrays) - {"info", "params"}):
        value = np.ascontiguousarray(arrays[key])
        shapes[key] = list(value.shape)
        digest.update(f"{key}|{value.dtype.str}|{value.shape}|".encode())
        digest.update(value.reshape(-1).view(np.uint8) if value.size else b"")
    return {"dataset": info.name, "task": info.task, "num_classes": info.num_classes,
            "input_shape": list(info.input_shape), "arrays": shapes, "sha256": digest.hexdigest()}


def check_trained_on(saved: dict[str, Any], checkpoint: str | Path, data: str | Path,
                     identity: dict[str, Any] | None = None) -> None:
    """Refuse ``data`` unless it is the prepared dataset the model ``checkpoint`` (read: ``saved``) was trained on:
    its recorded ``data`` identity (:func:`data_identity`) must be ``data``'s, else ResultFileError naming
    ``data``, ``checkpoint`` and the first difference (dataset, task, classes, input shape, an array's shape,
    then the content). A checkpoint from before identities were recorded cannot tell: it is accepted with a
    warning, once the input shape and class count of its spec fit ``data``."""
    expected = "the prepared dataset the checkpoint was trained on"
    recorded = saved.get("data")
    if recorded is None:
        info = read_info(data)
        spec = saved["spec"] if isinstance(saved["spec"], dict) else {}  # a spec that builds nothing: model_of's
        for what, here, there in (("input shape", list(info.input_shape), spec.get("input_shape")),
                                  ("classes", info.num_classes, spec.get("num_classes"))):
            there = list(there) if isinstance(there, (list, tuple)) else there
            if there is not None and here != there:
                raise ResultFileError(data, f"does not fit the model of {checkpoint}: {what} {here} here, {there} "
                                            f"in the model", expected)
        log.warning("%s records no identity of its training data (written before eebench recorded it): %s is "
                    "taken on trust to be that data", checkpoint, data)
        return
    if not isinstance(recorded, dict):
        raise ResultFileError(checkpoint, f"its 'data' is a {type(recorded).__name__}, not the identity of its "
                                          f"training data", MODEL_CHECKPOINT)
    current = data_identity(data) if identity is None else identity
    differences = [(label, current.get(field), recorded.get(field)) for field, label in (
        ("dataset", "dataset"), ("task", "task"), ("num_classes", "classes"), ("input_shape", "input shape"))]
    arrays_here, arrays_there = current["arrays"], recorded.get("arrays") or {}
    differences += [(f"array {key!r} of shape", arrays_here.get(key), arrays_there.get(key))
                    for key in sorted({*arrays_here, *arrays_there})]
    for label, here, there in differences:
        if here != there:
            raise ResultFileError(data, f"not the data {checkpoint} was trained on: {label} {here!r} here, "
                                        f"{there!r} in training", expected)
    if current["sha256"] != recorded.get("sha256"):
        raise ResultFileError(data, f"not the data {checkpoint} was trained on: same dataset, classes and shapes, "
                                    f"other arrays (SHA-256 {current['sha256'][:12]}... here, "
                                    f"{str(recorded.get('sha256'))[:12]}... in training: prepared with other "
                                    f"parameters, e.g. split_seed, or from other files)", expected)


def _load_backbone(model: torch.nn.Module, spec: ModelSpec, init: str, data_path: str | Path,
                   identity: dict[str, Any]) -> list[dict]:
    """Start from a phase-1 run on the same data: its checkpoint must be the plain backbone of ``spec`` (no ICs);
    its weights fill the backbone group, and the ICs keep their fresh initialisation. Returns that run's
    training history (its epochs count towards this regime's training time, paper B §4.7)."""
    checkpoint = read_checkpoint(init, MODEL_CHECKPOINT, keys=("spec", "state_dict"))
    if ModelSpec.from_dict(checkpoint["spec"]) != spec.plain():
        raise ValueError(f"{init}: not the plain backbone of the requested model (its spec is "
                         f"{checkpoint['spec']}); train it with --regime backbone and the same network")
    check_trained_on(checkpoint, init, data_path, identity)
    load_state_dict(model, checkpoint["state_dict"], init, MODEL_CHECKPOINT, keys=backbone_state(model))
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
    with process_world() as world, contextlib.ExitStack() as held:
        identity = data_identity(data_path)  # what the checkpoint records of its data (before training reads it)
        # The weights start from a private generator (build_model), so the training stream below is the same
        # whatever ICs a variant has.
        model = build_model(spec, seed)
        torch.manual_seed(seed)
        np.random.seed(seed)
        init_history = _load_backbone(model, spec, init, data_path, identity) if init is not None else []
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
            # Held (locked) until the end: a second run on the file refuses (ResumeFile.held).
            resume_file = held.enter_context(ResumeFile(resume, fingerprint, restart=restart).held(world))
        history = train_phases(model, phases, train_set, val_set, info.task, config, seed, world.device,
                               resume=resume_file, world=world)
        if world.rank == 0:
            costs = model_costs(spec)
            save_torch(out, {
                "spec": spec.to_dict(), "state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
                "meta": meta, "training": training, "history": history, "init_history": init_history,
                "costs": costs, "task": info.task, "data": identity,
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


def check_checkpoints_data(checkpoints: Sequence[str], data: str) -> None:
    """Refuse ``data`` unless every checkpoint was trained on it (:func:`check_trained_on`; the data's identity
    computed once): what the analyses (layer profiles, mode connectivity, loss landscapes) check before they
    read a model on a dataset."""
    identity = data_identity(data)
    for checkpoint in checkpoints:
        check_trained_on(read_checkpoint(checkpoint, MODEL_CHECKPOINT, keys=("spec",)), checkpoint, data, identity)


def cache_logits(checkpoint: str, data: str, out: str, batch_size: int = CACHE_BATCH_SIZE) -> None:
    """One pass over validation and test for all heads -> logits [H, N, C], labels and per-head FLOPs.

    The FLOPs come from the checkpoint when training recorded them (counting them here would first import
    torch's compiler stack, ~2 s per job, which a training process has already paid), else they are counted.
    The workflow's training jobs write the cache themselves (``--logits``); this is the same cache from a
    checkpoint alone. ``data`` must be the prepared dataset the model was trained on (:func:`check_trained_on`),
    so that the cache's logits, labels and meta describe one run; the cache is refused, not written, otherwise."""
    from eebench.inference import model_of

    saved = read_checkpoint(checkpoint, MODEL_CHECKPOINT, keys=("spec", "state_dict", "meta"))
    check_trained_on(saved, checkpoint, data)
    model = model_of(saved, checkpoint)
    spec = ModelSpec.from_dict(saved["spec"])
    device = select_device()
    model.to(device)
    task = saved.get("task") or read_info(data).task  # checkpoints before tasks were recorded: the dataset's
    _write_cache(model, saved.get("costs") or model_costs(spec), data, out, saved["meta"], task, device,
                 batch_size)


def _write_cache(model: torch.nn.Module, costs: dict[str, Any], data: str, out: str, meta: dict, task: str,
                 device: torch.device, batch_size: int = CACHE_BATCH_SIZE) -> None:
    arrays: dict[str, Any] = {}
    # fp32 and the default memory layout whatever training used, so a cache is the same from either path (the
    # training job's, or cache-logits of its checkpoint): a channels-last model's convolutions round otherwise.
    model = model.to(memory_format=torch.contiguous_format)
    for split in ("val", "test"):
        dataset, _ = load_split(data, split)
        arrays[f"{split}_logits"], arrays[f"{split}_labels"] = predict(model, dataset, batch_size, device)
    # The writer checks what every reader checks (eebench.logit_cache), so a run cannot write a cache it would refuse.
    write_cache(out, **arrays, head_flops=costs["head_flops"], backbone_flops=costs["backbone_flops"], task=task,
                head_blocks=model.head_blocks, meta=meta, test_inputs=inputs_fingerprint(data, "test"))
