"""eebench.fidelity: `fidelity: paper | authors_code` fills the readings' keys a config leaves unset, before a run's
identity is computed."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from eebench import config as ee
from eebench.config_checks import check_config
from eebench.render.spec import entry_spec
from eebench import schema as ee_schema
from eebench.fidelity import PRESETS, SWITCHES, differences
from eebench.readings import READINGS
from eebench.training.config import SWITCH_DEFAULTS, TrainingConfig

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def config() -> dict:
    return yaml.safe_load((ROOT / "config.yaml").read_text())


def test_the_paper_preset_writes_nothing(config):
    """The default preset leaves every resolved setting as the config states it, so existing runs keep their
    identity (no rerun)."""
    config["models"] = {name: entry for name, entry in config["models"].items() if name != "cnn_authors_code"}
    resolved = ee.resolve_models(config)
    for entry in resolved.values():
        assert entry["fidelity"] == "paper"
        assert not {switch.key for switch in SWITCHES} & set(entry["training"]) - set(config["training"])
        assert "activation" not in entry["ic"]


def test_authors_code_switches_every_reading_that_applies(config):
    config["fidelity"] = "authors_code"
    config["datasets"]["digits"]["mixup_alpha"] = 0.8
    config["models"]["cnn_mlp_gpf"] = {"base": "cnn_gpf"}
    models = ee.resolve_models(config)
    cnn = models["cnn"]["training"]
    assert (cnn["early_stopping"], cnn["head_loss_reduction"], cnn["label_smoothing"]) == ("authors", "mean", 0.1)
    assert "gpf_loss_weights" not in cnn and "activation" not in models["cnn"]["ic"]  # linear ICs, not GPF
    assert models["cnn_mlp"]["ic"] == {"type": "mlp", "hidden": [64], "pool_size": 1, "activation": "gelu"}
    assert models["cnn_gpf"]["training"]["gpf_loss_weights"] == "authors"
    # Label smoothing only where labels are mixed (the authors' 0.1 comes with Mixup/CutMix) and single-label.
    assert "label_smoothing" not in models["cnn_composite"]["training"]
    assert "label_smoothing" not in models["cnn_2classes"]["training"]  # digits_2classes: no Mixup
    for name, entry in models.items():
        TrainingConfig(**entry["training"])  # every filled value is one the loop accepts


def test_a_stated_value_wins_over_the_preset(config):
    config["fidelity"] = "authors_code"
    config["training"]["early_stopping"] = "ours"
    config["models"]["cnn_mlp"]["ic"]["activation"] = "relu"
    config["models"]["cnn_inc"]["training"]["head_loss_reduction"] = "sum"
    models = ee.resolve_models(config)
    assert models["cnn"]["training"]["early_stopping"] == "ours"
    assert models["cnn"]["training"]["head_loss_reduction"] == "mean"
    assert models["cnn_inc"]["training"]["head_loss_reduction"] == "sum"
    assert models["cnn_mlp"]["ic"]["activation"] == "relu"


def test_a_model_of_another_preset_has_runs_of_its_own(config):
    """Run identity hashes the resolved values: the authors' early stopping changes phase 1 too, so
    cnn_authors_code owns its phase-1 run; its variants inherit the preset through base:."""
    config["models"]["cnn_authors_mlp"] = {"base": "cnn_authors_code", "ic": {"type": "mlp", "hidden": [64]}}
    assert ee.phase1_owner(config, "cnn_authors_code") == "cnn_authors_code"
    assert ee.phase1_owner(config, "cnn_mlp") == "cnn"
    assert ee.phase1_owner(config, "cnn_authors_mlp") == "cnn_authors_code"
    assert ee.resolve_models(config)["cnn_authors_mlp"]["ic"]["activation"] == "gelu"
    assert ee.model_entry(config, "cnn_authors_code")["training"] != ee.model_entry(config, "cnn")["training"]


def test_an_unknown_preset_is_refused_naming_the_key(config):
    config["models"]["cnn"]["fidelity"] = "authors"
    with pytest.raises(ee.ConfigError, match="models.cnn.fidelity: unknown fidelity preset 'authors'"):
        ee.resolve_models(config)


def test_every_switch_is_a_documented_reading_of_a_real_key():
    titles = {reading.title for reading in READINGS}
    schema = ee_schema.schema()["$defs"]
    for switch in SWITCHES:
        assert switch.reading in titles
        assert set(switch.values) == set(PRESETS)
        section = schema[switch.section]  # an IC type's keys are in its branch (one per type)
        keys = {*section.get("properties", {}), *(key for branch in section.get("allOf", [])
                                                   for key in branch.get("then", {}).get("properties", {}))}
        assert switch.key in keys
        if switch.section == "training":  # the paper preset is the value the loop takes when the key is absent
            assert switch.values["paper"] == SWITCH_DEFAULTS[switch.key]
    assert [row["key"] for row in differences()] == [switch.path for switch in SWITCHES]


def test_captions_name_the_preset(config):
    spec = entry_spec(config, "tables", "fidelity_differences")
    assert "fidelity presets paper and authors\\_code." in spec["caption"]
    assert entry_spec(config, "tables", "regimes")["caption"].endswith("fidelity preset paper.")


def test_authors_code_scores_early_stopping_on_augmented_validation_images(config):
    config["fidelity"] = "authors_code"
    config["models"]["cnn_plain"] = {"base": "cnn", "training": {"augment": False}}
    models = ee.resolve_models(config)
    assert models["cnn"]["training"]["validation_augment"] is True
    assert "validation_augment" not in models["cnn_plain"]["training"]  # nothing to augment with


def test_a_settings_description_names_a_non_default_preset(config):
    models = ee.resolve_models(config)
    assert ee.describe_model(models["cnn"]) == "digits, cnn, sdn pool_size=1 ICs after every block"
    assert ee.describe_model(models["cnn_authors_code"]).endswith(", fidelity preset authors_code")


def test_gpf_under_the_authors_weights_with_another_scaling_fails_before_any_job(config):
    """The authors' GPF weights replace constant or increasing scaling; with another one (set explicitly, the
    preset filling gpf_loss_weights) the config check names the key, not a training job."""
    config["fidelity"] = "authors_code"
    check_config(config)  # cnn_gpf: increasing, which the authors' weights stand in for
    config["models"]["cnn_gpf"]["training"]["loss_scaling"] = "decreasing"
    with pytest.raises(ee.ConfigError, match="models.cnn_gpf.training.loss_scaling: gpf_loss_weights 'authors'.*"
                                             "'decreasing'"):
        check_config(config)
