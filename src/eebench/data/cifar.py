"""CIFAR-10 and CIFAR-100 from the official python pickles under ``root``, read with an unpickler that builds
only dicts, lists, bytes, str, numbers and numpy arrays (eebench.data.pickles). The prepared file holds the
root, each split's rows and labels, never the images, and the training augmentations (eebench.data.augment).
The images are tensors from the start, so their augmentations here are tensor transforms."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Callable, Mapping

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, TensorDataset

from eebench.data.augment import Augmentation, augmentation_keywords, with_batch_mixing
from eebench.data.core import (
    DATASETS,
    DatasetEntry,
    DatasetInfo,
    Fraction,
    RandomShift,
    SplitSeed,
    TransformedTensors,
    check_fraction,
    missing,
    stratified_split,
)
from eebench.data.pickles import read_pickle
from eebench.data.vision import ImageSize, check_image_size, stored_info
from eebench.declare import Param


class CifarPickles(DatasetEntry):
    """Single-label, (3, image_size, image_size), from the official python pickles. Val is a stratified part of
    the official train set; test is the official test set. Normalised with the train split's per-channel
    statistics. ``image_size`` other than the native 32 (e.g. 224 for pre-trained ViT-B/16 weights) resizes
    each item as it is loaded (bilinear, antialiased)."""

    NAME: str
    FOLDER: str  # under root
    SOURCES: dict[str, tuple[str, ...]]  # "train"/"test" -> the pickles whose rows it concatenates
    META: str
    NAMES_KEY: bytes  # the class names, in meta
    LABELS_KEY: bytes
    ARCHIVE: str

    @augmentation_keywords
    def prepare(
        self,
        *,
        root: Annotated[str, Param(
            "Directory holding the official folder: cifar-10-batches-py/ (cifar10) or cifar-100-python/ (cifar100)."
        )],
        split_seed: SplitSeed,
        val_fraction: Fraction = 0.1,
        image_size: Annotated[ImageSize, Param(
            "Side of the square input; other than 32, each image is resized per item (bilinear, antialiased), e.g. "
            "224 for ImageNet-pre-trained ViT-B/16 (paper B App. E.8)."
        )] = 32,
        **augmentation: Any,
    ) -> tuple[DatasetInfo, dict[str, np.ndarray]]:
        check_fraction(self.NAME, "val_fraction", val_fraction)
        check_image_size(self.NAME, image_size)
        settings = Augmentation.checked(self.NAME, **augmentation)
        folder = Path(root).resolve() / self.FOLDER
        for name in (*self.SOURCES["train"], *self.SOURCES["test"], self.META):
            if not (folder / name).is_file():
                listing = ",".join((*self.SOURCES["train"], *self.SOURCES["test"], self.META))
                raise missing(
                    self.NAME, folder / name,
                    f"the official python pickles ({self.FOLDER}/{{{listing}}}, from {self.ARCHIVE})",
                )  # fmt: skip
        classes = read_pickle(folder / self.META, (self.NAMES_KEY,))[self.NAMES_KEY]
        train_x, labels = self.read(folder, "train")
        _, test_labels = self.read(folder, "test")
        kept, held = stratified_split(labels, val_fraction, split_seed)
        # Normalisation statistics from the train split only, so nothing is learned from val or test.
        pixels = train_x[kept].reshape(len(kept), 3, -1)
        mean = np.array([pixels[:, c].mean(dtype=np.float64) for c in range(3)]) / 255.0
        std = np.array([pixels[:, c].std(dtype=np.float64) for c in range(3)]) / 255.0
        arrays = {
            "root": np.array(str(Path(root).resolve())),
            "classes": np.array([c.decode() for c in classes]),
            "mean": mean.astype(np.float32),
            "std": std.astype(np.float32),
            # Which official file(s) each split reads ("train" or "test", see SOURCES), and the rows it takes.
            "source_train": np.array("train"), "index_train": kept, "y_train": labels[kept],
            "source_val": np.array("train"), "index_val": held, "y_val": labels[held],
            "source_test": np.array("test"), "index_test": np.arange(len(test_labels)), "y_test": test_labels,
            "augmentation": settings.to_array(),
            "image_size": np.array(image_size),
        }  # fmt: skip
        return DatasetInfo(self.NAME, len(classes), self.task, (3, image_size, image_size)), arrays

    def read(self, folder: Path, source: str) -> tuple[np.ndarray, np.ndarray]:
        """Rows [N, 3072] uint8 and labels [N] int64 of the pickles of ``source``, concatenated in order."""
        batches = [read_pickle(folder / name, (b"data", self.LABELS_KEY)) for name in self.SOURCES[source]]
        x = np.concatenate([np.asarray(b[b"data"], dtype=np.uint8) for b in batches])
        y = np.concatenate([np.asarray(b[self.LABELS_KEY], dtype=np.int64) for b in batches])
        return x, y

    def load(self, prepared: Mapping[str, np.ndarray], split: str, augment: bool) -> Dataset:
        folder = Path(str(prepared["root"])) / self.FOLDER
        data, labels = self.read(folder, str(prepared[f"source_{split}"]))
        index = prepared[f"index_{split}"]
        x = torch.from_numpy(data[index].reshape(-1, 3, 32, 32))
        y = torch.from_numpy(prepared[f"y_{split}"])
        if not np.array_equal(labels[index], prepared[f"y_{split}"]):
            raise RuntimeError(f"{self.NAME}: the files under {prepared['root']} changed since preparation")
        normalise = Normalise(torch.from_numpy(prepared["mean"]), torch.from_numpy(prepared["std"]))
        size = int(prepared["image_size"]) if "image_size" in prepared else 32  # a file from before the key
        # Resized per item (or per batch), never the whole split up front: 50000 x 3 x 224 x 224 float32 is 30 GB.
        resize = None if size == 32 else Resize(size)
        if not augment:
            if resize is None:
                return TensorDataset(normalise(x), y)
            return TransformedTensors(x, y, NormaliseResize(normalise, resize))
        augmentation = Augmentation.of(prepared)
        if augmentation.per_image:
            transform: Callable = AugmentedCifar(normalise, augmentation, resize)
        else:
            transform = CropFlipNormalise(normalise, resize)
        dataset = TransformedTensors(x, y, transform)
        return with_batch_mixing(dataset, augmentation, stored_info(prepared).num_classes)


@DATASETS.register("cifar100")
class Cifar100(CifarPickles):
    """CIFAR-100 in the official python pickle layout (root/cifar-100-python/{train,test,meta}); single-label,
    100 fine classes, input (3, image_size, image_size)."""

    NAME, FOLDER, META, ARCHIVE = "cifar100", "cifar-100-python", "meta", "cifar-100-python.tar.gz"
    SOURCES = {"train": ("train",), "test": ("test",)}
    NAMES_KEY, LABELS_KEY = b"fine_label_names", b"fine_labels"


@DATASETS.register("cifar10")
class Cifar10(CifarPickles):
    """CIFAR-10 in the official python pickle layout
    (root/cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}); single-label, 10 classes, input
    (3, image_size, image_size).

    The train rows are the five data batches concatenated in order (so index i < 10000 is row i of
    data_batch_1)."""

    NAME, FOLDER, META, ARCHIVE = "cifar10", "cifar-10-batches-py", "batches.meta", "cifar-10-python.tar.gz"
    SOURCES = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}
    NAMES_KEY, LABELS_KEY = b"label_names", b"labels"


class Normalise:
    """uint8 images (any leading axes) to float32, standardised per channel."""

    def __init__(self, mean: Tensor, std: Tensor) -> None:
        self.mean, self.std = mean.view(3, 1, 1), std.view(3, 1, 1)

    def __call__(self, images: Tensor) -> Tensor:
        return (images.float() / 255.0 - self.mean) / self.std


class Resize:
    """Float images [3, H, W] or [B, 3, H, W] to ``size`` x ``size``, bilinear and antialiased (as torchvision's
    ``Resize(antialias=True)`` on tensors)."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __call__(self, images: Tensor) -> Tensor:
        from torch.nn.functional import interpolate

        batch = images.unsqueeze(0) if images.dim() == 3 else images
        out = interpolate(batch, size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=True)
        return out.squeeze(0) if images.dim() == 3 else out


