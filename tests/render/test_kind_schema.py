"""The config schema's table and figure parts, generated from the kinds' declarations (eebench.render.keys):
every default is the code's, a key left out has none, and the parts accept the shipped configs and refuse what
the hand-written parts refused."""
import copy
import inspect
from pathlib import Path

import jsonschema
import pytest
import yaml

from eebench.declare import declared_parameters
from eebench.render import FIGURES, TABLES
from eebench.render.keys import FigureKeys, TableBase, TableKeys, schema_defs

REPO = Path(__file__).resolve().parents[2]
SKELETON = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
GENERATED = schema_defs()
SHIPPED_CONFIGS = [REPO / "config.yaml", *sorted((REPO / "config").glob("**/*.yaml"))]


def branch(section: str, kind: str) -> dict:
    return next(part["then"] for part in GENERATED[section]["allOf"]
                if part["if"]["properties"]["kind"]["const"] == kind)


def as_json(value):
    return [as_json(item) for item in value] if isinstance(value, (tuple, list)) else value


def declared_defaults(function) -> dict:
    return {name: parameter.default for name, parameter in declared_parameters(function).items()
            if parameter.default is not inspect.Parameter.empty}


def check_defaults(properties: dict, function) -> None:
    """Every declared default is the property's; a default of None (the key left out) is none, and no null."""
    for name, default in declared_defaults(function).items():
        if default is None:
            assert "default" not in properties[name], name
            assert "null" not in str(properties[name].get("type", "")), name
        else:
            assert properties[name]["default"] == as_json(default), name


@pytest.mark.parametrize("kind", TABLES.names())
def test_every_table_default_is_the_codes(kind):
    check_defaults(branch("table", kind)["properties"], TABLES.declared(kind))


@pytest.mark.parametrize("kind", FIGURES.names())
def test_every_figure_default_is_the_codes(kind):
    check_defaults(branch("figure", kind)["properties"], FIGURES.declared(kind))


def test_the_keys_every_entry_takes_are_declared_once_with_the_codes_defaults():
    base = GENERATED["table_base"]["properties"]
    check_defaults(base, TableKeys)
    check_defaults(base, TableBase)
    assert base["rule"]["default"] == "best" and base["metric"]["default"] == "accuracy"
    assert GENERATED["table_base"]["required"] == ["kind", "criterion", "regimes"]
    for kind in FIGURES.names():
        check_defaults(branch("figure", kind)["properties"], FigureKeys)
    assert branch("figure", "bee")["properties"]["width"]["default"] == 1.0


def test_each_kinds_keys_are_its_declaration_over_the_shared_ones():
    shared_table = set(declared_parameters(TableKeys))
    for kind in TABLES.names():
        own = set(declared_parameters(TABLES.declared(kind)))
        properties = set(branch("table", kind)["properties"])
        if hasattr(TABLES.get(kind), "layout"):  # a budget table: the shared keys are table_base's
            assert properties == own and branch("table", kind)["allOf"] == [{"$ref": "#/$defs/table_base"}]
        else:
            assert properties == own | shared_table
    for kind in FIGURES.names():
        assert set(branch("figure", kind)["properties"]) == set(declared_parameters(FIGURES.declared(kind))) | set(
            declared_parameters(FigureKeys))


def test_the_kind_enums_are_the_registries():
    assert GENERATED["table"]["properties"]["kind"]["enum"] == TABLES.names()
    assert GENERATED["figure"]["properties"]["kind"]["enum"] == FIGURES.names()
    assert [part["if"]["properties"]["kind"]["const"] for part in GENERATED["table"]["allOf"]] == TABLES.names()


# Validation with the generated parts in the skeleton ---------------------------------------------------------

SCHEMA = {**SKELETON, "$defs": {**SKELETON["$defs"], **GENERATED}}


def errors(section: str, entry: dict) -> list[str]:
    part = {"$schema": SCHEMA["$schema"], "$defs": SCHEMA["$defs"], "$ref": f"#/$defs/{section}"}
    validator = jsonschema.validators.validator_for(SCHEMA)(part)
    return [error.message for error in validator.iter_errors(entry)]


