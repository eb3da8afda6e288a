"""CutMix / MixUp as a batch collate, the per-image ViT augmentations, and their config keys."""
from __future__ import annotations

import inspect
import json
import pickle
from dataclasses import asdict, fields

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from eebench.data import DATASETS, load_split, parameters, prepare_dataset
from eebench.data.augment import Augmentation, MixCollate, augmentation_keywords
from tests.data.vision_fixtures import write_cifar10, write_imagenette

A, B = 3.0, -1.0  # the two constant images of the hand-made batch


def two_constant_images() -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Sample 0: every pixel A, label 0. Sample 1: every pixel B, label 2 (3 classes)."""
    return [(torch.full((3, 8, 8), A), torch.tensor(0)), (torch.full((3, 8, 8), B), torch.tensor(2))]


def test_mixup_mixes_the_two_labels_with_the_image_weight():
    collate = MixCollate(3, cutmix_alpha=0.0, mixup_alpha=0.4)
    for seed in range(5):
        torch.manual_seed(seed)
        x, y = collate(two_constant_images())
        assert x.shape == (2, 3, 8, 8) and y.shape == (2, 3) and y.dtype == torch.float32
        # Sample 0 is lam * A + (1 - lam) * B everywhere (sample 1 rolled onto it): one lam per batch.
        lam = float((x[0, 0, 0, 0] - B) / (A - B))
        assert torch.allclose(x[0], torch.full_like(x[0], lam * A + (1 - lam) * B))
        assert torch.allclose(x[1], torch.full_like(x[1], lam * B + (1 - lam) * A))
        assert torch.allclose(y, torch.tensor([[lam, 0.0, 1 - lam], [1 - lam, 0.0, lam]]), atol=1e-6)
        assert torch.allclose(y.sum(1), torch.ones(2))


def test_cutmix_mixes_the_two_labels_with_the_pasted_area():
    collate = MixCollate(3, cutmix_alpha=1.0, mixup_alpha=0.0)
    partial = 0
    for seed in range(10):
        torch.manual_seed(seed)
        x, y = collate(two_constant_images())
        # Pixels only ever come whole from one of the two images; the same box in every channel.
        assert bool(((x == A) | (x == B)).all())
        assert torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 0], x[:, 2])
        kept = float((x[0, 0] == A).float().mean())  # share of sample 0's own pixels = its label weight
        assert torch.equal(x[1, 0] == B, x[0, 0] == A)  # sample 1 got sample 0's pixels in the same box
        assert torch.allclose(y, torch.tensor([[kept, 0.0, 1 - kept], [1 - kept, 0.0, kept]]), atol=1e-6)
        assert torch.allclose(y.sum(1), torch.ones(2))
        partial += 0 < kept < 1
    assert partial >= 5  # a box was really pasted in most draws


def test_both_on_picks_one_of_the_two_per_batch():
    collate = MixCollate(3, cutmix_alpha=1.0, mixup_alpha=1.0)
    kinds = set()
    for seed in range(30):
        torch.manual_seed(seed)
        x, y = collate(two_constant_images())
        if bool(((x == A) | (x == B)).all()):  # CutMix (or a degenerate draw of either)
            kept = float((x[0, 0] == A).float().mean())
            kinds.add("cutmix" if 0 < kept < 1 else "degenerate")
        else:  # MixUp: one blended value everywhere
            lam = float((x[0, 0, 0, 0] - B) / (A - B))
            kept = lam
            assert torch.allclose(x[0], torch.full_like(x[0], lam * A + (1 - lam) * B))
            kinds.add("mixup")
        assert torch.allclose(y[0], torch.tensor([kept, 0.0, 1 - kept]), atol=1e-6)
    assert {"cutmix", "mixup"} <= kinds


def test_each_row_mixes_its_own_label_with_the_previous_samples():
    samples = [(torch.randn(3, 8, 8), torch.tensor(label)) for label in (4, 1, 3, 0)]
    for cutmix, mixup in ((1.0, 0.0), (0.0, 1.0)):
        torch.manual_seed(0)
        _, y = MixCollate(5, cutmix, mixup)(samples)
        lam = float(y[0, 4])
        for row, (own, previous) in enumerate(((4, 0), (1, 4), (3, 1), (0, 3))):
            expected = torch.zeros(5)
            expected[own], expected[previous] = lam, 1 - lam
            assert torch.allclose(y[row], expected, atol=1e-6)
        assert torch.allclose(y.sum(1), torch.ones(4))


def test_soft_targets_work_with_cross_entropy_and_the_collate_pickles():
    torch.manual_seed(0)
    x, y = MixCollate(3, 1.0, 0.2)(two_constant_images())
    logits = torch.randn(2, 3)
    expected = -(y * torch.log_softmax(logits, 1)).sum(1).mean()
    assert torch.allclose(nn.CrossEntropyLoss()(logits, y), expected)
    clone = pickle.loads(pickle.dumps(MixCollate(3, 1.0, 0.2)))  # spawned DataLoader workers unpickle it
    torch.manual_seed(1)
    first = clone(two_constant_images())
    torch.manual_seed(1)
    assert all(torch.equal(a, b) for a, b in zip(first, MixCollate(3, 1.0, 0.2)(two_constant_images())))
    with pytest.raises(ValueError, match="cutmix_alpha > 0 or mixup_alpha > 0"):
        MixCollate(3, 0.0, 0.0)


# Through the loaders


@pytest.fixture(scope="module")
def cifar10_root(tmp_path_factory):
    return write_cifar10(tmp_path_factory.mktemp("cifar10"))


def cifar10(root, path, **augmentation):
    prepare_dataset("cifar10", {"root": str(root), "split_seed": 0, "val_fraction": 0.5, **augmentation}, path)
    return path


def test_mixing_collate_on_train_only_and_through_a_dataloader(cifar10_root, tmp_path):
    path = cifar10(cifar10_root, tmp_path / "c.npz", cutmix_alpha=1.0, mixup_alpha=0.2)
    assert json.loads(str(np.load(path)["augmentation"]))["cutmix_alpha"] == 1.0
    train, _ = load_split(path, "train", augment=True)
    loader = DataLoader(train, batch_size=4, shuffle=True, collate_fn=getattr(train, "collate_fn", None),
                        generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    x, y = next(iter(loader))
    assert x.shape == (4, 3, 32, 32) and y.shape == (4, 10) and y.dtype == torch.float32
    assert torch.allclose(y.sum(1), torch.ones(4)) and bool(((y > 0).sum(1) <= 2).all())
    # Never for val or test (even if asked to augment), nor for train without augmentation.
    for split, augment in (("val", True), ("test", True), ("train", False)):
        dataset, _ = load_split(path, split, augment=augment)
        assert isinstance(dataset, TensorDataset) and not hasattr(dataset, "collate_fn")
        x, y = next(iter(DataLoader(dataset, batch_size=4, collate_fn=getattr(dataset, "collate_fn", None))))
        assert y.dtype == torch.int64 and y.shape == (4,)
    # The authors' augmented validation (training.validation_augment): per-image steps, never the mixing.
    from eebench.data.core import load_augmented_validation

    val = load_augmented_validation(path)
    assert not hasattr(val, "collate_fn") and not isinstance(val, TensorDataset)
    x, y = next(iter(DataLoader(val, batch_size=4)))
    assert y.dtype == torch.int64 and y.shape == (4,)


def test_per_image_augmentations_train_only(cifar10_root, tmp_path):
    everything = {"resized_crop_scale": [0.5, 1.0], "rotation_degrees": 30, "contrast": 0.5, "erasing_p": 0.5,
                  "trivial_augment": True}
    path = cifar10(cifar10_root, tmp_path / "c.npz", **everything)
    plain, _ = load_split(path, "train")
    train, _ = load_split(path, "train", augment=True)
    torch.manual_seed(0)
    outputs = [train[3][0] for _ in range(10)]
    assert all(x.shape == (3, 32, 32) and x.dtype == torch.float32 for x in outputs)
    assert all(not torch.equal(x, plain[3][0]) for x in outputs)
    assert not hasattr(train, "collate_fn")
    reference = cifar10(cifar10_root, tmp_path / "r.npz")
    for split in ("val", "test"):  # exactly the unaugmented items
        evaluated, _ = load_split(path, split, augment=True)
        unaugmented, _ = load_split(reference, split)
        assert isinstance(evaluated, TensorDataset)
        assert torch.equal(evaluated.tensors[0], unaugmented.tensors[0])


def test_random_erasing_blanks_a_box_to_the_mean(cifar10_root, tmp_path):
    path = cifar10(cifar10_root, tmp_path / "c.npz", erasing_p=1.0)
    train, _ = load_split(path, "train", augment=True)
    torch.manual_seed(0)
    erased = 0
    for _ in range(10):
        x = train[0][0]
        zeros = (x == 0).all(0)  # erased pixels: 0 in every channel (the mean, after normalisation)
        erased += int(zeros.sum()) >= 0.02 * 32 * 32  # RandomErasing's smallest box: 2% of the area
    assert erased >= 8  # it gives up (rarely) when ten random boxes do not fit


def test_file_datasets_get_the_collate_and_per_image_steps_on_train_only(tmp_path):
    root = write_imagenette(tmp_path / "imagenette")
    params = {"root": str(root), "split_seed": 0, "val_fraction": 1 / 3, "image_size": 16, "mixup_alpha": 0.2,
              "rotation_degrees": 10, "contrast": 0.3, "erasing_p": 0.25}
    prepare_dataset("imagenette", params, tmp_path / "i.npz")
    train, _ = load_split(tmp_path / "i.npz", "train", augment=True)
    torch.manual_seed(0)
    x, y = train.collate_fn([train[0], train[1], train[2]])
    assert x.shape == (3, 3, 16, 16) and y.shape == (3, 10) and torch.allclose(y.sum(1), torch.ones(3))
    for split in ("val", "test"):
        dataset, _ = load_split(tmp_path / "i.npz", split, augment=True)
        assert not hasattr(dataset, "collate_fn")
        assert torch.equal(dataset[0][0], dataset[0][0])


def test_defaults_are_off_and_stored_settings_round_trip():
    for name in ("cifar10", "cifar100", "tinyimagenet", "imagenette", "imagenet"):
        defaults = {key: parameters(name)[key].default for key in Augmentation.__dataclass_fields__}
        assert Augmentation(**defaults) == Augmentation() and not Augmentation().mixes_batches
        assert not Augmentation().per_image
    setting = Augmentation(cutmix_alpha=1.0, resized_crop_scale=(0.3, 1.0), trivial_augment=True)
    assert Augmentation.of({"augmentation": setting.to_array()}) == setting
    assert Augmentation.of({}) == Augmentation()  # a file prepared before these settings existed


def test_augmentation_keys_are_declared_once_and_still_checked(cifar10_root, tmp_path):
    for name in ("cifar10", "cifar100", "tinyimagenet", "imagenette", "imagenet"):
        accepted = parameters(name)
        assert "augmentation" not in accepted  # the **kwargs itself is no key
        for field in fields(Augmentation):
            assert accepted[field.name].kind is inspect.Parameter.KEYWORD_ONLY
            assert accepted[field.name].default == field.default
    # An unknown key is refused before preparing, and by ``prepare`` called directly.
    with pytest.raises(TypeError, match=r"'cifar10': unknown parameter 'erasing'"):
        cifar10(cifar10_root, tmp_path / "x.npz", erasing=0.5)
    with pytest.raises(TypeError, match=r"'cifar10': unknown parameter 'erasing'"):
        DATASETS.get("cifar10")().prepare(root=str(cifar10_root), split_seed=0, erasing=0.5)
    assert not (tmp_path / "x.npz").exists()
    # The recorded params hold every key, the defaults filled in.
    recorded = json.loads(str(np.load(cifar10(cifar10_root, tmp_path / "c.npz", contrast=0.5))["params"]))
    assert {key: recorded[key] for key in asdict(Augmentation())} == {**asdict(Augmentation()), "contrast": 0.5}


def test_augmentation_keywords_needs_kwargs_and_refuses_a_clash():
    def plain(self, *, root: str) -> None: ...

    def clash(self, *, contrast: float = 0.0, **augmentation) -> None: ...

    with pytest.raises(TypeError, match="must take the augmentation keys as"):
        augmentation_keywords(plain)
    with pytest.raises(ValueError, match="duplicate parameter name: 'contrast'"):
        augmentation_keywords(clash)


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("cutmix_alpha", -1.0, "cutmix_alpha must be a number at least 0"),
        ("mixup_alpha", "0.2", "mixup_alpha must be a number"),
        ("resized_crop_scale", [0.5], "resized_crop_scale must be null or"),
        ("resized_crop_scale", [0.9, 0.1], "resized_crop_scale must be null or"),
        ("resized_crop_scale", [0.0, 1.0], "resized_crop_scale must be null or"),
        ("rotation_degrees", 200, r"rotation_degrees must be a number in \[0.0, 180.0\]"),
        ("contrast", -0.1, "contrast must be a number at least 0"),
        ("erasing_p", 1.5, r"erasing_p must be a number in \[0.0, 1.0\]"),
        ("trivial_augment", "yes", "trivial_augment must be true or false"),
    ],
)
@pytest.mark.parametrize("dataset", ["cifar10", "tinyimagenet", "imagenette", "imagenet"])
def test_bad_augmentation_values_name_the_dataset_and_key(dataset, key, value, match, tmp_path):
    with pytest.raises(ValueError, match=rf"{dataset}'?: {match}"):
        prepare_dataset(dataset, {"root": str(tmp_path), "split_seed": 0, key: value}, tmp_path / "x.npz")


@pytest.mark.parametrize("key", ["cutmix_alpha", "mixup_alpha"])
def test_multilabel_voc2007_refuses_batch_mixing(key, tmp_path):
    assert DATASETS.get("voc2007") and parameters("voc2007")[key].default == 0.0
    with pytest.raises(ValueError, match=rf"'voc2007': {key} must be 0; .* multi-label"):
        prepare_dataset("voc2007", {"root": str(tmp_path), "split_seed": 0, key: 0.2}, tmp_path / "v.npz")
    assert "resized_crop_scale" not in parameters("voc2007")
