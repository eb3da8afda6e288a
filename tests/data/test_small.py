"""The offline digits datasets, the registry contract and the shared API (prepare, load, params)."""
from __future__ import annotations

import inspect
import json

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch.utils.data import TensorDataset

from eebench.data import DATASETS, DatasetInfo, load_split, parameters, prepare_dataset, read_info
from eebench.data.core import RandomShift, translate

SMALL_COMPOSITE = {"train_samples": 200, "val_samples": 50, "test_samples": 50}


@pytest.fixture(scope="module")
def digits_base():
    digits = load_digits()
    return (digits.images / 16.0).astype(np.float32), digits.target


def arrays(path) -> dict[str, np.ndarray]:
    with np.load(path) as npz:
        return {key: npz[key] for key in npz.files}


def test_registered_names_are_the_config_strings():
    assert DATASETS.names() == [
        "cifar10", "cifar100", "coco", "digits", "digits_composite", "imagenet", "imagenet_composite", "imagenette",
        "newsgroups20", "stsb",
        "tinyimagenet", "voc2007",
    ]  # fmt: skip


@pytest.mark.parametrize("name", DATASETS.names())
def test_every_entry_takes_keyword_only_typed_params_with_a_split_seed(name):
    params = parameters(name)
    assert "split_seed" in params
    signature = inspect.signature(DATASETS.get(name).prepare)
    declared = [p for p in signature.parameters.values() if p.name != "self"]
    assert all(p.annotation is not inspect.Parameter.empty for p in declared)
    assert set(params) == {p.name for p in declared}  # nothing positional besides self


@pytest.mark.parametrize("name", DATASETS.names())
def test_unknown_parameter_names_dataset_and_key(name, tmp_path):
    params = {"split_seed": 0, "bogus_key": 1}
    if "root" in parameters(name):
        params["root"] = str(tmp_path)
    with pytest.raises(TypeError, match=rf"{name}.*'bogus_key'"):
        prepare_dataset(name, params, tmp_path / "x.npz")
    assert not (tmp_path / "x.npz").exists()


def test_missing_required_parameter_and_unknown_dataset(tmp_path):
    with pytest.raises(TypeError, match=r"digits.*'split_seed'"):
        prepare_dataset("digits", {}, tmp_path / "x.npz")
    with pytest.raises(KeyError, match="digits_composite"):
        prepare_dataset("mnist", {"split_seed": 0}, tmp_path / "x.npz")


@pytest.mark.parametrize(
    "params, match",
    [
        ({"val_fraction": 0.0}, "val_fraction"),
        ({"val_fraction": 0.5, "test_fraction": 0.5}, "below 1"),
        ({"m_values": [5]}, "m_values"),
        ({"m_values": []}, "m_values"),
        ({"val_samples": 0}, "val_samples"),
    ],
)
def test_bad_composite_values_raise(params, match, tmp_path):
    with pytest.raises(ValueError, match=match):
        prepare_dataset("digits_composite", {"split_seed": 0, **params}, tmp_path / "x.npz")


def test_info_and_resolved_params_are_stored(tmp_path):
    info = prepare_dataset("digits", {"split_seed": 3}, tmp_path / "d.npz")
    assert info == DatasetInfo("digits", 10, "single_label", (1, 8, 8)) == read_info(tmp_path / "d.npz")
    stored = arrays(tmp_path / "d.npz")
    assert json.loads(str(stored["params"])) == {"split_seed": 3, "val_fraction": 0.2, "test_fraction": 0.2, "classes": None}


def test_unknown_split_raises(tmp_path):
    prepare_dataset("digits", {"split_seed": 0}, tmp_path / "d.npz")
    with pytest.raises(ValueError, match="'valid'"):
        load_split(tmp_path / "d.npz", "valid")


# digits


@pytest.mark.parametrize("name, extra", [("digits", {}), ("digits_composite", SMALL_COMPOSITE)])
def test_same_seed_same_arrays_other_seed_different(name, extra, tmp_path):
    for seed, file in ((0, "a"), (0, "b"), (1, "c")):
        prepare_dataset(name, {"split_seed": seed, **extra}, tmp_path / f"{file}.npz")
    a, b, c = (arrays(tmp_path / f"{f}.npz") for f in "abc")
    assert a.keys() == b.keys() == c.keys()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["x_test"], c["x_test"])


