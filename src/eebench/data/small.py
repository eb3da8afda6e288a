"""Offline datasets built from scikit-learn's bundled 8x8 digits: small enough to run the whole pipeline on a
laptop CPU, with nothing to download. The prepared file holds the arrays themselves."""
from __future__ import annotations

from typing import Annotated, Mapping, Sequence

import numpy as np
import torch
from annotated_types import Interval
from torch.utils.data import Dataset, TensorDataset

from eebench.data.core import (
    DATASETS,
    SPLITS,
    DatasetEntry,
    DatasetInfo,
    Fraction,
    RandomShift,
    SplitSeed,
    TransformedTensors,
    check_fraction,
    label_columns,
    stratified_split,
)
from eebench.declare import Param

DIGIT_CLASSES = 10
GRID = 2  # composites are a GRID x GRID mosaic of base images

Digit = Annotated[int, Interval(ge=0, le=DIGIT_CLASSES - 1)]  # a class of the digits, as a label


def split_digits(
    dataset: str, split_seed: int, val_fraction: float, test_fraction: float
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """All digits images in [0, 1] as [N, 1, 8, 8], their labels, and each split's (sorted) indices into them.

    Stratified, so that even the ~360-image val and test splits hold every class in its usual proportion.
    """
    check_fraction(dataset, "val_fraction", val_fraction)
    check_fraction(dataset, "test_fraction", test_fraction)
    if val_fraction + test_fraction >= 1.0:
        raise ValueError(f"dataset {dataset!r}: val_fraction + test_fraction must be below 1")
    from sklearn.datasets import load_digits  # imported here: scikit-learn is slow to import

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None]
    y = digits.target.astype(np.int64)
    rest, test = stratified_split(y, test_fraction, split_seed)
    train, val = stratified_split(y[rest], val_fraction / (1.0 - test_fraction), split_seed)
    return x, y, {"train": rest[train], "val": rest[val], "test": test}


def load_in_memory(prepared: Mapping[str, np.ndarray], split: str, augment: bool) -> Dataset:
    """A ``TensorDataset`` (fast) unless augmenting; the augmentation is a random 1-pixel shift."""
    x = torch.from_numpy(prepared[f"x_{split}"])
    y = torch.from_numpy(prepared[f"y_{split}"])
    return TransformedTensors(x, y, RandomShift(1)) if augment else TensorDataset(x, y)


