"""Paper-scale image datasets, read from their official on-disk layouts under a ``root`` directory.

Nothing is downloaded: a missing file raises ``DatasetMissingError`` at prepare time, naming what is expected
where. The prepared file holds the root, each split's labels and file list or indices, never the images, and
the dataset's extra training augmentations (``eebench.data.augment``; all off by default). CIFAR's python pickles
are read with an unpickler that builds only dicts, lists, bytes, str, numbers and numpy arrays (``read_pickle``).
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

from eebench.data.augment import Augmentation, augmentation_keywords, refuse_batch_mixing, with_batch_mixing
from eebench.data.core import (
    DATASETS,
    DatasetEntry,
    DatasetMissingError,
    DatasetInfo,
    RandomShift,
    TransformedTensors,
    check_fraction,
    label_columns,
    missing,
    stratified_split,
)
from eebench.io import ResultFileError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
    "tvmonitor",
)  # fmt: skip

IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")  # compared lower-cased


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


# CIFAR-10 and CIFAR-100


# CIFAR's python batches are dicts of lists, bytes, str, numbers and numpy arrays. The first five need no global;
# numpy arrays need the functions and classes that rebuild them, as pickled by the official files (Python 2's
# numpy, protocol 2) or by any numpy since (protocols 2-5): these, looked up here rather than imported by name.
_RECONSTRUCT = np.ndarray(0).__reduce__()[0]  # numpy(._)core.multiarray._reconstruct
_SCALAR = np.float64(0).__reduce__()[0]  # numpy(._)core.multiarray.scalar: a numpy number
_FROMBUFFER = np.zeros(1).__reduce_ex__(5)[0]  # numpy(._)core.numeric._frombuffer: an array at protocol 5


class _Refused(pickle.UnpicklingError):
    """A global outside ``PICKLE_GLOBALS``: its dotted name."""


def _latin1(text: str, encoding: str) -> bytes:
    """What a bytes object pickled by Python 3 at protocol 2 calls (``_codecs.encode(text, "latin1")``), and
    nothing else of ``codecs.encode``, whose codecs are looked up by name."""
    if encoding != "latin1":
        raise _Refused(f"_codecs.encode with the codec {encoding!r}")
    return text.encode("latin1")


PICKLE_GLOBALS: dict[tuple[str, str], Any] = {
    **{(f"{core}.multiarray", "_reconstruct"): _RECONSTRUCT for core in ("numpy.core", "numpy._core")},
    **{(f"{core}.multiarray", "scalar"): _SCALAR for core in ("numpy.core", "numpy._core")},
    **{(f"{core}.numeric", "_frombuffer"): _FROMBUFFER for core in ("numpy.core", "numpy._core")},
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1,
}
CIFAR_PICKLE = ("one of CIFAR's python batches, built of dicts, lists, bytes, str, numbers and numpy arrays "
                "only")


class _CifarUnpickler(pickle.Unpickler):
    """Builds only what ``PICKLE_GLOBALS`` lists: any other global (a class, ``os.system``, ``eval``...) stops
    the load before anything is called."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return PICKLE_GLOBALS[module, name]
        except KeyError:
            raise _Refused(f"{module}.{name}") from None


def read_pickle(path: Path, keys: tuple[bytes, ...] = ()) -> dict[bytes, Any]:
    """The dict of a CIFAR python batch (``encoding="bytes"``: Python 2's str become bytes), read with an
    unpickler that builds only dicts, lists, bytes, str, numbers and numpy arrays; ``keys`` must be among its
    keys. Anything else (a crafted or foreign pickle, a truncated file) is a ResultFileError naming ``path``,
    and nothing in the file is run."""
    try:
        with open(path, "rb") as handle:
            content = _CifarUnpickler(handle, encoding="bytes").load()
    except _Refused as refused:
        raise ResultFileError(path, f"refuses to unpickle {refused}: unpickling it could run code",
                              CIFAR_PICKLE) from None
    except FileNotFoundError:
        raise
    except OSError as error:
        raise ResultFileError(path, f"cannot be read ({error.strerror or error})", CIFAR_PICKLE) from None
    except Exception as error:  # whatever a corrupt pickle raises, the file is not a batch
        detail = next((line.strip() for line in str(error).splitlines() if line.strip()), type(error).__name__)
        raise ResultFileError(path, f"truncated or corrupt python pickle: {detail}", CIFAR_PICKLE) from None
    if not isinstance(content, dict):
        raise ResultFileError(path, f"holds a {type(content).__name__}, not a dict", CIFAR_PICKLE)
    missing_keys = [key for key in keys if key not in content]
    if missing_keys:
        have = ", ".join(map(repr, content)) or "none"
        raise ResultFileError(path, f"lacks key(s) {', '.join(map(repr, missing_keys))} (it has: {have})",
                              CIFAR_PICKLE)
    return content


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
        root: str,
        split_seed: int,
        val_fraction: float = 0.1,
        image_size: int = 32,
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
    """CIFAR-100: 100 fine classes, from cifar-100-python/{train,test,meta}."""

    NAME, FOLDER, META, ARCHIVE = "cifar100", "cifar-100-python", "meta", "cifar-100-python.tar.gz"
    SOURCES = {"train": ("train",), "test": ("test",)}
    NAMES_KEY, LABELS_KEY = b"fine_label_names", b"fine_labels"