class NormaliseResize:
    """CIFAR evaluation at an ``image_size`` other than 32: normalised, then resized (deterministic); one image
    or a batch of them."""

    def __init__(self, normalise: Normalise, resize: Resize) -> None:
        self.normalise, self.resize = normalise, resize

    def __call__(self, images: Tensor) -> Tensor:
        return self.resize(self.normalise(images))

    batch = __call__  # TransformedTensors' batched fetch


# At an image_size other than 32 the training augmentations run at the native 32 (the same crop, a 4-pixel
# shift in the zero-padded image, and the same extra steps as at 32, on 1/49 of the pixels at 224), then the
# normalised image is resized; random erasing, when on, comes after the resize, on the final image.


class CropFlipNormalise:
    """The standard CIFAR augmentation on one raw image. A random 32-pixel crop of the image zero-padded by 4
    is a random shift of up to 4 pixels; as in torchvision's pipeline the padding is black (raw zeros)."""

    def __init__(self, normalise: Normalise, resize: Resize | None = None) -> None:
        self.shift, self.normalise, self.resize = RandomShift(4), normalise, resize

    def __call__(self, image: Tensor) -> Tensor:
        image = self.shift(image)
        if torch.rand(()) < 0.5:
            image = image.flip(-1)
        x = self.normalise(image)
        return x if self.resize is None else self.resize(x)


class AugmentedCifar:
    """CIFAR's crop (or ``RandomResizedCrop`` to 32 when ``resized_crop_scale`` is set) and flip, then the
    extra per-image augmentations, on one raw uint8 [3, 32, 32] image; then normalisation, the resize (if any)
    and erasing."""

    def __init__(self, normalise: Normalise, augmentation: Augmentation, resize: Resize | None = None) -> None:
        from torchvision import transforms

        crop: Callable = (
            RandomShift(4) if augmentation.resized_crop_scale is None
            else transforms.RandomResizedCrop(32, scale=augmentation.resized_crop_scale)
        )  # fmt: skip
        self.before = transforms.Compose([crop, transforms.RandomHorizontalFlip(), *augmentation.before_tensor()])
        self.normalise = normalise
        self.after = transforms.Compose([*([resize] if resize else []), *augmentation.after_tensor()])

    def __call__(self, image: Tensor) -> Tensor:
        return self.after(self.normalise(self.before(image)))
