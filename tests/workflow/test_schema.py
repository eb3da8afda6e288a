"""The config schema (its skeleton file composed with the parts generated from the registries' declarations) and
the registries must agree, and the shipped configs must validate."""
from pathlib import Path

import jsonschema
import pytest
import yaml

from eebench.config import ConfigError, expand_includes, load_config, registries
from eebench.config_checks import check_config
from eebench.schema import SCHEMA_PATH, generated_definitions, schema
from tests.fixtures import with_fixtures, write_bert_base_config

REPO = Path(__file__).resolve().parents[2]
SCHEMA = schema()
SHIPPED_CONFIGS = [REPO / "config.yaml", *sorted((REPO / "config").glob("**/*.yaml"))]


def validate(config):
    jsonschema.validators.validator_for(SCHEMA)(SCHEMA).validate(config)


@pytest.mark.parametrize(
    ("schema_names", "kind"),
    [
        (SCHEMA["$defs"]["loader_name"]["enum"], "dataset"),
        (list(SCHEMA["$defs"]["dataset_params"]["properties"]), "dataset"),
        (SCHEMA["$defs"]["backbone_name"]["enum"], "backbone"),
        (list(SCHEMA["$defs"]["backbone_params"]["properties"]), "backbone"),
        (SCHEMA["$defs"]["regime_name"]["enum"], "regime"),
        (SCHEMA["$defs"]["criterion_name"]["enum"], "criterion"),
        (SCHEMA["$defs"]["ic"]["properties"]["type"]["enum"], "ic"),
        (SCHEMA["$defs"]["table"]["properties"]["kind"]["enum"], "table"),
        (SCHEMA["$defs"]["figure"]["properties"]["kind"]["enum"], "figure"),
        # sdn takes a required parameter (ramp_epochs), so it has the object form only
        (SCHEMA["$defs"]["loss_scaling"]["oneOf"][0]["enum"] + ["sdn"], "loss_scaling"),
        (next(c["then"]["properties"]["checks"]["items"]["properties"]["claim"]["enum"]
              for c in SCHEMA["$defs"]["table"]["allOf"]
              if c["if"]["properties"]["kind"].get("const") == "claims"), "claim"),
        (SCHEMA["$defs"]["loss_scaling"]["oneOf"][1]["properties"]["type"]["enum"], "loss_scaling"),
        (SCHEMA["$defs"]["analysis"]["properties"]["mutual_information"]["properties"]["estimator"]["enum"],
         "mi_estimator"),
    ],
)
def test_schema_names_equal_registry_names(schema_names, kind):
    assert sorted(schema_names) == registries()[kind].names()


def test_dataset_schemas_list_exactly_the_loaders_parameters():
    from eebench.data.core import parameters

    for name, entry in SCHEMA["$defs"]["dataset_params"]["properties"].items():
        assert sorted(entry["properties"]) == sorted(parameters(name)), name


def test_the_schema_file_is_the_skeleton_and_every_generated_part_replaces_none_of_it():
    """workflow/schemas/config.schema.yaml holds the top-level keys and shared definitions only (issue 25: at most
    450 lines); what an entry's code declares is generated and never also written there."""
    skeleton = yaml.safe_load(SCHEMA_PATH.read_text())
    assert len(SCHEMA_PATH.read_text().splitlines()) <= 450
    for name, part in generated_definitions().items():
        written = skeleton["$defs"].get(name, {})
        assert set(written) <= {"description"}, f"$defs/{name} is generated; the file may only describe it"


def with_existing_roots(config, tmp_path):
    """Point every paper-scale dataset root (and tokenizer directory) at an existing (empty) directory."""
    for name, params in config["datasets"].items():
        for key in ("root", "model_dir"):
            if key in params:
                params[key] = str(tmp_path / name / key)
                (tmp_path / name / key).mkdir(parents=True)
    return config


