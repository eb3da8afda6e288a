"""The analyses' parameters are declared once, where they are taken (the per-layer analyses' fields, the MI
estimators' and whole-model analyses' keyword-only parameters), and the config schema's ``analysis`` section
is generated from them (eebench.analysis.analysis_schema)."""
from pathlib import Path

import jsonschema
import pytest
import yaml

from eebench.analysis import MI_ESTIMATORS, analysis_schema, checkpoint, layers
from tests.models.declarations import assert_defaults_are_the_signatures

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("registry", [layers.LAYER_ANALYSES, MI_ESTIMATORS, checkpoint.CHECKPOINT_ANALYSES],
                         ids=["layer", "mi_estimator", "checkpoint"])
def test_every_generated_default_is_the_signatures(registry):
    assert_defaults_are_the_signatures(registry)


def test_the_section_lists_every_analysis_with_the_defaults_the_workflow_uses():
    section = analysis_schema()["properties"]
    assert sorted(section) == sorted([*layers.LAYER_ANALYSES.names(), *checkpoint.CHECKPOINT_ANALYSES.names()])
    for name, entry in section.items():
        module = checkpoint if name in checkpoint.CHECKPOINT_ANALYSES else layers
        defaults = {key: value["default"] for key, value in entry["properties"].items()}
        assert defaults == {key: list(value) if isinstance(value, tuple) else value
                            for key, value in module.parameters(name).items()}, name


def test_mutual_information_takes_exactly_the_estimators_parameters_as_they_declare_them():
    analysis = layers.LAYER_ANALYSES.parameters_schema("mutual_information")["properties"]
    estimators = {key: subschema for name in MI_ESTIMATORS.names()
                  for key, subschema in MI_ESTIMATORS.parameters_schema(name)["properties"].items()}
    assert {key: analysis[key] for key in analysis if key not in ("samples", "estimator")} == estimators
    assert analysis["estimator"]["enum"] == MI_ESTIMATORS.names()


def analysis_valid(settings: dict) -> bool:
    return jsonschema.Draft202012Validator(analysis_schema()).is_valid(settings)


@pytest.mark.parametrize(("settings", "valid"), [
    ({}, True),
    ({"numerical_rank": {"samples": 100, "variance_rtol": [0.001], "rows": "positions"}}, True),
    ({"numerical_rank": {"samples": 1}}, False),  # a rank needs two samples
    ({"numerical_rank": {"variance_rtol": [1.0]}}, False),  # a tolerance is in (0, 1)
    ({"numerical_rank": {"variance_rtol": []}}, False),
    ({"numerical_rank": {"tolerance": 0.1}}, False),
    ({"mutual_information": {"estimator": "binning", "bins": 10}}, True),
    ({"mutual_information": {"estimator": "mine"}}, False),
    ({"mutual_information": {"noise": 0}}, False),
    ({"mutual_information": {"bound": "middle"}}, False),
    ({"mode_connectivity": {"points": 21, "splits": ["test"], "reset_bn": False}}, True),
    ({"mode_connectivity": {"points": 1}}, False),  # both ends of the path
    ({"mode_connectivity": {"splits": ["train", "train"]}}, False),
    ({"mode_connectivity": {"splits": ["val"]}}, False),
    ({"loss_landscape": {"points": 1, "span": 0.5}}, True),
    ({"loss_landscape": {"span": 0}}, False),
    ({"loss_landscape": {"batch_size": 0}}, False),
    ({"gradient_dominance": {}}, False),  # not an analysis of this section
])
def test_analysis_schema_validates_and_rejects(settings, valid):
    assert analysis_valid(settings) is valid


def test_the_shipped_configs_analysis_sections_validate():
    configs = [REPO / "config.yaml", *sorted((REPO / "config").glob("**/*.yaml"))]
    for path in configs:
        assert analysis_valid((yaml.safe_load(path.read_text()) or {}).get("analysis", {})), path.name
