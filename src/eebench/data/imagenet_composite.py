"""Paper A §4.2's multi-label ImageNet: composites of images of distinct classes from an ImageFolder tree, made
per item from the image files (the base images' split as eebench.data.imagenet's, the mosaics' plan as
``digits_composite``'s in eebench.data.small)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Mapping

import numpy as np
import torch
from annotated_types import Interval
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from eebench.data.core import DATASETS, DatasetInfo, Fraction, SplitSeed, missing
from eebench.data.imagenet import ImageFolderEntry, ImageNet
from eebench.data.small import GRID, composite_plan
from eebench.data.vision import IMAGENET_MEAN, IMAGENET_STD, ImageSize
from eebench.declare import Param

class CompositeImages(Dataset):
    """Paper A's composite images, made per item: each of the GRID x GRID cells holds one base image resized
    to the cell (or stays empty: zero after normalisation, the mean); ``sources`` [S, cells] indexes
    ``files`` (-1 = empty)."""

    def __init__(self, root: Path, files: np.ndarray, sources: np.ndarray, targets: np.ndarray, size: int,
                 augment: bool) -> None:
        from torchvision import transforms

        self.root, self.files, self.sources, self.targets = root, files, sources, targets
        self.grid, self.cell = GRID, size // GRID
        self.image = transforms.Compose([transforms.Resize((self.cell, self.cell)), transforms.ToTensor(),
                                         transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
        self.flip = transforms.RandomHorizontalFlip() if augment else None

    def __len__(self) -> int:
        return len(self.sources)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        canvas = torch.zeros(3, self.grid * self.cell, self.grid * self.cell)
        for cell, source in enumerate(self.sources[index]):
            if source < 0:
                continue
            row, col = divmod(cell, self.grid)
            with Image.open(self.root / self.files[source].decode()) as image:
                canvas[:, row * self.cell:(row + 1) * self.cell, col * self.cell:(col + 1) * self.cell] = \
                    self.image(image.convert("RGB"))
        return (self.flip(canvas) if self.flip else canvas), torch.as_tensor(self.targets[index])


@DATASETS.register("imagenet_composite")
class ImageNetComposite(ImageFolderEntry):
    """Paper A §4.2's multi-label ImageNet: 2 x 2 mosaics of m images of distinct classes from an ImageFolder tree
    (root/train/<wnid>/, root/val/<wnid>/), made per item; n classes (default 10); test composites from the
    official val images.

    Paper A: "we randomly select n = 10 classes and combine images from m randomly chosen categories (m in
    {2, 4}), creating composite images that belong to multiple classes". Reading (the paper does not say how
    images are combined): as ``digits_composite``, a 2 x 2 mosaic of m images of distinct classes in m random
    cells, each image resized to a cell, the other cells empty. Base images come from the ImageFolder tree:
    train and val composites from the train folder's split (``val_fraction``), test composites from the
    official val folder, so no base image is in two splits. ``classes`` (wnids) or, when absent,
    ``num_classes`` folders drawn with ``split_seed``. The sample counts are not given by the paper."""

    NAME = "imagenet_composite"
    task = "multi_label"
    LAYOUT = ImageNet.LAYOUT

    def prepare(
        self,
        *,
        root: Annotated[str, Param("Directory holding train/ and val/ (ImageFolder layout).")],
        split_seed: SplitSeed,
        val_fraction: Fraction = 0.1,
        image_size: Annotated[ImageSize, Param(
            "Side of the square mosaic (each image fills a quarter).", ge=GRID, multiple_of=GRID
        )] = 224,
        classes: Annotated[list[str] | None, Param(
            "The n class folders (wnids); null = num_classes drawn with split_seed (paper A: 'randomly select "
            "n = 10 classes').", min_length=2, json_schema_extra={"uniqueItems": True},
        )] = None,
        num_classes: Annotated[int, Param("n when classes is null (paper A: 10).", ge=2)] = 10,
        m_values: Annotated[list[Annotated[int, Interval(ge=1, le=GRID * GRID)]] | None, Param(
            "Images per composite, one value drawn per sample (null = [2, 4], paper A).", min_length=1
        )] = None,
        train_samples: Annotated[int, Param("Composites in train (not given by the paper).", ge=1)] = 20000,
        val_samples: Annotated[int, Param("Composites in val (not given by the paper).", ge=1)] = 2000,
        test_samples: Annotated[int, Param("Composites in test (not given by the paper).", ge=1)] = 5000,
    ) -> tuple[DatasetInfo, dict[str, np.ndarray]]:
        from torchvision.datasets.folder import find_classes

        name = self.NAME
        m_values = [2, 4] if m_values is None else [int(m) for m in m_values]
        sizes = {"train": train_samples, "val": val_samples, "test": test_samples}
        if classes is None:
            if not (Path(root) / "train").is_dir():
                raise missing(name, Path(root).resolve() / "train", self.LAYOUT.format(folder="train"))
            found, _ = find_classes(str(Path(root) / "train"))
            if not 2 <= num_classes <= len(found):
                raise ValueError(f"dataset {name!r}: num_classes must be in 2..{len(found)}, got {num_classes!r}")
            chosen = np.random.default_rng(split_seed).choice(len(found), num_classes, replace=False)
            classes = [found[i] for i in sorted(chosen)]
        n = len(classes)
        if not m_values or not all(1 <= m <= min(GRID * GRID, n) for m in m_values):
            raise ValueError(f"dataset {name!r}: m_values must be a non-empty list of integers in 1..{min(4, n)}")
        for split, size in sizes.items():
            if size < 1:
                raise ValueError(f"dataset {name!r}: {split}_samples must be positive, got {size!r}")
        if image_size % GRID:
            raise ValueError(f"dataset {name!r}: image_size must be a multiple of {GRID} (the mosaic's cells), "
                             f"got {image_size!r}")
        info, arrays = self.prepare_folders(root, split_seed, val_fraction, image_size, {}, subset=list(classes))
        for k, split in enumerate(("train", "val", "test")):
            rng = np.random.default_rng([split_seed, k])  # one stream per split: sizes do not interact
            labels, source = composite_plan(arrays[f"y_{split}"], sizes[split], m_values, n, rng)
            arrays[f"source_{split}"], arrays[f"y_{split}"] = source, labels
        arrays.pop("augmentation")
        return DatasetInfo(name, n, self.task, info.input_shape), arrays

    def load(self, prepared: Mapping[str, np.ndarray], split: str, augment: bool) -> Dataset:
        size = DatasetInfo.from_json(str(prepared["info"])).input_shape[-1]
        return CompositeImages(Path(str(prepared["root"])), prepared[f"files_{split}"],
                               prepared[f"source_{split}"], prepared[f"y_{split}"], size, augment)
