"""Paper-scale image datasets, read from their official on-disk layouts under a ``root`` directory.

Nothing is downloaded: a missing file raises ``DatasetMissingError`` at prepare time, naming what is expected
where. The prepared file holds the root, each split's labels and file list or indices, never the images.
"""
from __future__ import annotations

import pickle
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset, TensorDataset

from eebench.data.core import (
    DATASETS,
    DatasetEntry,
    DatasetMissingError,
    DatasetInfo,
    RandomShift,
    TransformedTensors,
    check_fraction,
    missing,
    stratified_split,
)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
    "tvmonitor",
)  # fmt: skip


def check_image_size(dataset: str, image_size: int) -> None:
    if image_size < 1:
        raise ValueError(f"dataset {dataset!r}: image_size must be positive, got {image_size!r}")


def encode_paths(paths: list[str]) -> np.ndarray:
    """UTF-8 bytes: a quarter of the size of numpy unicode strings, and loadable without pickle."""
    return np.array([p.encode() for p in paths], dtype=np.bytes_)


class ImageFiles(Dataset):
    """Images read from disk per item. Paths stay a numpy bytes array (not a list of str) so that forked
    DataLoader workers do not copy them on access through reference counting."""

    def __init__(self, root: Path, files: np.ndarray, targets: np.ndarray, transform: Callable) -> None:
        self.root, self.files, self.targets, self.transform = root, files, targets, transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        with Image.open(self.root / self.files[index].decode()) as image:
            x = self.transform(image.convert("RGB"))
        return x, torch.as_tensor(self.targets[index])


def image_files(prepared: Mapping[str, np.ndarray], split: str, transform: Callable) -> ImageFiles:
    root = Path(str(prepared["root"]))
    return ImageFiles(root, prepared[f"files_{split}"], prepared[f"y_{split}"], transform)


# CIFAR-100


def read_pickle(path: Path) -> dict[bytes, Any]:
    with open(path, "rb") as handle:
        return pickle.load(handle, encoding="bytes")


@DATASETS.register("cifar100")
class Cifar100(DatasetEntry):
    """Single-label, 100 fine classes, (3, 32, 32), from the official python pickles. Val is a stratified
    part of the official train set; test is the official test set."""

    FILES = ("train", "test", "meta")

    def prepare(
        self, *, root: str, split_seed: int, val_fraction: float = 0.1
    ) -> tuple[DatasetInfo, dict[str, np.ndarray]]:
        check_fraction("cifar100", "val_fraction", val_fraction)
        folder = Path(root).resolve() / "cifar-100-python"
        for name in self.FILES:
            if not (folder / name).is_file():
                raise missing(
                    "cifar100", folder / name,
                    "the official CIFAR-100 python pickles (cifar-100-python/{train,test,meta}, "
                    "from cifar-100-python.tar.gz)",
                )  # fmt: skip
        classes = read_pickle(folder / "meta")[b"fine_label_names"]
        train, test = read_pickle(folder / "train"), read_pickle(folder / "test")
        labels = np.asarray(train[b"fine_labels"], dtype=np.int64)
        kept, held = stratified_split(labels, val_fraction, split_seed)
        # Normalisation statistics from the train split only, so nothing is learned from val or test.
        pixels = np.asarray(train[b"data"])[kept].reshape(len(kept), 3, -1)
        mean = np.array([pixels[:, c].mean(dtype=np.float64) for c in range(3)]) / 255.0
        std = np.array([pixels[:, c].std(dtype=np.float64) for c in range(3)]) / 255.0
        arrays = {
            "root": np.array(str(Path(root).resolve())),
            "classes": np.array([c.decode() for c in classes]),
            "mean": mean.astype(np.float32),
            "std": std.astype(np.float32),
            # Which official file each split reads, and the rows it takes from it.
            "source_train": np.array("train"), "index_train": kept, "y_train": labels[kept],
            "source_val": np.array("train"), "index_val": held, "y_val": labels[held],
            "source_test": np.array("test"), "index_test": np.arange(len(test[b"fine_labels"])),
            "y_test": np.asarray(test[b"fine_labels"], dtype=np.int64),
        }  # fmt: skip
        return DatasetInfo("cifar100", len(classes), False, (3, 32, 32)), arrays

    def load(self, prepared: Mapping[str, np.ndarray], split: str, augment: bool) -> Dataset:
        folder = Path(str(prepared["root"])) / "cifar-100-python"
        batch = read_pickle(folder / str(prepared[f"source_{split}"]))
        index = prepared[f"index_{split}"]
        x = torch.from_numpy(np.asarray(batch[b"data"])[index].reshape(-1, 3, 32, 32))
        y = torch.from_numpy(prepared[f"y_{split}"])
        if not np.array_equal(np.asarray(batch[b"fine_labels"])[index], prepared[f"y_{split}"]):
            raise RuntimeError(f"cifar100: the files under {prepared['root']} changed since preparation")
        normalise = Normalise(torch.from_numpy(prepared["mean"]), torch.from_numpy(prepared["std"]))
        if not augment:
            return TensorDataset(normalise(x), y)
        return TransformedTensors(x, y, CropFlipNormalise(normalise))


class Normalise:
    """uint8 images (any leading axes) to float32, standardised per channel."""

    def __init__(self, mean: Tensor, std: Tensor) -> None:
        self.mean, self.std = mean.view(3, 1, 1), std.view(3, 1, 1)

    def __call__(self, images: Tensor) -> Tensor:
        return (images.float() / 255.0 - self.mean) / self.std


