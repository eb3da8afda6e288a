"""GPU acceptance: the CUDA code paths, a paper-scale slice end to end and the training-step benchmark, in one
run of at most 8 minutes on one GPU, with one summary file (issue 26).

Steps, each timed and given a status (passed, failed, or skipped with why) in the summary:

1. ``synthetic_cifar10``: CIFAR-10 in its official python-pickle layout (cifar-10-batches-py/, five data batches,
   test_batch, batches.meta), random images around a fixed template per class (so one epoch learns something).
2. The slice, through the ``eebench`` CLI's own subcommands (``eebench.cli.run``, in this process) with the
   arguments the workflow's rules pass (``eebench.targets``) for a temporary config checked as the workflow
   checks it: ``prepare`` (prepare-data), ``train_<model>`` (train, joint regime, 1 epoch, with ``--logits`` as
   the workflow trains), ``cache_<model>`` (cache-logits, and the same logits as the training job's cache),
   ``sweep_<model>`` (metrics: the sweeps and budget tables of the run), ``table`` (render-table: a ``settings``
   table, paper B Table 1's layout, of both models). The models are ResNet-20 with SDN ICs after every block
   (config/paper/b_analysis_resnet20_cifar10.yaml) and ViT-T with linear ICs (E.3's sizes,
   ``eebench.models.backbones.VIT_SIZES["vit_t_cifar"]``; 2 of its 7 layers with ``--cpu``); the dataset has
   E.1's CutMix and Mixup; training and caching run at ``precision: auto`` and ``memory_format: auto``.
3. The CUDA paths, seen from outside while the slice trains (torch's global module forward hooks and the
   DataLoader's iterator, observation only): ``bf16_autocast`` (convolutions and linear layers run under bf16
   autocast and return bf16), ``channels_last`` (convolution weights and their inputs channels-last),
   ``pinned_memory`` (every loader pins, its batches are in pinned host memory).
4. ``data_parallel`` and ``sync_batchnorm``: one process under torchrun (``torch.distributed.run --standalone
   --nproc-per-node 1``, WORLD_SIZE=1) joins a process group with the backend ``process_world`` picks (nccl on a
   GPU, gloo on the CPU; ``process_world`` itself joins none at WORLD_SIZE=1, so the worker joins it), makes the
   batch norms synchronised (``sync_batchnorm``: ``nn.SyncBatchNorm`` on a GPU, ``CpuSyncBatchNorm`` on the
   CPU), wraps the model in DDP as ``World.wrap`` does and trains an epoch of ResNet-20 steps with the loop's
   placement, plus an all-reduce.
5. ``train_step_benchmark``: benchmarks/train_step.py (the loop's throughput against a bare PyTorch loop), run
   as it is; on a GPU the ratio must reach its goal (>= 0.9).
6. ``time_budget``: the whole run within 8 minutes (GPU mode).

Sizes (GPU mode, the default): 50,000 training images (45,000 train + 5,000 val after the split) and 10,000 test
images, as CIFAR-10; ResNet-20 at batch 128 (E.1's) and ViT-T at batch 256 (E.3's), 1 epoch each (~352 and ~176
steps), 4 loader workers, eval batch 1024; the data-parallel check 1,024 images at batch 128 (8 steps); the
benchmark at train_step.py's defaults (ResNet-18, 32x32, batch 128, 2,048 images x 2 epochs after a warm-up
epoch, each loop). Bounded by construction: measured on 2 CPU cores, writing the images takes 6 s, prepare-data
12 s, each run's metrics at this size under 1 s, and the augmented training loader yields 24,000 images/s in one
process (so ~2 s an epoch with 4 workers); the GPU work is ~530 small training steps plus ~50 of the benchmark
and 30,000 + 30,000 cached images. Expected on one H100 (not yet measured there): about 2-3 minutes; the
8-minute bound is checked (``time_budget``) rather than assumed. ``--cpu`` runs the same steps on the CPU (CUDA
hidden) at a toy size: 100 training images (90 train + 10 val) and 50 test, ViT-T cut to 2 layers, the
data-parallel check 64 images, the benchmark on the ``cnn`` backbone at 8x8 (256 images, 1 epoch); 10-30 s on
2 shared cores. The GPU-only checks are then skipped with the reason, and fail if "auto" changed anything on the CPU.
tests/test_gpu_acceptance.py runs it.

    python benchmarks/gpu_acceptance.py                      # on a GPU node; writes gpu_acceptance.json
    python benchmarks/gpu_acceptance.py --cpu --out cpu_acceptance.json --workdir /tmp/acceptance

The exit status is 0 when no step failed. ``--workdir`` keeps the slice's files (data, results/, paper/tables/);
without it they go to a temporary directory removed at the end.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import logging
import os
import pickle
import platform
import re
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable

import numpy as np

BENCHMARKS = Path(__file__).resolve().parent
GPU_BUDGET_SECONDS = 8 * 60
MODELS = ("resnet20", "vit_t")  # step suffixes; config names below
CONFIG_MODELS = {"resnet20": "resnet20_cifar10", "vit_t": "vit_t_cifar10"}
TABLE = "slice"
REGIME, SEED = "joint", 0


@dataclass(frozen=True)
class Sizes:
    """How big each step is in a mode (see the module docstring for the expected times)."""

    images_per_batch_file: int  # CIFAR-10 has five training batch files
    test_images: int
    vit_layers: int
    resnet_batch: int
    vit_batch: int
    eval_batch: int
    num_workers: int
    data_parallel_images: int
    data_parallel_batch: int
    benchmark_args: tuple[str, ...]

    @property
    def train_images(self) -> int:
        return 5 * self.images_per_batch_file


GPU_SIZES = Sizes(images_per_batch_file=10_000, test_images=10_000, vit_layers=7, resnet_batch=128, vit_batch=256,
                  eval_batch=1024, num_workers=4, data_parallel_images=1024, data_parallel_batch=128,
                  benchmark_args=())  # train_step.py's defaults: ResNet-18, 32x32, batch 128, 2048 x 2 epochs
CPU_SIZES = Sizes(images_per_batch_file=20, test_images=50, vit_layers=2, resnet_batch=32, vit_batch=32,
                  eval_batch=256, num_workers=0, data_parallel_images=64, data_parallel_batch=32,
                  benchmark_args=("--backbone", "cnn", "--size", "8", "--channels", "1", "--batch", "64",
                                  "--samples", "256", "--epochs", "1", "--threads", "2"))


@dataclass
class Step:
    """One step's line of the summary."""

    name: str
    status: str = "skipped"  # passed | failed | skipped
    seconds: float = 0.0
    reason: str = ""  # why it failed or was skipped
    details: dict[str, Any] = field(default_factory=dict)