def test_digits_splits_are_disjoint_cover_everything_and_match_the_source(tmp_path, digits_base):
    images, target = digits_base
    prepare_dataset("digits", {"split_seed": 0}, tmp_path / "d.npz")
    d = arrays(tmp_path / "d.npz")
    index = [d[f"index_{s}"] for s in ("train", "val", "test")]
    assert sorted(np.concatenate(index).tolist()) == list(range(len(target)))
    assert [len(i) for i in index] == [1077, 360, 360]
    for split in ("train", "val", "test"):
        np.testing.assert_array_equal(d[f"x_{split}"][:, 0], images[d[f"index_{split}"]])
        np.testing.assert_array_equal(d[f"y_{split}"], target[d[f"index_{split}"]])


def test_digits_split_is_stratified(tmp_path, digits_base):
    _, target = digits_base
    params = {"split_seed": 5, "val_fraction": 0.1, "test_fraction": 0.3}
    prepare_dataset("digits", params, tmp_path / "d.npz")
    d = arrays(tmp_path / "d.npz")
    totals = np.bincount(target, minlength=10)
    for split, fraction in (("val", 0.1), ("test", 0.3)):
        counts = np.bincount(d[f"y_{split}"], minlength=10)
        assert np.all(np.abs(counts - fraction * totals) <= 1.5), (split, counts)


def test_digits_items(tmp_path):
    prepare_dataset("digits", {"split_seed": 0}, tmp_path / "d.npz")
    dataset, info = load_split(tmp_path / "d.npz", "test")
    assert isinstance(dataset, TensorDataset) and len(dataset) == 360
    x, y = dataset[0]
    assert x.shape == info.input_shape and x.dtype == torch.float32
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert y.dtype == torch.int64 and y.shape == ()


# augmentation


def test_translate_by_hand():
    x = torch.arange(1.0, 10.0).view(1, 3, 3)  # [[1,2,3],[4,5,6],[7,8,9]]
    expected = torch.tensor([[[0.0, 0.0, 0.0], [2.0, 3.0, 0.0], [5.0, 6.0, 0.0]]])
    torch.testing.assert_close(translate(x, 1, -1), expected)  # one row down, one column left
    torch.testing.assert_close(translate(x, 0, 0), x)
    up = torch.tensor([[[4.0, 5.0, 6.0], [7.0, 8.0, 9.0], [0.0, 0.0, 0.0]]])
    torch.testing.assert_close(translate(x, -1, 0), up)


def test_random_shift_stays_within_one_pixel():
    torch.manual_seed(0)
    x = torch.rand(1, 5, 5)
    shifts = set()
    for _ in range(200):
        out = RandomShift(1)(x)
        match = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if torch.equal(out, translate(x, dy, dx))]
        assert match
        shifts.add(match[0])
    assert len(shifts) == 9


def test_batched_random_shift_shifts_each_sample_by_its_own_draw():
    torch.manual_seed(0)
    x = torch.rand(300, 1, 5, 5)
    out = RandomShift(1).batch(x)
    shifts = []
    for sample, moved in zip(x, out):
        match = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if torch.equal(moved, translate(sample, dy, dx))]
        assert match
        shifts.append(match[0])
    assert len(set(shifts)) == 9


@pytest.mark.parametrize("shape, max_shift", [((40, 1, 8, 8), 1), ((12, 3, 16, 16), 2), ((7, 6, 5), 3)])
def test_batched_random_shift_is_translate_at_the_same_draws(shape, max_shift):
    torch.manual_seed(3)
    x = torch.rand(*shape)
    torch.manual_seed(4)
    out = RandomShift(max_shift).batch(x)
    torch.manual_seed(4)  # the same [B, 2] draw the batch makes
    shifts = torch.randint(-max_shift, max_shift + 1, (len(x), 2)).tolist()
    assert torch.equal(out, torch.stack([translate(sample, dy, dx) for sample, (dy, dx) in zip(x, shifts)]))
    assert out.is_contiguous() and out.shape == x.shape


