"""Named model settings: base: inheritance, and which runs two settings share (and which they must not)."""
from __future__ import annotations

import copy

import pytest
import yaml

from pathlib import Path

from eebench import config as ee
from eebench.config import load_config
from eebench.config_checks import check_config

REPO = Path(__file__).resolve().parents[1]

CNN = {"widths": [8, 8, 8, 8], "strides": [1, 2, 1, 2]}


def make_config(**models) -> dict:
    return {
        "seeds": [0],
        "datasets": {"digits": {"split_seed": 0}, "digits_b": {"loader": "digits", "split_seed": 1}},
        "training": {"lr": 0.003, "max_epochs": 3},
        "models": models or {
            "cnn": {"dataset": "digits", "backbone": "cnn", "params": CNN},
            "cnn_mlp": {"base": "cnn", "ic": {"type": "mlp", "hidden": [16]}},
            "cnn_every2": {"base": "cnn", "placement": [1]},
            "cnn_lr": {"base": "cnn", "training": {"lr": 0.0001}},
            "cnn_wide": {"base": "cnn", "params": {"widths": [16, 16, 16, 16]}},
            "cnn_b": {"base": "cnn", "dataset": "digits_b"},
            "cnn_copy": {"dataset": "digits", "backbone": "cnn", "params": CNN},
        },
    }


def test_base_inheritance_merges_params_and_training_and_replaces_the_rest():
    models = ee.resolve_models(make_config())
    assert list(models) == ["cnn", "cnn_mlp", "cnn_every2", "cnn_lr", "cnn_wide", "cnn_b", "cnn_copy"]
    assert models["cnn_mlp"]["ic"] == {"type": "mlp", "hidden": [16]}
    assert models["cnn_mlp"]["params"] == CNN and models["cnn_mlp"]["placement"] is None
    # training: the global settings, then the entry's overrides key by key.
    assert models["cnn"]["training"] == {"lr": 0.003, "max_epochs": 3}
    assert models["cnn_lr"]["training"] == {"lr": 0.0001, "max_epochs": 3}
    # params merge key by key too: strides come from the base.
    assert models["cnn_wide"]["params"] == {"widths": [16, 16, 16, 16], "strides": [1, 2, 1, 2]}
    assert models["cnn_b"]["dataset"] == "digits_b" and models["cnn_b"]["ic"] == {"type": "linear"}


def test_a_chain_of_bases_resolves_in_any_config_order():
    config = make_config(
        third={"base": "second", "placement": [0]},
        second={"base": "first", "ic": {"type": "mlp", "hidden": [4]}},
        first={"dataset": "digits", "backbone": "cnn", "params": CNN},
    )
    third = ee.resolve_models(config)["third"]
    assert third["placement"] == [0] and third["ic"]["type"] == "mlp" and third["backbone"] == "cnn"


@pytest.mark.parametrize(
    ("models", "message"),
    [
        ({"a": {"base": "nowhere"}}, r"models\.a\.base: unknown model 'nowhere'"),
        ({"a": {"base": "b", "dataset": "digits"}, "b": {"base": "a", "backbone": "cnn"}},
         r"models\.b\.base: inheritance cycle a -> b -> a|models\.a\.base: inheritance cycle b -> a -> b"),
        ({"a": {"base": "a"}}, r"models\.a\.base: inheritance cycle a -> a"),
        ({"a": {"backbone": "cnn", "params": CNN}}, r"models\.a: no 'dataset'"),
    ],
)
def test_bad_bases_are_named(models, message):
    with pytest.raises(ee.ConfigError, match=message):
        ee.resolve_models(make_config(**models))


def test_phase1_is_shared_exactly_between_settings_that_differ_only_in_their_ics():
    config = make_config()
    owners = {name: ee.phase1_owner(config, name) for name in config["models"]}
    # IC type and placement do not enter phase 1; an identical entry without base: shares too.
    assert owners["cnn_mlp"] == owners["cnn_every2"] == owners["cnn_copy"] == "cnn"
    # A learning rate, the backbone's parameters or the data do.
    assert owners["cnn_lr"] == "cnn_lr" and owners["cnn_wide"] == "cnn_wide" and owners["cnn_b"] == "cnn_b"