class StepFailed(Exception):
    """A check that did not hold; its message is the step's reason."""


class Acceptance:
    """Runs the steps in order, each timed; a step whose prerequisite did not pass is skipped, saying which."""

    def __init__(self) -> None:
        self.steps: dict[str, Step] = {}

    def run(self, name: str, action: Callable[[Step], None], needs: tuple[str, ...] = ()) -> Step:
        step = self.steps[name] = Step(name)
        missing = [need for need in needs if self.steps.get(need) is None or self.steps[need].status != "passed"]
        if missing:
            step.reason = f"needs {', '.join(missing)}, which did not pass"
            return step
        print(f"gpu_acceptance: {name} ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        try:
            action(step)
            if step.status == "skipped" and not step.reason:
                step.status = "passed"
        except StepFailed as failure:
            step.status, step.reason = "failed", str(failure)
        except (Exception, SystemExit) as error:  # an unexpected error (or exit) fails this step; later ones still run
            traceback.print_exc()
            step.status, step.reason = "failed", f"{type(error).__name__}: {error}".splitlines()[0]
        step.seconds = round(time.perf_counter() - started, 3)
        return step

    def skip(self, name: str, reason: str, **details: Any) -> None:
        self.steps[name] = Step(name, "skipped", 0.0, reason, details)


# --- Synthetic CIFAR-10 --------------------------------------------------------------------------------------


CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def write_cifar10(root: Path, images_per_batch_file: int, test_images: int, seed: int = 0) -> None:
    """root/cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta} as the official pickles (the layout of
    tests/data/vision_fixtures.py's writer, at any size): each image is its class's fixed random template plus
    uniform noise, classes balanced and shuffled."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    templates = rng.integers(64, 192, (10, 3072), dtype=np.int16)

    def batch(n: int, name: str) -> dict[bytes, Any]:
        labels = rng.permutation(np.arange(n) % 10)
        noise = rng.integers(-64, 65, (n, 3072), dtype=np.int16)
        data = np.clip(templates[labels] + noise, 0, 255).astype(np.uint8)
        return {b"batch_label": name.encode(), b"labels": labels.tolist(), b"data": data,
                b"filenames": [f"{name.replace(' ', '_')}_{i}.png".encode() for i in range(n)]}

    contents = {f"data_batch_{b}": batch(images_per_batch_file, f"training batch {b} of 5") for b in range(1, 6)}
    contents["test_batch"] = batch(test_images, "testing batch 1 of 1")
    contents["batches.meta"] = {b"label_names": [n.encode() for n in CIFAR10_NAMES],
                                b"num_cases_per_batch": images_per_batch_file, b"num_vis": 3072}
    for name, content in contents.items():
        with open(folder / name, "wb") as handle:
            pickle.dump(content, handle)


# --- The slice's config and CLI calls ------------------------------------------------------------------------


def slice_config(root: Path, sizes: Sizes) -> dict[str, Any]:
    """A paper-like slice: paper B's ResNet-20 / CIFAR-10 analysis setting and E.3's ViT-T, 1 epoch, one seed,
    one Table-1-layout table of both; lr 5e-4 and no weight decay as E.1 and E.3."""
    from eebench.models.backbones import VIT_SIZES

    vit = {**VIT_SIZES["vit_t_cifar"], "num_layers": sizes.vit_layers}
    return {
        "scale": "paper",
        "seeds": [SEED],
        "datasets": {"cifar10": {"root": str(root), "split_seed": 0, "val_fraction": 0.1,
                                 "cutmix_alpha": 1.0, "mixup_alpha": 0.8}},  # E.1's
        "training": {"batch_size": sizes.resnet_batch, "lr": 0.0005, "weight_decay": 0.0, "max_epochs": 1,
                     "patience": 1, "restart_epochs": 1, "augment": True, "eval_batch_size": sizes.eval_batch,
                     "num_workers": sizes.num_workers, "precision": "auto", "memory_format": "auto"},
        "models": {
            CONFIG_MODELS["resnet20"]: {"dataset": "cifar10", "backbone": "resnet20", "params": {},
                                        "ic": {"type": "sdn"}, "placement": None},
            CONFIG_MODELS["vit_t"]: {"dataset": "cifar10", "backbone": "vit", "params": vit,
                                     "ic": {"type": "linear"}, "placement": None,
                                     "training": {"batch_size": sizes.vit_batch}},
        },
        "sweep": {"max_points": 0},
        "budgets": [0.25, 0.5, 0.75, 1.0],
        "tables": {TABLE: {
            "kind": "settings",
            "settings": [{"model": CONFIG_MODELS["resnet20"], "label": "ResNet-20 C-10"},
                         {"model": CONFIG_MODELS["vit_t"], "label": "ViT-T C-10"}],
            "criterion": "confidence", "regimes": [REGIME], "rule": "last",
            "caption": "GPU acceptance slice: synthetic CIFAR-10, 1 epoch (not a result).",
        }},
    }


def eebench(*argv: Any) -> None:
    """One ``eebench`` command, run by the CLI's own ``run`` in this process; a non-zero status fails the step with
    the command's error line (also passed on to stderr)."""
    from eebench.cli import run

    words = [str(word) for word in argv]
    errors = io.StringIO()
    with contextlib.redirect_stderr(errors):  # the CLI's one-line error; the log keeps its own stream
        try:
            status = run(words)
        except SystemExit as exit:  # argparse refusing the arguments, or a preempted training job
            status = exit.code
    sys.stderr.write(errors.getvalue())
    if status != 0:
        lines = errors.getvalue().strip().splitlines()
        raise StepFailed(f"eebench {words[0]} exited {status}: {lines[-1] if lines else '(no message)'}")


def as_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


# --- Seeing the CUDA paths from outside ----------------------------------------------------------------------


class Observer:
    """What training did on the device, seen through torch's global module forward hooks (the first convolution
    and linear layer run on ``device`` in training mode with gradients; not a forward at build time, on the CPU)
    and the DataLoader's iterator (each loader's first batch). Observation only: nothing the loop computes
    changes."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.layers: dict[str, dict[str, Any]] = {}
        self.loaders: list[dict[str, Any]] = []

    def forward_hook(self, module, inputs, output) -> None:
        import torch
        from torch import nn

        kind = "conv" if isinstance(module, nn.Conv2d) else "linear" if isinstance(module, nn.Linear) else None
        if (kind is None or kind in self.layers or module.weight.device.type != self.device
                or not (module.training and torch.is_grad_enabled())):
            return
        seen = {"module": type(module).__name__, "weight_shape": list(module.weight.shape),
                "autocast": (str(torch.get_autocast_dtype(self.device)) if torch.is_autocast_enabled(self.device)
                             else None),
                "output_dtype": str(output.dtype)}
        if kind == "conv":
            seen["weight_channels_last"] = module.weight.is_contiguous(memory_format=torch.channels_last)
            seen["input_channels_last"] = inputs[0].is_contiguous(memory_format=torch.channels_last)
        self.layers[kind] = seen

    @contextlib.contextmanager
    def watching(self):
        import torch
        from torch.utils.data import DataLoader

        original = DataLoader.__iter__
        observer = self

        def first_batch_seen(loader):
            for index, batch in enumerate(original(loader)):
                if index == 0:
                    x = batch[0] if isinstance(batch, (list, tuple)) else batch
                    observer.loaders.append({"training": torch.is_grad_enabled(),  # predict runs without
                                             "pin_memory": bool(loader.pin_memory), "workers": loader.num_workers,
                                             "pinned": bool(loader.pin_memory and x.is_pinned())})
                yield batch

        handle = torch.nn.modules.module.register_module_forward_hook(self.forward_hook)
        DataLoader.__iter__ = first_batch_seen
        try:
            yield self
        finally:
            DataLoader.__iter__ = original
            handle.remove()


# --- The data-parallel worker (run under torchrun) -----------------------------------------------------------


def train_step_module():
    """benchmarks/train_step.py as a module (its bare loop and its main), not copied."""
    spec = importlib.util.spec_from_file_location("train_step", BENCHMARKS / "train_step.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def data_parallel_worker(out: Path, sizes: Sizes) -> None:
    """One torchrun worker: join the process group with the backend ``process_world`` picks, synchronise batch
    norm, wrap in DDP as ``World.wrap`` does, train an epoch of ResNet-20 steps with the loop's placement, and
    write what it saw as JSON (rank 0)."""
    import torch
    import torch.distributed as dist
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    from eebench.models import ModelSpec, build_model
    from eebench.training import TrainingConfig
    from eebench.training.distributed import CpuSyncBatchNorm, sync_batchnorm
    from eebench.training.placement import Placement

    if torch.cuda.is_available():  # as process_world: one GPU per local rank, nccl
        device, backend = torch.device("cuda", int(os.environ["LOCAL_RANK"])), "nccl"
        torch.cuda.set_device(device)
    else:
        device, backend = torch.device("cpu"), "gloo"
    dist.init_process_group(backend, timeout=timedelta(minutes=2))  # a hung collective fails the step, not the run
    try:
        rank, world_size = dist.get_rank(), dist.get_world_size()
        spec = ModelSpec("resnet20", {}, (3, 32, 32), 10, ic={"type": "sdn"}, placement=None)
        model = build_model(spec, seed=0).to(device)
        sync_batchnorm(model, device)
        config = TrainingConfig(batch_size=sizes.data_parallel_batch)  # precision and memory_format: auto
        placement = Placement.of(config, device, convolutional=True)
        placement.prepare(model)
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=False)
        before = [p.detach().clone() for p in model.parameters()]
        g = torch.Generator().manual_seed(rank)
        images = torch.randn(sizes.data_parallel_images, 3, 32, 32, generator=g)
        data = TensorDataset(images, torch.randint(0, 10, (sizes.data_parallel_images,), generator=g))
        loader = DataLoader(data, batch_size=sizes.data_parallel_batch, shuffle=True, pin_memory=placement.pin_memory)
        optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr)
        train_step_module().bare_epoch(net, loader, optimizer, placement)
        if device.type == "cuda":
            torch.cuda.synchronize()
        total = torch.full((1,), float(rank + 1), device=device)
        dist.all_reduce(total)
        sync_types = (nn.SyncBatchNorm, CpuSyncBatchNorm)
        report = {
            "backend": dist.get_backend(), "world_size": world_size, "WORLD_SIZE": os.environ.get("WORLD_SIZE"),
            "device": str(device), "wrapper": type(net).__name__,
            "sync_batchnorm": sorted({type(m).__name__ for m in net.modules() if isinstance(m, sync_types)}),
            "sync_batchnorm_layers": sum(isinstance(m, sync_types) for m in net.modules()),
            "unsynchronised_batchnorm_layers": sum(isinstance(m, nn.modules.batchnorm._BatchNorm)
                                                   and not isinstance(m, sync_types) for m in net.modules()),
            "steps": len(loader), "autocast": str(placement.autocast_dtype), "channels_last": placement.channels_last,
            "all_reduce_sum": total.item(), "all_reduce_expected": world_size * (world_size + 1) / 2,
            "parameters_changed": any(not torch.equal(a, b.detach()) for a, b in zip(before, model.parameters())),
            "parameters_finite": all(bool(torch.isfinite(p).all()) for p in model.parameters()),
        }
        if rank == 0:
            out.write_text(json.dumps(report, indent=1))
    finally:
        dist.destroy_process_group()


# --- The steps -----------------------------------------------------------------------------------------------


def run_acceptance(cpu: bool, workdir: Path, sizes: Sizes) -> Acceptance:
    import torch

    # The CLI's log format, bound to the real stderr here (eebench() catches only the CLI's error line).
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    acceptance = Acceptance()
    root = workdir / "data" / "cifar10"
    observed: dict[str, Observer] = {}
    config: dict[str, Any] = {}

    def synthetic(step: Step) -> None:
        write_cifar10(root, sizes.images_per_batch_file, sizes.test_images)
        step.details = {"root": str(root), "train_images": sizes.train_images, "test_images": sizes.test_images}

    def prepare(step: Step) -> None:
        from eebench import config as ee
        from eebench import targets

        path = workdir / "slice.yaml"
        path.write_text(json.dumps(slice_config(root, sizes), indent=1))  # JSON is YAML
        config.update(targets.checked_config(path))  # as the workflow checks it when it loads
        eebench("prepare-data", "--dataset", ee.dataset_loader(config, "cifar10"),
                "--params", as_json(ee.dataset_params(config, "cifar10")), "--out", targets.data_path("cifar10"))
        step.details = {"config": str(path), "data": targets.data_path("cifar10")}

    def train_images() -> int:
        from eebench import targets

        with np.load(targets.data_path("cifar10")) as prepared:  # the split's rows, never the images
            return len(prepared["y_train"])

    def train(short: str) -> Callable[[Step], None]:
        def action(step: Step) -> None:
            from eebench import targets

            model = CONFIG_MODELS[short]
            out = targets.model_path(model, REGIME, SEED)
            observer = observed[short] = Observer("cpu" if cpu else "cuda")
            with observer.watching():
                eebench("train", "--data", targets.data_path("cifar10"),
                        "--model", as_json(targets.train_settings(config, model, REGIME)),
                        "--training", as_json(targets.training_settings(config, model, REGIME)),
                        "--meta", as_json(targets.run_meta(config, model)), "--regime", REGIME, "--seed", SEED,
                        "--nproc", 1, "--out", out, "--logits", targets.logits_path(out))
            history = torch.load(out, map_location="cpu", weights_only=False)["history"]
            seconds = sum(entry["seconds"] for entry in history)
            step.details = {"model": out, "epochs": len(history), "epoch_seconds": round(seconds, 2),
                            # the epoch's training images over its time, its validation pass included
                            "images_per_second": round(train_images() / seconds, 1),
                            "val_scores": history[-1]["val_scores"],
                            "layers": observer.layers, "loaders": observer.loaders}
        return action

    def cache(short: str) -> Callable[[Step], None]:
        def action(step: Step) -> None:
            from eebench import targets

            model_file = targets.model_path(CONFIG_MODELS[short], REGIME, SEED)
            out = f"results/cache/{CONFIG_MODELS[short]}.npz"
            eebench("cache-logits", "--checkpoint", model_file, "--data", targets.data_path("cifar10"), "--out", out)
            with np.load(out) as ours, np.load(targets.logits_path(model_file)) as training:
                difference = max(float(np.abs(ours[f"{split}_logits"] - training[f"{split}_logits"]).max())
                                 for split in ("val", "test"))
                scale = max(float(np.abs(ours[f"{split}_logits"]).max()) for split in ("val", "test"))
                logits, labels = ours["test_logits"], ours["test_labels"]
            step.details = {"cache": out, "heads": logits.shape[0], "test_logits_shape": list(logits.shape),
                            "max_difference_from_training_cache": difference, "largest_logit": scale,
                            "test_accuracy_last_head": float((logits[-1].argmax(-1) == labels).mean())}
            # The package says either path writes the same floats (both predict in fp32 on a contiguous model).
            # On the CPU they must; on a GPU cuDNN may pick another convolution algorithm per process, which
            # accumulates in another order.
            tolerance = 0.0 if cpu else 1e-3 * max(1.0, scale)
            if difference > tolerance:
                raise StepFailed(f"cache-logits differs from the training job's cache by {difference:.3g} "
                                 f"(tolerance {tolerance:.3g})")
        return action

    def sweep(short: str) -> Callable[[Step], None]:
        def action(step: Step) -> None:
            from eebench import targets

            model = CONFIG_MODELS[short]
            out = targets.metrics_dir(model, REGIME, SEED)
            plan = targets.metrics_plan(config, model, REGIME, SEED)
            eebench("metrics", "--logits", targets.logits_path(targets.model_path(model, REGIME, SEED)),
                    "--plan", as_json(plan), "--out", out)
            files = sorted(str(p.relative_to(out)) for p in Path(out).rglob("*.csv"))
            if not files:
                raise StepFailed(f"eebench metrics wrote no CSV under {out}")
            step.details = {"metrics": out, "files": files}
        return action

    def table(step: Step) -> None:
        from eebench import targets

        out = Path("paper/tables") / f"{TABLE}.tex"
        eebench("render-table", "--kind", config["tables"][TABLE]["kind"],
                "--spec", as_json(targets.render_spec(config, "tables", TABLE)),
                "--inputs", *targets.render_inputs(config, "tables", TABLE), "--out", out)
        numbers = out.with_suffix(".csv")
        for path in (out, numbers):
            if not path.is_file() or path.stat().st_size == 0:
                raise StepFailed(f"render-table wrote no {path}")
        step.details = {"tex": str(workdir / out), "csv": str(workdir / numbers), "numbers": numbers.read_text()}

    with contextlib.chdir(workdir):  # the workflow's relative result paths (results/, paper/)
        acceptance.run("synthetic_cifar10", synthetic)
        acceptance.run("prepare", prepare, needs=("synthetic_cifar10",))
        for short in MODELS:
            acceptance.run(f"train_{short}", train(short), needs=("prepare",))
        for short in MODELS:
            acceptance.run(f"cache_{short}", cache(short), needs=(f"train_{short}",))
        for short in MODELS:
            acceptance.run(f"sweep_{short}", sweep(short), needs=(f"train_{short}",))
        acceptance.run("table", table, needs=tuple(f"sweep_{short}" for short in MODELS))

    trained = [short for short in MODELS if acceptance.steps[f"train_{short}"].status == "passed"]
    for name, check in (("bf16_autocast", check_autocast), ("channels_last", check_channels_last),
                        ("pinned_memory", check_pinned)):
        if not trained:
            acceptance.skip(name, "no model trained")
            continue
        acceptance.run(name, lambda step, check=check: check(step, {s: observed[s] for s in trained}, cpu))

    dp_out = workdir / "data_parallel.json"
    acceptance.run("data_parallel", lambda step: data_parallel(step, dp_out, cpu))
    acceptance.run("sync_batchnorm", lambda step: check_sync_batchnorm(step, dp_out, cpu), needs=("data_parallel",))
    acceptance.run("train_step_benchmark", lambda step: benchmark(step, sizes, cpu))
    return acceptance


def _gpu_only(step: Step, cpu: bool, what: str, changed: list[str]) -> bool:
    """On the CPU: fail if "auto" changed something there, else skip saying why. True when the GPU check runs."""
    if not cpu:
        return True
    if changed:
        raise StepFailed(f"'auto' must change nothing on the CPU, but {what}: {'; '.join(changed)}")
    step.reason = f"CPU mode: 'auto' keeps the CPU's run unchanged (observed: no {what}); needs a CUDA GPU"
    return False


def check_autocast(step: Step, observed: dict[str, Observer], cpu: bool) -> None:
    seen = {short: obs.layers for short, obs in observed.items()}
    step.details = {"layers": seen}
    autocast = [f"{short} {kind} under {layer['autocast']}" for short, layers in seen.items()
                for kind, layer in layers.items() if layer["autocast"] is not None]
    if not _gpu_only(step, cpu, "autocast", autocast):
        return
    wrong = [f"{short} {kind}: autocast {layer['autocast']}, output {layer['output_dtype']}"
             for short, layers in seen.items() for kind, layer in layers.items()
             if layer["autocast"] != "torch.bfloat16" or layer["output_dtype"] != "torch.bfloat16"]
    missing = [short for short, layers in seen.items() if not layers]
    if wrong or missing:
        raise StepFailed("not bf16 autocast: " + "; ".join(wrong + [f"{m}: no layer seen" for m in missing]))


def check_channels_last(step: Step, observed: dict[str, Observer], cpu: bool) -> None:
    convs = {short: obs.layers.get("conv") for short, obs in observed.items()}
    step.details = {"first_convolution": convs}
    changed = [f"{short} conv weight" for short, conv in convs.items() if conv and conv["weight_channels_last"]]
    if not _gpu_only(step, cpu, "channels-last weights", changed):
        return
    wrong = [f"{short}: {'no convolution seen' if conv is None else conv}" for short, conv in convs.items()
             if conv is None or not (conv["weight_channels_last"] and conv["input_channels_last"])]
    if wrong:
        raise StepFailed("not channels-last: " + "; ".join(wrong))


def check_pinned(step: Step, observed: dict[str, Observer], cpu: bool) -> None:
    loaders = {short: obs.loaders for short, obs in observed.items()}
    step.details = {"loaders": loaders}
    pinned = [f"{short} loader {i}" for short, seen in loaders.items() for i, l in enumerate(seen) if l["pin_memory"]]
    if not _gpu_only(step, cpu, "pinned loaders", pinned):
        return
    wrong = [f"{short} loader {i}: {l}" for short, seen in loaders.items() for i, l in enumerate(seen)
             if not (l["pin_memory"] and l["pinned"])]
    if wrong or not all(loaders.values()):
        raise StepFailed("not pinned: " + "; ".join(wrong or ["no loader seen"]))


def data_parallel(step: Step, out: Path, cpu: bool) -> None:
    """The worker under torchrun, one process (WORLD_SIZE=1); the launcher runs in this process, as
    ``eebench.training.distributed.launch`` runs it for ``eebench train --nproc N``."""
    from torch.distributed.run import parse_args, run

    args = parse_args(["--standalone", "--nproc-per-node=1", str(Path(__file__).resolve())])
    # Set after parsing, as launch does: torchrun's parser would take the worker's options for its own.
    args.training_script_args = ["--data-parallel-worker", str(out), *(["--cpu"] if cpu else [])]
    out.unlink(missing_ok=True)  # a kept --workdir's report from an earlier run
    try:
        run(args)
    except Exception as error:  # ChildFailedError: the worker's traceback is already on stderr
        lines = str(error).strip().splitlines() or [type(error).__name__]
        raise StepFailed(f"torchrun worker failed: {lines[0]}") from None
    if not out.is_file():
        raise StepFailed(f"the torchrun worker wrote no {out}")
    report = json.loads(out.read_text())
    step.details = report
    expected = "gloo" if cpu else "nccl"
    problems = []
    if report["backend"] != expected:
        problems.append(f"backend {report['backend']}, expected {expected}")
    if report["WORLD_SIZE"] != "1" or report["world_size"] != 1:
        problems.append(f"WORLD_SIZE {report['WORLD_SIZE']}, group size {report['world_size']}")
    if report["wrapper"] != "DistributedDataParallel":
        problems.append(f"wrapped in {report['wrapper']}")
    if report["all_reduce_sum"] != report["all_reduce_expected"]:
        problems.append(f"all_reduce gave {report['all_reduce_sum']}")
    if not (report["parameters_changed"] and report["parameters_finite"]):
        problems.append("the DDP steps left the parameters unchanged or not finite")
    if problems:
        raise StepFailed("; ".join(problems))


def check_sync_batchnorm(step: Step, out: Path, cpu: bool) -> None:
    report = json.loads(out.read_text())
    expected = "CpuSyncBatchNorm" if cpu else "SyncBatchNorm"
    step.details = {key: report[key] for key in ("sync_batchnorm", "sync_batchnorm_layers",
                                                 "unsynchronised_batchnorm_layers")}
    if report["sync_batchnorm"] != [expected] or report["unsynchronised_batchnorm_layers"]:
        raise StepFailed(f"expected every batch norm a {expected}: {step.details}")


def benchmark(step: Step, sizes: Sizes, cpu: bool) -> None:
    """benchmarks/train_step.py as it is, its printed throughputs parsed."""
    import torch

    module = train_step_module()
    threads, argv = torch.get_num_threads(), sys.argv
    printed = io.StringIO()
    try:
        sys.argv = ["train_step.py", *sizes.benchmark_args]
        with contextlib.redirect_stdout(printed):
            module.main()
    finally:
        sys.argv = argv
        torch.set_num_threads(threads)
    text = printed.getvalue()
    print(text, file=sys.stderr, end="")
    bare = re.search(r"bare loop:\s+([\d.]+) samples/s", text)
    pipeline = re.search(r"pipeline loop:\s+([\d.]+) samples/s\s+ratio ([\d.]+)", text)
    if not (bare and pipeline):
        raise StepFailed(f"could not read train_step.py's output: {text.strip()[-200:]}")
    ratio = float(pipeline.group(2))
    step.details = {"arguments": list(sizes.benchmark_args) or "defaults", "printed": text.strip().splitlines(),
                    "bare_samples_per_second": float(bare.group(1)),
                    "pipeline_samples_per_second": float(pipeline.group(1)), "ratio": ratio}
    if cpu:
        step.details["goal"] = "not judged: a toy size on a shared CPU (the goal, >= 0.9, is the GPU's)"
    elif ratio < 0.9:
        raise StepFailed(f"pipeline / bare = {ratio:.3f}, below the goal 0.9")


# --- Summary -------------------------------------------------------------------------------------------------


def device_description(cpu: bool) -> str:
    import torch

    if cpu or not torch.cuda.is_available():
        return f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"
    return f"{torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda}, bf16 {torch.cuda.is_bf16_supported()})"


def summary(acceptance: Acceptance, cpu: bool, sizes: Sizes, seconds: float, workdir: Path | None) -> dict[str, Any]:
    import torch

    steps = list(acceptance.steps.values())
    return {
        "mode": "cpu" if cpu else "gpu",
        "device": device_description(cpu),
        "torch": torch.__version__,
        "sizes": asdict(sizes),
        "seconds": round(seconds, 1),
        "budget_seconds": GPU_BUDGET_SECONDS,
        "workdir": str(workdir) if workdir else None,
        "passed": not any(step.status == "failed" for step in steps),
        "steps": [asdict(step) for step in steps],
    }


def text_table(result: dict[str, Any]) -> str:
    lines = [f"GPU acceptance ({result['mode']} mode, {result['device']}): {result['seconds']:.1f} s, "
             f"{'passed' if result['passed'] else 'FAILED'}",
             f"{'step':<22} {'status':<8} {'seconds':>8}  note"]
    for step in result["steps"]:
        note = step["reason"]
        if not note and step["name"] == "train_step_benchmark":
            note = f"pipeline / bare = {step['details']['ratio']:.3f}"
        lines.append(f"{step['name']:<22} {step['status']:<8} {step['seconds']:>8.2f}  {note[:100]}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpu", action="store_true", help="the same steps on the CPU (CUDA hidden), toy sizes")
    parser.add_argument("--out", default="gpu_acceptance.json", help="the summary file (JSON)")
    parser.add_argument("--workdir", default=None, help="keep the slice's files here (default: a temporary "
                                                        "directory, removed)")
    parser.add_argument("--data-parallel-worker", default=None, metavar="OUT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cpu:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # before torch first looks: every step then runs on the CPU
    sizes = CPU_SIZES if args.cpu else GPU_SIZES
    if args.data_parallel_worker:
        data_parallel_worker(Path(args.data_parallel_worker), sizes)
        return 0

    import torch

    if not args.cpu and not torch.cuda.is_available():
        print("gpu_acceptance: no CUDA GPU here; use --cpu for the CPU mode", file=sys.stderr)
        return 2
    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        if args.workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gpu_acceptance_")))
        else:
            workdir = Path(args.workdir).resolve()
            workdir.mkdir(parents=True, exist_ok=True)
        acceptance = run_acceptance(args.cpu, workdir, sizes)
        seconds = time.perf_counter() - started
        if args.cpu:
            acceptance.skip("time_budget", f"CPU mode: the {GPU_BUDGET_SECONDS // 60}-minute bound is the GPU "
                                           f"mode's (this run: {seconds:.1f} s)", seconds=round(seconds, 1))
        else:
            step = acceptance.steps["time_budget"] = Step("time_budget", "passed", round(seconds, 1))
            if seconds > GPU_BUDGET_SECONDS:
                step.status, step.reason = "failed", f"{seconds:.0f} s, over {GPU_BUDGET_SECONDS} s"
        result = summary(acceptance, args.cpu, sizes, seconds, None if args.workdir is None else workdir)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(text_table(result))
    print(f"summary: {out}")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