def test_a_batch_fetch_matches_the_items_labels_and_shifts_each_sample():
    from eebench.data.core import TransformedTensors

    x, y = torch.rand(6, 1, 5, 5), torch.arange(6)
    torch.manual_seed(1)
    batch = TransformedTensors(x, y, RandomShift(1)).__getitems__([4, 0, 2])
    assert [int(label) for _, label in batch] == [4, 0, 2]
    assert all(any(torch.equal(moved, translate(x[i], dy, dx)) for dy in (-1, 0, 1) for dx in (-1, 0, 1))
               for (moved, _), i in zip(batch, [4, 0, 2]))


@pytest.mark.parametrize("name, extra", [("digits", {}), ("digits_composite", SMALL_COMPOSITE)])
def test_augmentation_only_on_train_and_shape_preserving(name, extra, tmp_path):
    prepare_dataset(name, {"split_seed": 0, **extra}, tmp_path / "d.npz")
    plain, info = load_split(tmp_path / "d.npz", "train")
    augmented, _ = load_split(tmp_path / "d.npz", "train", augment=True)
    assert not isinstance(augmented, TensorDataset) and len(augmented) == len(plain)
    torch.manual_seed(0)
    moved = 0
    for i in range(20):
        (x, y), (x0, y0) = augmented[i], plain[i]
        assert x.shape == info.input_shape and x.dtype == torch.float32
        assert torch.equal(y, y0)
        assert any(torch.equal(x, translate(x0, dy, dx)) for dy in (-1, 0, 1) for dx in (-1, 0, 1))
        moved += not torch.equal(x, x0)
    assert moved > 0
    for split in ("val", "test"):
        evaluated, _ = load_split(tmp_path / "d.npz", split, augment=True)
        reference, _ = load_split(tmp_path / "d.npz", split)
        assert isinstance(evaluated, TensorDataset)
        assert torch.equal(evaluated.tensors[0], reference.tensors[0])


# digits_composite


def test_composite_shapes_and_default_sizes(tmp_path):
    info = prepare_dataset("digits_composite", {"split_seed": 0}, tmp_path / "c.npz")
    assert info == DatasetInfo("digits_composite", 10, "multi_label", (1, 16, 16))
    sizes = {split: len(load_split(tmp_path / "c.npz", split)[0]) for split in ("train", "val", "test")}
    assert sizes == {"train": 3000, "val": 600, "test": 600}
    x, y = load_split(tmp_path / "c.npz", "val")[0][0]
    assert x.shape == (1, 16, 16) and x.dtype == torch.float32
    assert y.shape == (10,) and y.dtype == torch.float32


def test_composite_cells_hold_the_labelled_base_images_of_the_same_split(tmp_path, digits_base):
    images, target = digits_base
    params = {"split_seed": 7, "val_fraction": 0.25, "test_fraction": 0.15, **SMALL_COMPOSITE}
    prepare_dataset("digits_composite", params, tmp_path / "c.npz")
    base_params = {k: params[k] for k in ("split_seed", "val_fraction", "test_fraction")}
    prepare_dataset("digits", base_params, tmp_path / "d.npz")
    c, d = arrays(tmp_path / "c.npz"), arrays(tmp_path / "d.npz")
    for split in ("train", "val", "test"):
        x, y, source = c[f"x_{split}"], c[f"y_{split}"], c[f"source_{split}"]
        base = set(d[f"index_{split}"].tolist())
        counts = (source >= 0).sum(axis=1)
        assert set(counts.tolist()) == {2, 4}  # both m values occur
        np.testing.assert_array_equal(y.sum(axis=1), counts)  # exactly m ones, so m distinct classes
        for s in range(len(x)):
            placed = []
            for cell in range(4):
                row, col = divmod(cell, 2)
                patch = x[s, 0, 8 * row : 8 * row + 8, 8 * col : 8 * col + 8]
                image = source[s, cell]
                if image < 0:
                    assert not patch.any()
                else:
                    assert image in base  # no image leaks across splits
                    np.testing.assert_array_equal(patch, images[image])
                    placed.append(target[image])
            assert sorted(placed) == np.flatnonzero(y[s]).tolist()


def test_composite_m_values_are_honoured(tmp_path):
    params = {"split_seed": 0, "m_values": [3], **SMALL_COMPOSITE}
    prepare_dataset("digits_composite", params, tmp_path / "c.npz")
    y = arrays(tmp_path / "c.npz")["y_train"]
    assert np.all(y.sum(axis=1) == 3)


