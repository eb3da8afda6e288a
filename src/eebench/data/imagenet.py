"""The ImageNet family: ImageNet-1k (or any ImageFolder tree) and Imagenette in ImageFolder layout, and
TinyImageNet in its own official layout, read per item from the image files under ``root`` (eebench.data.vision).
Nothing is downloaded: a missing file raises ``DatasetMissingError`` at prepare time, naming what is expected
where."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Mapping

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from eebench.data.augment import Augmentation, augmentation_keywords, with_batch_mixing
from eebench.data.core import (
    DATASETS,
    DatasetEntry,
    DatasetInfo,
    DatasetMissingError,
    Fraction,
    SplitSeed,
    check_fraction,
    missing,
    stratified_split,
)
from eebench.data.vision import (
    IMAGE_SUFFIXES,
    ImageSize,
    check_image_size,
    encode_paths,
    file_pipeline,
    image_files,
    stored_info,
)
from eebench.declare import Param


# ImageFolder layouts: ImageNet, Imagenette


class ImageFolderEntry(DatasetEntry):
    """Single-label, (3, image_size, image_size), from an ImageFolder tree (``root/train`` and ``root/val``,
    one folder per WordNet id). Val is a stratified part of the official train set; test is the official val
    set. Files are listed exactly as torchvision's ``ImageFolder`` would list them. Training crops with
    ``RandomResizedCrop`` and flips; evaluation resizes to 256/224 of the side and centre-crops."""

    NAME: str
    NUM_CLASSES: int | None = None  # checked when set
    LAYOUT: str  # what the error messages say is expected

    def prepare_folders(
        self, root: str, split_seed: int, val_fraction: float, image_size: int, augmentation: Mapping[str, Any],
        subset: list[str] | None = None,
    ) -> tuple[DatasetInfo, dict[str, np.ndarray]]:
        """``subset``: only these class folders, labelled 0..k-1 in the order given (paper A §4.1: ImageNet with
        a varying number of classes)."""
        check_fraction(self.NAME, "val_fraction", val_fraction)
        check_image_size(self.NAME, image_size)
        settings = Augmentation.checked(self.NAME, **augmentation)
        base = Path(root).resolve()
        listed: dict[str, tuple[list[str], np.ndarray]] = {}
        classes: list[str] = []
        for folder in ("train", "val"):  # check both before the (long) scan of either
            if not (base / folder).is_dir():
                raise missing(self.NAME, base / folder, self.LAYOUT.format(folder=folder))
        for folder in ("train", "val"):
            from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

            found, class_to_idx = find_classes(str(base / folder))
            if classes and found != classes:
                raise ValueError(f"dataset {self.NAME!r}: class folders of {base / 'val'} differ from train's")
            if self.NUM_CLASSES is not None and len(found) != self.NUM_CLASSES:
                raise ValueError(f"dataset {self.NAME!r}: {base / folder} has {len(found)} class folders, "
                                 f"expected {self.NUM_CLASSES}")
            classes = found
            if subset is not None:
                unknown = [name for name in subset if name not in class_to_idx]
                if unknown or len(set(subset)) != len(subset) or len(subset) < 2:
                    raise ValueError(f"dataset {self.NAME!r}: classes must be at least 2 distinct class folders of "
                                     f"{base / folder}, got {subset!r} (not there: {unknown})")
                class_to_idx = {name: index for index, name in enumerate(subset)}
            try:
                samples = make_dataset(str(base / folder), class_to_idx, extensions=IMG_EXTENSIONS)
            except FileNotFoundError as error:  # a class folder without images
                raise DatasetMissingError(f"dataset {self.NAME!r}: under {base / folder}: {error}") from error
            files = [str(Path(path).relative_to(base)) for path, _ in samples]
            listed[folder] = files, np.array([t for _, t in samples], dtype=np.int64)
        files, labels = listed["train"]
        kept, held = stratified_split(labels, val_fraction, split_seed)
        test_files, test_labels = listed["val"]
        classes = list(subset) if subset is not None else classes
        arrays = {
            "root": np.array(str(base)),
            "classes": np.array(classes),
            "files_train": encode_paths([files[i] for i in kept]), "y_train": labels[kept],
            "files_val": encode_paths([files[i] for i in held]), "y_val": labels[held],
            "files_test": encode_paths(test_files), "y_test": test_labels,
            "augmentation": settings.to_array(),
        }  # fmt: skip
        return DatasetInfo(self.NAME, len(classes), self.task, (3, image_size, image_size)), arrays

    def load(self, prepared: Mapping[str, np.ndarray], split: str, augment: bool) -> Dataset:
        from torchvision import transforms

        info, augmentation = stored_info(prepared), Augmentation.of(prepared)
        size = info.input_shape[-1]
        scale = augmentation.resized_crop_scale or (0.08, 1.0)  # torchvision's default scale
        train = [transforms.RandomResizedCrop(size, scale=scale), transforms.RandomHorizontalFlip()]
        # The standard 256 -> 224 evaluation crop, scaled to image_size.
        evaluation = [transforms.Resize(round(size * 256 / 224)), transforms.CenterCrop(size)]
        dataset = image_files(prepared, split, file_pipeline(train, evaluation, augment, augmentation))
        return with_batch_mixing(dataset, augmentation, info.num_classes) if augment else dataset


@DATASETS.register("imagenet")
class ImageNet(ImageFolderEntry):
    """An ImageFolder layout (root/train/<class>/, root/val/<class>/), e.g. ImageNet-1k (1000 classes); test =
    the official val, whose images must first be sorted into one folder per class."""

    NAME = "imagenet"
    LAYOUT = ("the ImageNet {folder} images in ImageFolder layout ({folder}/<wnid>/*.JPEG; the official val "
              "images must first be sorted into one folder per class)")

    @augmentation_keywords
    def prepare(
        self,
        *,
        root: Annotated[str, Param("Directory holding train/ and val/.")],
        split_seed: SplitSeed,
        val_fraction: Fraction = 0.01,
        image_size: ImageSize = 224,
        classes: Annotated[list[str] | None, Param(
            "A class subset (paper A Fig. 2: ImageNet with a growing number of classes): only these class folders "
            "(wnids), labelled 0..k-1 in the order given; null = every folder.",
            min_length=2, json_schema_extra={"uniqueItems": True},
        )] = None,
        **augmentation: Any,
    ) -> tuple[DatasetInfo, dict[str, np.ndarray]]:
        return self.prepare_folders(root, split_seed, val_fraction, image_size, augmentation, subset=classes)


@DATASETS.register("imagenette")
class Imagenette(ImageFolderEntry):
    """Imagenette (Howard, 2019; fastai) in its layout (root/train/<wnid>/*.JPEG, root/val/<wnid>/*.JPEG, as the
    imagenette2, -320 and -160 archives unpack); single-label, 10 easy ImageNet classes; test = the official
    val; processed as ImageNet; input (3, image_size, image_size).

    Processed as ImageNet because its images are ImageNet's, and 224 is the input of the only ImageNet-type
    ViT-T set-up paper B gives (E.5, patch 16)."""

    NAME = "imagenette"
    NUM_CLASSES = 10
    LAYOUT = ("the Imagenette {folder} images in fastai's layout ({folder}/<wnid>/*.JPEG, as imagenette2*.tgz "
              "unpacks)")

    @augmentation_keywords
    def prepare(
        self,
        *,
        root: Annotated[str, Param("Directory holding train/ and val/ (e.g. the unpacked imagenette2/).")],
        split_seed: SplitSeed,
        val_fraction: Fraction = 0.1,
        image_size: Annotated[ImageSize, Param(
            "Side of the square input; 224 as ImageNet and paper B's ViT-T (E.5, patch 16)."
        )] = 224,
        **augmentation: Any,
    ) -> tuple[DatasetInfo, dict[str, np.ndarray]]:
        return self.prepare_folders(root, split_seed, val_fraction, image_size, augmentation)


# TinyImageNet

TINY_SIDE = 64  # every TinyImageNet image is 64 x 64
TINY_CLASSES = 200


class SquareResize:
    """Resize to ``size`` x ``size`` unless the image already is (then it is returned untouched)."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __call__(self, image: Image.Image) -> Image.Image:
        if image.size == (self.size, self.size):
            return image
        from torchvision.transforms import functional

        return functional.resize(image, [self.size, self.size])


@DATASETS.register("tinyimagenet")
class TinyImageNet(DatasetEntry):
    """TinyImageNet (Le & Yang, 2015) in the official layout (root/tiny-imagenet-200/{wnids.txt,
    train/<wnid>/images/*.JPEG, val/images/*.JPEG, val/val_annotations.txt}); single-label, 200 classes in
    wnids.txt order; test = the official val; input (3, image_size, image_size).

    Val is a stratified part of the official train set; test is the official val set (labelled by
    ``val/val_annotations.txt``; the official test set has no labels). Images are resized only when
    ``image_size`` is not their native 64. Training pads by 1/8 of the side, crops randomly (paper B's code:
    ``RandomCrop(64, padding=8)``) and flips."""

    @augmentation_keywords
    def prepare(
        self,
        *,
        root: Annotated[str, Param("Directory holding tiny-imagenet-200/.")],
        split_seed: SplitSeed,
        val_fraction: Fraction = 0.1,
        image_size: Annotated[ImageSize, Param(
            "Side of the square input; 64 = the native size (paper B's code), no resampling."
        )] = TINY_SIDE,
        **augmentation: Any,
    ) -> tuple[DatasetInfo, dict[str, np.ndarray]]:
        check_fraction("tinyimagenet", "val_fraction", val_fraction)
        check_image_size("tinyimagenet", image_size)
        settings = Augmentation.checked("tinyimagenet", **augmentation)
        top = Path(root).resolve()
        base = top / "tiny-imagenet-200"
        wnids_file, annotations = base / "wnids.txt", base / "val" / "val_annotations.txt"
        expected = (
            (wnids_file, "the 200 class WordNet ids, one per line"),
            (base / "train", "the train images (train/<wnid>/images/*.JPEG)"),
            (annotations, "the val labels (tab-separated: file, wnid, x, y, w, h)"),
            (base / "val" / "images", "the val images (val/images/*.JPEG)"),
        )
        for path, what in expected:
            if not path.exists():
                raise missing("tinyimagenet", path, f"{what}, from tiny-imagenet-200.zip")
        wnids = wnids_file.read_text().split()
        if len(wnids) != TINY_CLASSES or len(set(wnids)) != len(wnids):
            raise ValueError(f"dataset 'tinyimagenet': {wnids_file} lists {len(wnids)} WordNet ids "
                             f"({len(set(wnids))} distinct), expected {TINY_CLASSES} distinct")
        files: list[str] = []
        labels: list[int] = []
        for label, wnid in enumerate(wnids):
            folder = base / "train" / wnid / "images"
            if not folder.is_dir():
                raise missing("tinyimagenet", folder, f"the train images of class {wnid} (*.JPEG)")
            names = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not names:
                raise DatasetMissingError(f"dataset 'tinyimagenet': {folder} holds no images")
            files += [f"tiny-imagenet-200/train/{wnid}/images/{name}" for name in names]
            labels += [label] * len(names)
        index = {wnid: label for label, wnid in enumerate(wnids)}
        test_files: list[str] = []
        test_labels: list[int] = []
        for number, line in enumerate(annotations.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            fields = line.split("\t")
            if len(fields) < 2 or fields[1] not in index:
                raise ValueError(f"dataset 'tinyimagenet': {annotations} line {number}: expected "
                                 f"'file<TAB>wnid<TAB>x<TAB>y<TAB>w<TAB>h' with a wnid of wnids.txt, got {line!r}")
            image = base / "val" / "images" / fields[0]
            if not image.is_file():
                raise missing("tinyimagenet", image, f"the val image of {annotations} line {number}")
            test_files.append(f"tiny-imagenet-200/val/images/{fields[0]}")
            test_labels.append(index[fields[1]])
        y = np.array(labels, dtype=np.int64)
        kept, held = stratified_split(y, val_fraction, split_seed)
        arrays = {
            "root": np.array(str(top)),
            "classes": np.array(wnids),
            "files_train": encode_paths([files[i] for i in kept]), "y_train": y[kept],
            "files_val": encode_paths([files[i] for i in held]), "y_val": y[held],
            "files_test": encode_paths(test_files), "y_test": np.array(test_labels, dtype=np.int64),
            "augmentation": settings.to_array(),
        }  # fmt: skip
        return DatasetInfo("tinyimagenet", TINY_CLASSES, self.task, (3, image_size, image_size)), arrays

    def load(self, prepared: Mapping[str, np.ndarray], split: str, augment: bool) -> Dataset:
        from torchvision import transforms

        info, augmentation = stored_info(prepared), Augmentation.of(prepared)
        size = info.input_shape[-1]
        if augmentation.resized_crop_scale is None:
            train = [SquareResize(size), transforms.RandomCrop(size, padding=size // 8)]
        else:
            train = [transforms.RandomResizedCrop(size, scale=augmentation.resized_crop_scale)]
        train.append(transforms.RandomHorizontalFlip())
        dataset = image_files(prepared, split, file_pipeline(train, [SquareResize(size)], augment, augmentation))
        return with_batch_mixing(dataset, augmentation, info.num_classes) if augment else dataset
