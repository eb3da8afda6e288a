"""Training augmentations of the paper-scale image datasets beyond each loader's own crop and flip (paper B,
Appendix E): CutMix and MixUp, which mix whole batches, and the per-image "random resizing, cropping,
rotation, contrast adjustment, random erasing" of the ViT set-ups (E.3, E.5).

They are dataset config keys, every one off by default, checked when the dataset is prepared and stored in the
prepared file (key ``augmentation``) so that ``load`` rebuilds the same pipeline. ``Augmentation``'s fields are
the one definition of the keys and their defaults: a ``prepare`` decorated with ``augmentation_keywords`` takes
them through ``**augmentation`` and its signature (hence ``eebench.data.core.parameters``) lists them. They only
ever act on the train split, and only when ``load_split`` is asked to augment (``training.augment``).

CutMix and MixUp act on a batch, so they cannot be a per-item transform: the train Dataset then carries a
``collate_fn`` attribute that the training DataLoader must use (``MixCollate``). After it a batch's targets
are soft, float32 [B, num_classes] rows of class probabilities, each mixing exactly two samples' one-hot labels
with the weight its images were mixed with; ``torch.nn.CrossEntropyLoss`` accepts such probability targets.
The targets stay unsmoothed here: ``training.label_smoothing`` smooths them in the loss
(``eebench.training.loop.training_loss``), which equals paper B's code smoothing each label before mixing.
"""
from __future__ import annotations

import inspect
import json
import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from torch import Tensor
from torch.utils.data import Dataset, default_collate

AUGMENTATION_KEY = "augmentation"  # the prepared file's key holding the settings (JSON)


@dataclass(frozen=True)
class Augmentation:
    """One dataset's extra training augmentations; the defaults are all "off".

    cutmix_alpha, mixup_alpha: concentration of the Beta(alpha, alpha) that draws the mixing weight of CutMix
        (Yun et al., 2019) / MixUp (Zhang et al., 2018), per batch; 0 = off. When both are on each batch gets
        one of the two, with equal probability (``v2.RandomChoice``, as torchvision's reference recipe).
    resized_crop_scale: (min, max) area fraction of ``RandomResizedCrop``, which then replaces the loader's own
        crop; None = the loader's own crop.
    rotation_degrees: ``RandomRotation`` by an angle uniform in [-d, d] degrees, black fill; 0 = off.
    contrast: ``ColorJitter(contrast=c)``, a contrast factor uniform in [max(0, 1 - c), 1 + c]; 0 = off.
    erasing_p: probability of ``RandomErasing`` (torchvision's default box: 2-33% of the area, aspect
        0.3-3.3, erased to 0 = the mean after normalisation); 0 = off.
    trivial_augment: ``TrivialAugmentWide`` (one random op of 14, among them rotation and contrast), the
        augmentation of paper B's released code for its ViT and CIFAR/TinyImageNet runs.
    """

    cutmix_alpha: float = 0.0
    mixup_alpha: float = 0.0
    resized_crop_scale: tuple[float, float] | None = None
    rotation_degrees: float = 0.0
    contrast: float = 0.0
    erasing_p: float = 0.0
    trivial_augment: bool = False

    @classmethod
    def checked(cls, dataset: str, **given: Any) -> "Augmentation":
        """The settings from config values (absent keys take the field defaults), or ``ValueError`` naming the
        dataset and the key; an unknown key is a ``TypeError``, as for a mistyped keyword argument."""
        unknown = sorted(given.keys() - cls.__dataclass_fields__.keys())
        if unknown:
            raise TypeError(f"dataset {dataset!r}: unknown parameter {unknown[0]!r}; accepted augmentation "
                            f"keys: {', '.join(cls.__dataclass_fields__)}")
        values = {**asdict(cls()), **given}

        def number(key: str, low: float, high: float = math.inf) -> float:
            value = values[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
                bound = f"at least {low}" if high == math.inf else f"in [{low}, {high}]"
                raise ValueError(f"dataset {dataset!r}: {key} must be a number {bound}, got {value!r}")
            return float(value)

        scale = values["resized_crop_scale"]
        if scale is not None:
            if (
                isinstance(scale, (str, bytes)) or not isinstance(scale, Sequence) or len(scale) != 2
                or not all(isinstance(s, (int, float)) and not isinstance(s, bool) for s in scale)
                or not 0.0 < scale[0] <= scale[1] <= 1.0
            ):  # fmt: skip
                raise ValueError(
                    f"dataset {dataset!r}: resized_crop_scale must be null or [min, max] with "
                    f"0 < min <= max <= 1, got {scale!r}"
                )
            scale = (float(scale[0]), float(scale[1]))
        if not isinstance(values["trivial_augment"], bool):
            raise ValueError(f"dataset {dataset!r}: trivial_augment must be true or false, "
                             f"got {values['trivial_augment']!r}")
        return cls(
            cutmix_alpha=number("cutmix_alpha", 0.0),
            mixup_alpha=number("mixup_alpha", 0.0),
            resized_crop_scale=scale,
            rotation_degrees=number("rotation_degrees", 0.0, 180.0),
            contrast=number("contrast", 0.0),
            erasing_p=number("erasing_p", 0.0, 1.0),
            trivial_augment=values["trivial_augment"],
        )

    @property
    def mixes_batches(self) -> bool:
        return self.cutmix_alpha > 0 or self.mixup_alpha > 0

    @property
    def per_image(self) -> bool:
        """Whether any per-image step beyond the loader's own crop and flip is on."""
        return (self.resized_crop_scale is not None or self.rotation_degrees > 0 or self.contrast > 0
                or self.erasing_p > 0 or self.trivial_augment)

    def to_array(self) -> np.ndarray:
        return np.array(json.dumps(asdict(self), sort_keys=True))

    @classmethod
    def of(cls, prepared: Mapping[str, np.ndarray]) -> "Augmentation":
        """The settings stored in a prepared file; a file prepared before they existed has none on."""
        if AUGMENTATION_KEY not in prepared:
            return cls()
        data = json.loads(str(prepared[AUGMENTATION_KEY]))
        if data["resized_crop_scale"] is not None:
            data["resized_crop_scale"] = tuple(data["resized_crop_scale"])
        return cls(**data)

    # The per-image steps, in torchvision's reference order (references/classification/presets.py): geometry
    # and colour on the image, then conversion and normalisation, then erasing on the normalised tensor.

    def before_tensor(self) -> list[Callable]:
        """Rotation, contrast and TrivialAugment: after the crop and flip, on a PIL image or a uint8 tensor."""
        from torchvision import transforms

        steps: list[Callable] = []
        if self.rotation_degrees > 0:
            steps.append(transforms.RandomRotation(self.rotation_degrees))
        if self.contrast > 0:
            steps.append(transforms.ColorJitter(contrast=self.contrast))
        if self.trivial_augment:
            steps.append(transforms.TrivialAugmentWide())
        return steps

    def after_tensor(self) -> list[Callable]:
        """Random erasing: on the normalised float tensor."""
        from torchvision import transforms

        return [transforms.RandomErasing(p=self.erasing_p)] if self.erasing_p > 0 else []


def augmentation_keywords(prepare: Callable) -> Callable:
    """Declare ``Augmentation``'s fields, with its defaults, as keyword-only parameters of a dataset's
    ``prepare(..., **augmentation)``: a dataset's config keys are its ``prepare``'s signature
    (``eebench.data.core.parameters``), so unknown keys stay refused and the recorded params keep the defaults,
    while the keys are written once, here. ``prepare`` must check what it gets with ``Augmentation.checked``."""
    signature = inspect.signature(prepare)
    kept = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    if len(kept) == len(signature.parameters):
        raise TypeError(f"{prepare.__qualname__} must take the augmentation keys as **kwargs")
    added = [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default, annotation=f.type)
             for f in fields(Augmentation)]
    prepare.__signature__ = signature.replace(parameters=[*kept, *added])  # type: ignore[attr-defined]
    return prepare


