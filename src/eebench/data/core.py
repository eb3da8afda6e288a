"""Dataset registry and the two calls the rest of eebench uses: ``prepare_dataset`` and ``load_split``.

Preparing fixes the train/val/test splits once, in one ``.npz`` that later jobs read, so every model, logit
cache and metric of a run sees exactly the same samples. Entries are pure: ``prepare`` returns the arrays and
this module writes them (atomically), so there is one place that decides the file's layout.
"""
from __future__ import annotations

import inspect
import json
import os
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any, Callable, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from eebench.declare import Ref, declared_parameters
from eebench.io import PREPARED_DATASET, ResultFileError, read_npz, save_npz
from eebench.registry import Registry

SPLITS = ("train", "val", "test")

# The parameters every loader shares, declared as the config schema's shared definitions (eebench.declare).
SplitSeed = Annotated[int, Ref("split_seed")]  # the seed of the train/val/test split
Fraction = Annotated[float, Ref("fraction")]  # a split's share of the samples, strictly between 0 and 1


class DatasetMissingError(FileNotFoundError):
    """The files of a dataset are not where its ``root`` parameter says; nothing is ever downloaded."""


def missing(dataset: str, path: Path, expected: str) -> DatasetMissingError:
    return DatasetMissingError(f"dataset {dataset!r}: {path} does not exist; expected {expected} there")


@dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about a dataset to be built for it."""

    name: str
    num_classes: int  # outputs per head (1 for a regression target)
    task: str  # a registered task (eebench.tasks): "single_label", "multi_label" or "regression"
    input_shape: tuple[int, ...]  # one sample's tensor shape, e.g. (1, 8, 8); (2, T) int64 for token inputs
    # (row 0 input ids, row 1 attention mask)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "DatasetInfo":
        data = json.loads(text)
        data["input_shape"] = tuple(data["input_shape"])
        if "task" not in data and "multilabel" in data:  # prepared before tasks were named
            regression = data.pop("regression", False)
            data["task"] = "regression" if regression else "multi_label" if data.pop("multilabel") else "single_label"
        return cls(**data)


class DatasetEntry(ABC):
    """A registered dataset. ``prepare`` takes only keyword-only, typed parameters (they are the dataset's
    config keys and their defaults); ``load`` turns the prepared arrays of one split into a torch Dataset.
    ``task`` says what its labels are, so a config can be checked (e.g. its exit criteria) before preparing."""

    task: str = "single_label"

    @abstractmethod
    def prepare(self, **params: Any) -> tuple[DatasetInfo, dict[str, np.ndarray]]:
        """Return the dataset's info and the arrays that fully determine its splits."""

    @abstractmethod
    def load(self, prepared: Mapping[str, np.ndarray], split: str, augment: bool) -> Dataset:
        """One split as a Dataset of ``(x, y)``; ``augment`` is only ever True for "train"."""


# The loaders, by name; each module below registers its own (imported at the first lookup, not by this package).
DATASETS: Registry[type[DatasetEntry]] = Registry(
    "dataset",
    declared=lambda entry: entry.prepare,
    providers=(
        "eebench.data.small",  # digits, digits_composite
        "eebench.data.cifar",  # cifar10, cifar100
        "eebench.data.imagenet",  # imagenet, imagenette, tinyimagenet
        "eebench.data.imagenet_composite",
        "eebench.data.voc",  # voc2007
        "eebench.data.coco",
        "eebench.data.text",  # newsgroups20, stsb
    ),
)


def parameters(name: str) -> dict[str, inspect.Parameter]:
    """The config keys a dataset accepts, with their defaults (``inspect.Parameter.empty`` = required)."""
    return declared_parameters(DATASETS.declared(name))


def dataset_params_schema() -> dict[str, Any]:
    """The config schema's ``$defs/dataset_params``: each loader's parameters as a JSON schema, generated from
    their declaration at its ``prepare`` (eebench.declare)."""
    return {"properties": {name: DATASETS.parameters_schema(name) for name in DATASETS.names()}}


def check_params(name: str, params: Mapping[str, Any]) -> None:
    """Fail with the dataset's name and the key, rather than with a bare ``TypeError`` from the call."""
    accepted = parameters(name)
    for key in params:
        if key not in accepted:
            raise TypeError(
                f"dataset {name!r}: unknown parameter {key!r}; accepted: {', '.join(sorted(accepted))}"
            )
    for key, param in accepted.items():
        if param.default is inspect.Parameter.empty and key not in params:
            raise TypeError(f"dataset {name!r}: missing required parameter {key!r}")


