"""The loaders' parameters declared once, at their ``prepare``: the schema generated from the declarations
(``eebench.data.dataset_params_schema``) has the code's defaults and refuses what the loaders refuse."""
from __future__ import annotations

import inspect
from dataclasses import fields
from pathlib import Path

import jsonschema
import pytest
import yaml

from eebench.data import DATASETS, dataset_params_schema, parameters
from eebench.data.augment import Augmentation

CONFIG_SCHEMA = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"
GENERATED = dataset_params_schema()["properties"]
IMAGE_LOADERS = ("cifar10", "cifar100", "imagenet", "imagenette", "tinyimagenet")  # taking Augmentation's keys


def as_json(value):
    return [as_json(item) for item in value] if isinstance(value, (tuple, list)) else value


def test_every_loader_has_a_schema_of_exactly_its_parameters():
    assert sorted(GENERATED) == DATASETS.names()
    for name, schema in GENERATED.items():
        assert schema["additionalProperties"] is False, name
        assert schema["description"], name
        assert list(schema["properties"]) == list(parameters(name)), name


@pytest.mark.parametrize("loader", DATASETS.names())
def test_each_schema_default_is_the_prepare_default(loader):
    schema = GENERATED[loader]
    for key, parameter in parameters(loader).items():
        if parameter.default is inspect.Parameter.empty:
            assert key in schema["required"] and "default" not in schema["properties"][key], (loader, key)
        else:
            assert key not in schema.get("required", []), (loader, key)
            default = schema["properties"][key]["default"]
            assert default == as_json(parameter.default), (loader, key)
            assert type(default) is type(as_json(parameter.default)), (loader, key)
        assert "$ref" in schema["properties"][key] or schema["properties"][key]["description"], (loader, key)


def test_the_image_loaders_take_the_augmentation_keys_declared_once():
    for loader in IMAGE_LOADERS:
        properties = GENERATED[loader]["properties"]
        for field in fields(Augmentation):
            assert properties[field.name] == GENERATED["cifar10"]["properties"][field.name], (loader, field.name)
            assert properties[field.name]["default"] == as_json(field.default), (loader, field.name)


def validator(loader: str):
    """The loader's generated schema with the config schema's shared definitions it refers to."""
    shared = yaml.safe_load(CONFIG_SCHEMA.read_text(encoding="utf-8"))["$defs"]
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema",
              "$defs": {key: shared[key] for key in ("split_seed", "fraction")}, **GENERATED[loader]}
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize(
    ("loader", "params", "valid"),
    [
        ("digits", {"split_seed": 0}, True),
        ("digits", {"split_seed": 0, "val_fraction": 0.3, "classes": [3, 1]}, True),
        ("digits", {}, False),  # split_seed is required
        ("digits", {"split_seed": -1}, False),
        ("digits", {"split_seed": 0, "val_fraction": 1.5}, False),
        ("digits", {"split_seed": 0, "test_fraction": 0}, False),
        ("digits", {"split_seed": 0, "classes": [3]}, False),  # a subset is two classes or more
        ("digits", {"split_seed": 0, "classes": [3, 3]}, False),
        ("digits", {"split_seed": 0, "classes": [3, 10]}, False),
        ("digits", {"split_seed": 0, "colour": "red"}, False),  # an unknown key
        ("digits_composite", {"split_seed": 0, "classes": [3], "m_values": [1, 4]}, True),
        ("digits_composite", {"split_seed": 0, "m_values": [5]}, False),
        ("digits_composite", {"split_seed": 0, "train_samples": 0}, False),
        ("cifar10", {"root": "r", "split_seed": 0, "cutmix_alpha": 1.0, "mixup_alpha": 0.2,
                     "resized_crop_scale": [0.5, 1], "rotation_degrees": 15, "trivial_augment": True}, True),
        ("cifar10", {"split_seed": 0}, False),  # root is required
        ("cifar10", {"root": "r", "split_seed": 0, "resized_crop_scale": [0.5]}, False),
        ("cifar10", {"root": "r", "split_seed": 0, "resized_crop_scale": [0, 1]}, False),
        ("cifar10", {"root": "r", "split_seed": 0, "rotation_degrees": 200}, False),
        ("cifar100", {"root": "r", "split_seed": 0, "erasing_p": 1.5}, False),
        ("cifar100", {"root": "r", "split_seed": 0, "image_size": 0}, False),
        ("tinyimagenet", {"root": "r", "split_seed": 0, "cutmix_alpha": -1}, False),
        ("imagenet", {"root": "r", "split_seed": 0, "classes": ["n1", "n2"], "contrast": 0.4}, True),
        ("imagenet", {"root": "r", "split_seed": 0, "classes": ["n1"]}, False),
        ("imagenette", {"root": "r", "split_seed": 0, "classes": ["n1", "n2"]}, False),  # imagenet's key only
        ("imagenet_composite", {"root": "r", "split_seed": 0, "image_size": 64, "m_values": [2]}, True),
        ("imagenet_composite", {"root": "r", "split_seed": 0, "image_size": 225}, False),  # 2 x 2 cells
        ("imagenet_composite", {"root": "r", "split_seed": 0, "num_classes": 1}, False),
        ("imagenet_composite", {"root": "r", "split_seed": 0, "cutmix_alpha": 1.0}, False),
        ("voc2007", {"root": "r", "split_seed": 0, "classes": ["cat", "dog"], "cutmix_alpha": 0}, True),
        ("voc2007", {"root": "r", "split_seed": 0, "classes": ["kitten"]}, False),
        ("voc2007", {"root": "r", "split_seed": 0, "mixup_alpha": 0.2}, False),
        ("coco", {"root": "r", "split_seed": 0, "year": 2014, "cutmix_alpha": 0.0}, True),
        ("coco", {"root": "r", "split_seed": 0, "cutmix_alpha": 0.5}, False),
        ("coco", {"root": "r", "split_seed": 0, "year": 2015}, False),
        ("newsgroups20", {"root": "r", "model_dir": "m", "split_seed": 0, "remove": ["headers", "quotes"]}, True),
        ("newsgroups20", {"root": "r", "split_seed": 0}, False),  # model_dir is required
        ("newsgroups20", {"root": "r", "model_dir": "m", "split_seed": 0, "remove": ["signature"]}, False),
        ("newsgroups20", {"root": "r", "model_dir": "m", "split_seed": 0, "remove": ["headers", "headers"]}, False),
        ("stsb", {"root": "r", "model_dir": "m", "split_seed": 0, "max_length": 3}, True),
        ("stsb", {"root": "r", "model_dir": "m", "split_seed": 0, "max_length": 2}, False),
    ],
)
def test_the_generated_schema_takes_and_refuses_as_declared(loader, params, valid):
    errors = list(validator(loader).iter_errors(params))
    assert not errors if valid else errors, [error.message for error in errors]