@pytest.mark.parametrize("path", SHIPPED_CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_validate(path, tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)  # a suite's include paths are relative to the working directory
    config = expand_includes(load_config(path))
    validate(config)
    check_config(with_fixtures(config, tmp_path, write_bert_base_config(tmp_path / "bert")))


def test_schema_lists_every_budget_rule_of_the_metrics_module():
    from eebench.sweep_metrics import BUDGET_RULES

    assert SCHEMA["$defs"]["budget_rule"]["enum"] == list(BUDGET_RULES)


def test_missing_dataset_root_is_named_before_anything_runs(tmp_path):
    config = load_config(REPO / "config/paper/resnet34_cifar100.yaml")
    config["datasets"]["cifar100"]["root"] = str(tmp_path / "nowhere")
    with pytest.raises(ConfigError, match=rf"datasets\.cifar100\.root: directory {tmp_path}/nowhere does not exist"):
        check_config(config)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c["training"].update(lerning_rate=0.1), "lerning_rate"),
        (lambda c: c["tables"]["regimes"].update(regimes=["disjoint", "jiont"]), "jiont"),
        (lambda c: c["tables"]["regimes"].update(criterion="patience/7"), "patience/7"),
        (lambda c: c["datasets"].update(mnist={"loader": "mnist"}), "mnist"),
        (lambda c: c["models"]["cnn"].update(ic={"type": "mlp", "hiden": [3]}), "hiden"),
        (lambda c: c["models"].update({"a/b": {"base": "cnn"}}), "a/b"),
        (lambda c: c["tables"]["ic_size"].update(schemes=[]), "schemes"),
        (lambda c: c["tables"]["regimes"].update(rule="median"), "median"),
        (lambda c: c["figures"]["cost_curves"].update(models=["cnn"]), "oneOf|valid under each"),
        (lambda c: c["resources"]["train_model"].update(mem_mb=0), "less than the minimum of 1"),
        (lambda c: c["resources"]["train_model"].update(runtime=-5), "less than the minimum of 1"),
        (lambda c: c["resources"]["train_static_head"].update(gpu=-1), "less than the minimum of 0"),
        (lambda c: c["training"].update(batch_size="64"), "is not of type 'integer'"),
        (lambda c: c.update(seeds=[0, 0]), "non-unique"),
    ],
)
def test_schema_rejects_bad_input(edit, message):
    config = load_config(REPO / "config.yaml")
    edit(config)
    with pytest.raises(jsonschema.ValidationError, match=message):
        validate(config)


def test_check_config_names_the_key_of_a_dangling_reference():
    config = load_config(REPO / "config.yaml")
    del config["datasets"]["digits_composite"]
    with pytest.raises(ConfigError, match=r"models\.cnn_composite\.dataset: 'digits_composite' is not configured"):
        check_config(config)
    config = load_config(REPO / "config.yaml")
    config["tables"]["ic_size"]["variants"].append({"model": "cnn_huge"})
    with pytest.raises(ConfigError, match=r"tables\.ic_size: model: 'cnn_huge' is not configured under 'models:'"):
        check_config(config)


def test_check_config_rejects_the_val_rule_on_a_subsampled_sweep():
    config = load_config(REPO / "config.yaml")
    config["sweep"]["max_points"] = 100
    config["tables"]["regimes"]["rule"] = "val"
    with pytest.raises(ConfigError, match=r"tables\.regimes\.rule: 'val' .*\(sweep\.max_points: 0, not 100\)"):
        check_config(config)


def test_shared_augmentation_keys_validate_and_a_misspelt_one_fails(tmp_path):
    config = with_existing_roots(load_config(REPO / "config/paper/resnet34_cifar100.yaml"), tmp_path)
    config["datasets"]["cifar100"].update(cutmix_alpha=1.0, mixup_alpha=0.2, erasing_p=0.1)
    validate(config)
    check_config(config)
    config["datasets"]["cifar100"]["cutmx_alpha"] = 1.0  # loader parameters are checked once the loader is known
    with pytest.raises(ConfigError, match=r"datasets\.cifar100: .*'cutmx_alpha'"):
        check_config(config)


