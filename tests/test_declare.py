"""Parameters declared once (eebench.declare): the JSON schema generated from a signature, checked against
hand-written schemas and against jsonschema's verdicts on hand-picked values."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal, Sequence

import jsonschema
import pytest

from eebench.declare import Param, PresetDefault, Ref, Unset, parameters_schema
from eebench.registry import Registry

Fraction = Annotated[float, Param("Share of the samples held out.", gt=0, lt=1)]


def loader(data, *, split_seed: Annotated[int, Ref("split_seed")], val_fraction: Fraction = 0.2,
           classes: Annotated[list[Annotated[int, Param("A class.", ge=0, le=9)]] | None,
                              Param("A class subset; null = all.", min_length=2,
                                    json_schema_extra={"uniqueItems": True})] = None,
           m_values: Annotated[Sequence[int], Param("Digits per composite.", min_length=1)] = (2, 4),
           activation: Annotated[Literal["relu", "gelu"] | None, Param("Activation.")] = None,
           year: Annotated[Literal[2014, 2017], Param("Release.")] = 2017):
    """A loader for the test.

    Its second paragraph is not in the schema."""


def test_a_signature_becomes_the_schema_a_hand_written_one_would_be():
    assert parameters_schema(loader, description="d") == {
        "type": "object", "additionalProperties": False, "description": "d", "required": ["split_seed"],
        "properties": {
            "split_seed": {"$ref": "#/$defs/split_seed"},
            "val_fraction": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1, "default": 0.2,
                             "description": "Share of the samples held out."},
            "classes": {"type": ["array", "null"], "items": {"type": "integer", "minimum": 0, "maximum": 9,
                                                              "description": "A class."},
                        "minItems": 2, "uniqueItems": True, "default": None,
                        "description": "A class subset; null = all."},
            "m_values": {"type": "array", "items": {"type": "integer"}, "minItems": 1, "default": [2, 4],
                         "description": "Digits per composite."},
            "activation": {"enum": ["relu", "gelu", None], "default": None, "description": "Activation."},
            "year": {"type": "integer", "enum": [2014, 2017], "default": 2017, "description": "Release."},
        }}


@pytest.mark.parametrize("value, valid", [
    ({"split_seed": 0}, True),
    ({"split_seed": 0, "val_fraction": 0.5, "classes": [1, 2], "activation": None, "year": 2014}, True),
    ({}, False),  # split_seed is required: it has no default
    ({"split_seed": 0, "val_fraction": 1.0}, False),
    ({"split_seed": 0, "classes": [1]}, False),
    ({"split_seed": 0, "classes": [1, 1]}, False),
    ({"split_seed": 0, "classes": [1, 10]}, False),
    ({"split_seed": 0, "activation": "tanh"}, False),
    ({"split_seed": 0, "year": 2015}, False),
    ({"split_seed": 0, "unknown": 1}, False),
])
def test_the_generated_schema_accepts_and_refuses_what_the_declaration_says(value, valid):
    schema = {"$defs": {"split_seed": {"type": "integer", "minimum": 0}}, **parameters_schema(loader)}
    assert jsonschema.Draft202012Validator(schema).is_valid(value) is valid


def test_only_keyword_only_parameters_are_config_parameters_and_each_needs_a_description():
    def criterion(logits, task, *, threshold: Annotated[float, Param("Exit above this.")] = 0.5):
        pass

    assert list(parameters_schema(criterion)["properties"]) == ["threshold"]

    def undescribed(*, threshold: float = 0.5):
        pass

    with pytest.raises(TypeError, match=r"undescribed\(threshold\): declare a one-line description"):
        parameters_schema(undescribed)


def test_preset_filled_and_unset_parameters_have_no_schema_default_and_a_dataclass_declares_its_fields():
    @dataclass(kw_only=True)
    class Settings:
        lr: Annotated[float, Param("Learning rate.", gt=0)] = 1e-3
        early_stopping: Annotated[Literal["ours", "authors"], Param("Whose early stopping."), PresetDefault()] = "ours"

        budgets: Annotated[list[float] | None, Ref("budgets"), Unset()] = None  # None: the top-level budgets

    schema = parameters_schema(Settings)
    assert schema["properties"]["lr"]["default"] == 1e-3
    assert "default" not in schema["properties"]["early_stopping"]
    assert schema["properties"]["budgets"] == {"$ref": "#/$defs/budgets"}


def test_a_registry_generates_an_entrys_schema_from_its_declared_callable():
    class Entry:
        """An entry.

        More."""

        def prepare(self, *, size: Annotated[int, Param("Its size.", ge=1)] = 3):
            pass

    registry = Registry("thing", declared=lambda entry: entry.prepare)
    registry.register("entry", Entry())
    schema = registry.parameters_schema("entry", extra={"type": {"const": "entry"}})
    assert schema["description"] == "An entry."
    assert schema["properties"] == {"type": {"const": "entry"},
                                    "size": {"type": "integer", "minimum": 1, "default": 3, "description": "Its size."}}


def test_a_registrys_providers_register_at_the_first_lookup_and_a_failed_import_is_retried(tmp_path, monkeypatch):
    registry = Registry("thing", providers=("eebench_test_provider",))
    monkeypatch.setitem(__import__("sys").modules, "eebench_test_registry", type("M", (), {"REGISTRY": registry}))
    with pytest.raises(ModuleNotFoundError):
        registry.names()
    (tmp_path / "eebench_test_provider.py").write_text(
        "import eebench_test_registry\neebench_test_registry.REGISTRY.register('provided', 1)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "provided" in registry
    assert registry.names() == ["provided"]