def prepare_dataset(name: str, params: Mapping[str, Any], out_path: str | os.PathLike) -> DatasetInfo:
    """Fix the splits of dataset ``name`` (deterministic from ``params["split_seed"]``) in ``out_path``."""
    check_params(name, params)
    # Recorded with defaults filled in, so the file says how it was made even if a default changes later.
    resolved = {key: params.get(key, p.default) for key, p in parameters(name).items()}
    entry = DATASETS.get(name)()
    info, arrays = entry.prepare(**params)
    if info.task != entry.task:
        raise RuntimeError(f"dataset {name!r}: declares task {entry.task!r} but prepared {info.task!r}")
    reserved = {"info", "params"} & arrays.keys()
    if reserved:
        raise RuntimeError(f"dataset {name!r}: prepare returned reserved keys {sorted(reserved)}")
    save_npz(
        out_path,
        info=np.array(info.to_json()),
        params=np.array(json.dumps(resolved, sort_keys=True, default=str)),
        **arrays,
    )
    return info


def _stored_info(prepared_path: str | os.PathLike, arrays: Mapping[str, np.ndarray]) -> DatasetInfo:
    try:
        info = DatasetInfo.from_json(str(arrays["info"]))
    except (ValueError, TypeError, KeyError) as error:  # bad JSON, or fields DatasetInfo does not have
        raise ResultFileError(prepared_path, f"its 'info' is not a dataset description ({error})",
                              PREPARED_DATASET) from None
    if info.name not in DATASETS:
        raise ResultFileError(prepared_path, f"made for dataset {info.name!r}, which is not registered "
                                             f"(registered: {', '.join(DATASETS.names())})", PREPARED_DATASET)
    return info


def read_info(prepared_path: str | os.PathLike) -> DatasetInfo:
    return _stored_info(prepared_path, read_npz(prepared_path, PREPARED_DATASET, keys=("info",)))


