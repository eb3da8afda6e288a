"""Fixture writers and helpers shared by several test folders (importable as ``tests.fixtures``)."""
from __future__ import annotations

import copy
import pickle
from pathlib import Path

import numpy as np


def write_cifar100(root: Path, classes: int = 100, per_class: int = 2, test: int = 20, seed: int = 0) -> Path:
    """cifar-100-python/{train,test,meta} as the official pickles, with ``per_class`` train images for each of
    the first ``classes`` labels (2 is the fewest a stratified validation split allows) and ``test`` images."""
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)

    def batch(labels: list[int]) -> dict[bytes, object]:
        n = len(labels)
        return {
            b"filenames": [f"img{i}.png".encode() for i in range(n)],
            b"batch_label": b"fixture",
            b"fine_labels": labels,
            b"coarse_labels": [label // 5 for label in labels],
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        }

    contents = {
        "train": batch(rng.permutation(np.repeat(np.arange(classes), per_class)).tolist()),
        "test": batch(rng.integers(0, classes, test).tolist()),
        "meta": {
            b"fine_label_names": [f"class{i}".encode() for i in range(100)],
            b"coarse_label_names": [f"super{i}".encode() for i in range(20)],
        },
    }
    for name, content in contents.items():
        with open(folder / name, "wb") as handle:
            pickle.dump(content, handle)
    return root


def job_counts(output: str) -> dict[str, int]:
    """Parse the 'Job stats' table that snakemake prints for a (dry) run."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "Job stats:")
    counts = {}
    for line in lines[start + 3:]:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            break
        counts[parts[0]] = int(parts[1])
    return counts


def write_bert_base_config(path: Path) -> Path:
    """A model directory with a bert-base-uncased config.json (sizes of BERT-base) and no weights: what the
    ``bert`` backbone reads on the meta device while a DAG is planned."""
    from transformers import BertConfig

    BertConfig(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
               intermediate_size=3072, max_position_embeddings=512, type_vocab_size=2).save_pretrained(path)
    return path


def with_fixtures(config: dict, root: Path, bert_dir: Path) -> dict:
    """``config`` with every on-disk path it names pointed at an existing fixture under ``root``: dataset roots
    (empty directories), tokenizer and BERT model directories (``bert_dir``), ViT weights (empty files: weights
    are never read while planning, models are built on the meta device)."""
    config = copy.deepcopy(config)
    for name, params in config["datasets"].items():
        if "root" in params:
            params["root"] = str(root / "data" / name)
            (root / "data" / name).mkdir(parents=True, exist_ok=True)
        if "model_dir" in params:
            params["model_dir"] = str(bert_dir)
    for name, entry in config["models"].items():
        params = entry.get("params", {})
        if params.get("weights") is not None:
            weights = root / "weights" / f"{name}.pth"
            weights.parent.mkdir(parents=True, exist_ok=True)
            weights.touch()
            params["weights"] = str(weights)
        if "model_dir" in params:
            params["model_dir"] = str(bert_dir)
    return config


def run_blocks(model, x):
    """Every block's output of a multi-exit model on ``x``, in order."""
    outputs = []
    for block in model.blocks:
        x = block(x)
        outputs.append(x)
    return outputs


# A two-head toy network with fixed weights and its data, for loss and gradient tests of the training loop.
TOY_X = [[1.0, -2.0], [0.5, 1.5], [-1.0, 0.25], [2.0, 1.0]]
TOY_Y = [0, 2, 1, 2]


def two_head_net():
    """block0 -> head0 (IC), block1 -> head1 (final); fixed weights, no biases in the blocks."""
    import torch
    from torch import nn

    from eebench.models.multi_exit import MultiExitNet

    torch.manual_seed(0)
    blocks = nn.ModuleList([nn.Linear(2, 2, bias=False), nn.Linear(2, 2, bias=False)])
    return MultiExitNet(blocks, {0: nn.Linear(2, 3), 1: nn.Linear(2, 3)})


def first_step_grads(monkeypatch, phase=None, max_epochs: int = 1, **settings):
    """Train :func:`two_head_net` on the toy data (one batch = the whole set) with ``settings``; the gradients
    the loop hands to the optimiser at its first step, per parameter name, and the first epoch's log entry."""
    import torch
    from torch.utils.data import TensorDataset

    from eebench import torch_eager
    from eebench.training import TrainingConfig
    from eebench.training.loop import train_phase
    from eebench.training.regimes import JOINT_PHASE

    captured = {}
    real_step = torch_eager.AdamW.step

    def step(optimizer, *args, **kwargs):
        if not captured:
            captured.update({n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None})
        return real_step(optimizer, *args, **kwargs)

    monkeypatch.setattr(torch_eager.AdamW, "step", step)
    net = two_head_net()
    config = TrainingConfig(batch_size=4, max_epochs=max_epochs, patience=1, augment=False, **settings)
    data = TensorDataset(torch.tensor(TOY_X), torch.tensor(TOY_Y))
    history = train_phase(net, phase or JOINT_PHASE, data, data, "single_label", config, torch.device("cpu"))
    return captured, history[0]

