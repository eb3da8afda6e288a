"""What the paper-scale image datasets share: images read from their official on-disk layouts under a ``root``
directory, per item, and the torchvision pipelines that turn them into normalised tensors. The loaders are one
module per family: eebench.data.cifar (CIFAR-10/100), eebench.data.imagenet (ImageNet, Imagenette,
TinyImageNet), eebench.data.imagenet_composite (paper A's composite ImageNet), eebench.data.voc (PASCAL VOC 2007)
and eebench.data.coco (MS-COCO).

Nothing is downloaded: a missing file raises ``DatasetMissingError`` at prepare time, naming what is expected
where. The prepared file holds the root, each split's labels and file list or indices, never the images, and
the dataset's extra training augmentations (``eebench.data.augment``; all off by default).
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Callable, Mapping

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from eebench.data.augment import Augmentation
from eebench.data.core import DatasetInfo
from eebench.declare import Param

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")  # compared lower-cased

# The image loaders' ``image_size``; a loader whose default has a reason says it in its own Param.
ImageSize = Annotated[int, Param("Side of the square input.", ge=1)]


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


def stored_info(prepared: Mapping[str, np.ndarray]) -> DatasetInfo:
    return DatasetInfo.from_json(str(prepared["info"]))


def file_pipeline(train_steps: list[Callable], eval_steps: list[Callable], augment: bool,
                  augmentation: Augmentation) -> Callable:
    """PIL image -> normalised float tensor. Training: the loader's own steps (crop, flip), the extra per-image
    augmentations, conversion, then random erasing on the normalised tensor (torchvision's reference order)."""
    from torchvision import transforms  # imported here: torchvision costs a second at every job start

    to_tensor = [transforms.ToTensor(), transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    if not augment:
        return transforms.Compose([*eval_steps, *to_tensor])
    return transforms.Compose(
        [*train_steps, *augmentation.before_tensor(), *to_tensor, *augmentation.after_tensor()]
    )


def multi_label_images(prepared: Mapping[str, np.ndarray], split: str, augment: bool) -> Dataset:
    """The images of a multi-label split, resized to the prepared size; flipped at random when augmenting.
    A plain resize, not a random crop: cropping can cut out a labelled object and make its label wrong."""
    from torchvision import transforms

    size = DatasetInfo.from_json(str(prepared["info"])).input_shape[-1]
    steps: list[Callable] = [transforms.Resize((size, size))]
    if augment:
        steps.append(transforms.RandomHorizontalFlip())
    steps += [transforms.ToTensor(), transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    return image_files(prepared, split, transforms.Compose(steps))
