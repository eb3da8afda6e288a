"""PASCAL VOC 2007 as a multi-label image dataset, read from a VOCdevkit tree under ``root`` with the official
train/val/test image sets; labels from the XML annotations, images per item (eebench.data.vision)."""
from __future__ import annotations

import typing
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Annotated, Literal, Mapping

import numpy as np
from torch.utils.data import Dataset

from eebench.data.augment import NoBatchMixing, refuse_batch_mixing
from eebench.data.core import DATASETS, DatasetEntry, DatasetInfo, SplitSeed, label_columns, missing
from eebench.data.vision import ImageSize, check_image_size, encode_paths, multi_label_images
from eebench.declare import Param

VocClass = Literal[
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
    "tvmonitor",
]  # fmt: skip
VOC_CLASSES: tuple[str, ...] = typing.get_args(VocClass)  # the label columns, in VOC's order


def voc_labels(annotation: Path, keep_difficult: bool) -> np.ndarray:
    """Multi-hot [20] of the classes of the objects in one VOC XML annotation."""
    labels = np.zeros(len(VOC_CLASSES), dtype=np.float32)
    for obj in ET.parse(annotation).getroot().iter("object"):
        name = (obj.findtext("name") or "").strip()
        if name not in VOC_CLASSES:
            raise ValueError(f"dataset 'voc2007': unknown class {name!r} in {annotation}")
        if keep_difficult or (obj.findtext("difficult") or "0").strip() != "1":
            labels[VOC_CLASSES.index(name)] = 1.0
    return labels


@DATASETS.register("voc2007")
class Voc2007(DatasetEntry):
    """PASCAL VOC 2007 in the VOCdevkit layout; multi-label, 20 classes; official train/val/test image sets;
    input (3, image_size, image_size).

    The splits are the official ones, so ``split_seed`` (accepted so every dataset takes the same key) changes
    nothing. Objects marked difficult are skipped unless ``keep_difficult``; an image whose objects are all
    difficult then has an all-zero label. ``classes`` (names or indices) keeps those label columns, e.g. one
    class for paper A Fig. 6's binary models. ``cutmix_alpha`` and ``mixup_alpha`` are accepted only to be
    refused with the reason (they must stay 0): CutMix/MixUp here make soft single-label targets, and VOC is
    multi-label."""

    task = "multi_label"

    def prepare(
        self,
        *,
        root: Annotated[str, Param("Directory holding VOCdevkit/.")],
        split_seed: Annotated[SplitSeed, Param(
            "Accepted for uniformity; the official image sets fix the splits."
        )],
        image_size: ImageSize = 224,
        keep_difficult: Annotated[bool, Param("Count objects marked difficult as labels.")] = False,
        classes: Annotated[list[VocClass] | None, Param(
            "The label columns kept, in this order (null = all 20); one class is the binary task of paper A "
            "Fig. 6 (one early-exit model per class, on the same images).",
            min_length=1, json_schema_extra={"uniqueItems": True},
        )] = None,
        cutmix_alpha: NoBatchMixing = 0.0,
        mixup_alpha: NoBatchMixing = 0.0,
    ) -> tuple[DatasetInfo, dict[str, np.ndarray]]:
        del split_seed  # the official splits are fixed
        columns = label_columns("voc2007", classes, VOC_CLASSES)
        check_image_size("voc2007", image_size)
        refuse_batch_mixing("voc2007", cutmix_alpha, mixup_alpha)
        base = Path(root).resolve()
        voc = base / "VOCdevkit" / "VOC2007"
        names = [VOC_CLASSES[c] for c in columns]
        arrays: dict[str, np.ndarray] = {"root": np.array(str(base)), "classes": np.array(names)}
        for split in ("train", "val", "test"):
            listing = voc / "ImageSets" / "Main" / f"{split}.txt"
            if not listing.is_file():
                raise missing("voc2007", listing, f"the VOC2007 {split} image ids, one per line (VOCdevkit)")
            ids = listing.read_text().split()
            labels = []
            for image_id in ids:
                annotation = voc / "Annotations" / f"{image_id}.xml"
                image = voc / "JPEGImages" / f"{image_id}.jpg"
                for path, what in ((annotation, "its XML annotation"), (image, "its JPEG image")):
                    if not path.is_file():
                        raise missing("voc2007", path, f"{what} (image {image_id} of {listing})")
                labels.append(voc_labels(annotation, keep_difficult))
            arrays[f"files_{split}"] = encode_paths(
                [f"VOCdevkit/VOC2007/JPEGImages/{image_id}.jpg" for image_id in ids]
            )
            y = np.stack(labels) if labels else np.zeros((0, len(VOC_CLASSES)), np.float32)
            arrays[f"y_{split}"] = np.ascontiguousarray(y[:, columns])
        return DatasetInfo("voc2007", len(columns), self.task, (3, image_size, image_size)), arrays

    def load(self, prepared: Mapping[str, np.ndarray], split: str, augment: bool) -> Dataset:
        return multi_label_images(prepared, split, augment)