def test_the_first_entry_in_config_order_owns_a_shared_run():
    config = make_config()
    config["models"] = {"cnn_mlp": config["models"]["cnn_mlp"] | {"dataset": "digits", "backbone": "cnn",
                                                                   "params": CNN},
                        "cnn": config["models"]["cnn"]}
    config["models"]["cnn_mlp"].pop("base")
    assert ee.phase1_owner(config, "cnn") == "cnn_mlp"


def test_static_heads_are_shared_only_where_the_classifier_at_that_block_is_the_same():
    config = make_config()
    # Same linear IC at every block: cnn_every2's heads (blocks 1, 3) are cnn's.
    assert [ee.static_owner(config, "cnn_every2", b) for b in (1, 3)] == ["cnn", "cnn"]
    # Another IC type at blocks 0..2 is another static model; the last block is the plain backbone (shared).
    assert [ee.static_owner(config, "cnn_mlp", b) for b in (0, 1, 2, 3)] == ["cnn_mlp"] * 3 + ["cnn"]
    # Other training settings share nothing.
    assert [ee.static_owner(config, "cnn_lr", b) for b in (0, 3)] == ["cnn_lr", "cnn_lr"]


def test_static_settings_truncate_and_the_last_block_is_the_plain_backbone():
    settings = ee.network_settings(ee.resolve_models(make_config())["cnn_mlp"])
    assert ee.static_settings(settings, 1, 3) == {**settings, "placement": [1], "truncate_at": 1}
    assert ee.static_settings(settings, 3, 3) == {**settings, "ic": {"type": "linear"}, "placement": []}


@pytest.mark.parametrize(
    ("baseline", "message"),
    [
        ("nowhere", r"models\.cnn_lr\.static_baseline: unknown model 'nowhere'"),
        ("cnn_b", r"models\.cnn_lr\.static_baseline: 'cnn_b' has dataset 'digits_b', this setting 'digits'"),
        ("cnn_every2", r"models\.cnn_lr\.static_baseline: 'cnn_every2' has heads after blocks \[1, 3\], "
                       r"this setting after \[0, 1, 2, 3\]"),
        ("cnn_mlp", r"models\.cnn_lr\.static_baseline: 'cnn_mlp' takes its own baseline from 'cnn'"),
    ],
)
def test_a_static_baseline_must_have_the_same_data_and_heads(baseline, message):
    config = make_config()
    config["models"]["cnn_mlp"]["static_baseline"] = "cnn"
    check_config(config)  # a fitting one passes
    assert ee.static_baseline(config, "cnn_mlp") == "cnn" and ee.static_baseline(config, "cnn") == "cnn"
    config["models"]["cnn_lr"]["static_baseline"] = baseline
    with pytest.raises(ee.ConfigError, match=message):
        check_config(config)


def test_check_config_validates_resolved_entries_against_the_schema():
    config = make_config()
    config["models"]["cnn_wide"]["params"] = {"widths": [16, 16, 16, 16], "depth": 3}
    with pytest.raises(ee.ConfigError, match=r"models\.cnn_wide\.params: Additional properties .*'depth'"):
        check_config(config)
    config = make_config()
    config["models"]["cnn_lr"]["training"] = {"lr": -1}
    with pytest.raises(ee.ConfigError, match=r"models\.cnn_lr\.training\.lr: -1 is less than or equal"):
        check_config(config)
    config = make_config()
    config["models"]["cnn_b"]["dataset"] = "mnist"
    with pytest.raises(ee.ConfigError, match=r"models\.cnn_b\.dataset: 'mnist' is not configured"):
        check_config(config)