def inputs_fingerprint(prepared_path: str | os.PathLike, split: str) -> str:
    """SHA-1 of a split's inputs as prepared (every ``*_<split>`` array but the labels ``y_<split>``): equal for
    two datasets that label the same images differently (e.g. ``classes`` subsets), so results of models
    trained on them can be compared sample by sample. The root directory is left out: the same files hold the
    same images wherever they lie."""
    import hashlib

    arrays = read_npz(prepared_path, PREPARED_DATASET, keys=("info",))
    digest = hashlib.sha1()
    for key in sorted(k for k in arrays if k.endswith(f"_{split}") and k != f"y_{split}"):
        value = np.ascontiguousarray(arrays[key])
        digest.update(f"{key}|{value.dtype.str}|{value.shape}|".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


def load_split(
    prepared_path: str | os.PathLike, split: str, augment: bool = False
) -> tuple[Dataset, DatasetInfo]:
    """One split of a prepared dataset. Augmentation applies to "train" only: val and test drive early-exit
    thresholds and reported metrics, which must not depend on random transforms."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    # Read whole and checked (a bad file is one line naming it); a split's key the file lacks raises
    # ResultKeyError from inside the entry's ``load``.
    arrays = read_npz(prepared_path, PREPARED_DATASET, keys=("info",))
    info = _stored_info(prepared_path, arrays)
    dataset = DATASETS.get(info.name)().load(arrays, split, augment and split == "train")
    return dataset, info


def load_augmented_validation(prepared_path: str | os.PathLike) -> Dataset:
    """The validation split with the training split's per-image augmentation, never its batch mixing
    (Mixup/CutMix: training batches only): what the authors' early stopping scores, its validation subset cut
    from the augmented training set (``training.validation_augment``). Only early stopping reads it; a logit
    cache's val logits come from :func:`load_split`, unaugmented."""
    arrays = read_npz(prepared_path, PREPARED_DATASET, keys=("info",))
    info = _stored_info(prepared_path, arrays)
    dataset = DATASETS.get(info.name)().load(arrays, "val", True)
    if hasattr(dataset, "collate_fn"):
        del dataset.collate_fn
    return dataset


# Helpers shared by the entries.


def stratified_split(
    labels: np.ndarray, held_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (kept, held out), each sorted, with class proportions preserved (scikit-learn's split)."""
    from sklearn.model_selection import train_test_split  # imported here: scikit-learn is slow to import

    index = np.arange(len(labels))
    kept, held = train_test_split(index, test_size=held_fraction, random_state=seed, stratify=labels)
    return np.sort(kept), np.sort(held)


def label_columns(dataset: str, classes: Sequence[int | str] | None, names: Sequence[Any]) -> list[int]:
    """The label columns a multi-label dataset keeps: ``classes`` (indices or names of ``names``), in the given
    order; every column for None. One class makes a binary dataset: paper A Fig. 6 trains "ten early-exit
    models, each dedicated to a unique class", on the same images."""
    if classes is None:
        return list(range(len(names)))
    lookup = {str(name): i for i, name in enumerate(names)}
    columns = []
    for value in classes:
        if isinstance(value, str) and value in lookup:
            columns.append(lookup[value])
        elif isinstance(value, (int, np.integer)) and not isinstance(value, bool) and 0 <= value < len(names):
            columns.append(int(value))
        else:
            raise ValueError(f"dataset {dataset!r}: classes: {value!r} is neither a class index in [0, "
                             f"{len(names)}) nor a class name ({', '.join(map(str, names))})")
    if not columns or len(set(columns)) != len(columns):
        raise ValueError(f"dataset {dataset!r}: classes must be one or more distinct classes, got {list(classes)!r}")
    return columns


def check_fraction(dataset: str, key: str, value: float) -> None:
    if not 0.0 < value < 1.0:
        raise ValueError(f"dataset {dataset!r}: {key} must lie strictly between 0 and 1, got {value!r}")


def translate(x: Tensor, dy: int, dx: int) -> Tensor:
    """``x`` shifted by ``dy`` rows down and ``dx`` columns right over its last two axes, zero-filled."""
    h, w = x.shape[-2:]
    out = torch.zeros_like(x)
    out[..., max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = x[
        ..., max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


class RandomShift:
    """Random translation by up to ``max_shift`` pixels per axis, zero-filled. Drawn from torch's RNG, so
    ``torch.manual_seed`` and DataLoader worker seeding control it."""

    def __init__(self, max_shift: int) -> None:
        self.max_shift = max_shift

    def __call__(self, x: Tensor) -> Tensor:
        dy, dx = torch.randint(-self.max_shift, self.max_shift + 1, (2,)).tolist()
        return translate(x, dy, dx)

    def batch(self, x: Tensor) -> Tensor:
        """Each sample of ``x`` [B, ..., H, W] shifted by its own draw (one draw of [B, 2]), as :func:`translate`
        would: every sample reads its H x W window of the zero-padded batch, one gather for the whole batch
        instead of B Python calls or a copy per distinct shift (7x faster than the latter on 64 8x8 digits)."""
        shifts = torch.randint(-self.max_shift, self.max_shift + 1, (len(x), 2))
        m, (h, w) = self.max_shift, x.shape[-2:]
        padded = torch.nn.functional.pad(x, (m, m, m, m))
        # out[..., i, j] = x[..., i - dy, j - dx] = padded[..., i - dy + m, j - dx + m] (zero outside x)
        rows = (torch.arange(h) + m - shifts[:, :1])[:, :, None]  # [B, H, 1]
        cols = (torch.arange(w) + m - shifts[:, 1:])[:, None, :]  # [B, 1, W]
        flat = padded.reshape(len(x), -1, h + 2 * m, w + 2 * m)  # [B, C', H + 2m, W + 2m]
        picked = flat[torch.arange(len(x))[:, None, None], :, rows, cols]  # [B, H, W, C'] (advanced dims first)
        return picked.permute(0, 3, 1, 2).reshape(x.shape).contiguous()


class TransformedTensors(Dataset):
    """In-memory samples with a per-item transform: the augmented counterpart of a ``TensorDataset``."""

    def __init__(self, x: Tensor, y: Tensor, transform: Callable[[Tensor], Tensor]) -> None:
        if len(x) != len(y):
            raise ValueError(f"{len(x)} inputs but {len(y)} targets")
        self.x, self.y, self.transform = x, y, transform

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.transform(self.x[index]), self.y[index]

    def __getitems__(self, indices: list[int]) -> list[tuple[Tensor, Tensor]]:
        """A whole batch at once (the DataLoader's batched fetch), through the transform's ``batch`` method
        when it has one."""
        batch = getattr(self.transform, "batch", None)
        if batch is None:
            return [self[i] for i in indices]
        index = torch.as_tensor(indices)
        return list(zip(batch(self.x[index]), self.y[index]))