def test_digits_class_subset_keeps_those_classes_renumbered_within_the_full_sets_splits(tmp_path):
    full = prepare_dataset("digits", {"split_seed": 0}, tmp_path / "all.npz")
    info = prepare_dataset("digits", {"split_seed": 0, "classes": [7, 2, 9]}, tmp_path / "sub.npz")
    assert info.num_classes == 3 and full.num_classes == 10
    with np.load(tmp_path / "all.npz") as a, np.load(tmp_path / "sub.npz") as b:
        for split in ("train", "val", "test"):
            chosen = np.isin(a[f"y_{split}"], [7, 2, 9])
            np.testing.assert_array_equal(b[f"index_{split}"], a[f"index_{split}"][chosen])
            np.testing.assert_array_equal(b[f"x_{split}"], a[f"x_{split}"][chosen])
            renumbered = {7: 0, 2: 1, 9: 2}
            assert b[f"y_{split}"].tolist() == [renumbered[label] for label in a[f"y_{split}"][chosen]]
    for bad in ([3], [1, 1], [0, 10]):
        with pytest.raises(ValueError, match="classes must be at least 2 distinct labels in \\[0, 10\\)"):
            prepare_dataset("digits", {"split_seed": 0, "classes": bad}, tmp_path / "bad.npz")


def test_composite_classes_label_the_same_mosaics_with_those_columns(tmp_path):
    from eebench.data.core import inputs_fingerprint

    base = {"split_seed": 0, **SMALL_COMPOSITE}
    prepare_dataset("digits_composite", base, tmp_path / "all.npz")
    info = prepare_dataset("digits_composite", {**base, "classes": [3]}, tmp_path / "has3.npz")
    assert info.num_classes == 1 and info.task == "multi_label"
    full, has3 = arrays(tmp_path / "all.npz"), arrays(tmp_path / "has3.npz")
    for split in ("train", "val", "test"):
        np.testing.assert_array_equal(has3[f"x_{split}"], full[f"x_{split}"])
        np.testing.assert_array_equal(has3[f"y_{split}"], full[f"y_{split}"][:, [3]])
        assert inputs_fingerprint(tmp_path / "has3.npz", split) == inputs_fingerprint(tmp_path / "all.npz", split)
    # A 3 is present exactly where one of the cells holds an image of a 3.
    digits = load_digits().target
    sources = full["source_test"]
    holds_3 = ((sources >= 0) & (digits[np.maximum(sources, 0)] == 3)).any(axis=1)
    np.testing.assert_array_equal(has3["y_test"][:, 0] == 1.0, holds_3)
    # The test composites do not depend on the training split's size, so a smaller train set keeps them.
    prepare_dataset("digits_composite", {**base, "train_samples": 120}, tmp_path / "small.npz")
    assert inputs_fingerprint(tmp_path / "small.npz", "test") == inputs_fingerprint(tmp_path / "all.npz", "test")
    assert inputs_fingerprint(tmp_path / "small.npz", "train") != inputs_fingerprint(tmp_path / "all.npz", "train")
    for bad in ([], [3, 3], [10]):
        with pytest.raises(ValueError, match="classes"):
            prepare_dataset("digits_composite", {**base, "classes": bad}, tmp_path / "bad.npz")


def test_augmented_validation_has_the_per_image_augmentation_only(tmp_path):
    """The authors' early stopping scores augmented validation images (training.validation_augment): the
    training split's per-image augmentation, never its batch mixing (Mixup/CutMix)."""
    import torch

    from eebench.data.core import load_augmented_validation

    prepare_dataset("digits", {"split_seed": 0}, tmp_path / "d.npz")
    d = arrays(tmp_path / "d.npz")
    torch.manual_seed(1)
    dataset = load_augmented_validation(tmp_path / "d.npz")
    assert len(dataset) == len(d["y_val"]) and not hasattr(dataset, "collate_fn")
    items = torch.stack([dataset[i][0] for i in range(50)])
    assert not np.array_equal(items.numpy(), d["x_val"][:50])  # randomly shifted by a pixel
    for i in range(50):
        assert any(torch.equal(items[i], translate(torch.from_numpy(d["x_val"][i]), dy, dx))
                   for dy in (-1, 0, 1) for dx in (-1, 0, 1))