def test_dataset_entries_pick_a_loader_and_are_checked_against_its_parameters():
    config = make_config()
    assert ee.dataset_loader(config, "digits_b") == "digits" and ee.dataset_loader(config, "digits") == "digits"
    assert ee.dataset_params(config, "digits_b") == {"split_seed": 1}
    check_config(config)
    bad = copy.deepcopy(config)
    bad["datasets"]["digits_b"]["root"] = "/data"
    with pytest.raises(ee.ConfigError, match=r"datasets\.digits_b: Additional properties .*'root'"):
        check_config(bad)
    bad = copy.deepcopy(config)
    bad["datasets"]["mnist"] = {"split_seed": 0}
    with pytest.raises(ee.ConfigError, match=r"datasets\.mnist: unknown dataset 'mnist'"):
        check_config(bad)


def test_two_entries_of_one_loader_are_two_datasets_with_their_own_runs():
    from eebench import targets

    config = make_config()
    assert targets.train_inputs(config, "cnn_b", "joint", "0") == {"data": "results/data/digits_b.npz"}
    assert targets.train_inputs(config, "cnn", "joint", "0") == {"data": "results/data/digits.npz"}
    assert targets.trained_model_path(config, "cnn_b", "backbone", 0) == "results/models/cnn_b/backbone/seed0/model.pt"


def test_loss_scaling_variants_share_phase1_and_static_heads_but_not_their_own_runs():
    config = load_config(REPO / "config.yaml")
    for model in ("cnn_inc", "cnn_sdn", "cnn_ge", "cnn_gpf"):
        assert ee.phase1_owner(config, model) == "cnn"
    assert ee.static_owner(config, "cnn_ge", 1) == "cnn"
    config["models"]["cnn_ge"]["training"]["loss_scaling"] = {"type": "sdn", "ramp_epochs": 0}
    with pytest.raises(ee.ConfigError, match=r"models\.cnn_ge\.training\.loss_scaling"):
        check_config(config)


def test_a_gpf_model_cannot_feed_b_ee():
    config = load_config(REPO / "config.yaml")
    config["figures"]["bee"]["lines"].append({"label": "GPF", "models": ["cnn_gpf"]})
    with pytest.raises(ee.ConfigError, match=r"figures\.bee: model 'cnn_gpf' has gpf ICs.*no B_EE"):
        check_config(config)


def test_a_missing_tokenizer_directory_is_named_at_dag_build(tmp_path):
    config = make_config()
    config["datasets"]["stsb"] = {"root": str(tmp_path), "model_dir": str(tmp_path / "bert-base"), "split_seed": 0}
    with pytest.raises(ee.ConfigError, match=r"datasets\.stsb\.model_dir: directory .*bert-base does not exist"):
        check_config(config)
    (tmp_path / "bert-base").mkdir()
    check_config(config)


def test_missing_pretrained_weights_and_model_dirs_are_named_at_dag_build(tmp_path):
    config = make_config()
    config["models"]["vit_b"] = {"dataset": "digits", "backbone": "vit", "params": {
        "patch_size": 4, "hidden_dim": 8, "mlp_dim": 8, "num_layers": 2, "num_heads": 2,
        "weights": str(tmp_path / "vit_b_16.pth")}}
    with pytest.raises(ee.ConfigError, match=r"models\.vit_b\.params\.weights: .*vit_b_16\.pth does not exist"):
        check_config(config)
    config["models"]["vit_b"]["params"].pop("weights")
    config["models"]["bert"] = {"dataset": "digits", "backbone": "bert", "params": {"model_dir": str(tmp_path)}}
    config["models"]["bert"]["params"]["model_dir"] = str(tmp_path / "bert-base")
    with pytest.raises(ee.ConfigError, match=r"models\.bert\.params\.model_dir: .*bert-base does not exist"):
        check_config(config)


def test_an_msdnet_with_other_ics_fails_at_dag_build():
    config = make_config()
    config["models"]["msd"] = {"dataset": "digits", "backbone": "msdnet", "params": {}, "ic": {"type": "linear"}}
    with pytest.raises(ee.ConfigError, match=r"models\.msd: backbone 'msdnet' takes only ICs of its own type"):
        check_config(config)


