"""Throughput of the pipeline's training loop against a bare PyTorch loop on the same model, data and batch.

The pipeline side is ``eebench.training.loop.train_phase`` (one joint phase: data loading with the loop's
epoch sampler, per-step loss over every head, AdamW, the scheduler, end-of-epoch validation on a small split,
early-stopping bookkeeping). The bare side is what one would write by hand: a shuffled DataLoader, forward,
summed cross-entropy over the heads, backward, AdamW step. Both run ``--epochs`` epochs after one warm-up epoch
(imports and first-call costs excluded) with the same device settings (bf16 autocast and channels-last on a
CUDA GPU, as ``precision: auto`` / ``memory_format: auto`` choose). Goal: pipeline >= 0.9 x bare.

    python benchmarks/train_step.py                          # resnet18 (CIFAR stem), 32x32, batch 128
    python benchmarks/train_step.py --backbone cnn --size 8 --channels 1 --batch 64
"""
from __future__ import annotations

import argparse
import time

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from eebench.models import ModelSpec, build_model
from eebench.training import TrainingConfig
from eebench.training.loop import train_phase
from eebench.training.placement import Placement, select_device
from eebench.training.regimes import JOINT_PHASE

BACKBONE_PARAMS = {"cnn": {"widths": [16, 32, 64, 64], "strides": [1, 2, 1, 2]}, "resnet18": {"cifar_stem": True}}


def bare_epoch(model, loader, optimizer, placement: Placement) -> None:
    model.train()
    criterion = nn.CrossEntropyLoss()
    for x, y in loader:
        x, y = placement.inputs(x), y.to(placement.device, non_blocking=placement.pin_memory)
        with placement.autocast():
            outputs = model(x)
            loss = sum(criterion(o.float(), y) for o in outputs)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="resnet18", choices=sorted(BACKBONE_PARAMS))
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--samples", type=int, default=2048)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = select_device()
    shape = (args.channels, args.size, args.size)
    spec = ModelSpec(args.backbone, BACKBONE_PARAMS[args.backbone], shape, 10)
    g = torch.Generator().manual_seed(0)
    train = TensorDataset(torch.randn(args.samples, *shape, generator=g), torch.randint(0, 10, (args.samples,), generator=g))
    val = TensorDataset(torch.randn(args.batch, *shape, generator=g), torch.randint(0, 10, (args.batch,), generator=g))

    # Pipeline: a warm-up phase of one epoch, then a timed phase of --epochs (patience large: no early stop).
    model = build_model(spec, seed=0).to(device)
    warm = TrainingConfig(batch_size=args.batch, max_epochs=1, patience=10**6, augment=False)
    train_phase(model, JOINT_PHASE, train, val, "single_label", warm, device)
    config = TrainingConfig(batch_size=args.batch, max_epochs=args.epochs, patience=10**6, augment=False)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    train_phase(model, JOINT_PHASE, train, val, "single_label", config, device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    pipeline = args.samples * args.epochs / (time.perf_counter() - start)

    model = build_model(spec, seed=0).to(device)
    placement = Placement.of(config, device, convolutional=True)
    placement.prepare(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr)
    loader = DataLoader(train, batch_size=args.batch, shuffle=True, pin_memory=placement.pin_memory)
    bare_epoch(model, loader, optimizer, placement)  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(args.epochs):
        bare_epoch(model, loader, optimizer, placement)
    if device.type == "cuda":
        torch.cuda.synchronize()
    bare = args.samples * args.epochs / (time.perf_counter() - start)

    print(f"device {device}, {args.backbone} {shape}, batch {args.batch}, {args.samples} samples x {args.epochs} "
          f"epochs, autocast {placement.autocast_dtype}, channels_last {placement.channels_last}")
    print(f"bare loop:      {bare:10.1f} samples/s")
    print(f"pipeline loop:  {pipeline:10.1f} samples/s   ratio {pipeline / bare:.3f} (goal >= 0.9; the pipeline "
          f"also validates on {len(val)} samples per epoch)")


if __name__ == "__main__":
    main()
