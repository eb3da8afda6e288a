"""COCO from a tiny fixture in the official layout: instances JSON + image folders, written by the test."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from eebench.data import DatasetInfo, DatasetMissingError, load_split, prepare_dataset

# Category ids are not contiguous in COCO (1..90 for 80 classes): the label order is by id.
CATEGORIES = [{"id": 7, "name": "train"}, {"id": 1, "name": "person"}, {"id": 3, "name": "car"}]


def write_coco(root: Path, year: int = 2017, train_images: int = 10) -> Path:
    for source, count in (("train", train_images), ("val", 3)):
        folder = root / f"{source}{year}"
        folder.mkdir(parents=True)
        images, annotations = [], []
        for i in range(count):
            image_id = 100 * (source == "val") + i + 1
            name = f"{image_id:012d}.jpg"
            Image.fromarray(np.full((6, 8, 3), 10 * i, dtype=np.uint8)).save(folder / name)
            images.append({"id": image_id, "file_name": name, "height": 6, "width": 8})
            # image i holds: person always but for the last; car if i even; train (crowd only) if i == 1
            if i < count - 1:
                annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": 1,
                                    "iscrowd": 0})
            if i % 2 == 0 and i < count - 1:
                annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": 3,
                                    "iscrowd": 0})
            if i == 1:
                annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": 7,
                                    "iscrowd": 1})
        (root / "annotations").mkdir(exist_ok=True)
        (root / "annotations" / f"instances_{source}{year}.json").write_text(json.dumps(
            {"images": images, "annotations": annotations, "categories": CATEGORIES}))
    return root


def arrays(path):
    with np.load(path) as npz:
        return {key: npz[key] for key in npz.files}


def test_coco_labels_splits_and_images(tmp_path):
    root = write_coco(tmp_path / "coco")
    info = prepare_dataset("coco", {"root": str(root), "split_seed": 0, "val_fraction": 0.2, "image_size": 16},
                           tmp_path / "c.npz")
    assert info == DatasetInfo("coco", 3, "multi_label", (3, 16, 16))
    prepared = arrays(tmp_path / "c.npz")
    assert prepared["classes"].tolist() == ["person", "car", "train"]  # by category id: 1, 3, 7
    # test = the official val images 101..103: person+car, person (+ the crowd train), nothing
    assert prepared["image_ids_test"].tolist() == [101, 102, 103]
    assert prepared["y_test"].tolist() == [[1, 1, 0], [1, 0, 1], [0, 0, 0]]
    # val is held out of the official train images: 2 of 10, disjoint, together all of them
    held, kept = prepared["image_ids_val"], prepared["image_ids_train"]
    assert len(held) == 2 and sorted([*held, *kept]) == list(range(1, 11))
    for split in ("train", "val"):
        for image_id, label in zip(prepared[f"image_ids_{split}"], prepared[f"y_{split}"]):
            i = image_id - 1
            assert label.tolist() == [float(i < 9), float(i % 2 == 0 and i < 9), float(i == 1)]
    x, y = load_split(tmp_path / "c.npz", "test")[0][0]
    assert x.shape == (3, 16, 16) and y.tolist() == [1.0, 1.0, 0.0]
    again = prepare_dataset("coco", {"root": str(root), "split_seed": 0, "val_fraction": 0.2, "image_size": 16},
                            tmp_path / "d.npz")
    assert again == info and np.array_equal(arrays(tmp_path / "d.npz")["image_ids_val"], held)


def test_coco_can_skip_crowd_annotations(tmp_path):
    root = write_coco(tmp_path / "coco")
    prepare_dataset("coco", {"root": str(root), "split_seed": 0, "skip_crowd": True}, tmp_path / "c.npz")
    assert arrays(tmp_path / "c.npz")["y_test"].tolist() == [[1, 1, 0], [1, 0, 0], [0, 0, 0]]


def test_coco_missing_files_and_bad_values_name_them(tmp_path):
    root = write_coco(tmp_path / "coco")
    with pytest.raises(DatasetMissingError, match="instances_train2014.json"):
        prepare_dataset("coco", {"root": str(root), "split_seed": 0, "year": 2014}, tmp_path / "c.npz")
    with pytest.raises(ValueError, match="year must be one of"):
        prepare_dataset("coco", {"root": str(root), "split_seed": 0, "year": 2015}, tmp_path / "c.npz")
    (root / "annotations" / "instances_val2017.json").write_text('{"images": []}')
    with pytest.raises(ValueError, match="instances_val2017.json: not a COCO instances annotation file"):
        prepare_dataset("coco", {"root": str(root), "split_seed": 0}, tmp_path / "c.npz")
    assert not (tmp_path / "c.npz").exists()