def test_the_analysis_section_lists_every_analysis_with_exactly_its_parameters():
    """Per-layer (eebench.analysis.layers) and whole-model (eebench.analysis.checkpoint) analyses: one schema
    entry each, whose keys are the analysis's parameters, with the same defaults."""
    from eebench.analysis import checkpoint, layers

    section = SCHEMA["$defs"]["analysis"]["properties"]
    assert sorted(section) == sorted([*registries()["analysis"].names(), *registries()["checkpoint_analysis"].names()])
    for name, entry in section.items():
        module = checkpoint if name in checkpoint.CHECKPOINT_ANALYSES else layers
        defaults = {key: value.get("default") for key, value in entry["properties"].items()}
        expected = {key: list(value) if isinstance(value, tuple) else value
                    for key, value in module.parameters(name).items()}
        assert defaults == expected, name


def test_rules_a_model_entry_may_set_resources_for_are_in_both_resources_sections():
    """The rules whose resources the workflow reads per model setting (get_resource in workflow/rules/*.smk) are
    the ones a model entry may set, and the top-level resources name them too."""
    import re

    from eebench.schema import model_rules

    smk = "".join(path.read_text() for path in (REPO / "workflow" / "rules").glob("*.smk"))
    ruled = set(re.findall(r'get_(?:resource|nproc)\("(\w+)"', smk))
    assert sorted(SCHEMA["$defs"]["model"]["properties"]["resources"]["properties"]) == sorted(model_rules())
    assert sorted(model_rules()) == sorted(ruled)
    assert set(model_rules()) <= set(SCHEMA["properties"]["resources"]["properties"])


@pytest.mark.parametrize(
    ("check", "message"),
    [
        ({"claim": "ics_raise_numerical_rank", "entry": "nowhere"},
         r"tables\.claims\.checks\[0\]\.entry: 'nowhere' is not another table or figure of this config"),
        ({"claim": "ics_raise_numerical_rank", "entry": "claims"}, r"'claims' is not another table or figure"),
        ({"claim": "ics_raise_numerical_rank", "entry": "bee"},
         r"claim 'ics_raise_numerical_rank' is checked on a layer_profile entry with \{'analysis': "
         r"'numerical_rank'\}; 'bee' has kind 'bee', analysis None"),
        ({"claim": "ics_raise_numerical_rank", "entry": "mutual_information"},
         r"'mutual_information' has analysis 'mutual_information'"),
    ],
)
def test_a_claim_is_checked_on_another_entry_of_the_kind_it_reads(check, message):
    config = load_config(REPO / "config.yaml")
    check_config(config)  # the default's checks fit
    config["tables"]["claims"]["checks"] = [check]
    with pytest.raises(ConfigError, match=message):
        check_config(config)


def test_every_default_the_skeleton_states_is_the_one_the_code_takes():
    """The skeleton's own defaults (each generated part's are tested beside its declarations: tests/data,
    tests/models, tests/exits, tests/analysis, tests/training, tests/render *schema* tests) equal the code's."""
    import inspect

    from eebench.config import DEFAULT_BUDGETS
    from eebench.fidelity import DEFAULT_PRESET
    from eebench.metrics import run_budgets
    from eebench.sweep_metrics import budget_performance

    assert SCHEMA["properties"]["budgets"]["default"] == DEFAULT_BUDGETS
    assert SCHEMA["properties"]["fidelity"]["default"] == DEFAULT_PRESET
    for function in (budget_performance, run_budgets):
        assert inspect.signature(function).parameters["rule"].default == SCHEMA["$defs"]["budget_rule"]["default"]


def test_the_schema_command_writes_the_composed_schema(tmp_path):
    from eebench.cli import run

    assert run(["schema", "--out", str(tmp_path / "schema.yaml")]) == 0
    assert yaml.safe_load((tmp_path / "schema.yaml").read_text()) == SCHEMA
