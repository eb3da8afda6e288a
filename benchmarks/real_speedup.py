"""Real early exiting against its FLOPs promise: measured wall-clock speed-up beside the FLOPs speed-up.

For the default config's ``cnn`` setting (its network, dataset and training settings from config.yaml), trained
``joint`` for a few epochs (or loaded with --checkpoint), at several thresholds of the ``confidence`` criterion
spanning its range, on the test split:

- FLOPs speed-up: backbone FLOPs / average FLOPs per sample at that operating point, i.e. 1 / flops_fraction
  of the cache-based sweep's row (what every table and figure of the pipeline reports);
- wall-clock speed-up, batched: time of the plain backbone (every block + the final classifier, no IC) over
  the test set in batches of --batch-size, divided by the time of real exiting in the same batches
  (``eebench.inference.exit_heads_batched``: each batch shrinks as samples exit; ICs and the criterion run
  on the way);
- wall-clock speed-up, batch 1: the same, one sample at a time (``exit_heads_one_by_one``).

Each time is the median of --repeats runs (after one warm-up), the backbone and the exiting runs interleaved;
one intra-op thread (torch.set_num_threads(1)) for stable numbers. Thresholds sit halfway between two distinct
sweep thresholds (any threshold in between gives the same operating point), so no sample's exit depends on
floating-point rounding, and the real average exit head is checked against the sweep's.

    python benchmarks/real_speedup.py                       # trains cnn joint for 10 epochs (~20 s)
    python benchmarks/real_speedup.py --checkpoint results/models/cnn/digits/joint/seed0.pt
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from eebench.config import dataset_loader, dataset_params, load_config, network_settings, resolve_models
from eebench.data import prepare_dataset
from eebench.exits.criteria import CRITERIA
from eebench.exits.sweep import load_cache, sweep
from eebench.inference import (backbone_logits, exit_heads_batched, exit_heads_one_by_one, load_trained,
                               split_inputs)
from eebench.steps import cache_logits, train_model

ROOT = Path(__file__).resolve().parents[1]
CRITERION = "confidence"


def median_time(function, repeats: int) -> float:
    function()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def interleaved_medians(baseline, exiting, repeats: int) -> tuple[float, float]:
    """Median times of ``baseline`` and ``exiting``, run alternately (so that load drift hits both alike)."""
    baseline()
    exiting()
    base_times, exit_times = [], []
    for _ in range(repeats):
        for function, times in ((baseline, base_times), (exiting, exit_times)):
            start = time.perf_counter()
            function()
            times.append(time.perf_counter() - start)
    return statistics.median(base_times), statistics.median(exit_times)


def operating_points(frame, points: int) -> list[tuple[int, float]]:
    """``points`` (row, threshold) pairs whose FLOPs fractions spread evenly over the sweep's range: row 0 at
    threshold -inf (every sample exits at the first head), the last row at +inf (every sample reaches the
    last head), other rows k halfway between the sweep's thresholds k-1 and k."""
    fractions = frame["flops_fraction"].to_numpy()
    thresholds = frame["threshold"].to_numpy()
    targets = np.linspace(fractions.min(), fractions.max(), points)
    rows = sorted({int(np.abs(fractions - target).argmin()) for target in targets})
    chosen = []
    for k in rows:
        if k == 0:
            chosen.append((k, -np.inf))
        elif not np.isfinite(thresholds[k]):
            chosen.append((k, np.inf))
        else:
            chosen.append((k, float((thresholds[k - 1] + thresholds[k]) / 2)))
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(ROOT / "config.yaml"))
    parser.add_argument("--model", default="cnn", help="a model setting of the config (default: cnn)")
    parser.add_argument("--checkpoint", help="a trained checkpoint of that setting (default: train one)")
    parser.add_argument("--max-epochs", type=int, default=10, help="epochs of the joint training (no checkpoint)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=64, help="batch of the batched comparison")
    parser.add_argument("--points", type=int, default=6, help="thresholds (operating points)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--workdir", help="where the dataset, checkpoint and cache go (default: a temp dir)")
    args = parser.parse_args()
    torch.set_num_threads(1)

    config = load_config(args.config)
    entry = resolve_models(config)[args.model]
    dataset = entry["dataset"]
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="real_speedup_"))
    workdir.mkdir(parents=True, exist_ok=True)
    data = workdir / f"{dataset}.npz"
    if not data.exists():
        prepare_dataset(dataset_loader(config, dataset), dataset_params(config, dataset), data)
    checkpoint = args.checkpoint
    trained_here = checkpoint is None
    if trained_here:
        checkpoint = str(workdir / f"{args.model}_joint_seed{args.seed}.pt")
        training = {**entry["training"], "max_epochs": args.max_epochs}
        start = time.perf_counter()
        train_model(str(data), network_settings(entry), training, "joint", args.seed, checkpoint,
                    meta={"model": args.model, "dataset": dataset})
        train_time = time.perf_counter() - start
    cache_path = workdir / "logits.npz"
    cache_logits(checkpoint, str(data), str(cache_path))
    cache = load_cache(cache_path)
    model, x = load_trained(checkpoint), split_inputs(str(data))
    labels = cache["test_labels"]
    task = cache["task"]
    logits = cache["test_logits"]
    scores = CRITERIA.get(CRITERION)(logits, task)
    frame = sweep(scores, task.performance(logits, labels), cache["head_flops"], cache["backbone_flops"])
    batches = list(torch.split(x, args.batch_size))
    head_fractions = cache["head_flops"] / cache["backbone_flops"]

    print(f"Real early exiting vs its FLOPs: model setting {args.model!r} ({entry['backbone']}, "
          f"{len(model.blocks)} blocks, heads after blocks {model.head_blocks}) on {dataset!r} test "
          f"(N={len(x)}), criterion {CRITERION}, torch {torch.__version__}, {torch.get_num_threads()} thread, CPU")
    if trained_here:
        print(f"trained: regime joint, {args.max_epochs} epochs max, seed {args.seed}, in {train_time:.1f} s")
    else:
        print(f"checkpoint: {checkpoint}")
    print("cost of exiting at each head (FLOPs / backbone FLOPs): "
          + ", ".join(f"{fraction:.3f}" for fraction in head_fractions))
    print("FLOPs speed-up = 1 / flops_fraction of the sweep row (backbone FLOPs / average FLOPs per sample).")
    print(f"wall speed-up = time of the plain backbone (blocks + final classifier, no IC) / time of real exiting "
          f"(ICs and criterion included), over the whole test set; 'batch {args.batch_size}': batches of "
          f"{args.batch_size} that shrink as samples exit; 'batch 1': one sample at a time. Median of "
          f"{args.repeats} interleaved repeats.")
    print("exit = average exit head, 1-based: real (batched run) / sweep row; acc = test accuracy of the real "
          "exits' logits.")

    full_batched = median_time(lambda: [backbone_logits(model, b) for b in batches], args.repeats)
    full_single = median_time(lambda: backbone_logits(model, x, one_by_one=True), args.repeats)
    print(f"plain backbone: {full_batched / len(x) * 1e6:.1f} us/sample at batch {args.batch_size}, "
          f"{full_single / len(x) * 1e6:.1f} us/sample at batch 1")
    print()
    header = (f"{'threshold':>10} {'exit real/sweep':>16} {'acc':>6} {'FLOPs x':>8} "
              f"{'wall x (batch ' + str(args.batch_size) + ')':>18} {'wall x (batch 1)':>17} {'us/sample b1':>13}")
    print(header)
    print("-" * len(header))
    for k, threshold in operating_points(frame, args.points):
        row = frame.iloc[k]
        results = [exit_heads_batched(model, b, CRITERION, threshold, task) for b in batches]
        exits = np.concatenate([heads for heads, _ in results])
        exit_logits = np.concatenate([out for _, out in results])
        accuracy = float((exit_logits.argmax(axis=1) == labels).mean())
        expected = scores >= threshold
        expected[-1] = True
        disagree = int((expected.argmax(axis=0) != exits).sum())
        base_b, exit_b = interleaved_medians(
            lambda: [backbone_logits(model, b) for b in batches],
            lambda: [exit_heads_batched(model, b, CRITERION, threshold, task) for b in batches], args.repeats)
        base_1, exit_1 = interleaved_medians(
            lambda: backbone_logits(model, x, one_by_one=True),
            lambda: exit_heads_one_by_one(model, x, CRITERION, threshold, task), args.repeats)
        note = "" if disagree == 0 else f"  ({disagree} samples exit elsewhere than the cache says)"
        print(f"{threshold:>10.4f} {exits.mean() + 1:>7.3f} / {row['avg_exit_head']:<6.3f} {accuracy:>6.3f} "
              f"{1 / row['flops_fraction']:>8.2f} {base_b / exit_b:>18.2f} {base_1 / exit_1:>17.2f} "
              f"{exit_1 / len(x) * 1e6:>13.1f}{note}")


if __name__ == "__main__":
    main()
