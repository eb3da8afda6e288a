"""MS-COCO as a multi-label image dataset (paper A §4.2, Figs 3 and 5: "COCO"): each image's label is the set
of its annotated object categories, an 80-dimensional multi-hot vector, read from the official instances
annotations (annotations/instances_{train,val}<year>.json) beside the image folders {train,val}<year>/.

COCO's test images have no public annotations, so the official val set is the test split and the validation
split is held out of the official train set (``val_fraction``, ``split_seed``), as for STS-B. An image without
any (non-crowd) annotation keeps an all-zero label (paper A gives no rule; dropping them would change COCO's
image set). Crowd annotations (``iscrowd``) count unless ``skip_crowd``.
"""
from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Annotated, Literal, Mapping

import numpy as np
from torch.utils.data import Dataset

from eebench.data.augment import NoBatchMixing, refuse_batch_mixing
from eebench.data.core import DATASETS, DatasetEntry, DatasetInfo, Fraction, SplitSeed, check_fraction, missing
from eebench.data.vision import ImageSize, check_image_size, encode_paths, multi_label_images
from eebench.declare import Param

Year = Literal[2014, 2017]  # the releases with instances annotations of the 80 categories
YEARS: tuple[int, ...] = typing.get_args(Year)


def read_instances(path: Path, skip_crowd: bool) -> tuple[list[int], list[str], dict[int, str], dict[int, set]]:
    """The official annotation file's category ids (sorted: the label order), their names, each image's file
    name by image id, and each image's set of category ids."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        categories = sorted(data["categories"], key=lambda c: c["id"])
        files = {image["id"]: image["file_name"] for image in data["images"]}
        present: dict[int, set] = {image_id: set() for image_id in files}
        for annotation in data["annotations"]:
            if skip_crowd and annotation.get("iscrowd", 0):
                continue
            present[annotation["image_id"]].add(annotation["category_id"])
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise ValueError(f"{path}: not a COCO instances annotation file ({type(error).__name__}: {error})") from None
    return [c["id"] for c in categories], [c["name"] for c in categories], files, present


def multi_hot(image_ids: list[int], present: Mapping[int, set], category_ids: list[int]) -> np.ndarray:
    """[N, K] float32: 1 where the image holds category k (K in the sorted category-id order)."""
    column = {category: k for k, category in enumerate(category_ids)}
    labels = np.zeros((len(image_ids), len(category_ids)), dtype=np.float32)
    rows = [(i, column[c]) for i, image_id in enumerate(image_ids) for c in present[image_id]]
    if rows:
        index = np.asarray(rows)
        labels[index[:, 0], index[:, 1]] = 1.0
    return labels


@DATASETS.register("coco")
class Coco(DatasetEntry):
    """MS-COCO (paper A §4.2) from the official layout: root/annotations/instances_{train,val}<year>.json and
    root/{train,val}<year>/; multi-label, 80 classes (the categories of the annotation file, by id); input
    (3, image_size, image_size). Test = the official val set (test annotations are not public); val is held out
    of train."""

    task = "multi_label"

    def prepare(
        self,
        *,
        root: Annotated[str, Param("Directory holding annotations/ and the image folders.")],
        split_seed: SplitSeed,
        year: Annotated[Year, Param("Which release (paper A names COCO without a year).")] = 2017,
        val_fraction: Annotated[Fraction, Param(
            "Share of the official train images held out for validation (not given by the paper)."
        )] = 0.05,
        image_size: ImageSize = 224,
        skip_crowd: Annotated[bool, Param("Ignore crowd annotations (iscrowd) when labelling.")] = False,
        cutmix_alpha: NoBatchMixing = 0.0,
        mixup_alpha: NoBatchMixing = 0.0,
    ) -> tuple[DatasetInfo, dict[str, np.ndarray]]:
        if year not in YEARS:
            raise ValueError(f"dataset 'coco': year must be one of {YEARS}, got {year!r}")
        check_fraction("coco", "val_fraction", val_fraction)
        check_image_size("coco", image_size)
        refuse_batch_mixing("coco", cutmix_alpha, mixup_alpha)
        base = Path(root).resolve()
        sources = {}
        for source in ("train", "val"):
            annotations = base / "annotations" / f"instances_{source}{year}.json"
            folder = base / f"{source}{year}"
            if not annotations.is_file():
                raise missing("coco", annotations, f"COCO {year}'s official instances annotations ({source})")
            if not folder.is_dir():
                raise missing("coco", folder, f"COCO {year}'s {source} images")
            sources[source] = read_instances(annotations, skip_crowd)
        category_ids, names, _, _ = sources["train"]
        if sources["val"][0] != category_ids:
            raise ValueError(f"dataset 'coco': the train and val annotation files of {year} list other categories")

        from eebench.data.text import random_split

        train_files, train_present = sources["train"][2], sources["train"][3]
        train_ids = sorted(train_files)
        kept, held = random_split(len(train_ids), val_fraction, split_seed)
        val_files, val_present = sources["val"][2], sources["val"][3]
        chosen = {
            "train": ("train", [train_ids[i] for i in kept], train_files, train_present),
            "val": ("train", [train_ids[i] for i in held], train_files, train_present),
            "test": ("val", sorted(val_files), val_files, val_present),
        }
        arrays: dict[str, np.ndarray] = {"root": np.array(str(base)), "classes": np.array(names)}
        for split, (source, ids, files, present) in chosen.items():
            arrays[f"files_{split}"] = encode_paths([f"{source}{year}/{files[i]}" for i in ids])
            arrays[f"y_{split}"] = multi_hot(ids, present, category_ids)
            arrays[f"image_ids_{split}"] = np.asarray(ids, dtype=np.int64)
        return DatasetInfo("coco", len(category_ids), self.task, (3, image_size, image_size)), arrays

    def load(self, prepared: Mapping[str, np.ndarray], split: str, augment: bool) -> Dataset:
        return multi_label_images(prepared, split, augment)
