"""Paper-scale loaders on tiny fixtures written in the real on-disk formats."""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader, TensorDataset

from eebench.data import DatasetInfo, DatasetMissingError, load_split, parameters, prepare_dataset
from eebench.data.voc import VOC_CLASSES
from tests.fixtures import write_cifar100


def arrays(path) -> dict[str, np.ndarray]:
    with np.load(path) as npz:
        return {key: npz[key] for key in npz.files}


def save_image(path: Path, rng: np.random.Generator, size=(20, 24)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(path, format="JPEG")


# CIFAR-100


@pytest.fixture(scope="module")
def cifar_root(tmp_path_factory) -> Path:
    """cifar-100-python: 2 train images per class (the fewest a stratified val split allows), 20 test."""
    return write_cifar100(tmp_path_factory.mktemp("cifar"))


def read_batch(root: Path, name: str) -> dict:
    with open(root / "cifar-100-python" / name, "rb") as handle:
        return pickle.load(handle, encoding="bytes")


def test_cifar100_splits_labels_and_normalisation(cifar_root, tmp_path):
    params = {"root": str(cifar_root), "split_seed": 0, "val_fraction": 0.5}
    info = prepare_dataset("cifar100", params, tmp_path / "c.npz")
    assert info == DatasetInfo("cifar100", 100, "single_label", (3, 32, 32))
    c = arrays(tmp_path / "c.npz")
    assert sorted(np.concatenate([c["index_train"], c["index_val"]]).tolist()) == list(range(200))
    assert np.bincount(c["y_val"], minlength=100).tolist() == [1] * 100  # stratified
    train, test = read_batch(cifar_root, "train"), read_batch(cifar_root, "test")
    pixels = train[b"data"][c["index_train"]].reshape(-1, 3, 1024) / 255.0
    np.testing.assert_allclose(c["mean"], pixels.mean(axis=(0, 2)), rtol=1e-5)
    np.testing.assert_allclose(c["std"], pixels.std(axis=(0, 2)), rtol=1e-5)

    expected = {
        "train": (train, c["index_train"]),
        "val": (train, c["index_val"]),
        "test": (test, np.arange(20)),
    }
    for split, (batch, index) in expected.items():
        dataset, _ = load_split(tmp_path / "c.npz", split)
        assert isinstance(dataset, TensorDataset) and len(dataset) == len(index)
        x, y = dataset[3]
        raw = batch[b"data"][index[3]].reshape(3, 32, 32) / 255.0
        normalised = (raw - c["mean"][:, None, None]) / c["std"][:, None, None]
        assert x.shape == (3, 32, 32) and x.dtype == torch.float32
        np.testing.assert_allclose(x.numpy(), normalised, atol=1e-5)
        assert y.dtype == torch.int64 and y.shape == () and int(y) == batch[b"fine_labels"][index[3]]


def test_cifar100_is_deterministic_in_the_seed(cifar_root, tmp_path):
    for seed, file in ((0, "a"), (0, "b"), (1, "c")):
        params = {"root": str(cifar_root), "split_seed": seed, "val_fraction": 0.5}
        prepare_dataset("cifar100", params, tmp_path / file)
    a, b, c = (arrays(tmp_path / f) for f in "abc")
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["index_val"], c["index_val"])


def test_cifar100_augments_train_only(cifar_root, tmp_path):
    params = {"root": str(cifar_root), "split_seed": 0, "val_fraction": 0.5}
    prepare_dataset("cifar100", params, tmp_path / "c.npz")
    augmented, _ = load_split(tmp_path / "c.npz", "train", augment=True)
    plain, _ = load_split(tmp_path / "c.npz", "train")
    torch.manual_seed(0)
    outputs = [augmented[0][0] for _ in range(10)]
    assert all(x.shape == (3, 32, 32) and x.dtype == torch.float32 for x in outputs)
    assert any(not torch.equal(x, plain[0][0]) for x in outputs)
    assert isinstance(load_split(tmp_path / "c.npz", "test", augment=True)[0], TensorDataset)


def resized(images: torch.Tensor, size: int) -> torch.Tensor:
    """The library's bilinear, antialiased resize of [B, 3, H, W]: what image_size must give."""
    return torch.nn.functional.interpolate(images, size=(size, size), mode="bilinear", align_corners=False,
                                           antialias=True)