class CropFlipNormalise:
    """The standard CIFAR augmentation on one raw image. A random 32-pixel crop of the image zero-padded by 4
    is a random shift of up to 4 pixels; as in torchvision's pipeline the padding is black (raw zeros)."""

    def __init__(self, normalise: Normalise) -> None:
        self.shift, self.normalise = RandomShift(4), normalise

    def __call__(self, image: Tensor) -> Tensor:
        image = self.shift(image)
        if torch.rand(()) < 0.5:
            image = image.flip(-1)
        return self.normalise(image)


# ImageNet


@DATASETS.register("imagenet")
class ImageNet(DatasetEntry):
    """Single-label, 1000 classes, (3, image_size, image_size), from an ImageFolder tree (``root/train`` and
    ``root/val``, one folder per WordNet id). Val is a stratified part of the official train set; test is
    the official val set. Files are listed exactly as torchvision's ``ImageFolder`` would list them."""

    def prepare(
        self, *, root: str, split_seed: int, val_fraction: float = 0.01, image_size: int = 224
    ) -> tuple[DatasetInfo, dict[str, np.ndarray]]:
        check_fraction("imagenet", "val_fraction", val_fraction)
        check_image_size("imagenet", image_size)
        base = Path(root).resolve()
        listed: dict[str, tuple[list[str], np.ndarray]] = {}
        classes: list[str] = []
        for folder in ("train", "val"):  # check both before the (long) scan of either
            if not (base / folder).is_dir():
                raise missing(
                    "imagenet", base / folder,
                    f"the ImageNet {folder} images in ImageFolder layout ({folder}/<wnid>/*.JPEG; the "
                    "official val images must first be sorted into one folder per class)",
                )  # fmt: skip
        for folder in ("train", "val"):
            from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

            found, class_to_idx = find_classes(str(base / folder))
            if classes and found != classes:
                raise ValueError(f"dataset 'imagenet': class folders of {base / 'val'} differ from train's")
            classes = found
            try:
                samples = make_dataset(str(base / folder), class_to_idx, extensions=IMG_EXTENSIONS)
            except FileNotFoundError as error:  # a class folder without images
                raise DatasetMissingError(f"dataset 'imagenet': under {base / folder}: {error}") from error
            files = [str(Path(path).relative_to(base)) for path, _ in samples]
            listed[folder] = files, np.array([t for _, t in samples], dtype=np.int64)
        files, labels = listed["train"]
        kept, held = stratified_split(labels, val_fraction, split_seed)
        test_files, test_labels = listed["val"]
        arrays = {
            "root": np.array(str(base)),
            "classes": np.array(classes),
            "files_train": encode_paths([files[i] for i in kept]), "y_train": labels[kept],
            "files_val": encode_paths([files[i] for i in held]), "y_val": labels[held],
            "files_test": encode_paths(test_files), "y_test": test_labels,
        }  # fmt: skip
        return DatasetInfo("imagenet", len(classes), False, (3, image_size, image_size)), arrays

    def load(self, prepared: Mapping[str, np.ndarray], split: str, augment: bool) -> Dataset:
        from torchvision import transforms  # imported here: torchvision costs a second at every job start

        size = DatasetInfo.from_json(str(prepared["info"])).input_shape[-1]
        if augment:
            steps = [transforms.RandomResizedCrop(size), transforms.RandomHorizontalFlip()]
        else:  # the standard 256 -> 224 evaluation crop, scaled to image_size
            steps = [transforms.Resize(round(size * 256 / 224)), transforms.CenterCrop(size)]
        steps += [transforms.ToTensor(), transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
        return image_files(prepared, split, transforms.Compose(steps))


# PASCAL VOC 2007


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
    """Multi-label, 20 classes, (3, image_size, image_size), from a VOCdevkit tree with the official
    train/val/test image sets. The splits are the official ones, so ``split_seed`` (accepted so every dataset
    takes the same key) changes nothing. Objects marked difficult are skipped unless ``keep_difficult``; an
    image whose objects are all difficult then has an all-zero label."""

    def prepare(
        self, *, root: str, split_seed: int, image_size: int = 224, keep_difficult: bool = False
    ) -> tuple[DatasetInfo, dict[str, np.ndarray]]:
        del split_seed  # the official splits are fixed
        check_image_size("voc2007", image_size)
        base = Path(root).resolve()
        voc = base / "VOCdevkit" / "VOC2007"
        arrays: dict[str, np.ndarray] = {"root": np.array(str(base)), "classes": np.array(VOC_CLASSES)}
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
            arrays[f"y_{split}"] = np.stack(labels) if labels else np.zeros((0, len(VOC_CLASSES)), np.float32)
        return DatasetInfo("voc2007", len(VOC_CLASSES), True, (3, image_size, image_size)), arrays

    def load(self, prepared: Mapping[str, np.ndarray], split: str, augment: bool) -> Dataset:
        from torchvision import transforms

        size = DatasetInfo.from_json(str(prepared["info"])).input_shape[-1]
        # A plain resize, not a random crop: cropping can cut out a labelled object and make its label wrong.
        steps: list[Callable] = [transforms.Resize((size, size))]
        if augment:
            steps.append(transforms.RandomHorizontalFlip())
        steps += [transforms.ToTensor(), transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
        return image_files(prepared, split, transforms.Compose(steps))
