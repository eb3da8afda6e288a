"""Evaluate your own multi-exit network with eebench (README, "Evaluate your own model").

A small multi-exit CNN written here in plain PyTorch (nothing of eebench's networks or training), trained on
scikit-learn's 8x8 digits: three convolutional blocks, a classifier after each (the first two are early exits,
the last the final classifier), all trained together. For B_EE (paper A §3) it also trains one static model per
head: the network truncated after that head's block with that head alone (the last: the network without early
exits). It writes what eebench evaluates, one logit cache per model with ``eebench.logit_cache.write_cache``;
then one Snakemake command renders the tables and figures of config.yaml from them:

    cd examples/own_model
    python train.py                                                   # caches/, a few seconds on a CPU
    snakemake --snakefile ../../Snakefile --cores 2 --configfile config.yaml
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from eebench.logit_cache import write_cache

WIDTHS = (16, 32, 32)  # channels of the three blocks
CLASSES = 10


class MultiExitCNN(nn.Module):
    """Blocks 0..depth-1, with a classifier after each block in ``heads``; ``forward`` returns every head's
    logits in order, or with ``upto`` only those up to block ``upto`` (the cost of exiting there)."""

    def __init__(self, depth: int = 3, heads: tuple[int, ...] = (0, 1, 2)) -> None:
        super().__init__()
        self.blocks = nn.ModuleList()
        channels = 1
        for index, width in enumerate(WIDTHS[:depth]):
            self.blocks.append(nn.Sequential(nn.Conv2d(channels, width, 3, padding=1), nn.BatchNorm2d(width),
                                             nn.ReLU(), nn.MaxPool2d(2) if index else nn.Identity()))
            channels = width
        # Each classifier: average-pooled to 2x2, then one linear layer.
        self.heads = nn.ModuleDict({str(block): nn.Sequential(nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                                                              nn.Linear(WIDTHS[block] * 4, CLASSES))
                                    for block in heads})

    def forward(self, x: torch.Tensor, upto: int | None = None) -> list[torch.Tensor]:
        outputs = []
        for index, block in enumerate(self.blocks):
            x = block(x)
            if str(index) in self.heads:
                outputs.append(self.heads[str(index)](x))
            if index == upto:
                break
        return outputs


def digits_splits() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """scikit-learn's digits (1797 images, 8x8) in a fixed 60/20/20 train/val/test split."""
    digits = load_digits()
    x = torch.tensor(digits.images[:, None] / 16.0, dtype=torch.float32)
    y = torch.tensor(digits.target, dtype=torch.int64)
    order = torch.from_numpy(np.random.default_rng(0).permutation(len(y)))
    cut = [int(len(y) * 0.6), int(len(y) * 0.8)]
    parts = {"train": order[:cut[0]], "val": order[cut[0]:cut[1]], "test": order[cut[1]:]}
    return {split: (x[index], y[index]) for split, index in parts.items()}


def train(model: nn.Module, data: tuple[torch.Tensor, torch.Tensor], seed: int, epochs: int) -> nn.Module:
    """Every head's cross-entropy summed (joint training); Adam with a cosine schedule, batches of 64."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs)
    x, y = data
    model.train()
    for _ in range(epochs):
        for batch in torch.randperm(len(y), generator=generator).split(64):
            loss = sum(nn.functional.cross_entropy(logits, y[batch]) for logits in model(x[batch]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        schedule.step()
    return model.eval()


def flops(model: nn.Module, upto: int | None = None) -> float:
    """FLOPs of one sample through ``model`` (up to block ``upto``), as torch's FlopCounterMode counts them."""
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros(1, 1, 8, 8), upto=upto)
    return float(counter.get_total_flops())


def write(model: MultiExitCNN, splits, path: Path, head_flops: list[float], backbone_flops: float,
          head_blocks: list[int], seed: int) -> None:
    with torch.no_grad():
        logits = {split: model(splits[split][0]) for split in ("val", "test")}  # a list of [N, C] per head
    write_cache(path, val_logits=logits["val"], test_logits=logits["test"], val_labels=splits["val"][1],
                test_labels=splits["test"][1], head_flops=head_flops, backbone_flops=backbone_flops,
                task="single_label", head_blocks=head_blocks, meta={"seed": seed})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("caches"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    splits = digits_splits()
    heads = list(range(len(WIDTHS)))
    plain = MultiExitCNN(depth=len(WIDTHS), heads=(heads[-1],))  # the network without early exits: the 100% budget
    backbone_flops = flops(plain)
    for seed in args.seeds:
        torch.manual_seed(seed)
        model = train(MultiExitCNN(), splits["train"], seed, args.epochs)
        head_flops = [flops(model, upto=block) for block in heads]  # exiting at a head: its blocks and heads
        write(model, splits, args.out / f"seed{seed}.npz", head_flops, backbone_flops, heads, seed)
        for block in heads:  # one static model per head, trained alone (paper A's baseline)
            torch.manual_seed(seed)
            static = train(MultiExitCNN(depth=block + 1, heads=(block,)), splits["train"], seed, args.epochs)
            write(static, splits, args.out / "static" / f"seed{seed}_head{block + 1}.npz", [flops(static)],
                  backbone_flops, [block], seed)
        print(f"seed {seed}: caches written to {args.out}/")


if __name__ == "__main__":
    main()