def test_cifar100_image_size_resizes_each_evaluation_item(cifar_root, tmp_path):
    assert parameters("cifar100")["image_size"].default == 32
    params = {"root": str(cifar_root), "split_seed": 0, "val_fraction": 0.5}
    prepare_dataset("cifar100", params, tmp_path / "native.npz")
    info = prepare_dataset("cifar100", {**params, "image_size": 224}, tmp_path / "c.npz")
    assert info.input_shape == (3, 224, 224)
    c = arrays(tmp_path / "c.npz")
    assert int(c["image_size"]) == 224 and json.loads(str(c["params"]))["image_size"] == 224
    assert int(arrays(tmp_path / "native.npz")["image_size"]) == 32
    for split in ("val", "test"):
        native, _ = load_split(tmp_path / "native.npz", split)
        expected = resized(native.tensors[0][[0, 3, 7]], 224)  # the 32-px normalised images, resized
        for augment in (False, True):  # evaluation is never augmented, hence deterministic
            dataset, _ = load_split(tmp_path / "c.npz", split, augment=augment)
            assert len(dataset) == len(native)
            for k, i in enumerate((0, 3, 7)):
                x, y = dataset[i]
                assert x.shape == (3, 224, 224) and x.dtype == torch.float32
                torch.testing.assert_close(x, expected[k], rtol=0, atol=1e-6)
                assert torch.equal(y, native[i][1])
        # The DataLoader's batched fetch gives the same items.
        x, y = next(iter(DataLoader(dataset, batch_size=8)))
        assert x.shape == (8, 3, 224, 224) and torch.equal(y, native.tensors[1][:8])
        torch.testing.assert_close(x[[0, 3, 7]], expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("extra", [{}, {"rotation_degrees": 30, "contrast": 0.5, "trivial_augment": True}],
                         ids=["crop_flip", "per_image"])
def test_cifar100_image_size_augments_at_32_then_resizes(cifar_root, tmp_path, extra):
    params = {"root": str(cifar_root), "split_seed": 0, "val_fraction": 0.5, **extra}
    prepare_dataset("cifar100", params, tmp_path / "native.npz")
    prepare_dataset("cifar100", {**params, "image_size": 64}, tmp_path / "c.npz")
    native, _ = load_split(tmp_path / "native.npz", "train", augment=True)
    train, _ = load_split(tmp_path / "c.npz", "train", augment=True)
    outputs = []
    for seed in range(6):  # the same random draws: the 32-px augmented image, resized
        torch.manual_seed(seed)
        small = native[5][0]
        torch.manual_seed(seed)
        x, y = train[5]
        assert x.shape == (3, 64, 64) and x.dtype == torch.float32 and int(y) == int(native[5][1])
        torch.testing.assert_close(x, resized(small[None], 64)[0], rtol=0, atol=1e-6)
        outputs.append(x)
    assert any(not torch.equal(x, outputs[0]) for x in outputs[1:])  # really random


def test_cifar100_image_size_with_erasing_and_mixing_keeps_the_size(cifar_root, tmp_path):
    params = {"root": str(cifar_root), "split_seed": 0, "val_fraction": 0.5, "image_size": 48, "erasing_p": 1.0,
              "mixup_alpha": 0.2}
    prepare_dataset("cifar100", params, tmp_path / "c.npz")
    train, _ = load_split(tmp_path / "c.npz", "train", augment=True)
    torch.manual_seed(0)
    x, y = next(iter(DataLoader(train, batch_size=4, collate_fn=train.collate_fn)))
    assert x.shape == (4, 3, 48, 48) and y.shape == (4, 100)


@pytest.mark.parametrize("size", [0, -3])
def test_cifar100_image_size_below_one_names_the_key(cifar_root, tmp_path, size):
    params = {"root": str(cifar_root), "split_seed": 0, "image_size": size}
    with pytest.raises(ValueError, match=rf"'cifar100': image_size must be positive, got {size}"):
        prepare_dataset("cifar100", params, tmp_path / "c.npz")
    assert not (tmp_path / "c.npz").exists()


def test_cifar100_missing_files_name_the_path(cifar_root, tmp_path):
    absent = tmp_path / "nowhere"
    with pytest.raises(DatasetMissingError, match="cifar100") as error:
        prepare_dataset("cifar100", {"root": str(absent), "split_seed": 0}, tmp_path / "c.npz")
    assert str(absent / "cifar-100-python" / "train") in str(error.value)
    assert isinstance(error.value, FileNotFoundError)
    assert not (tmp_path / "c.npz").exists()


# ImageNet

WNIDS = ("n01440764", "n01443537", "n01484850")


@pytest.fixture(scope="module")
def imagenet_root(tmp_path_factory) -> Path:
    """An ImageFolder tree: 4 train and 2 val JPEGs (named .JPEG) for each of 3 classes."""
    root = tmp_path_factory.mktemp("imagenet")
    rng = np.random.default_rng(1)
    for wnid in WNIDS:
        for i in range(4):
            save_image(root / "train" / wnid / f"{wnid}_{i}.JPEG", rng)
        for i in range(2):
            save_image(root / "val" / wnid / f"ILSVRC2012_val_{wnid}_{i}.JPEG", rng, size=(30, 18))
    return root


def test_imagenet_splits_and_items(imagenet_root, tmp_path):
    params = {"root": str(imagenet_root), "split_seed": 0, "val_fraction": 0.25, "image_size": 16}
    info = prepare_dataset("imagenet", params, tmp_path / "i.npz")
    assert info == DatasetInfo("imagenet", 3, "single_label", (3, 16, 16))
    i = arrays(tmp_path / "i.npz")
    assert i["classes"].tolist() == list(WNIDS)
    train_files = [f.decode() for f in np.concatenate([i["files_train"], i["files_val"]])]
    on_disk = [str(p.relative_to(imagenet_root)) for p in imagenet_root.glob("train/*/*")]
    assert sorted(train_files) == sorted(on_disk)
    assert len(i["files_train"]) == 9 and len(i["files_val"]) == 3 and len(i["files_test"]) == 6
    for split in ("train", "val", "test"):
        for file, label in zip(i[f"files_{split}"], i[f"y_{split}"]):
            assert Path(file.decode()).parent.name == WNIDS[label]
        dataset, _ = load_split(tmp_path / "i.npz", split, augment=True)
        x, y = dataset[0]
        assert x.shape == (3, 16, 16) and x.dtype == torch.float32
        assert y.dtype == torch.int64 and y.shape == () and int(y) == i[f"y_{split}"][0]
    assert all(f.decode().startswith("val/") for f in i["files_test"])


def test_imagenet_class_subset_keeps_those_folders_renumbered_in_the_given_order(imagenet_root, tmp_path):
    subset = [WNIDS[2], WNIDS[0]]
    params = {"root": str(imagenet_root), "split_seed": 0, "val_fraction": 0.25, "image_size": 16,
              "classes": subset}
    info = prepare_dataset("imagenet", params, tmp_path / "s.npz")
    assert info.num_classes == 2
    s = arrays(tmp_path / "s.npz")
    assert s["classes"].tolist() == subset
    assert len(s["files_train"]) + len(s["files_val"]) == 8 and len(s["files_test"]) == 4
    for split in ("train", "val", "test"):
        for file, label in zip(s[f"files_{split}"], s[f"y_{split}"]):
            assert Path(file.decode()).parent.name == subset[label]
    for bad, match in (([WNIDS[0], "n99999999"], "not there: \\['n99999999'\\]"), ([WNIDS[0]], "at least 2")):
        with pytest.raises(ValueError, match=match):
            prepare_dataset("imagenet", {**params, "classes": bad}, tmp_path / "bad.npz")


def test_imagenet_composites_are_mosaics_of_distinct_classes_labelled_by_their_cells(imagenet_root, tmp_path):
    """Paper A §4.2's multi-label ImageNet (read as digits_composite's 2 x 2 mosaics): every composite holds m
    images of distinct classes, its label is the set of their classes, and the item is the mosaic made from
    those files; test composites use the official val images only."""
    from torchvision import transforms

    params = {"root": str(imagenet_root), "split_seed": 0, "val_fraction": 0.25, "image_size": 16,
              "classes": list(WNIDS), "m_values": [2], "train_samples": 12, "val_samples": 4, "test_samples": 6}
    info = prepare_dataset("imagenet_composite", params, tmp_path / "c.npz")
    assert info == DatasetInfo("imagenet_composite", 3, "multi_label", (3, 16, 16))
    c = arrays(tmp_path / "c.npz")
    for split, count in (("train", 12), ("val", 4), ("test", 6)):
        files, sources, labels = c[f"files_{split}"], c[f"source_{split}"], c[f"y_{split}"]
        assert sources.shape == (count, 4) and labels.shape == (count, 3)
        for source, label in zip(sources, labels):
            folders = [Path(files[i].decode()).parent.name for i in source if i >= 0]
            assert len(folders) == 2 == len(set(folders))  # m = 2 distinct classes
            assert sorted(WNIDS.index(f) for f in folders) == np.flatnonzero(label).tolist()
            assert all(files[i].decode().startswith("val/" if split == "test" else "train/") for i in source if i >= 0)
    dataset, _ = load_split(tmp_path / "c.npz", "test")
    x, y = dataset[0]
    assert x.shape == (3, 16, 16) and y.tolist() == c["y_test"][0].tolist()
    cell = transforms.Compose([transforms.Resize((8, 8)), transforms.ToTensor(),
                               transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
    for k, source in enumerate(c["source_test"][0]):
        row, col = divmod(k, 2)
        part = x[:, row * 8:(row + 1) * 8, col * 8:(col + 1) * 8]
        if source < 0:
            assert (part == 0).all()
        else:
            with Image.open(imagenet_root / c["files_test"][source].decode()) as image:
                assert torch.allclose(part, cell(image.convert("RGB")))
    with pytest.raises(ValueError, match="image_size must be a multiple of 2"):
        prepare_dataset("imagenet_composite", {**params, "image_size": 15}, tmp_path / "bad.npz")
    drawn = prepare_dataset("imagenet_composite", {k: v for k, v in params.items() if k != "classes"} | {
        "num_classes": 2}, tmp_path / "drawn.npz")
    assert drawn.num_classes == 2 and set(arrays(tmp_path / "drawn.npz")["classes"]) < set(WNIDS)


def test_imagenet_is_deterministic_and_evaluation_is_not_random(imagenet_root, tmp_path):
    for seed, file in ((0, "a"), (0, "b"), (2, "c")):
        params = {"root": str(imagenet_root), "split_seed": seed, "val_fraction": 0.25, "image_size": 16}
        prepare_dataset("imagenet", params, tmp_path / file)
    a, b, c = (arrays(tmp_path / f) for f in "abc")
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["files_val"], c["files_val"])
    val, _ = load_split(tmp_path / "a", "val", augment=True)
    assert torch.equal(val[0][0], val[0][0])


def test_imagenet_missing_val_folder_names_the_path(imagenet_root, tmp_path):
    partial = tmp_path / "partial"
    (partial / "train" / WNIDS[0]).mkdir(parents=True)
    with pytest.raises(DatasetMissingError, match="imagenet") as error:
        prepare_dataset("imagenet", {"root": str(partial), "split_seed": 0}, tmp_path / "i.npz")
    assert str(partial / "val") in str(error.value)
    (partial / "val" / WNIDS[0]).mkdir(parents=True)
    with pytest.raises(DatasetMissingError, match=str(partial / "train")):  # a class folder without images
        prepare_dataset("imagenet", {"root": str(partial), "split_seed": 0}, tmp_path / "i.npz")
    with pytest.raises(DatasetMissingError, match="nowhere"):
        prepare_dataset("imagenet", {"root": str(tmp_path / "nowhere"), "split_seed": 0}, tmp_path / "i.npz")


# PASCAL VOC 2007

VOC_OBJECTS = {  # image id -> (class, difficult) of its objects
    "000001": [("dog", 0), ("person", 0)],
    "000002": [("train", 0), ("person", 1)],
    "000003": [("cat", 0), ("cat", 0), ("sofa", 0)],
    "000004": [("aeroplane", 0)],
    "000005": [("bottle", 1)],
}
VOC_SPLITS = {"train": ["000001", "000002"], "val": ["000003"], "test": ["000004", "000005"]}


def annotation(image_id: str, objects: list[tuple[str, int]]) -> str:
    body = "".join(
        f"<object><name>{name}</name><pose>Unspecified</pose><truncated>0</truncated>"
        f"<difficult>{difficult}</difficult><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax>"
        "</bndbox></object>"
        for name, difficult in objects
    )
    return (
        f"<annotation><folder>VOC2007</folder><filename>{image_id}.jpg</filename>"
        f"<size><width>24</width><height>20</height><depth>3</depth></size>{body}</annotation>"
    )


@pytest.fixture(scope="module")
def voc_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("voc")
    voc = root / "VOCdevkit" / "VOC2007"
    rng = np.random.default_rng(2)
    (voc / "Annotations").mkdir(parents=True)
    (voc / "ImageSets" / "Main").mkdir(parents=True)
    for image_id, objects in VOC_OBJECTS.items():
        save_image(voc / "JPEGImages" / f"{image_id}.jpg", rng)
        (voc / "Annotations" / f"{image_id}.xml").write_text(annotation(image_id, objects))
    for split, ids in VOC_SPLITS.items():
        (voc / "ImageSets" / "Main" / f"{split}.txt").write_text("".join(f"{i}\n" for i in ids))
    return root


def multi_hot(*names: str) -> list[float]:
    return [1.0 if c in names else 0.0 for c in VOC_CLASSES]


def test_voc2007_labels_splits_and_items(voc_root, tmp_path):
    params = {"root": str(voc_root), "split_seed": 0, "image_size": 16}
    info = prepare_dataset("voc2007", params, tmp_path / "v.npz")
    assert info == DatasetInfo("voc2007", 20, "multi_label", (3, 16, 16))
    v = arrays(tmp_path / "v.npz")
    assert VOC_CLASSES[:3] == ("aeroplane", "bicycle", "bird") and VOC_CLASSES[-1] == "tvmonitor"
    # The difficult person of 000002 and the difficult bottle of 000005 are skipped.
    assert v["y_train"].tolist() == [multi_hot("dog", "person"), multi_hot("train")]
    assert v["y_val"].tolist() == [multi_hot("cat", "sofa")]
    assert v["y_test"].tolist() == [multi_hot("aeroplane"), multi_hot()]
    for split, ids in VOC_SPLITS.items():
        assert [Path(f.decode()).stem for f in v[f"files_{split}"]] == ids
        dataset, _ = load_split(tmp_path / "v.npz", split, augment=split == "train")
        x, y = dataset[0]
        assert len(dataset) == len(ids)
        assert x.shape == (3, 16, 16) and x.dtype == torch.float32
        assert y.dtype == torch.float32 and y.tolist() == v[f"y_{split}"][0].tolist()


def test_voc2007_keep_difficult(voc_root, tmp_path):
    params = {"root": str(voc_root), "split_seed": 0, "keep_difficult": True}
    prepare_dataset("voc2007", params, tmp_path / "v.npz")
    v = arrays(tmp_path / "v.npz")
    assert v["y_train"].tolist()[1] == multi_hot("train", "person")
    assert v["y_test"].tolist()[1] == multi_hot("bottle")


def test_voc2007_missing_files_name_the_path(voc_root, tmp_path):
    with pytest.raises(DatasetMissingError, match="voc2007") as error:
        prepare_dataset("voc2007", {"root": str(tmp_path / "nowhere"), "split_seed": 0}, tmp_path / "v.npz")
    listing = tmp_path / "nowhere" / "VOCdevkit" / "VOC2007" / "ImageSets" / "Main" / "train.txt"
    assert str(listing) in str(error.value)
    broken = tmp_path / "broken"
    (broken / "VOCdevkit" / "VOC2007" / "ImageSets" / "Main").mkdir(parents=True)
    (broken / "VOCdevkit" / "VOC2007" / "ImageSets" / "Main" / "train.txt").write_text("000009\n")
    with pytest.raises(DatasetMissingError, match=r"000009\.xml"):
        prepare_dataset("voc2007", {"root": str(broken), "split_seed": 0}, tmp_path / "v.npz")


def test_voc2007_classes_keep_those_label_columns_of_the_same_images(voc_root, tmp_path):
    from eebench.data.core import inputs_fingerprint

    prepare_dataset("voc2007", {"root": str(voc_root), "split_seed": 0}, tmp_path / "all.npz")
    info = prepare_dataset("voc2007", {"root": str(voc_root), "split_seed": 0, "classes": ["person", "dog"]},
                           tmp_path / "two.npz")
    assert info.num_classes == 2 and info.task == "multi_label"
    full, two = arrays(tmp_path / "all.npz"), arrays(tmp_path / "two.npz")
    assert two["classes"].tolist() == ["person", "dog"]
    for split in VOC_SPLITS:
        columns = [VOC_CLASSES.index("person"), VOC_CLASSES.index("dog")]
        np.testing.assert_array_equal(two[f"y_{split}"], full[f"y_{split}"][:, columns])
        np.testing.assert_array_equal(two[f"files_{split}"], full[f"files_{split}"])
        assert inputs_fingerprint(tmp_path / "two.npz", split) == inputs_fingerprint(tmp_path / "all.npz", split)
    assert two["y_train"].tolist() == [[1.0, 1.0], [0.0, 0.0]]  # 000001: dog and person; 000002: train
    with pytest.raises(ValueError, match="'unicorn' is neither a class index"):
        prepare_dataset("voc2007", {"root": str(voc_root), "split_seed": 0, "classes": ["unicorn"]},
                        tmp_path / "bad.npz")