def test_a_suite_merges_files_each_as_it_was_alone(tmp_path, monkeypatch):
    """``include:``: each file's global training and resources become its models' own and its budgets its
    tables' own; a shared name must be the same setting (resources aside); outputs must not collide."""
    monkeypatch.chdir(tmp_path)
    data = {"digits": {"split_seed": 0}}
    model = {"dataset": "digits", "backbone": "cnn"}
    table = {"kind": "budgets", "model": "m", "criterion": "confidence", "regimes": ["joint"]}
    one = {"seeds": [0], "datasets": data, "models": {"m": model}, "training": {"lr": 0.1},
           "resources": {"train_model": {"gpu": 2}}, "tables": {"t1": table}}
    two = {"seeds": [0], "datasets": data, "budgets": [0.35, 1.0], "training": {"lr": 0.2},
           "models": {"m": {**model, "training": {"lr": 0.1}}, "n": model},
           "resources": {"train_model": {"gpu": 1}}, "tables": {"t2": {**table, "model": "n"}}}
    for name, part in (("one.yaml", one), ("two.yaml", two)):
        (tmp_path / name).write_text(yaml.safe_dump(part))
    suite = ee.expand_includes({"include": ["one.yaml", "two.yaml"]})
    assert suite["models"]["m"]["training"] == {"lr": 0.1} and suite["models"]["n"]["training"] == {"lr": 0.2}
    assert suite["models"]["m"]["resources"]["train_model"] == {"gpu": 2}  # the first file's
    assert suite["models"]["n"]["resources"]["train_model"] == {"gpu": 1}
    assert "budgets" not in suite["tables"]["t1"] and suite["tables"]["t2"]["budgets"] == [0.35, 1.0]
    assert suite["seeds"] == [0] and "include" not in suite
    assert ee.expand_includes(one) is one  # not a suite: unchanged

    (tmp_path / "two.yaml").write_text(yaml.safe_dump({**two, "models": {"m": {**model, "training": {"lr": 0.3}}}}))
    with pytest.raises(ee.ConfigError, match="models.m differs between one.yaml and two.yaml"):
        ee.expand_includes({"include": ["one.yaml", "two.yaml"]})
    (tmp_path / "two.yaml").write_text(yaml.safe_dump({**one, "tables": {"t1": table}}))
    with pytest.raises(ee.ConfigError, match="tables.t1 is in both one.yaml and two.yaml"):
        ee.expand_includes({"include": ["one.yaml", "two.yaml"]})
    (tmp_path / "two.yaml").write_text(yaml.safe_dump({**one, "seeds": [1], "tables": {}}))
    with pytest.raises(ee.ConfigError, match="two.yaml has seeds"):
        ee.expand_includes({"include": ["one.yaml", "two.yaml"]})
    with pytest.raises(ee.ConfigError, match="include: three.yaml does not exist"):
        ee.expand_includes({"include": ["three.yaml"]})


def test_a_criterion_must_apply_to_the_datasets_task(tmp_path):
    """Max-softmax means nothing for a regression output: refused before any job, naming the key and the
    criteria that apply; the regression criterion passes."""
    from tests.fixtures import write_bert_base_config

    bert = write_bert_base_config(tmp_path / "bert")
    (tmp_path / "glue").mkdir()
    config = {
        "datasets": {"stsb": {"root": str(tmp_path / "glue"), "model_dir": str(bert), "split_seed": 0}},
        "models": {"s": {"dataset": "stsb", "backbone": "bert", "params": {"model_dir": str(bert)}}},
        "tables": {"t": {"kind": "budgets", "model": "s", "criterion": "confidence", "regimes": ["joint"],
                         "metric": "mse"}},
    }
    with pytest.raises(ee.ConfigError, match="tables.t: criterion 'confidence' does not apply to dataset 'stsb', "
                                             "a regression task; criteria for regression: regression_patience"):
        check_config(config)
    config["tables"]["t"]["criterion"] = "regression_patience"
    check_config(config)
    config["tables"]["t"]["metric"] = "accuracy"
    with pytest.raises(ee.ConfigError, match="tables.t: metric 'accuracy' of model 's', a regression model; its "
                                             "metrics: mse"):
        check_config(config)