@pytest.mark.parametrize("path", SHIPPED_CONFIGS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_shipped_entry_validates(path):
    config = yaml.safe_load(path.read_text())
    for section in ("tables", "figures"):
        for name, entry in (config.get(section) or {}).items():
            assert errors(section[:-1], entry) == [], f"{section}.{name}"


BUDGETS_TABLE = {"kind": "budgets", "model": "cnn", "criterion": "confidence", "regimes": ["joint", "mixed"]}
BEE = {"kind": "bee", "criterion": "confidence", "regime": "joint", "models": ["cnn"]}
LANDSCAPE = {"kind": "loss_landscape", "model": "cnn", "regimes": ["joint"], "seeds": [0]}


@pytest.mark.parametrize(("section", "entry"), [
    ("table", BUDGETS_TABLE),
    ("table", {**BUDGETS_TABLE, "rule": "last", "budgets": [0.35, 1.0], "metric": "f1", "label": "tab:x",
               "paper_match": {"setting": "ViT-S IN-1k", "labels": {"Joint": "Joint"}}}),
    ("table", {"kind": "presets"}),
    ("table", {"kind": "presets", "caption": "C.", "label": "tab:p"}),
    ("table", {"kind": "claims", "checks": [{"claim": "same_head_exits_rare", "entry": "class_exit_heads"}]}),
    ("table", {"kind": "methods", "model": "cnn", "criterion": "confidence", "regimes": ["joint"],
               "methods": [{"criterion": "patience", "label": "PBEE", "model": "cnn_gpf"}]}),
    ("figure", BEE),
    ("figure", {"kind": "bee", "criterion": "confidence", "regime": "joint",
                "lines": [{"label": "a", "models": ["cnn"], "criterion": "entropy"}]}),
    ("figure", LANDSCAPE),
    ("figure", {**LANDSCAPE, "head": 2, "levels": 2, "vmax": 3.5, "width": 0.5}),
    ("figure", {"kind": "mode_connectivity", "model": "cnn", "pairs": [["disjoint", "mixed"]], "head": "total",
                "splits": ["train"]}),
    ("figure", {"kind": "cost_curves", "models": ["cnn"], "criterion": "confidence", "regimes": ["joint"],
                "grid_points": 2}),
])
def test_valid_entries_validate(section, entry):
    assert errors(section, entry) == []


@pytest.mark.parametrize(("section", "entry", "message"), [
    ("table", {k: v for k, v in BUDGETS_TABLE.items() if k != "model"}, "'model' is a required property"),
    ("table", {k: v for k, v in BUDGETS_TABLE.items() if k != "regimes"}, "'regimes' is a required property"),
    ("table", {**BUDGETS_TABLE, "modle": "cnn"}, "'modle' was unexpected"),
    ("table", {**BUDGETS_TABLE, "rule": "median"}, "'median' is not one of"),
    ("table", {**BUDGETS_TABLE, "metric": None}, "None is not one of"),
    ("table", {**BUDGETS_TABLE, "paper_match": {"setting": ""}}, "should be non-empty"),
    ("table", {**BUDGETS_TABLE, "kind": "budget"}, "'budget' is not one of"),
    ("table", {"kind": "presets", "model": "cnn"}, "'model' was unexpected"),
    ("table", {"kind": "claims", "checks": [{"claim": "nonesuch", "entry": "x"}]}, "'nonesuch' is not one of"),
    ("table", {"kind": "claims", "checks": []}, "should be non-empty"),
    ("table", {"kind": "training_time", "model": "cnn", "regimes": ["joint"], "rule": "last"},
     "'rule' was unexpected"),
    ("figure", {**BEE, "lines": [{"label": "a", "models": ["cnn"]}]}, "is valid under each of"),
    ("figure", {k: v for k, v in BEE.items() if k != "models"}, "is not valid under any of the given schemas"),
    ("figure", {**BEE, "title": None}, "None is not of type 'string'"),
    ("figure", {**BEE, "width": 1.5}, "1.5 is greater than the maximum of 1"),
    ("figure", {k: v for k, v in LANDSCAPE.items() if k != "seeds"}, "'seeds' is a required property"),
    ("figure", {**LANDSCAPE, "seeds": [0, 1]}, "is too long"),
    ("figure", {**LANDSCAPE, "head": 0}, "is not valid under any of the given schemas"),
    ("figure", {**LANDSCAPE, "levels": 1}, "1 is less than the minimum of 2"),
    ("figure", {"kind": "exit_heads", "models": ["a"], "regime": "joint", "seeds": [0]}, "is too short"),
    ("figure", {"kind": "mode_connectivity", "model": "cnn", "pairs": [["disjoint"]]}, "is too short"),
    ("figure", {"kind": "mode_connectivity", "model": "cnn", "pairs": [["a", "b"]], "splits": ["test", "test"]},
     "has non-unique elements"),
    ("figure", {"kind": "layer_profile", "analysis": "rank", "model": "cnn", "regimes": ["joint"]},
     "'rank' is not one of"),
])
def test_invalid_entries_are_refused(section, entry, message):
    found = errors(section, entry)
    assert any(message in error for error in found), found


def test_validation_fills_the_codes_defaults_as_the_workflow_does():
    """The workflow's validation fills defaults (eebench.schema, as snakemake.utils.validate): the code's, and none
    for a key left out (a figure's title, a table's budgets: the top-level ones)."""
    base = jsonschema.validators.validator_for(SCHEMA)
    check_properties = base.VALIDATORS["properties"]

    def fill_defaults(validator, properties, instance, schema):
        for name, subschema in properties.items():
            if isinstance(instance, dict) and "default" in subschema and name not in instance:
                instance[name] = copy.deepcopy(subschema["default"])
        yield from check_properties(validator, properties, instance, schema)

    filling = jsonschema.validators.extend(base, {"properties": fill_defaults})
    table, figure = dict(BUDGETS_TABLE), {"kind": "cost_curves", "model": "cnn", "criterion": "c", "regimes": ["joint"]}
    for section, entry in (("table", table), ("figure", figure)):
        filling({"$defs": SCHEMA["$defs"], "$ref": f"#/$defs/{section}"}).validate(entry)
    assert table == {**BUDGETS_TABLE, "rule": "best", "metric": "accuracy"}
    assert figure == {"kind": "cost_curves", "model": "cnn", "criterion": "c", "regimes": ["joint"], "width": 1.0,
                      "metric": "accuracy", "rule": "best", "grid_points": 200}
