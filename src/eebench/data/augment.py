"""Training augmentations of the paper-scale image datasets beyond each loader's own crop and flip (paper B,
Appendix E): CutMix and MixUp, which mix whole batches, and the per-image "random resizing, cropping,
rotation, contrast adjustment, random erasing" of the ViT set-ups (E.3, E.5).

They are dataset config keys, every one off by default, checked when the dataset is prepared and stored in the
prepared file (key ``augmentation``) so that ``load`` rebuilds the same pipeline. ``Augmentation``'s fields are
the one definition of the keys, their defaults and their declarations (eebench.declare): a ``prepare`` decorated
with ``augmentation_keywords`` takes them through ``**augmentation`` and its signature (hence
``eebench.data.core.parameters`` and the loader's generated schema) lists them. They only ever act on the train
split, and only when ``load_split`` is asked to augment (``training.augment``).

CutMix and MixUp act on a batch, so they cannot be a per-item transform: the train Dataset then carries a
``collate_fn`` attribute that the training DataLoader must use (``MixCollate``). After it a batch's targets
are soft, float32 [B, num_classes] rows of class probabilities, each mixing exactly two samples' one-hot labels
with the weight its images were mixed with; ``torch.nn.CrossEntropyLoss`` accepts such probability targets.
The targets stay unsmoothed here: ``training.label_smoothing`` smooths them in the loss
(``eebench.training.losses.training_loss``), which equals paper B's code smoothing each label before mixing.
"""
from __future__ import annotations

import inspect
import json
import math
import typing
from dataclasses import asdict, dataclass, fields
from typing import Annotated, Any, Callable, Mapping, Sequence

import numpy as np
from annotated_types import Interval
from torch import Tensor
from torch.utils.data import Dataset, default_collate

from eebench.declare import Param

AUGMENTATION_KEY = "augmentation"  # the prepared file's key holding the settings (JSON)


@dataclass(frozen=True)
class Augmentation:
    """One dataset's extra training augmentations; the defaults are all "off". Each field declares a config key
    of every image loader whose ``prepare`` is decorated with ``augmentation_keywords``."""

    cutmix_alpha: Annotated[float, Param(
        "CutMix (Yun et al., 2019; paper B App. E.1-E.5) on every training batch: the kept area's share lambda is "
        "drawn from Beta(alpha, alpha); 0 = off. Paper B gives no alpha: 1.0 is CutMix's own value, torchvision's "
        "reference recipe's and paper B's released code's (scripts/vit_imagenet.py). Targets become soft "
        "[batch, classes] probabilities. With mixup_alpha > 0 as well, each batch gets one of the two, with equal "
        "probability (torchvision's v2.RandomChoice recipe).", ge=0)] = 0.0
    mixup_alpha: Annotated[float, Param(
        "MixUp (Zhang et al., 2018; paper B App. E.1-E.5, E.8) on every training batch, weight lambda ~ "
        "Beta(alpha, alpha); 0 = off. Paper B gives no alpha: torchvision's reference ViT recipe uses 0.2, paper "
        "B's released code 0.8 (ViT, ImageNet) and 0.1 (ViT-B fine-tuning, E.8). Targets become soft "
        "probabilities.", ge=0)] = 0.0
    resized_crop_scale: Annotated[Sequence[Annotated[float, Interval(gt=0, le=1)]] | None, Param(
        "[min, max] area share of RandomResizedCrop (paper B E.3/E.5 \"random resizing, cropping\"; min <= max is "
        "checked when the dataset is prepared), replacing the loader's own training crop; null = the loader's own "
        "crop. Not given by paper B; torchvision's default is [0.08, 1.0].", min_length=2, max_length=2)] = None
    rotation_degrees: Annotated[float, Param(
        "RandomRotation by an angle uniform in [-d, d] degrees, black fill (paper B E.3/E.5 \"rotation\"); 0 = off. "
        "Not given by paper B.", ge=0, le=180)] = 0.0
    contrast: Annotated[float, Param(
        "ColorJitter(contrast=c): contrast factor uniform in [max(0, 1 - c), 1 + c] (paper B E.3/E.5 \"contrast "
        "adjustment\"); 0 = off. Not given by paper B.", ge=0)] = 0.0
    erasing_p: Annotated[float, Param(
        "Probability of RandomErasing (paper B E.3/E.5 \"random erasing\") with torchvision's default box (2-33% of "
        "the area, aspect 0.3-3.3, erased to 0 = the mean after normalisation); 0 = off. Not given by paper B; its "
        "released code uses 0.1, torchvision's reference ViT recipe 0.25.", ge=0, le=1)] = 0.0
    trivial_augment: Annotated[bool, Param(
        "TrivialAugmentWide (one random op of 14 per image, among them rotation and contrast): what paper B's "
        "released code uses for its ViT, CIFAR-100 and TinyImageNet runs, one reading of E.3/E.5's list.")] = False

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
    """Declare ``Augmentation``'s fields, with their defaults and declarations (``Param``), as keyword-only
    parameters of a dataset's ``prepare(..., **augmentation)``: a dataset's config keys are its ``prepare``'s
    signature (``eebench.data.core.parameters``, and the schema generated from it), so unknown keys stay refused
    and the recorded params keep the defaults, while the keys are written once, here. ``prepare`` must check
    what it gets with ``Augmentation.checked``."""
    signature = inspect.signature(prepare)
    kept = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    if len(kept) == len(signature.parameters):
        raise TypeError(f"{prepare.__qualname__} must take the augmentation keys as **kwargs")
    declared = typing.get_type_hints(Augmentation, include_extras=True)
    added = [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default, annotation=declared[f.name])
             for f in fields(Augmentation)]
    prepare.__signature__ = signature.replace(parameters=[*kept, *added])  # type: ignore[attr-defined]
    # The annotations as objects, not strings: they resolve here, not in the module of ``prepare``.
    prepare.__annotations__ = {**prepare.__annotations__, **{p.name: p.annotation for p in added}}
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


# A multi-label loader's cutmix_alpha and mixup_alpha: taken, so that a config copied from a single-label dataset
# is told why, and refused unless 0 (``refuse_batch_mixing``).
NoBatchMixing = Annotated[float, Param(
    "Must be 0: CutMix and MixUp make soft single-label targets, and this dataset is multi-label.",
    json_schema_extra={"const": 0},
)]


def refuse_batch_mixing(dataset: str, cutmix_alpha: float, mixup_alpha: float) -> None:
    """For multi-label datasets: CutMix/MixUp here turn one class index per sample into a soft single-label
    target, which a multi-hot target has no counterpart of."""
    for key, value in (("cutmix_alpha", cutmix_alpha), ("mixup_alpha", mixup_alpha)):
        if value != 0:
            raise ValueError(
                f"dataset {dataset!r}: {key} must be 0; CutMix/MixUp produce soft single-label targets and "
                f"{dataset!r} is multi-label, for which this pipeline defines no mixing (got {value!r})"
            )