def _digits_config(**extra):
    return {"datasets": {"digits": {"split_seed": 0}},
            "models": {"cnn": {"dataset": "digits", "backbone": "cnn",
                               "params": {"widths": [4, 4], "strides": [1, 1]}}},
            "tables": {"t": {"kind": "budgets", "model": "cnn", "criterion": "confidence", "regimes": ["joint"]}},
            **extra}


@pytest.mark.parametrize(("criteria", "criterion", "match"), [
    ({"confidence": {"criterion": "entropy"}}, "confidence", "criteria.confidence: the name of a registered"),
    ({"sharp": {"criterion": "no_such"}}, "sharp", "criteria.sharp.criterion: unknown criterion 'no_such'"),
    ({"sharp": {"criterion": "confidence", "temperature": 2}}, "sharp",
     "criteria.sharp: exit criterion 'confidence': unknown parameter 'temperature'; accepted: none"),
    ({}, "sharp", "tables.t: unknown criterion 'sharp'; choose a registered one or a name under 'criteria:'"),
    ({"sharp": {"criterion": "rank_patience", "agreement": "kendall", "tolerance": 2}}, "sharp",
     "criteria.sharp: exit criterion 'rank_patience': tolerance .* must be in \\[-1, 1\\]"),
])
def test_named_criteria_are_checked_when_the_config_is_loaded(criteria, criterion, match):
    config = _digits_config(criteria=criteria)
    config["tables"]["t"]["criterion"] = criterion
    with pytest.raises(ee.ConfigError, match=match):
        check_config(config)


def test_a_named_criterion_stands_for_its_registered_criterion_and_parameters():
    config = _digits_config(criteria={"pbee": {"criterion": "patience"},
                                      "kendall_09": {"criterion": "rank_patience", "agreement": "kendall",
                                                     "tolerance": 0.9}})
    config["tables"]["t"]["criterion"] = "kendall_09"
    check_config(config)
    assert ee.criterion_setting(config, "kendall_09") == ("rank_patience", {"agreement": "kendall", "tolerance": 0.9})
    assert ee.criterion_setting(config, "pbee") == ("patience", {})
    assert ee.criterion_setting(config, "entropy") == ("entropy", {})
    assert ee.criterion_names(config)[-2:] == ["pbee", "kendall_09"] and "confidence" in ee.criterion_names(config)


def test_a_model_may_train_softmax_heads_on_multi_label_data_and_criteria_set_the_threshold():
    config = _digits_config(datasets={"digits": {"split_seed": 0}, "composite": {"loader": "digits_composite",
                                                                                    "split_seed": 0}},
                            criteria={"entropy_t03": {"criterion": "entropy", "positive_threshold": 0.3}})
    config["models"]["soft"] = {"base": "cnn", "dataset": "composite", "task": "multi_label_softmax"}
    config["tables"]["t"].update(model="soft", criterion="entropy_t03")
    check_config(config)
    assert ee.network_settings(ee.model_entry(config, "soft"))["task"] == "multi_label_softmax"
    assert "task" not in ee.network_settings(ee.model_entry(config, "cnn"))
    assert ee.model_task(config, ee.model_entry(config, "cnn")) == "single_label"

    config["criteria"]["entropy_t03"]["positive_threshold"] = 3
    with pytest.raises(ee.ConfigError, match="criteria.entropy_t03: task 'multi_label_softmax': positive_threshold"):
        check_config(config)
    config["criteria"]["entropy_t03"]["positive_threshold"] = 0.3
    config["models"]["soft"]["dataset"] = "digits"
    with pytest.raises(ee.ConfigError, match="models.soft.task: 'multi_label_softmax' cannot learn dataset 'digits''s "
                                             "labels \\(a single_label task\\); choose one of: single_label"):
        check_config(config)


def test_a_learned_exit_setting_is_checked_too():
    config = _digits_config(criteria={"learned": {"criterion": "learned_exit", "loss": "bce", "alpha": 0.3}})
    config["tables"]["t"]["criterion"] = "learned"
    check_config(config)
    config["criteria"]["learned"]["loss"] = "huber"
    with pytest.raises(ee.ConfigError, match="criteria.learned: exit criterion 'learned_exit': loss must be one of"):
        check_config(config)
