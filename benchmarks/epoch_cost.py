"""What one training epoch of the default config's CNN costs, against what its arithmetic would cost.

The model, data and training settings are the default config's (config.yaml ``models.cnn``: backbone ``cnn``,
widths [16, 32, 64, 64], strides [1, 2, 1, 2], an IC after every block, batch 64, AdamW: read from config.yaml at
run time). The data are the pipeline's own: the ``digits`` entry prepared into a temporary file (``eebench.data.prepare_dataset``,
split_seed 0, val/test fractions 0.2/0.2, so 1077 training and 360 validation images) and read back with
``load_split`` exactly as a training job reads it (train split augmented with the random 1-pixel shift, as
``training.augment: true`` asks). Everything runs on the CPU (the default run's device), at ``--threads`` torch
threads (the default pipeline runs 2 jobs side by side with 1 thread each: ``--threads 1`` is the relevant one).

It prints:

1. The epoch time of one ``joint`` phase through ``eebench.training.loop.train_phase`` (its per-epoch data
   order, per-step loss over every head, AdamW, the scheduler, the end-of-epoch validation and early-stopping
   bookkeeping), beside a FLOPs bound: (forward FLOPs per sample from ``eebench.models.head_costs``, i.e.
   ``torch.utils.flop_counter``, x 3 for forward + backward x training samples + forward FLOPs x validation
   samples) / the dense float32 ``torch.mm`` (2048 x 2048) throughput measured here at the same thread count.
   Then where the epoch's time goes: the training steps' parts (data, forward + loss, backward, optimizer)
   timed inside the bare loop, the validation pass (``predict``), and the rest of ``train_phase`` by difference.
2. The pipeline's training throughput against a bare PyTorch loop on the same model, data, batch and
   optimizer (DataLoader with shuffle, summed cross-entropy over the heads, AdamW): samples/s and the ratio
   (goal >= 0.9), the bare loop with and without a validation pass of its own.
3. The epoch time under candidate settings: the ones ``TrainingConfig`` offers (batch size, memory format,
   precision) and the torch thread count, each through ``train_phase`` as in 1; and ones only a bare loop can
   show today (AdamW's foreach (the pipeline's own since issue 22) and fused implementations, batches sliced
   from the tensors without a DataLoader,
   validation under ``torch.inference_mode`` instead of ``predict``'s ``torch.no_grad``), as suggestions.

Every time is the median over ``--repeats`` runs of ``--epochs`` epochs each (the other thread count: up to 3
runs of 1 epoch, fewer past 15 s), after one warm-up run per setting (the first step of torch's own AdamW in a
process imports torch._dynamo, ~1.2 s; eebench.torch_eager's does not). The settings, the validation passes
and the ``torch.mm`` products run
interleaved, in a new random order each round, so that the drifting speed of a shared machine hits them
alike; the numbers still move by some 10-30 % from one invocation to the next on a busy 2-core machine
(compare rows of one invocation).

    python benchmarks/epoch_cost.py --threads 1              # about 1-1.5 minutes on 2 shared cores
    python benchmarks/epoch_cost.py --threads 2 --repeats 9 --epochs 3
"""
from __future__ import annotations

import argparse
import contextlib
import os
import random
import statistics
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from torch.utils.data import DataLoader
from torch.utils.flop_counter import FlopCounterMode

from eebench.config import dataset_loader, dataset_params, load_config, network_settings, resolve_models
from eebench.data import load_split, prepare_dataset, read_info
from eebench.models import ModelSpec, build_model, head_costs
from eebench.training import TrainingConfig
from eebench.training.loop import predict, train_phase
from eebench.training.regimes import JOINT_PHASE

ROOT = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")
VALIDATION_PASSES = 5  # per timed run of a validation setting
MATMUL_N = 2048  # the dense product that measures the machine: 2 x 2048^3 = 17.2 GFLOP