@DATASETS.register("cifar10")
class Cifar10(CifarPickles):
    """CIFAR-10: 10 classes, from cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}; the train
    rows are the five data batches concatenated in order (so index i < 10000 is row i of data_batch_1)."""

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
    """ImageNet-1k (or any ImageFolder tree): 1000 classes; the official val images must first be sorted into
    one folder per class."""

    NAME = "imagenet"
    LAYOUT = ("the ImageNet {folder} images in ImageFolder layout ({folder}/<wnid>/*.JPEG; the official val "
              "images must first be sorted into one folder per class)")

    @augmentation_keywords
    def prepare(
        self,
        *,
        root: str,
        split_seed: int,
        val_fraction: float = 0.01,
        image_size: int = 224,
        classes: list[str] | None = None,
        **augmentation: Any,
    ) -> tuple[DatasetInfo, dict[str, np.ndarray]]:
        return self.prepare_folders(root, split_seed, val_fraction, image_size, augmentation, subset=classes)


@DATASETS.register("imagenette")
class Imagenette(ImageFolderEntry):
    """Imagenette (Howard, 2019; fastai), 10 easy ImageNet classes, in fastai's layout ``root/train/<wnid>/``
    and ``root/val/<wnid>/`` (as the imagenette2, -320 and -160 archives unpack). Processed as ImageNet: its
    images are ImageNet's, and 224 is the input of the only ImageNet-type ViT-T set-up paper B gives (E.5,
    patch 16)."""

    NAME = "imagenette"
    NUM_CLASSES = 10
    LAYOUT = ("the Imagenette {folder} images in fastai's layout ({folder}/<wnid>/*.JPEG, as imagenette2*.tgz "
              "unpacks)")

    @augmentation_keywords
    def prepare(
        self,
        *,
        root: str,
        split_seed: int,
        val_fraction: float = 0.1,
        image_size: int = 224,
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
    """TinyImageNet (Le & Yang, 2015): single-label, 200 classes in the order of ``wnids.txt``, (3, image_size,
    image_size), from the official ``tiny-imagenet-200`` folder. Val is a stratified part of the official train
    set; test is the official val set (labelled by ``val/val_annotations.txt``; the official test set has no
    labels). Images are resized only when ``image_size`` is not their native 64. Training pads by 1/8 of the
    side, crops randomly (paper B's code: ``RandomCrop(64, padding=8)``) and flips."""

    @augmentation_keywords
    def prepare(
        self,
        *,
        root: str,
        split_seed: int,
        val_fraction: float = 0.1,
        image_size: int = TINY_SIDE,
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
    image whose objects are all difficult then has an all-zero label. ``classes`` (names or indices) keeps
    those label columns, e.g. one class for paper A Fig. 6's binary models. ``cutmix_alpha`` and
    ``mixup_alpha`` are accepted only to be refused with the reason (they must stay 0): CutMix/MixUp here make soft single-label
    targets, and VOC is multi-label."""

    task = "multi_label"

    def prepare(
        self,
        *,
        root: str,
        split_seed: int,
        image_size: int = 224,
        keep_difficult: bool = False,
        classes: list[str] | None = None,
        cutmix_alpha: float = 0.0,
        mixup_alpha: float = 0.0,
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


class CompositeImages(Dataset):
    """Paper A's composite images, made per item: each of the GRID x GRID cells holds one base image resized
    to the cell (or stays empty: zero after normalisation, the mean); ``sources`` [S, cells] indexes
    ``files`` (-1 = empty)."""

    def __init__(self, root: Path, files: np.ndarray, sources: np.ndarray, targets: np.ndarray, size: int,
                 augment: bool) -> None:
        from torchvision import transforms

        from eebench.data.small import GRID

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
    """Paper A §4.2's multi-label ImageNet: "we randomly select n = 10 classes and combine images from m
    randomly chosen categories (m in {2, 4}), creating composite images that belong to multiple classes".
    Reading (the paper does not say how images are combined): as ``digits_composite``, a 2 x 2 mosaic of m
    images of distinct classes in m random cells, each image resized to a cell, the other cells empty.
    Base images come from the ImageFolder tree: train and val composites from the train folder's split
    (``val_fraction``), test composites from the official val folder, so no base image is in two splits.
    ``classes`` (wnids) or, when absent, ``num_classes`` folders drawn with ``split_seed``. The sample counts
    are not given by the paper."""

    NAME = "imagenet_composite"
    task = "multi_label"
    LAYOUT = ImageNet.LAYOUT

    def prepare(
        self,
        *,
        root: str,
        split_seed: int,
        val_fraction: float = 0.1,
        image_size: int = 224,
        classes: list[str] | None = None,
        num_classes: int = 10,
        m_values: list[int] | None = None,
        train_samples: int = 20000,
        val_samples: int = 2000,
        test_samples: int = 5000,
    ) -> tuple[DatasetInfo, dict[str, np.ndarray]]:
        from torchvision.datasets.folder import find_classes

        from eebench.data.small import GRID, composite_plan

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
