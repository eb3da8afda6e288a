"""CIFAR-10, TinyImageNet and Imagenette on tiny fixtures written in their real on-disk layouts."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import TensorDataset

from eebench.data import DatasetInfo, DatasetMissingError, load_split, parameters, prepare_dataset
from eebench.data.vision import IMAGENET_MEAN, IMAGENET_STD
from tests.data.vision_fixtures import (
    CIFAR10_NAMES,
    CIFAR10_TEST_LABELS,
    CIFAR10_TRAIN_LABELS,
    IMAGENETTE_WNIDS,
    TINY_VAL,
    TINY_WNIDS,
    save_image,
    write_cifar10,
    write_imagenette,
    write_tinyimagenet,
)


def arrays(path) -> dict[str, np.ndarray]:
    with np.load(path) as npz:
        return {key: npz[key] for key in npz.files}


def normalised(path: Path) -> np.ndarray:
    """What the evaluation pipeline must give for an image already at the input size: ToTensor + Normalize."""
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB"), dtype=np.float32).transpose(2, 0, 1) / 255.0
    return (pixels - np.array(IMAGENET_MEAN)[:, None, None]) / np.array(IMAGENET_STD)[:, None, None]


# CIFAR-10

@pytest.fixture(scope="module")
def cifar10_root(tmp_path_factory) -> Path:
    return write_cifar10(tmp_path_factory.mktemp("cifar10"))


def test_cifar10_splits_labels_and_items(cifar10_root, tmp_path):
    params = {"root": str(cifar10_root), "split_seed": 0, "val_fraction": 0.5}
    info = prepare_dataset("cifar10", params, tmp_path / "c.npz")
    assert info == DatasetInfo("cifar10", 10, "single_label", (3, 32, 32))
    c = arrays(tmp_path / "c.npz")
    assert c["classes"].tolist() == CIFAR10_NAMES
    assert sorted(np.concatenate([c["index_train"], c["index_val"]]).tolist()) == list(range(20))
    assert np.bincount(c["y_val"], minlength=10).tolist() == [1] * 10  # stratified
    assert np.bincount(c["y_train"], minlength=10).tolist() == [1] * 10
    assert c["y_test"].tolist() == CIFAR10_TEST_LABELS
    # Constant rows: the train mean is the mean row number / 255, per channel; the std its spread.
    rows = c["index_train"].astype(np.float64)
    np.testing.assert_allclose(c["mean"], [rows.mean() / 255] * 3, rtol=1e-6)
    np.testing.assert_allclose(c["std"], [rows.std() / 255] * 3, rtol=1e-6)
    for split, rows, first in (("train", c["index_train"], 0), ("val", c["index_val"], 0),
                               ("test", np.arange(6), 100)):
        dataset, _ = load_split(tmp_path / "c.npz", split)
        assert isinstance(dataset, TensorDataset) and len(dataset) == len(rows)
        for k in range(len(rows)):
            x, y = dataset[k]
            raw = (first + rows[k]) / 255.0  # every byte of the row, e.g. row 13 = data_batch_4's second row
            assert x.shape == (3, 32, 32) and x.dtype == torch.float32
            np.testing.assert_allclose(x[:, 0, 0].numpy(), (raw - c["mean"]) / c["std"], rtol=1e-5)
            expected = CIFAR10_TRAIN_LABELS[rows[k]] if split != "test" else CIFAR10_TEST_LABELS[k]
            assert y.dtype == torch.int64 and int(y) == expected


def test_cifar10_is_deterministic_in_the_seed(cifar10_root, tmp_path):
    for seed, file in ((0, "a"), (0, "b"), (1, "c")):
        prepare_dataset("cifar10", {"root": str(cifar10_root), "split_seed": seed, "val_fraction": 0.5},
                        tmp_path / file)
    a, b, c = (arrays(tmp_path / f) for f in "abc")
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["index_val"], c["index_val"])


def test_cifar10_missing_files_name_the_path(cifar10_root, tmp_path):
    with pytest.raises(DatasetMissingError, match="cifar10") as error:
        prepare_dataset("cifar10", {"root": str(tmp_path / "nowhere"), "split_seed": 0}, tmp_path / "c.npz")
    assert str(tmp_path / "nowhere" / "cifar-10-batches-py" / "data_batch_1") in str(error.value)
    partial = tmp_path / "partial" / "cifar-10-batches-py"
    partial.mkdir(parents=True)
    for name in ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "test_batch", "batches.meta"):
        (partial / name).write_bytes((cifar10_root / "cifar-10-batches-py" / name).read_bytes())
    with pytest.raises(DatasetMissingError, match=str(partial / "data_batch_5")):
        prepare_dataset("cifar10", {"root": str(tmp_path / "partial"), "split_seed": 0}, tmp_path / "c.npz")
    assert not (tmp_path / "c.npz").exists()


def test_cifar10_augments_train_only(cifar10_root, tmp_path):
    prepare_dataset("cifar10", {"root": str(cifar10_root), "split_seed": 0, "val_fraction": 0.5},
                    tmp_path / "c.npz")
    augmented, _ = load_split(tmp_path / "c.npz", "train", augment=True)
    plain, _ = load_split(tmp_path / "c.npz", "train")
    torch.manual_seed(0)
    outputs = [augmented[0][0] for _ in range(10)]
    assert any(not torch.equal(x, plain[0][0]) for x in outputs)  # shifted: zero padding enters the image
    for split in ("val", "test"):
        assert isinstance(load_split(tmp_path / "c.npz", split, augment=True)[0], TensorDataset)


def test_cifar10_image_size_keeps_constant_images_constant(cifar10_root, tmp_path):
    params = {"root": str(cifar10_root), "split_seed": 0, "val_fraction": 0.5, "image_size": 40}
    assert prepare_dataset("cifar10", params, tmp_path / "c.npz").input_shape == (3, 40, 40)
    c = arrays(tmp_path / "c.npz")
    # Every byte of test row k is 100 + k, and a resize (weights summing to 1) keeps a constant image constant.
    test, _ = load_split(tmp_path / "c.npz", "test")
    for k in range(6):
        x, _ = test[k]
        expected = ((100 + k) / 255.0 - c["mean"]) / c["std"]
        assert x.shape == (3, 40, 40)
        np.testing.assert_allclose(x.numpy(), np.broadcast_to(expected[:, None, None], (3, 40, 40)), rtol=1e-5)
    train, _ = load_split(tmp_path / "c.npz", "train", augment=True)
    torch.manual_seed(0)
    assert all(train[k][0].shape == (3, 40, 40) for k in range(len(train)))


# TinyImageNet

@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory) -> Path:
    return write_tinyimagenet(tmp_path_factory.mktemp("tiny"))


def test_tinyimagenet_classes_splits_labels_and_items(tiny_root, tmp_path):
    assert parameters("tinyimagenet")["image_size"].default == 64
    params = {"root": str(tiny_root), "split_seed": 0, "val_fraction": 0.5}
    info = prepare_dataset("tinyimagenet", params, tmp_path / "t.npz")
    assert info == DatasetInfo("tinyimagenet", 200, "single_label", (3, 64, 64))
    t = arrays(tmp_path / "t.npz")
    assert t["classes"].tolist() == TINY_WNIDS  # wnids.txt order, not sorted
    assert len(t["files_train"]) == len(t["files_val"]) == 200
    train_files = sorted(f.decode() for f in np.concatenate([t["files_train"], t["files_val"]]))
    on_disk = sorted(str(p.relative_to(tiny_root)) for p in tiny_root.glob("tiny-imagenet-200/train/*/images/*"))
    assert train_files == on_disk and len(on_disk) == 400
    for split in ("train", "val"):
        for file, label in zip(t[f"files_{split}"], t[f"y_{split}"]):
            assert Path(file.decode()).parent.parent.name == TINY_WNIDS[label]
    assert np.bincount(t["y_val"], minlength=200).tolist() == [1] * 200  # stratified
    # The official val (our test), labelled by val_annotations.txt, in its order.
    assert [f.decode() for f in t["files_test"]] == [f"tiny-imagenet-200/val/images/{n}" for n, _ in TINY_VAL]
    assert t["y_test"].tolist() == [label for _, label in TINY_VAL] == [17, 0, 199, 17, 42]
    for split in ("train", "val", "test"):
        dataset, _ = load_split(tmp_path / "t.npz", split)
        x, y = dataset[1]
        assert x.shape == (3, 64, 64) and x.dtype == torch.float32
        assert y.dtype == torch.int64 and int(y) == t[f"y_{split}"][1]
        # At the native 64 evaluation is exactly ToTensor + Normalize: no resampling.
        np.testing.assert_allclose(x.numpy(), normalised(tiny_root / t[f"files_{split}"][1].decode()), atol=1e-5)


def test_tinyimagenet_image_size_and_augmentation(tiny_root, tmp_path):
    params = {"root": str(tiny_root), "split_seed": 0, "val_fraction": 0.5, "image_size": 32}
    assert prepare_dataset("tinyimagenet", params, tmp_path / "t.npz").input_shape == (3, 32, 32)
    torch.manual_seed(0)
    for split in ("train", "val", "test"):
        dataset, _ = load_split(tmp_path / "t.npz", split, augment=True)
        assert dataset[0][0].shape == (3, 32, 32)
    train, _ = load_split(tmp_path / "t.npz", "train", augment=True)
    assert any(not torch.equal(train[0][0], train[0][0]) for _ in range(5))  # random crop and flip
    test, _ = load_split(tmp_path / "t.npz", "test", augment=True)
    assert torch.equal(test[0][0], test[0][0])


def test_tinyimagenet_missing_files_name_the_path(tiny_root, tmp_path):
    base = tmp_path / "nowhere" / "tiny-imagenet-200"
    with pytest.raises(DatasetMissingError, match="tinyimagenet") as error:
        prepare_dataset("tinyimagenet", {"root": str(tmp_path / "nowhere"), "split_seed": 0}, tmp_path / "t.npz")
    assert str(base / "wnids.txt") in str(error.value)
    # A copy of the layout with one class's train folder and one val image removed, one at a time.
    broken = tmp_path / "broken" / "tiny-imagenet-200"
    (broken / "val" / "images").mkdir(parents=True)
    (broken / "wnids.txt").write_text("".join(f"{w}\n" for w in TINY_WNIDS))
    for wnid in TINY_WNIDS[:-1]:
        (broken / "train" / wnid / "images").mkdir(parents=True)
        save_image(broken / "train" / wnid / "images" / f"{wnid}_0.JPEG", np.random.default_rng(0), (8, 8))
    (broken / "val" / "val_annotations.txt").write_text(f"val_0.JPEG\t{TINY_WNIDS[5]}\t0\t0\t8\t8\n")
    params = {"root": str(tmp_path / "broken"), "split_seed": 0}
    with pytest.raises(DatasetMissingError, match=str(broken / "train" / TINY_WNIDS[-1] / "images")):
        prepare_dataset("tinyimagenet", params, tmp_path / "t.npz")
    (broken / "train" / TINY_WNIDS[-1] / "images").mkdir(parents=True)
    with pytest.raises(DatasetMissingError, match=rf"{broken / 'train' / TINY_WNIDS[-1] / 'images'} holds no"):
        prepare_dataset("tinyimagenet", params, tmp_path / "t.npz")
    save_image(broken / "train" / TINY_WNIDS[-1] / "images" / "x.JPEG", np.random.default_rng(0), (8, 8))
    with pytest.raises(DatasetMissingError, match=str(broken / "val" / "images" / "val_0.JPEG")):
        prepare_dataset("tinyimagenet", params, tmp_path / "t.npz")
    (broken / "val" / "val_annotations.txt").write_text("val_0.JPEG\tn99999999\t0\t0\t8\t8\n")
    with pytest.raises(ValueError, match=r"val_annotations\.txt line 1"):
        prepare_dataset("tinyimagenet", params, tmp_path / "t.npz")
    (broken / "wnids.txt").write_text("n1\nn2\n")
    with pytest.raises(ValueError, match="lists 2 WordNet ids"):
        prepare_dataset("tinyimagenet", params, tmp_path / "t.npz")
    assert not (tmp_path / "t.npz").exists()


# Imagenette

@pytest.fixture(scope="module")
def imagenette_root(tmp_path_factory) -> Path:
    return write_imagenette(tmp_path_factory.mktemp("imagenette"))


def test_imagenette_classes_splits_labels_and_items(imagenette_root, tmp_path):
    assert parameters("imagenette")["image_size"].default == 224
    params = {"root": str(imagenette_root), "split_seed": 0, "val_fraction": 1 / 3}
    info = prepare_dataset("imagenette", params, tmp_path / "default")
    assert info == DatasetInfo("imagenette", 10, "single_label", (3, 224, 224))
    assert prepare_dataset("imagenette", {**params, "image_size": 16}, tmp_path / "i.npz").input_shape == (3, 16, 16)
    i = arrays(tmp_path / "i.npz")
    assert i["classes"].tolist() == list(IMAGENETTE_WNIDS)
    assert len(i["files_train"]) == 20 and len(i["files_val"]) == 10 and len(i["files_test"]) == 10
    assert np.bincount(i["y_val"], minlength=10).tolist() == [1] * 10
    assert i["y_test"].tolist() == list(range(10))  # the official val = our test, one image per class
    assert all(f.decode().startswith("val/") for f in i["files_test"])
    for split in ("train", "val", "test"):
        for file, label in zip(i[f"files_{split}"], i[f"y_{split}"]):
            assert Path(file.decode()).parent.name == IMAGENETTE_WNIDS[label]
        dataset, _ = load_split(tmp_path / "i.npz", split, augment=split == "train")
        x, y = dataset[0]
        assert x.shape == (3, 16, 16) and x.dtype == torch.float32
        assert y.dtype == torch.int64 and int(y) == i[f"y_{split}"][0]


def test_imagenette_refuses_other_class_counts_and_names_missing_folders(tmp_path):
    with pytest.raises(DatasetMissingError, match=str(tmp_path / "nowhere" / "train")):
        prepare_dataset("imagenette", {"root": str(tmp_path / "nowhere"), "split_seed": 0}, tmp_path / "i.npz")
    nine = write_imagenette(tmp_path / "nine", IMAGENETTE_WNIDS[:9])
    with pytest.raises(ValueError, match="9 class folders, expected 10"):
        prepare_dataset("imagenette", {"root": str(nine), "split_seed": 0}, tmp_path / "i.npz")
    (tmp_path / "no_val" / "train").mkdir(parents=True)
    with pytest.raises(DatasetMissingError, match=str(tmp_path / "no_val" / "val")) as error:
        prepare_dataset("imagenette", {"root": str(tmp_path / "no_val"), "split_seed": 0}, tmp_path / "i.npz")
    assert "fastai" in str(error.value)