class MixCollate:
    """``default_collate``, then CutMix or MixUp on the batch (``torchvision.transforms.v2``); targets become
    float32 [B, num_classes] probabilities. Sample i is mixed with sample i - 1 (the batch rolled by one), so
    the training DataLoader's shuffling is what pairs samples at random. Drawn from torch's RNG, like the
    per-item transforms. A plain class (not a lambda), so spawned DataLoader workers can unpickle it."""

    def __init__(self, num_classes: int, cutmix_alpha: float, mixup_alpha: float) -> None:
        from torchvision.transforms import v2

        mixes: list[Callable] = []
        if cutmix_alpha > 0:
            mixes.append(v2.CutMix(alpha=cutmix_alpha, num_classes=num_classes))
        if mixup_alpha > 0:
            mixes.append(v2.MixUp(alpha=mixup_alpha, num_classes=num_classes))
        if not mixes:
            raise ValueError("MixCollate needs cutmix_alpha > 0 or mixup_alpha > 0")
        self.mix = mixes[0] if len(mixes) == 1 else v2.RandomChoice(mixes)

    def __call__(self, samples: list[tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor]:
        x, y = default_collate(samples)
        return self.mix(x, y)


def with_batch_mixing(dataset: Dataset, augmentation: Augmentation, num_classes: int) -> Dataset:
    """``dataset`` with a ``collate_fn`` attribute when CutMix or MixUp is on (train split, augmenting)."""
    if augmentation.mixes_batches:
        dataset.collate_fn = MixCollate(  # type: ignore[attr-defined]
            num_classes, augmentation.cutmix_alpha, augmentation.mixup_alpha
        )
    return dataset


def refuse_batch_mixing(dataset: str, cutmix_alpha: float, mixup_alpha: float) -> None:
    """For multi-label datasets: CutMix/MixUp here turn one class index per sample into a soft single-label
    target, which a multi-hot target has no counterpart of."""
    for key, value in (("cutmix_alpha", cutmix_alpha), ("mixup_alpha", mixup_alpha)):
        if value != 0:
            raise ValueError(
                f"dataset {dataset!r}: {key} must be 0; CutMix/MixUp produce soft single-label targets and "
                f"{dataset!r} is multi-label, for which this pipeline defines no mixing (got {value!r})"
            )
