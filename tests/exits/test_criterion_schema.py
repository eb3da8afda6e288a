"""The criteria's parameters are declared once, at the criterion functions, and the config schema's
``$defs/criterion_setting`` is generated from them (eebench.exits.criterion_setting_schema)."""
from pathlib import Path

import jsonschema
import pytest
import yaml

from eebench import exits
from eebench.exits.criteria import CRITERIA, parameters
from tests.models.declarations import assert_defaults_are_the_signatures

REPO = Path(__file__).resolve().parents[2]
CRITERION_NAMES = {"criterion_name": {"enum": CRITERIA.names()}}


def test_every_generated_default_is_the_signatures():
    assert_defaults_are_the_signatures(CRITERIA)


def test_the_learned_exit_is_registered_and_fit_on_is_no_config_key():
    assert "learned_exit" in CRITERIA.names()
    assert list(parameters("learned_exit")) == ["loss", "alpha", "epochs", "lr", "seed"]
    assert "fit_on" not in CRITERIA.parameters_schema("learned_exit")["properties"]


def setting_valid(setting: dict) -> bool:
    schema = {"$defs": CRITERION_NAMES, **exits.criterion_setting_schema()}
    return jsonschema.Draft202012Validator(schema).is_valid(setting)


@pytest.mark.parametrize(("setting", "valid"), [
    ({"criterion": "confidence"}, True),
    ({"criterion": "entropy", "positive_threshold": 0.05}, True),  # the softmax multi-label task's parameter
    ({"criterion": "regression_patience", "positive_threshold": 0.05}, False),  # no regression task takes it
    ({"criterion": "patience", "patience": 2}, False),  # patience has no parameter
    ({"criterion": "rank_patience", "agreement": "kendall", "tolerance": 0.9, "patiences": [2, 3]}, True),
    ({"criterion": "rank_patience", "patiences": None}, True),  # every patience
    ({"criterion": "rank_patience", "patiences": []}, False),
    ({"criterion": "rank_patience", "patiences": [2, 2]}, False),
    ({"criterion": "rank_patience", "patiences": [-1]}, False),
    ({"criterion": "rank_patience", "agreement": "spearman"}, False),
    ({"criterion": "rank_patience", "tolerance": 2}, False),
    ({"criterion": "hybrid", "base": "entropy", "patience": 1}, True),
    ({"criterion": "hybrid", "base": "patience"}, False),
    ({"criterion": "hybrid", "patient": 2}, False),  # an unknown parameter
    ({"criterion": "hybrid", "patience": 0}, False),
    ({"criterion": "learned_exit", "loss": "mse_regularised", "alpha": 0.1}, True),
    ({"criterion": "learned_exit", "alpha": 1.5}, False),
    ({"criterion": "learned_exit", "lr": 0}, False),
    ({"criterion": "learned_exit", "fit_on": [[0]]}, False),
    ({"criterion": "hybird"}, False),
    ({"agreement": "ndcg"}, False),  # criterion is required
])
def test_criterion_setting_schema_validates_and_rejects(setting, valid):
    assert setting_valid(setting) is valid


def test_the_setting_schema_is_each_criterions_declaration_with_its_defaults():
    """One branch per criterion: its generated parameters schema (defaults included, so the schema check fills
    them in and a sweep's criterion_params column lists every parameter) beside `criterion` and the tasks' keys."""
    for branch in exits.criterion_setting_schema()["allOf"]:
        name = branch["if"]["properties"]["criterion"]["const"]
        declared = CRITERIA.parameters_schema(name)
        then = branch["then"]
        assert then["properties"]["criterion"] == {"const": name}
        assert {key: then["properties"][key] for key in declared["properties"]} == declared["properties"]
        assert set(then["properties"]) - set(declared["properties"]) <= {"criterion", "positive_threshold"}
        assert "default" not in then["properties"].get("positive_threshold", {})


def test_every_criterion_setting_of_the_shipped_configs_validates():
    configs = [REPO / "config.yaml", *sorted((REPO / "config").glob("**/*.yaml"))]
    settings = [(path.name, name, setting) for path in configs
                for name, setting in ((yaml.safe_load(path.read_text()) or {}).get("criteria") or {}).items()]
    assert len(settings) > 10
    for path, name, setting in settings:
        assert setting_valid(setting), (path, name)
