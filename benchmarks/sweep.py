"""Time the vectorised threshold sweep against a naive per-sample Python loop on random logits.

The vectorised path is timed end to end: the ``confidence`` criterion, ``per_sample_performance`` and
``sweep`` over every distinct threshold. The naive path starts from the same scores and per-sample
performance and, for each threshold, walks every sample through the heads in Python. At full size that loop
would take hours, so it is timed on a subset of evenly spaced distinct thresholds (checked against the
vectorised rows) and its per-threshold time is extrapolated to all of them.

    python benchmarks/sweep.py            # N=50000, H=15, C=100
    python benchmarks/sweep.py --samples 5000 --loop-thresholds 50
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from eebench.exits.criteria import CRITERIA
from eebench.tasks import per_sample_performance
from eebench.exits.sweep import sweep


def random_cache(n_samples: int, n_heads: int, n_classes: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Logits [H, N, C] whose true-class margin grows with depth (so exits and accuracy vary), labels, FLOPs."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, n_samples)
    logits = rng.standard_normal((n_heads, n_samples, n_classes), dtype=np.float32)
    margin = np.linspace(0.5, 4.0, n_heads, dtype=np.float32)[:, None] * rng.random((1, n_samples), dtype=np.float32) * 2
    logits[:, np.arange(n_samples), labels] += margin
    head_flops = np.cumsum(np.full(n_heads, 1.0)) * 1.02  # each head adds a 2% classifier overhead
    return logits, labels, head_flops


def naive_points(scores: list[list[float]], performance: dict[str, list[list[float]]], head_flops: list[float],
                 backbone_flops: float, thresholds: np.ndarray) -> pd.DataFrame:
    """The same operating points, one threshold and one sample at a time."""
    n_heads, n_samples = len(head_flops), len(scores)
    rows = []
    for threshold in thresholds:
        exit_total, flops_total = 0, 0.0
        metric_totals = dict.fromkeys(performance, 0.0)
        for n in range(n_samples):
            sample_scores, exit_head = scores[n], n_heads - 1
            for h in range(n_heads - 1):
                if sample_scores[h] >= threshold:
                    exit_head = h
                    break
            exit_total += exit_head + 1
            flops_total += head_flops[exit_head]
            for name, values in performance.items():
                metric_totals[name] += values[n][exit_head]
        rows.append({"threshold": threshold, "avg_exit_head": exit_total / n_samples,
                     "flops_fraction": flops_total / n_samples / backbone_flops,
                     **{name: total / n_samples for name, total in metric_totals.items()}})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=50_000)
    parser.add_argument("--heads", type=int, default=15)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--loop-thresholds", type=int, default=200, help="distinct thresholds the naive loop runs")
    args = parser.parse_args()

    logits, labels, head_flops = random_cache(args.samples, args.heads, args.classes, args.seed)
    backbone_flops = float(args.heads)
    print(f"random logits [H={args.heads}, N={args.samples}, C={args.classes}] float32, seed {args.seed}")

    start = time.perf_counter()
    scores = CRITERIA.get("confidence")(logits, "single_label")
    criterion_time = time.perf_counter() - start
    start = time.perf_counter()
    performance = per_sample_performance(logits, labels, "single_label")
    performance_time = time.perf_counter() - start
    start = time.perf_counter()
    frame = sweep(scores, performance, head_flops, backbone_flops)
    sweep_time = time.perf_counter() - start
    vectorised = criterion_time + performance_time + sweep_time
    n_points = len(frame)
    print(f"vectorised (measured): confidence {criterion_time:.2f} s + per_sample_performance {performance_time:.2f} s"
          f" + sweep {sweep_time:.2f} s = {vectorised:.2f} s for all {n_points:,} distinct thresholds "
          f"(from {args.samples * (args.heads - 1):,} candidate events)")

    # The naive loop reuses the same scores and per-sample performance; turning them into the Python lists a
    # per-sample loop indexes is timed as its set-up.
    start = time.perf_counter()
    score_lists = scores.T.tolist()
    performance_lists = {name: values.T.tolist() for name, values in performance.items()}
    setup_time = time.perf_counter() - start
    subset_rows = np.unique(np.rint(np.linspace(0, n_points - 1, min(args.loop_thresholds, n_points))).astype(int))
    start = time.perf_counter()
    naive = naive_points(score_lists, performance_lists, head_flops.tolist(), backbone_flops,
                         frame["threshold"].to_numpy()[subset_rows])
    loop_time = time.perf_counter() - start
    per_threshold = loop_time / len(subset_rows)
    expected = frame.iloc[subset_rows].reset_index(drop=True)
    max_difference = float((naive - expected).drop(columns="threshold").abs().to_numpy().max())
    print(f"naive loop (measured): {loop_time:.2f} s for {len(subset_rows)} evenly spaced distinct thresholds, "
          f"{per_threshold * 1e3:.1f} ms per threshold; max |difference| to the vectorised rows: {max_difference:.1e}")

    naive_full = criterion_time + performance_time + setup_time + per_threshold * n_points
    print(f"naive loop (extrapolated to all {n_points:,} thresholds): confidence + per_sample_performance "
          f"{criterion_time + performance_time:.2f} s + list set-up {setup_time:.2f} s + "
          f"{per_threshold * 1e3:.1f} ms x {n_points:,} = {naive_full:,.0f} s ({naive_full / 3600:.1f} h)")
    print(f"ratio naive / vectorised: {naive_full / vectorised:,.0f}x "
          f"(sweep step alone: {per_threshold * n_points / sweep_time:,.0f}x)")


if __name__ == "__main__":
    main()
