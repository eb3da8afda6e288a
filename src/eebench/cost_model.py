"""What a job costs, for the plan of a config (eebench.plan): the GPU kinds' throughput and the assumed
utilisation, the wall time of the jobs that do no network arithmetic, the epochs the papers report, each
loader's split sizes and input shape, and a network's FLOPs per sample per block and head (counted with
torch.utils.flop_counter on the meta device). Every number here is an estimate's input; eebench.plan says how
they combine.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Callable

from eebench import config as ee
from eebench import targets


# Throughput ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceKind:
    """One device's peak rate in the arithmetic the training loop uses on it (``training.precision: auto``)."""

    name: str
    peak_flops: float  # FLOP/s of one GPU (one core for the CPU)
    arithmetic: str
    source: str


DEVICE_KINDS: dict[str, DeviceKind] = {
    "h100": DeviceKind("NVIDIA H100 SXM", 989.4e12, "bf16 dense tensor cores", "NVIDIA H100 datasheet"),
    "h200": DeviceKind("NVIDIA H200 SXM", 989.4e12, "bf16 dense tensor cores", "NVIDIA H200 datasheet"),
    # Paper B trains ViT-T on ImageNet-1k on "4 A-100 GPUs" (App. E.5).
    "a100": DeviceKind("NVIDIA A100 SXM", 312e12, "bf16 dense tensor cores", "NVIDIA A100 datasheet"),
    # No bf16 on Volta: precision "auto" trains in fp32 there.
    "v100": DeviceKind("NVIDIA V100 SXM2", 15.7e12, "fp32 (no bf16)", "NVIDIA V100 datasheet"),
}
# One x86 core: 2 FMA units x 8 fp32 lanes (AVX2) x 2 FLOP at 3 GHz. What a job asking no GPU runs on, per thread.
CPU_CORE = DeviceKind("one CPU core", 96e9, "fp32, AVX2 FMA", "2 FMA units x 8 lanes x 2 FLOP x 3 GHz")
DEFAULT_GPU = "h100"
# Assumed share of the peak a job sustains, not measured here (no GPU): networks on small images with small widths
# (the CIFAR settings) keep a GPU less busy than ImageNet-size ones. Measure the target GPU's samples/s with
# benchmarks/train_step.py and pass --utilisation.
DEFAULT_UTILISATION = 0.2

# Wall seconds of the jobs that do no network arithmetic (one CPU core each). Sweeps, budget tables and B_EE grow
# with the exits they read: measured here (eebench.metrics.run_metrics, 3 criteria with 4 budget tables, 2 shared
# cores): 15 heads x 15,000 samples x 100 classes 2.2 s, 12 x 178,117 x 1,000 66 s; per criterion this fit is
# 2.5 us per head and sample plus 8 ns per logit. The rest is assumed: a job's start through the run's worker
# (README, "One worker process per run"), a rendering, a per-layer analysis's own arithmetic (an SVD or a
# 2,000 x 2,000 distance matrix) besides its forward passes, and a dataset's listing or tokenising per sample.
LOCAL_SECONDS = {
    "start": 1.0,
    "per_exit_and_criterion": 2.5e-6,
    "per_logit_and_criterion": 8e-9,
    "render": 2.0,
    "layer_analysis": 30.0,
    "prepare_per_sample": 2e-5,
}
# workflow/rules/common.smk's localrules: they run where Snakemake runs, never on a GPU (a test reads the file).
LOCAL_RULES = ("prepare_dataset", "import_logits", "import_static_logits", "compute_metrics", "compute_bee",
               "analyze_layers", "render_table", "render_figure", "render_readings", "render_body", "build_paper")

# Epochs the papers report -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportedEpochs:
    """Epochs a paper reports for one setting (backbone on a dataset loader), per regime: each the whole run's,
    all its phases together."""

    backbone: str
    loader: str
    regimes: dict[str, int]
    source: str

    def phase_epochs(self, regime: str) -> int | None:
        """The epochs charged to each phase of this regime's job: the reported total bounds every phase of the
        run; phase 1 alone (the ``backbone`` job, shared by the regimes that reuse it) the smallest total of a
        reported regime that contains it. None where the paper reports nothing for the regime."""
        from eebench.training import REGIMES

        if regime == targets.BACKBONE_REGIME:
            totals = [epochs for name, epochs in self.regimes.items() if REGIMES.get(name).reuses_backbone]
            return min(totals) if totals else None
        return self.regimes.get(regime)


# Paper B §4.7 ("Training time"), ResNet-50 on Tiny-ImageNet, averaged over seeds: disjoint 523 (± 156) epochs,
# joint 1610 (± 395), mixed 1166 (± 136). App. E gives patience but no epochs for any setting; paper A gives none.
REPORTED_EPOCHS: tuple[ReportedEpochs, ...] = (
    ReportedEpochs("resnet50", "tinyimagenet", {"disjoint": 523, "joint": 1610, "mixed": 1166}, "paper B §4.7"),
)