def matmul_run(n: int = MATMUL_N) -> Callable[[], None]:
    """One dense float32 ``torch.mm`` of two n x n matrices (2 n^3 FLOPs), at the current thread count."""
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(n, n, generator=g), torch.randn(n, n, generator=g)
    out = torch.empty(n, n)

    def run() -> None:
        torch.mm(a, b, out=out)
    return run


def training_step_flops(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[int, int]:
    """FLOPs the counter sees in one forward and in one forward + backward of the summed head losses on a batch
    (convolutions and matmuls only: batch norm, ReLU, the loss and the optimizer are not counted)."""
    model.train()
    criterion = nn.CrossEntropyLoss()
    with FlopCounterMode(display=False) as counter:
        model(x)
    forward = counter.get_total_flops()
    with FlopCounterMode(display=False) as counter:
        loss = sum(criterion(o, y) for o in model(x))
        loss.backward()
    model.zero_grad(set_to_none=True)
    return forward, counter.get_total_flops()


# ---- The bare loop ------------------------------------------------------------------------------------------


PARTS = ("data", "forward + loss", "backward", "optimizer")


def bare_epoch(model: nn.Module, loader, optimizer: torch.optim.Optimizer,
               spent: dict[str, float] | None = None) -> None:
    """One epoch of the bare loop; with ``spent``, the seconds of each part of the step (PARTS) are added to it
    (a few clock reads per step: microseconds against a step's milliseconds)."""
    model.train()
    criterion = nn.CrossEntropyLoss()
    iterator = iter(loader)
    while True:
        t0 = time.perf_counter()
        try:
            x, y = next(iterator)
        except StopIteration:
            break
        t1 = time.perf_counter()
        loss = sum(criterion(o, y) for o in model(x))
        t2 = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        t3 = time.perf_counter()
        optimizer.step()
        if spent is not None:
            t4 = time.perf_counter()
            for key, seconds in zip(PARTS, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                spent[key] += seconds


def sliced_batches(train_set, batch_size: int, generator: torch.Generator):
    """The training set's batches without a DataLoader: a permutation, each batch's rows indexed out of the
    tensors and shifted by the dataset's own batch augmentation (``RandomShift.batch``), no per-sample tuples."""
    order = torch.randperm(len(train_set), generator=generator)
    augment = getattr(getattr(train_set, "transform", None), "batch", None)
    for index in order.split(batch_size):
        x = train_set.x[index] if hasattr(train_set, "x") else train_set.tensors[0][index]
        y = train_set.y[index] if hasattr(train_set, "y") else train_set.tensors[1][index]
        yield (augment(x) if augment is not None else x), y


def bare_validate(model: nn.Module, val_x: torch.Tensor, mode: Callable = torch.no_grad) -> torch.Tensor:
    """Every head's logits on the validation images in one batch (the split is below eval_batch_size)."""
    model.eval()
    with mode():
        return torch.stack(model(val_x))


def optimizer_step_seconds(spec: ModelSpec, x: torch.Tensor, y: torch.Tensor, lr: float, repeats: int,
                           **kwargs) -> float:
    """Median seconds of one AdamW step (zero_grad excluded) on the model's gradients of one batch."""
    model = build_model(spec, seed=0)
    loss = sum(nn.functional.cross_entropy(o, y) for o in model(x))
    loss.backward()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, **kwargs)
    optimizer.step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def data_epoch_seconds(batches: Callable[[], object], repeats: int) -> float:
    """Median seconds to draw one epoch's batches (augmentation included), nothing else."""
    for _ in batches():
        pass
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in batches():
            pass
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# ---- Settings, run interleaved ------------------------------------------------------------------------------


@dataclass
class Setting:
    label: str
    run: Callable[[], dict[str, float] | None]  # one timed run; may return seconds per part over the run
    threads: int
    kind: str  # "pipeline" (train_phase), "bare" (bare loop + validation) or "part" (reported in 1 and 2)
    epochs: int  # epochs (or validation passes) per timed run
    repeats: int | None = None  # timed runs, if fewer than --repeats
    budget_s: float | None = None  # no further timed run once the warm-up and timed runs took this long
    times: list[float] = field(default_factory=list)  # wall-clock seconds per epoch, one per run
    cpu: list[float] = field(default_factory=list)  # process CPU seconds per epoch (all threads), one per run
    parts: dict[str, list[float]] = field(default_factory=dict)  # seconds per epoch of each part, one per run

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    def part(self, key: str) -> float:
        return statistics.median(self.parts[key])


def interleaved(settings: list[Setting], repeats: int) -> None:
    """Each setting once as a warm-up (each has its own model and optimizer state), then ``repeats`` rounds of
    every setting, in a fresh (seeded) random order each round so that no setting always follows another."""
    spent = {}
    for setting in settings:
        torch.set_num_threads(setting.threads)
        start = time.perf_counter()
        setting.run()
        spent[id(setting)] = time.perf_counter() - start
    order = random.Random(0)
    for repeat in range(repeats):
        for setting in order.sample(settings, len(settings)):
            if setting.repeats is not None and repeat >= setting.repeats:
                continue
            if setting.budget_s is not None and setting.times and spent[id(setting)] > setting.budget_s:
                continue
            torch.set_num_threads(setting.threads)
            start, cpu_start = time.perf_counter(), time.process_time()
            parts = setting.run()
            spent[id(setting)] += time.perf_counter() - start
            setting.times.append((time.perf_counter() - start) / setting.epochs)
            setting.cpu.append((time.process_time() - cpu_start) / setting.epochs)
            for key, seconds in (parts or {}).items():
                setting.parts.setdefault(key, []).append(seconds / setting.epochs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1, as the "
                        "default pipeline's jobs run)")
    parser.add_argument("--repeats", type=int, default=9, help="timed runs per setting (median)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per timed run")
    parser.add_argument("--config", default=str(ROOT / "config.yaml"))
    parser.add_argument("--model", default="cnn", help="a model setting of the config (default: cnn)")
    args = parser.parse_args()
    began = time.perf_counter()
    load_before = os.getloadavg()[0]
    torch.set_num_threads(args.threads)
    other_threads = 2 if args.threads == 1 else 1
    ms = lambda seconds: f"{seconds * 1e3:.1f}"  # noqa: E731
    plural = lambda n: f"{n} thread{'s' if n > 1 else ''}"  # noqa: E731

    config = load_config(args.config)
    entry = resolve_models(config)[args.model]
    dataset = entry["dataset"]
    training = dict(entry["training"])
    with tempfile.TemporaryDirectory(prefix="epoch_cost_") as workdir:  # load_split reads the arrays whole
        data = Path(workdir) / f"{dataset}.npz"
        prepare_dataset(dataset_loader(config, dataset), dataset_params(config, dataset), data)
        info = read_info(data)
        train_set, _ = load_split(data, "train", augment=training.get("augment", True))
        val_set, _ = load_split(data, "val")
    val_x = val_set.tensors[0]
    net = network_settings(entry)
    spec = ModelSpec(net["backbone"], net.get("params", {}), tuple(info.input_shape), info.num_classes,
                     ic=net.get("ic", {"type": "linear"}), placement=net.get("placement"))
    # Patience out of reach: every timed run trains exactly --epochs epochs (best-state copies still happen).
    base = TrainingConfig(**{**training, "max_epochs": args.epochs, "patience": 10**6})
    n_train, n_val = len(train_set), len(val_set)

    # ---- FLOPs and the machine's dense throughput ----
    model = build_model(spec, seed=0)
    costs, _ = head_costs(model, spec.input_shape)
    forward_per_sample = costs[-1]  # every block and every head: what a joint step's forward computes
    x0 = torch.stack([train_set[i][0] for i in range(base.batch_size)])
    y0 = torch.stack([train_set[i][1] for i in range(base.batch_size)])
    counted_forward, counted_step = training_step_flops(model, x0, y0)
    epoch_flops = 3 * forward_per_sample * n_train + forward_per_sample * n_val

    # ---- The settings ----
    def pipeline(config: TrainingConfig, threads: int, label: str, repeats: int | None = None) -> Setting:
        model = build_model(spec, seed=0)

        def run() -> None:
            train_phase(model, JOINT_PHASE, train_set, val_set, info.task, config, CPU)
        return Setting(label, run, threads, "pipeline", config.max_epochs, repeats)

    def bare(label: str, optimizer_kwargs: dict | None = None, loader: str = "dataloader", validate: bool = True,
             timed_parts: bool = False) -> Setting:
        model = build_model(spec, seed=0)
        optimizer = torch.optim.AdamW(model.parameters(), lr=base.lr, weight_decay=base.weight_decay,
                                      **(optimizer_kwargs or {}))
        generator = torch.Generator().manual_seed(0)
        data_loader = DataLoader(train_set, batch_size=base.batch_size, shuffle=True, generator=generator)

        def run() -> dict[str, float] | None:
            spent = dict.fromkeys(PARTS, 0.0) if timed_parts else None
            for _ in range(args.epochs):
                batches = (data_loader if loader == "dataloader"
                           else sliced_batches(train_set, base.batch_size, generator))
                bare_epoch(model, batches, optimizer, spent)
                if validate:
                    bare_validate(model, val_x)
            return spent
        return Setting(label, run, args.threads, "bare" if validate else "part", args.epochs)

    probe = build_model(spec, seed=0)  # validation passes: the model's weights do not change their cost

    def validation(label: str, function: Callable[[], object], mode: Callable) -> Setting:
        def run() -> None:
            with mode():
                for _ in range(VALIDATION_PASSES):
                    function()
        return Setting(label, run, args.threads, "part", VALIDATION_PASSES)

    default = pipeline(base, args.threads, f"pipeline default (batch {base.batch_size}, {base.memory_format}, "
                                           f"{base.precision}, {plural(args.threads)})")
    other_format = "contiguous" if base.memory_format == "channels_last" else "channels_last"
    bare_train = bare("bare loop, training only, timed part by part", validate=False, timed_parts=True)
    bare_val = bare("bare loop + its validation pass (no_grad)")
    # predict is decorated with torch.no_grad; its body (__wrapped__) under inference_mode is the alternative.
    predict_body = getattr(predict, "__wrapped__", predict)
    val_predict = validation("predict", lambda: predict(probe, val_set, base.eval_batch_size, CPU),
                             contextlib.nullcontext)
    val_predict_inference = validation(
        "predict's body", lambda: predict_body(probe, val_set, base.eval_batch_size, CPU), torch.inference_mode)
    val_bare_no_grad = validation("tensor forward", lambda: bare_validate(probe, val_x), torch.no_grad)
    val_bare_inference = validation("tensor forward", lambda: bare_validate(probe, val_x), torch.inference_mode)
    threads_runs = min(3, args.repeats)
    # The machine's dense throughput, measured in the same rounds as the epochs (a shared machine's speed drifts).
    matmul = Setting("torch.mm", matmul_run(), args.threads, "part", 1)
    matmul_other = Setting("torch.mm, other thread count", matmul_run(), other_threads, "part", 1, threads_runs)
    settings = [
        matmul, matmul_other, default, bare_train, bare_val,
        val_predict, val_predict_inference, val_bare_no_grad, val_bare_inference,
        pipeline(replace(base, batch_size=128), args.threads, "pipeline, batch 128"),
        pipeline(replace(base, batch_size=256), args.threads, "pipeline, batch 256"),
        pipeline(replace(base, memory_format=other_format), args.threads, f"pipeline, memory_format {other_format}"),
        pipeline(replace(base, precision="bf16"), args.threads, "pipeline, precision bf16 (autocast)"),
        # 1 epoch per run, at most 3 runs or 15 s: with the other core busy, 2 threads can be 10-50 x slower.
        replace(pipeline(replace(base, max_epochs=1), other_threads, f"pipeline, {plural(other_threads)}",
                         threads_runs), budget_s=15.0),
        bare("bare + val, AdamW(foreach=True)", {"foreach": True}),
        bare("bare + val, AdamW(fused=True)", {"fused": True}),
        bare("bare + val, batches sliced from tensors (no DataLoader)", loader="sliced"),
    ]
    interleaved(settings, args.repeats)
    torch.set_num_threads(args.threads)

    # The parts' alternatives alone (after the interleaved runs: short, and load drift matters less).
    step_repeats = 30 * args.repeats
    optimizer_steps = {
        "default (for-loop)": optimizer_step_seconds(spec, x0, y0, base.lr, step_repeats),
        "foreach=True": optimizer_step_seconds(spec, x0, y0, base.lr, step_repeats, foreach=True),
        "fused=True": optimizer_step_seconds(spec, x0, y0, base.lr, step_repeats, fused=True),
    }
    generator = torch.Generator().manual_seed(0)
    data_loader_epoch = data_epoch_seconds(
        lambda: DataLoader(train_set, batch_size=base.batch_size, shuffle=True, generator=generator), args.repeats)
    data_sliced_epoch = data_epoch_seconds(
        lambda: sliced_batches(train_set, base.batch_size, generator), args.repeats)

    # ---- Report ----
    epoch = default.median
    gflops = 2 * MATMUL_N**3 / matmul.median / 1e9
    gflops_other = 2 * MATMUL_N**3 / matmul_other.median / 1e9
    bound = epoch_flops / (gflops * 1e9)
    steps = -(-n_train // base.batch_size)
    parts = {key: bare_train.part(key) for key in PARTS}
    print(f"Epoch cost of model setting {args.model!r} ({spec.backbone}, widths {spec.backbone_params.get('widths')}, "
          f"strides {spec.backbone_params.get('strides')}, {len(probe.head_blocks)} heads, {spec.ic['type']} ICs) on "
          f"{dataset!r} {tuple(info.input_shape)}: {n_train} training images (augmented: {training.get('augment')}), "
          f"{n_val} validation; torch {torch.__version__}, CPU ({torch.backends.cpu.get_cpu_capability()}), "
          f"{plural(args.threads)}; median of {args.repeats} runs x {args.epochs} epochs after a warm-up run each")
    print()
    print("1. Measured epoch time against the FLOPs bound")
    print(f"   forward FLOPs per sample (head_costs: every block + every head): {forward_per_sample / 1e6:.3f} M "
          f"(FlopCounterMode on a training batch: forward + backward = {counted_step / counted_forward:.2f} x forward)")
    print(f"   epoch FLOPs: 3 x {forward_per_sample / 1e6:.3f} M x {n_train} train + {forward_per_sample / 1e6:.3f} M "
          f"x {n_val} val = {epoch_flops / 1e9:.3f} GFLOP")
    print(f"   dense float32 torch.mm ({MATMUL_N} x {MATMUL_N}, in the same rounds as the epochs): "
          f"{gflops:.1f} GFLOP/s at {plural(args.threads)} ({gflops_other:.1f} at {plural(other_threads)})")
    print(f"   FLOPs-bound epoch: {ms(bound):>7} ms")
    print(f"   measured epoch:    {ms(epoch):>7} ms  (train_phase: {steps} steps of batch {base.batch_size} + "
          f"validation)   measured / bound = {epoch / bound:.1f}")
    print("   where it goes (training steps timed part by part in the bare loop, per epoch; the rest by difference):")
    flops_of = {"forward + loss": forward_per_sample * n_train, "backward": 2 * forward_per_sample * n_train}
    for key, seconds in parts.items():
        flops = flops_of.get(key)
        note = (f"bound {ms(flops / (gflops * 1e9)):>5} ms, {flops / seconds / 1e9:5.1f} GFLOP/s achieved" if flops
                else f"{seconds / steps * 1e3:.3f} ms per step")
        print(f"     {key:<30} {ms(seconds):>6} ms  {seconds / epoch:6.1%}   {note}")
    validation_note = f"bound {ms(forward_per_sample * n_val / (gflops * 1e9)):>5} ms"
    print(f"     {'validation (predict)':<30} {ms(val_predict.median):>6} ms  {val_predict.median / epoch:6.1%}   "
          f"{validation_note}")
    rest = epoch - sum(parts.values()) - val_predict.median
    print(f"     {'rest of train_phase':<30} {ms(rest):>6} ms  {rest / epoch:6.1%}   scheduler, loss.item(), "
          f"epoch order, set_trainable, best-state copy, noise")
    print(f"   compute (forward + backward) {ms(parts['forward + loss'] + parts['backward'])} ms against its bound "
          f"{ms(3 * forward_per_sample * n_train / (gflops * 1e9))} ms; per-step work outside it (data, optimizer) "
          f"{ms(parts['data'] + parts['optimizer'])} ms")
    print()
    print("2. Pipeline training step against a bare PyTorch loop (same model, data, batch, AdamW, summed CE)")
    bare_train_rate = n_train / bare_train.median
    bare_val_rate = n_train / bare_val.median
    pipeline_rate = n_train / epoch
    print(f"   bare loop, training only:           {bare_train_rate:8.0f} samples/s")
    print(f"   bare loop + its validation pass:    {bare_val_rate:8.0f} samples/s")
    print(f"   pipeline (train_phase, validates):  {pipeline_rate:8.0f} samples/s   ratio "
          f"{pipeline_rate / bare_val_rate:.3f} against bare + validation, {pipeline_rate / bare_train_rate:.3f} "
          f"against training only (goal >= 0.9)")
    print()
    print("3. Epoch time under candidate settings (wall-clock ms per epoch: median and min over the runs; CPU ms: "
          "median process CPU time, all threads, which leaves out time the process waited for a core; samples/s and "
          "speed-up from the median, against the default pipeline row, or the bare + validation row for bare rows)")
    print(f"   {'setting':<62} {'epoch ms':>9} {'min ms':>7} {'CPU ms':>7} {'samples/s':>10} {'speed-up':>9}")
    reference = {"pipeline": epoch, "bare": bare_val.median}
    for setting in settings:
        if setting.kind == "part":
            continue
        seconds = setting.median
        label = setting.label if setting.repeats is None else f"{setting.label} ({len(setting.times)} runs x 1 epoch)"
        print(f"   {label:<62} {ms(seconds):>9} {ms(min(setting.times)):>7} "
              f"{ms(statistics.median(setting.cpu)):>7} {n_train / seconds:10.0f} "
              f"{reference[setting.kind] / seconds:8.2f}x")
    print("   pipeline rows: TrainingConfig fields and torch's thread count; bare rows: not settable in the package "
          "today (suggestions). Parts alone, median:")
    print("     AdamW step: " + ", ".join(f"{name} {seconds * 1e3:.3f} ms"
                                       for name, seconds in optimizer_steps.items())
          + f" (x {steps} steps per epoch)")
    print(f"     one epoch's batches: DataLoader {ms(data_loader_epoch)} ms, sliced from tensors "
          f"{ms(data_sliced_epoch)} ms")
    print(f"     validation pass (interleaved with the runs above): predict (no_grad, as now) "
          f"{val_predict.median * 1e3:.2f} ms, predict's body under inference_mode "
          f"{val_predict_inference.median * 1e3:.2f} ms; one tensor forward of the {n_val} images: no_grad "
          f"{val_bare_no_grad.median * 1e3:.2f} ms, inference_mode {val_bare_inference.median * 1e3:.2f} ms")
    print()
    print(f"script runtime {time.perf_counter() - began:.1f} s; 1-minute load average {load_before:.2f} at the "
          f"start, {os.getloadavg()[0]:.2f} at the end ({os.cpu_count()} CPUs; above {args.threads} means other work "
          f"shared them)")


if __name__ == "__main__":
    main()
