"""Writers of tiny CIFAR-10, TinyImageNet and Imagenette trees in their real on-disk layouts (used by several
test modules of this folder)."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
from PIL import Image


def save_image(path: Path, rng: np.random.Generator, size=(20, 24)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(path, format="JPEG")



CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
# Four rows per data batch, 20 in all: class c at global rows c and 19 - c (two per class for a stratified split).
CIFAR10_TRAIN_LABELS = [c if i < 10 else 19 - i for i, c in enumerate(list(range(10)) * 2)]
CIFAR10_TEST_LABELS = [3, 1, 4, 1, 5, 9]


def write_cifar10(root: Path) -> Path:
    """cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta} as the official pickles. Row i of the
    concatenated train batches has every byte equal to i (so an item names the row it came from), test row j
    has 100 + j."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)

    def batch(first: int, labels: list[int], name: str) -> dict[bytes, object]:
        n = len(labels)
        data = np.repeat(np.arange(first, first + n, dtype=np.uint8)[:, None], 3072, axis=1)
        return {b"batch_label": name.encode(), b"labels": labels, b"data": data,
                b"filenames": [f"img{first + i}.png".encode() for i in range(n)]}

    contents: dict[str, dict] = {
        f"data_batch_{b + 1}": batch(4 * b, CIFAR10_TRAIN_LABELS[4 * b : 4 * b + 4], f"training batch {b + 1}")
        for b in range(5)
    }
    contents["test_batch"] = batch(100, CIFAR10_TEST_LABELS, "testing batch")
    contents["batches.meta"] = {b"label_names": [n.encode() for n in CIFAR10_NAMES], b"num_cases_per_batch": 4,
                                b"num_vis": 3072}
    for name, content in contents.items():
        with open(folder / name, "wb") as handle:
            pickle.dump(content, handle)
    return root



TINY_WNIDS = [f"n{9_000_000 - 7 * i:08d}" for i in range(200)]  # descending: wnids.txt order is not sorted
TINY_VAL = [("val_0.JPEG", 17), ("val_1.JPEG", 0), ("val_2.JPEG", 199), ("val_3.JPEG", 17), ("val_4.JPEG", 42)]


def write_tinyimagenet(root: Path) -> Path:
    """tiny-imagenet-200 with 200 classes, 2 train images each (64x64 like the real ones) and 5 val images;
    also the files the loader ignores (boxes, the unlabelled test set, words.txt)."""
    base = root / "tiny-imagenet-200"
    rng = np.random.default_rng(3)
    base.mkdir(parents=True)
    (base / "wnids.txt").write_text("".join(f"{w}\n" for w in TINY_WNIDS))
    (base / "words.txt").write_text("".join(f"{w}\tthing {i}\n" for i, w in enumerate(TINY_WNIDS)))
    for wnid in TINY_WNIDS:
        for i in range(2):
            save_image(base / "train" / wnid / "images" / f"{wnid}_{i}.JPEG", rng, size=(64, 64))
        (base / "train" / wnid / f"{wnid}_boxes.txt").write_text(f"{wnid}_0.JPEG\t0\t0\t63\t63\n")
    for name, label in TINY_VAL:
        save_image(base / "val" / "images" / name, rng, size=(64, 64))
    (base / "val" / "val_annotations.txt").write_text(
        "".join(f"{name}\t{TINY_WNIDS[label]}\t1\t2\t30\t40\n" for name, label in TINY_VAL)
    )
    save_image(base / "test" / "images" / "test_0.JPEG", rng, size=(64, 64))
    return root



IMAGENETTE_WNIDS = ("n01440764", "n02102040", "n02979186", "n03000684", "n03028079", "n03394916", "n03417042",
                    "n03425413", "n03445777", "n03888605")


def write_imagenette(root: Path, classes=IMAGENETTE_WNIDS) -> Path:
    """fastai's layout: train/<wnid>/*.JPEG (3 per class) and val/<wnid>/*.JPEG (1 per class), odd sizes."""
    rng = np.random.default_rng(4)
    for wnid in classes:
        for i in range(3):
            save_image(root / "train" / wnid / f"{wnid}_{i}.JPEG", rng, size=(30, 40))
        save_image(root / "val" / wnid / f"ILSVRC2012_val_{wnid}.JPEG", rng, size=(36, 28))
    return root
