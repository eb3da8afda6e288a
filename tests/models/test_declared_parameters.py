"""The backbones' and IC types' parameters are declared once, at the functions that take them, and the config
schema's parts for them are generated (eebench.models.backbone_params_schema, ic_schema)."""
from pathlib import Path

import jsonschema
import pytest
import yaml

from eebench.models import BACKBONES, IC_TYPES, backbone_params_schema, ic_schema
from tests.models.declarations import assert_defaults_are_the_signatures

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("registry", [BACKBONES, IC_TYPES], ids=["backbones", "ic_types"])
def test_every_generated_default_is_the_signatures(registry):
    assert_defaults_are_the_signatures(registry)


def backbone_valid(backbone: str, params: dict) -> bool:
    definitions = backbone_params_schema()
    schema = {"$defs": definitions, **definitions["backbone_params"]["properties"][backbone]}
    return jsonschema.Draft202012Validator(schema).is_valid(params)


def test_backbone_params_list_every_backbone_and_resnets_share_one_definition():
    definitions = backbone_params_schema()
    assert sorted(definitions["backbone_params"]["properties"]) == BACKBONES.names()
    for depth in (18, 34, 50):
        assert definitions["backbone_params"]["properties"][f"resnet{depth}"] == {"$ref": "#/$defs/resnet_params"}
    assert list(definitions["resnet_params"]["properties"]) == ["cifar_stem", "weights"]
    assert definitions["resnet_params"]["description"].startswith("torchvision's ResNet, one block per residual")


@pytest.mark.parametrize(("backbone", "params", "valid"), [
    ("cnn", {"widths": [4, 8], "strides": [1, 2]}, True),
    ("cnn", {"widths": [4, 8]}, False),  # strides is required
    ("cnn", {"widths": [], "strides": []}, False),  # at least one block
    ("cnn", {"widths": [0], "strides": [1]}, False),  # channels >= 1
    ("resnet34", {"cifar_stem": True, "weights": None}, True),
    ("resnet50", {"cifar_stem": "yes"}, False),
    ("resnet20", {"shortcut": "B"}, True),
    ("resnet20", {"shortcut": "C"}, False),
    ("vit", {"patch_size": 4, "hidden_dim": 256, "mlp_dim": 256, "num_layers": 7, "num_heads": 8,
             "image_size": None}, True),
    ("vit", {"patch_size": 4, "hidden_dim": 256, "mlp_dim": 256, "num_layers": 7}, False),  # num_heads required
    ("vit", {"patch_size": 4, "hidden_dim": 8, "mlp_dim": 8, "num_layers": 1, "num_heads": 2, "dropout": 1.0},
     False),  # dropout < 1
    ("bert", {}, False),  # model_dir required
    ("msdnet", {}, True),
    ("msdnet", {"reduction": 1.5}, False),
    ("msdnet", {"prune": "none"}, False),
    ("msdnet", {"growth_factor": [1, 2, 4], "bottleneck_factor": [1, 2, 4], "granularity": "layer"}, True),
    ("msdnet", {"nBlocks": 7}, False),  # an unknown key
])
def test_backbone_params_validate_and_reject(backbone, params, valid):
    assert backbone_valid(backbone, params) is valid


def ic_valid(ic: dict) -> bool:
    return jsonschema.Draft202012Validator(ic_schema()).is_valid(ic)


@pytest.mark.parametrize(("ic", "valid"), [
    ({"type": "linear"}, True),
    ({"type": "linear", "state_dim": 512}, False),  # gpf's key
    ({"type": "mlp", "hidden": [64]}, True),
    ({"type": "mlp"}, False),  # hidden is required
    ({"type": "mlp", "hidden": []}, False),  # at least one hidden layer (else it is linear or sdn)
    ({"type": "mlp", "hidden": [64], "activation": "gelu", "pool_size": 2}, True),
    ({"type": "mlp", "hidden": [64], "activation": "tanh"}, False),
    ({"type": "sdn", "pool_size": 1}, True),
    ({"type": "sdn", "pool_size": 0}, False),
    ({"type": "sdn", "hidden": [64]}, False),
    ({"type": "gpf", "state_dim": 512, "dropout": 0.1}, True),
    ({"type": "gpf"}, False),  # state_dim is required
    ({"type": "gpf", "state_dim": 512, "dropout": 1.0}, False),
    ({"type": "msdnet", "hidden_channels": 64}, True),
    ({"type": "sdn", "hidden_channels": 64}, False),
    ({"type": "gpt"}, False),
    ({"hidden": [3]}, False),  # type is required
])
def test_ic_schema_validates_and_rejects(ic, valid):
    assert ic_valid(ic) is valid


def test_ic_schema_has_one_branch_per_type_whose_keys_are_its_parameters_and_fills_nothing():
    """The ic mapping is kept as written (run identity, captions, fidelity presets): no schema default; each
    parameter's description says what omitting it means (its signature's default)."""
    import inspect

    from eebench.declare import declared_parameters

    schema = ic_schema()
    assert schema["properties"]["type"]["enum"] == IC_TYPES.names()
    for branch in schema["allOf"]:
        name = branch["if"]["properties"]["type"]["const"]
        assert branch["then"] == IC_TYPES.parameters_schema(name, extra={"type": {"const": name}})
        for key, parameter in declared_parameters(IC_TYPES.get(name)).items():
            subschema = branch["then"]["properties"][key]
            assert "default" not in subschema, (name, key)
            if parameter.default not in (inspect.Parameter.empty, None):
                default = parameter.default
                shown = f"{default:g}" if isinstance(default, (int, float)) else default
                assert "when omitted" in subschema["description"] and shown in subschema["description"], (name, key)
    mlp = IC_TYPES.parameters_schema("mlp")["properties"]
    assert mlp["activation"]["enum"] == ["relu", "gelu"] and "fidelity preset" in mlp["activation"]["description"]


def test_every_ic_and_plain_model_entry_of_the_shipped_configs_validates():
    configs = [REPO / "config.yaml", *sorted((REPO / "config").glob("**/*.yaml"))]
    checked = 0
    for path in configs:
        for name, entry in (yaml.safe_load(path.read_text()) or {}).get("models", {}).items():
            if "ic" in entry:
                assert ic_valid(entry["ic"]), (path.name, name)
                checked += 1
            if "backbone" in entry and "base" not in entry:
                assert backbone_valid(entry["backbone"], entry.get("params", {})), (path.name, name)
    assert checked > 10