# Datasets ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetSize:
    """Samples per split, one sample's input shape and the outputs per head: what a dataset entry's cost needs,
    known without its files."""

    train: int
    val: int
    test: int
    input_shape: tuple[int, ...]
    num_classes: int


def _held_out(pool: int, fraction: float, test: int, shape: tuple[int, ...], classes: int) -> DatasetSize:
    """Validation held out of an official training pool (scikit-learn's split rounds the held-out part up)."""
    held = math.ceil(pool * fraction)
    return DatasetSize(pool - held, held, test, shape, classes)


def _image(params: dict[str, Any]) -> tuple[int, int, int]:
    return (3, params["image_size"], params["image_size"])


def _subset(params: dict[str, Any], every: int) -> int:
    return every if params.get("classes") is None else len(params["classes"])


IMAGENET_TRAIN, IMAGENET_VAL, IMAGENET_CLASSES = 1_281_167, 50_000, 1000  # ILSVRC-2012 (Russakovsky et al., 2015)
DIGITS_SAMPLES = 1797  # scikit-learn's load_digits


def _imagenet(params: dict[str, Any]) -> DatasetSize:
    """A class subset holds its share of the images (1,281 per class on average, 50 test images each)."""
    k = _subset(params, IMAGENET_CLASSES)
    return _held_out(round(IMAGENET_TRAIN * k / IMAGENET_CLASSES), params["val_fraction"],
                     IMAGENET_VAL * k // IMAGENET_CLASSES, _image(params), k)


def _digits(params: dict[str, Any]) -> DatasetSize:
    k = _subset(params, 10)
    test = math.ceil(DIGITS_SAMPLES * params["test_fraction"])
    rest = DIGITS_SAMPLES - test
    val = math.ceil(rest * params["val_fraction"] / (1 - params["test_fraction"]))
    share = k / 10  # a class subset keeps its classes' samples of each split (stratified: in proportion)
    return DatasetSize(round((rest - val) * share), round(val * share), round(test * share), (1, 8, 8), k)


def _samples(params: dict[str, Any], shape: tuple[int, ...], classes: int) -> DatasetSize:
    """A loader whose split sizes are its parameters (composites)."""
    return DatasetSize(params["train_samples"], params["val_samples"], params["test_samples"], shape, classes)


# Per registered loader, its splits from its parameters (defaults filled). Train pools and test sets are the
# official ones each loader reads (its docstring), validation held out of the train pool unless it has its own.
DATASET_SIZES: dict[str, Callable[[dict[str, Any]], DatasetSize]] = {
    # CIFAR-10/100: 50,000 train and 10,000 test images (Krizhevsky, 2009).
    "cifar10": lambda p: _held_out(50_000, p["val_fraction"], 10_000, _image(p), 10),
    "cifar100": lambda p: _held_out(50_000, p["val_fraction"], 10_000, _image(p), 100),
    # Tiny ImageNet: 500 train images per class x 200, its 10,000 val images the test split (Le & Yang, 2015).
    "tinyimagenet": lambda p: _held_out(100_000, p["val_fraction"], 10_000, _image(p), 200),
    "imagenet": _imagenet,
    # Imagenette (imagenette2): 9,469 train and 3,925 val images in 10 classes (Howard, 2019; its README).
    "imagenette": lambda p: _held_out(9_469, p["val_fraction"], 3_925, _image(p), 10),
    "imagenet_composite": lambda p: _samples(p, _image(p), len(p["classes"] or ()) or p["num_classes"]),
    # PASCAL VOC 2007: official train 2,501, val 2,510 and test 4,952 images (Everingham et al., 2010).
    "voc2007": lambda p: DatasetSize(2_501, 2_510, 4_952, _image(p), _subset(p, 20)),
    # MS-COCO: train2014 82,783 / val2014 40,504 images, train2017 118,287 / val2017 5,000 (Lin et al., 2014;
    # cocodataset.org); 80 categories; the official val is the test split, every image kept.
    "coco": lambda p: _held_out(*{2014: (82_783, p["val_fraction"], 40_504),
                                  2017: (118_287, p["val_fraction"], 5_000)}[p["year"]], _image(p), 80),
    # 20 Newsgroups bydate: 11,314 train and 7,532 test posts, 20 groups; (input ids, attention mask) rows.
    "newsgroups20": lambda p: _held_out(11_314, p["val_fraction"], 7_532, (2, p["max_length"]), 20),
    # GLUE STS-B: train.tsv 5,749 pairs, dev.tsv 1,500 (the test split); one regression output; + token types.
    "stsb": lambda p: _held_out(5_749, p["val_fraction"], 1_500, (3, p["max_length"]), 1),
    "digits": _digits,
    # A 2 x 2 mosaic of 8 x 8 digits.
    "digits_composite": lambda p: _samples(p, (1, 16, 16), _subset(p, 10)),
}


def dataset_size(config: dict[str, Any], dataset: str) -> DatasetSize:
    """The splits of dataset entry ``dataset`` of a checked config, from its loader's parameters alone."""
    from eebench.data import parameters

    loader = ee.dataset_loader(config, dataset)
    if loader not in DATASET_SIZES:
        raise ValueError(f"no sample counts known for loader {loader!r} (datasets.{dataset}); add its "
                         f"splits to eebench.cost_model.DATASET_SIZES")
    defaults = {key: p.default for key, p in parameters(loader).items() if p.default is not p.empty}
    return DATASET_SIZES[loader]({**defaults, **ee.dataset_params(config, dataset)})


# Networks ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NetworkCost:
    """Forward FLOPs for one sample: of each block, of each head (by the block it follows), and of the whole
    forward (every block and head, and a merge module's work: GPF)."""

    blocks: tuple[float, ...]
    heads: dict[int, float]
    forward: float

    @property
    def head_blocks(self) -> list[int]:
        return sorted(self.heads)

    def backward_part(self, trained_blocks: tuple[int, ...], loss_heads: set[int]) -> float:
        """Forward FLOPs of what a step back-propagates through: the blocks from the first trained one up to
        the deepest head whose loss counts, and the heads whose losses count (with the merge module's share
        when one is an IC); only those heads where every block is frozen."""
        head_blocks = self.head_blocks
        blocks = [head_blocks[h] for h in loss_heads]
        part = sum(self.heads[b] for b in blocks)
        if trained_blocks:
            part += sum(self.blocks[min(trained_blocks):max(blocks) + 1])
        if any(h < len(head_blocks) - 1 for h in loss_heads):
            part += self.forward - sum(self.blocks) - sum(self.heads.values())  # the merge module, if any
        return part


_MODULES: dict[str, tuple[tuple[float, ...], dict[int, float], float | None]] = {}


def network_cost(settings: dict[str, Any], size: DatasetSize) -> NetworkCost:
    """FLOPs of the network ``eebench train --model`` builds from ``settings`` (eebench.targets.train_settings or
    static_settings) for a dataset of ``size``. A block's and a head's FLOPs do not depend on where the other
    heads are, so one network with a head after every block is counted per backbone, IC type and dataset shape,
    and every placement and static head is read off it; the plain backbone (no ICs: a backbone may take ICs of
    its own type only, MSDNet) and IC types with a merge module (GPF), whose work grows with the number of ICs,
    are counted as placed."""
    from eebench.models import IC_TYPES

    merges = getattr(IC_TYPES.get(settings["ic"]["type"]), "build_merge", None) is not None
    blocks, heads, forward = _module_costs(settings, size, exact=merges or settings["placement"] == [])
    last = len(blocks) - 1
    placement = settings["placement"]
    placed = set(range(len(blocks))) if placement is None else set(placement) | {last}
    truncate_at = settings.get("truncate_at")
    if truncate_at is not None:  # a static head: the blocks up to it and its head alone
        blocks, placed = blocks[:truncate_at + 1], {truncate_at}
    heads = {block: flops for block, flops in heads.items() if block in placed}
    if forward is None or truncate_at is not None:
        forward = sum(blocks) + sum(heads.values())
    return NetworkCost(tuple(blocks), heads, forward)


def _module_costs(settings: dict[str, Any], size: DatasetSize, exact: bool
                  ) -> tuple[tuple[float, ...], dict[int, float], float | None]:
    """Forward FLOPs for one sample of each block and each head, counted with torch.utils.flop_counter on the
    meta device (no weights drawn or read); with ``exact``, of the network as placed, with its whole forward
    (a merge module's work included), else with a head after every block and no whole forward. Computed once
    per network."""
    import torch

    from eebench.models import ModelSpec, build_model
    from eebench.torch_eager import FlopCounter

    params = {key: value for key, value in settings["params"].items() if key != "weights"}  # not the FLOPs'
    placement = settings["placement"] if exact else None
    key = json.dumps([settings["backbone"], params, settings["ic"], placement, size.input_shape, size.num_classes],
                     sort_keys=True)
    if key in _MODULES:
        return _MODULES[key]
    spec = ModelSpec(backbone=settings["backbone"], backbone_params=params, input_shape=size.input_shape,
                     num_classes=size.num_classes, ic=settings["ic"], placement=placement)

    def count(module: Callable[[Any], Any], x: Any) -> tuple[float, Any]:
        with FlopCounter(display=False) as counter:
            out = module(x)
        return float(counter.get_total_flops()), out

    with torch.device("meta"):
        model = build_model(spec).eval()
    with torch.no_grad():  # outside the device mode, whose hook on every call would slow the count threefold
        x = model.example_input(size.input_shape, "meta")
        forward = count(model, x)[0] if exact else None
        blocks, heads = [], {}
        for index, block in enumerate(model.blocks):
            flops, x = count(block, x)
            blocks.append(flops)
            if str(index) in model.heads:
                heads[index] = count(model.heads[str(index)], x)[0]
    _MODULES[key] = (tuple(blocks), heads, forward)
    return _MODULES[key]