def subset_classes(dataset: str, y: np.ndarray, classes: Sequence[int] | None,
                   num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """The samples of a class subset and their labels renumbered 0..k-1 in the subset's order (paper A §4.1:
    "ImageNet with a varying number of output classes"); all samples and labels unchanged for None."""
    if classes is None:
        return np.arange(len(y)), y
    chosen = list(classes)
    if len(chosen) < 2 or len(set(chosen)) != len(chosen) or not all(0 <= c < num_classes for c in chosen):
        raise ValueError(f"dataset {dataset!r}: classes must be at least 2 distinct labels in [0, {num_classes}), "
                         f"got {classes!r}")
    keep = np.flatnonzero(np.isin(y, chosen))
    renumber = np.full(num_classes, -1, dtype=np.int64)
    renumber[chosen] = np.arange(len(chosen))
    return keep, renumber[y[keep]]


@DATASETS.register("digits")
class Digits(DatasetEntry):
    """scikit-learn's bundled 8x8 digits; single-label, 10 classes (or the classes subset, renumbered in the
    given order), input (1, 8, 8)."""

    def prepare(
        self,
        *,
        split_seed: SplitSeed,
        val_fraction: Fraction = 0.2,
        test_fraction: Fraction = 0.2,
        classes: Annotated[list[Digit] | None, Param(
            "A class subset (paper A Fig. 2: a growing number of classes): only these digits, labelled 0..k-1 in "
            "the order given; null = all ten. The splits are the full set's, restricted to the subset.",
            min_length=2, json_schema_extra={"uniqueItems": True},
        )] = None,
    ) -> tuple[DatasetInfo, dict[str, np.ndarray]]:
        x, y, index = split_digits("digits", split_seed, val_fraction, test_fraction)
        kept, labels = subset_classes("digits", y, classes, DIGIT_CLASSES)
        in_subset = np.zeros(len(y), dtype=bool)
        in_subset[kept] = True
        relabelled = np.full(len(y), -1, dtype=np.int64)
        relabelled[kept] = labels
        arrays: dict[str, np.ndarray] = {}
        for split in SPLITS:
            # The split of the full set, restricted to the subset: stratified, so still in class proportion.
            rows = index[split][in_subset[index[split]]]
            arrays |= {f"x_{split}": x[rows], f"y_{split}": relabelled[rows]}
            arrays[f"index_{split}"] = rows  # into load_digits(): provenance, and for tests
        num_classes = DIGIT_CLASSES if classes is None else len(classes)
        return DatasetInfo("digits", num_classes, self.task, (1, 8, 8)), arrays

    def load(self, prepared: Mapping[str, np.ndarray], split: str, augment: bool) -> Dataset:
        return load_in_memory(prepared, split, augment)


def composite_plan(
    y: np.ndarray, num_samples: int, m_values: Sequence[int], num_classes: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Which base image goes where in each composite of paper A §4.2 ("combine images from m randomly chosen
    categories"), for base images labelled ``y``: each sample draws m from ``m_values``, then m distinct
    classes, one random base image of each, and m distinct cells of a GRID x GRID mosaic. Returns the
    multi-hot labels [S, num_classes] (float32) and, per cell, the index of the base image placed there or -1
    [S, GRID*GRID]. (Preparation, once per dataset: a loop over samples is fine here.)"""
    cells = GRID * GRID
    pools = [np.flatnonzero(y == c) for c in range(num_classes)]
    m = rng.choice(np.asarray(m_values), size=num_samples)
    # Ranking i.i.d. uniforms gives a uniformly random permutation; its first m entries are m distinct draws.
    classes = np.argsort(rng.random((num_samples, num_classes)), axis=1)[:, :cells]
    positions = np.argsort(rng.random((num_samples, cells)), axis=1)
    picks = rng.random((num_samples, cells))
    labels = np.zeros((num_samples, num_classes), dtype=np.float32)
    source = np.full((num_samples, cells), -1, dtype=np.int64)
    for s in range(num_samples):
        for k in range(m[s]):
            pool = pools[classes[s, k]]
            source[s, positions[s, k]] = pool[int(picks[s, k] * len(pool))]
            labels[s, classes[s, k]] = 1.0
    return labels, source


def compose_grid(
    x: np.ndarray,
    y: np.ndarray,
    num_samples: int,
    m_values: Sequence[int],
    num_classes: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The composites of :func:`composite_plan` made from base images ``x`` [N, C, H, W]: the mosaics [S, C,
    GRID*H, GRID*W] (empty cells zero), their labels and the base image of each cell."""
    labels, source = composite_plan(y, num_samples, m_values, num_classes, rng)
    _, channels, h, w = x.shape
    mosaics = np.zeros((num_samples, channels, GRID * h, GRID * w), dtype=x.dtype)
    for cell in range(GRID * GRID):
        row, col = divmod(cell, GRID)
        filled = source[:, cell] >= 0
        mosaics[filled, :, row * h : (row + 1) * h, col * w : (col + 1) * w] = x[source[filled, cell]]
    return mosaics, labels, source


@DATASETS.register("digits_composite")
class DigitsComposite(DatasetEntry):
    """Paper A §4.2 composites of m distinct digits on a 2x2 grid, the offline analogue of its composite ImageNet
    (n = 10, m in {2, 4}); multi-label, 10 classes, input (1, 16, 16).

    Each split's mosaics use only that split of the ``digits`` base split (same seed and fractions), so no base
    image appears in two splits. ``classes`` keeps those label columns (in that order) of the same mosaics:
    ``classes: [3]`` is the binary "is there a 3?" task of paper A Fig. 6."""

    task = "multi_label"

    def prepare(
        self,
        *,
        split_seed: SplitSeed,
        val_fraction: Fraction = 0.2,
        test_fraction: Fraction = 0.2,
        m_values: Annotated[Sequence[Annotated[int, Interval(ge=1, le=GRID * GRID)]], Param(
            "Numbers of digits per composite; each sample draws one.", min_length=1
        )] = (2, 4),
        train_samples: Annotated[int, Param("Composites in the training split.", ge=1)] = 3000,
        val_samples: Annotated[int, Param("Composites in the validation split.", ge=1)] = 600,
        test_samples: Annotated[int, Param("Composites in the test split.", ge=1)] = 600,
        classes: Annotated[list[Digit] | None, Param(
            "The label columns kept, in this order, of the same composites (null = all ten); one class is the "
            "binary task of paper A Fig. 6 (one early-exit model per class).",
            min_length=1, json_schema_extra={"uniqueItems": True},
        )] = None,
    ) -> tuple[DatasetInfo, dict[str, np.ndarray]]:
        name = "digits_composite"
        columns = label_columns(name, classes, range(DIGIT_CLASSES))
        m_values = [int(m) for m in m_values]
        if not m_values or not all(1 <= m <= min(GRID * GRID, DIGIT_CLASSES) for m in m_values):
            raise ValueError(f"dataset {name!r}: m_values must be a non-empty list of integers in 1..4")
        sizes = {"train": train_samples, "val": val_samples, "test": test_samples}
        for split, size in sizes.items():
            if size < 1:
                raise ValueError(f"dataset {name!r}: {split}_samples must be positive, got {size!r}")
        x, y, index = split_digits(name, split_seed, val_fraction, test_fraction)
        arrays: dict[str, np.ndarray] = {}
        for k, split in enumerate(SPLITS):
            rng = np.random.default_rng([split_seed, k])  # one stream per split: sizes do not interact
            base = index[split]
            mosaics, labels, source = compose_grid(
                x[base], y[base], sizes[split], m_values, DIGIT_CLASSES, rng
            )
            # The mosaics do not depend on ``classes``: every subset labels the same images.
            arrays |= {f"x_{split}": mosaics, f"y_{split}": np.ascontiguousarray(labels[:, columns])}
            # Index into load_digits() of the image in each cell (-1 = empty): provenance, and for tests.
            arrays[f"source_{split}"] = np.where(source >= 0, base[np.maximum(source, 0)], -1)
        return DatasetInfo(name, len(columns), self.task, (1, 8 * GRID, 8 * GRID)), arrays

    def load(self, prepared: Mapping[str, np.ndarray], split: str, augment: bool) -> Dataset:
        return load_in_memory(prepared, split, augment)
