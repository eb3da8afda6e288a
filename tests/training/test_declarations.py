"""The training settings and loss scalings declared once (eebench.declare): the config schema's ``$defs/training``
and ``$defs/loss_scaling`` are generated from TrainingConfig and SCALINGS, with the code's defaults, and what the
schema accepts the code accepts."""
import dataclasses
import inspect

import jsonschema
import pytest

from eebench.declare import parameters_schema
from eebench.training import TrainingConfig
from eebench.training.config import SWITCH_DEFAULTS, training_schema
from eebench.training.scaling import SCALINGS, loss_scaling, loss_scaling_schema

DEFAULTS = {field.name: field.default for field in dataclasses.fields(TrainingConfig)}


def validator(definition: str):
    """A validator of ``$defs/<definition>`` as the composed config schema will have it."""
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$ref": f"#/$defs/{definition}",
              "$defs": {"training": training_schema(), "loss_scaling": loss_scaling_schema()}}
    return jsonschema.Draft202012Validator(schema)


def test_the_training_schema_is_trainingconfigs_declaration():
    schema = training_schema()
    assert schema == {**parameters_schema(TrainingConfig), "description": schema["description"]}
    assert schema["description"].startswith("Settings of the one training loop (AdamW")
    assert schema["additionalProperties"] is False and "required" not in schema
    assert list(schema["properties"]) == list(DEFAULTS)  # every field a key, in order
    assert all(prop.get("description") for name, prop in schema["properties"].items() if name != "loss_scaling")


def test_every_schema_default_is_the_codes_and_preset_switches_have_none():
    properties = training_schema()["properties"]
    with_default = {name for name, prop in properties.items() if "default" in prop}
    for name in with_default:
        assert properties[name]["default"] == DEFAULTS[name], name
    # The paper-B switches: a fidelity preset fills them (a schema default would be filled into every config and
    # rerun every run); loss_scaling: the shared definition's default, constant, is what None (unset) means.
    assert set(DEFAULTS) - with_default == set(SWITCH_DEFAULTS) | {"loss_scaling"}
    assert SWITCH_DEFAULTS == {"early_stopping": "ours", "label_smoothing": 0.0, "grad_clip_norm": None,
                               "gpf_loss_weights": "ours", "head_loss_reduction": "sum", "validation_augment": False}
    assert properties["loss_scaling"] == {"$ref": "#/$defs/loss_scaling"}
    assert loss_scaling_schema()["default"] == "constant"
    assert loss_scaling(DEFAULTS["loss_scaling"]) == loss_scaling("constant")


def test_the_training_schemas_constraints():
    properties = training_schema()["properties"]
    assert {name: properties[name].get("minimum") for name in properties if "minimum" in properties[name]} == {
        "batch_size": 1, "weight_decay": 0, "max_epochs": 1, "patience": 1, "restart_epochs": 1,
        "eval_batch_size": 1, "num_workers": 0, "checkpoint_every_batches": 0, "gradient_dominance_every": 0,
        "label_smoothing": 0}
    assert properties["lr"]["exclusiveMinimum"] == 0 and properties["label_smoothing"]["exclusiveMaximum"] == 1
    assert properties["grad_clip_norm"]["type"] == ["number", "null"]
    assert properties["grad_clip_norm"]["exclusiveMinimum"] == 0
    assert properties["precision"]["enum"] == ["auto", "fp32", "bf16"]
    assert properties["memory_format"]["enum"] == ["auto", "contiguous", "channels_last"]
    assert properties["early_stopping"]["enum"] == properties["gpf_loss_weights"]["enum"] == ["ours", "authors"]
    assert properties["head_loss_reduction"]["enum"] == ["sum", "mean"]


@pytest.mark.parametrize("settings", [
    {"batch_size": 0}, {"max_epochs": 0}, {"patience": 0}, {"restart_epochs": 0}, {"eval_batch_size": 0},
    {"gradient_dominance_every": -1}, {"checkpoint_every_batches": -1}, {"precision": "fp16"},
    {"memory_format": "nhwc"}, {"early_stopping": "theirs"}, {"gpf_loss_weights": "paper"},
    {"head_loss_reduction": "max"}, {"label_smoothing": 1.0}, {"label_smoothing": -0.1}, {"grad_clip_norm": 0.0},
    {"validation_augment": "yes"},
])
def test_what_the_schema_refuses_the_code_refuses(settings):
    assert not validator("training").is_valid(settings)
    with pytest.raises(ValueError, match=next(iter(settings))):
        TrainingConfig(**settings)


@pytest.mark.parametrize("settings", [
    {}, {"batch_size": 1, "max_epochs": 1, "patience": 1, "restart_epochs": 1, "eval_batch_size": 1},
    {"gradient_dominance_every": 0, "checkpoint_every_batches": 0, "num_workers": 0, "weight_decay": 0.0},
    {"precision": "bf16", "memory_format": "channels_last"}, {"early_stopping": "authors", "label_smoothing": 0.1},
    {"grad_clip_norm": None}, {"grad_clip_norm": 1.0}, {"gpf_loss_weights": "authors", "head_loss_reduction": "mean"},
    {"validation_augment": True}, {"loss_scaling": "increasing"}, {"loss_scaling": {"type": "sdn", "ramp_epochs": 3}},
])
def test_what_the_schema_accepts_the_code_accepts(settings):
    validator("training").validate(settings)
    TrainingConfig(**settings)


def test_the_loss_scaling_schema_has_a_name_form_and_an_object_form_per_scaling():
    schema = loss_scaling_schema()
    names, objects = schema["oneOf"]
    assert names == {"enum": ["constant", "decreasing", "gradient_equilibrium", "increasing"]}  # sdn needs a parameter
    assert objects["properties"]["type"]["enum"] == SCALINGS.names()
    forms = {case["if"]["properties"]["type"]["const"]: case["then"] for case in objects["allOf"]}
    assert list(forms) == SCALINGS.names()
    for name, form in forms.items():
        assert form["additionalProperties"] is False and form["properties"]["type"] == {"const": name}
        assert form["description"]  # the entry's docstring
        required = [p.name for p in inspect.signature(SCALINGS.get(name)).parameters.values()
                    if p.default is inspect.Parameter.empty]
        assert form["required"] == ["type", *required]
    assert forms["sdn"]["properties"]["ramp_epochs"] == {
        "description": "Epochs over which the IC weights ramp up (SDN's training length).", "minimum": 1,
        "type": "integer"}
    assert all(f"{name}: " in schema["description"] for name in SCALINGS.names())


@pytest.mark.parametrize("setting", [
    "constant", "increasing", "decreasing", "gradient_equilibrium", "sdn", "linear", {"type": "sdn"},
    {"type": "sdn", "ramp_epochs": 3}, {"type": "sdn", "ramp_epochs": 0}, {"type": "sdn", "ramp": 3},
    {"type": "increasing"}, {"type": "increasing", "ramp_epochs": 3}, {"type": "linear"}, {"ramp_epochs": 3},
])
def test_a_loss_scaling_the_schema_accepts_is_one_the_code_accepts(setting):
    try:
        loss_scaling(setting)
        accepted = True
    except (ValueError, KeyError):
        accepted = False
    assert validator("loss_scaling").is_valid(setting) == accepted
