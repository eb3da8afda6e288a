"""What the schema cannot check of a config (eebench.targets.prepare_config runs it after the schema): registry
names and cross references between sections, each resolved model entry against its backbone's and loader's
declared parameters, dataset roots and weight files on disk, criterion settings, what each table and figure
reads of the models it shows. Every error is a ConfigError of one line naming the key."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from eebench.config import (criterion_names, criterion_setting, dataset_loader, dataset_params, head_blocks,
                            model_task, resolve_models)
from eebench.external_models import check_external, is_external, require_external_fits
from eebench.schema import ConfigError, check_against, require_registered


def _require_entry(config: dict, section: str, name: Any, key: str) -> None:
    if name not in config.get(section, {}):
        raise ConfigError(f"{key}: {name!r} is not configured under '{section}:' (configured: "
                          f"{', '.join(config.get(section, {})) or 'none'})")


def _check_criteria(config: dict[str, Any]) -> None:
    """Each named criterion setting: a registered criterion, not shadowing one, with parameters it accepts and
    values it accepts (it is called once on a tiny input, so its own checks name the problem)."""
    import numpy as np

    from eebench.exits.criteria import CRITERIA
    from eebench.tasks import TASKS, task_parameter_names

    for name, entry in config.get("criteria", {}).items():
        key = f"criteria.{name}"
        if name in CRITERIA:
            raise ConfigError(f"{key}: the name of a registered criterion; give the setting another name")
        require_registered("criterion", entry.get("criterion"), f"{key}.criterion")
        registered, params = criterion_setting(config, name)
        task = CRITERIA.get(registered).applies_to[0]
        task_params = {k: params.pop(k) for k in list(params) if k in task_parameter_names()}
        if task_params:  # e.g. positive_threshold: checked by the task that takes it
            task = next((t for t in TASKS if task_params.keys() <= TASKS.get(t).parameters.keys()), None)
            if task is None:
                raise ConfigError(f"{key}: no task takes all of {', '.join(sorted(task_params))} together")
        logits = np.zeros((2, 3, 1 if task == "regression" else 4), dtype=np.float32)
        if CRITERIA.get(registered).learns:  # checked on a tiny fit of one step
            labels = np.zeros(TASKS.get(task).label_shape(logits.shape), dtype=np.int64)
            params = {**params, "fit_on": (logits, labels), "epochs": 1}
        try:
            CRITERIA.get(registered)(logits, TASKS.get(task).configured(**task_params), **params)
        except (TypeError, ValueError) as error:
            raise ConfigError(f"{key}: {error}") from None


# Checks ----------------------------------------------------------------------------------------------------


def check_config(config: dict[str, Any]) -> None:
    """Everything the schema cannot check; raises ConfigError naming the key."""
    from eebench.render import iter_render_entries, render_runs, renderer
    from eebench.data.core import parameters
    from eebench.training.scaling import GPF_AUTHORS_SCALINGS, loss_scaling, scaling_name

    for name, params in config.get("datasets", {}).items():
        loader = params.get("loader", name)
        require_registered("dataset", loader, f"datasets.{name}.loader" if "loader" in params else f"datasets.{name}")
        check_against(dataset_params(config, name), f"dataset_params/properties/{loader}", f"datasets.{name}")
        accepted = parameters(loader)
        for key, parameter in accepted.items():
            if parameter.default is parameter.empty and key not in params:
                raise ConfigError(f"datasets.{name}: missing required parameter {key!r} of loader {loader!r}")
        # Paper-scale data (and a tokenizer's model directory) is never downloaded: a missing directory fails
        # here, before any job starts.
        for key in ("root", "model_dir"):
            if key in params and not Path(params[key]).is_dir():
                raise ConfigError(f"datasets.{name}.{key}: directory {params[key]} does not exist "
                                  f"(resolved from {Path.cwd()}); put the {loader} files there or fix the path")
    _check_criteria(config)
    models = resolve_models(config)
    for name, entry in models.items():
        key = f"models.{name}"
        if is_external(entry):
            require_registered("regime", entry["caches"]["regime"], f"{key}.caches.regime")
            check_external(name, entry)
            continue
        _require_entry(config, "datasets", entry["dataset"], f"{key}.dataset")
        require_registered("backbone", entry["backbone"], f"{key}.backbone")
        check_against(entry["params"], f"backbone_params/properties/{entry['backbone']}", f"{key}.params")
        # Pre-trained weights and model directories are never downloaded: a missing one fails here.
        for param, exists in (("weights", Path.is_file), ("model_dir", Path.is_dir)):
            path = entry["params"].get(param)
            if path is not None and not exists(Path(path)):
                raise ConfigError(f"{key}.params.{param}: {path} does not exist (resolved from {Path.cwd()}); "
                                  f"it is read from disk only, never downloaded")
        require_registered("ic", entry["ic"].get("type"), f"{key}.ic.type")
        _require_task_fits(config, entry, key)
        _require_static_baseline_fits(models, name, key)
        check_against(entry["training"], "training", f"{key}.training")
        try:
            loss_scaling(entry["training"].get("loss_scaling"))
        except ValueError as error:
            raise ConfigError(f"{key}.training.loss_scaling: {error}") from None
        # Caught here, before any job, as the loop would refuse it (a preset can set gpf_loss_weights).
        if (entry["ic"].get("type") == "gpf" and entry["training"].get("gpf_loss_weights") == "authors"
                and scaling_name(entry["training"].get("loss_scaling")) not in GPF_AUTHORS_SCALINGS):
            raise ConfigError(f"{key}.training.loss_scaling: gpf_loss_weights 'authors' (paper B's code's GPF head "
                              f"weights) replaces constant or increasing scaling; this setting's "
                              f"{scaling_name(entry['training'].get('loss_scaling'))!r} cannot go with it")
        try:
            head_blocks(entry)
        except (TypeError, ValueError, FileNotFoundError) as error:
            raise ConfigError(f"{key}: {error}") from None
    sweep_points = config.get("sweep", {}).get("max_points", 0)
    for section, name, spec in iter_render_entries(config):
        key = f"{section}.{name}"
        require_registered(section[:-1], spec.get("kind"), f"{key}.kind")
        _require_paper_items(spec, f"{key}.regenerates")
        # A kind that reads what only some networks allow (mode connectivity: a permutation spec) says so.
        check_model = getattr(renderer(section, spec["kind"]), "check_model", None)
        for run in render_runs(config, section, name):
            _require_entry(config, "models", run.model, f"{key}: model")
            if is_external(models[run.model]):
                require_external_fits(config, models[run.model], run, spec, section, key)
            if check_model is not None:
                try:
                    check_model(models[run.model])
                except ValueError as error:
                    raise ConfigError(f"{key}: model {run.model!r}: {error}") from None
            if (renderer(section, spec["kind"]).reads == "bee" and not is_external(models[run.model])
                    and _has_merge(models[run.model])):
                raise ConfigError(f"{key}: model {run.model!r} has {models[run.model]['ic']['type']} ICs, whose "
                                  f"logits combine every IC's output: no static per-head baseline, so no B_EE")
            require_registered("regime", run.regime, f"{key}: regime")
            if run.versus:
                require_registered("regime", run.versus, f"{key}: regime")
            if run.criterion:  # a table of training records has none
                if run.criterion not in criterion_names(config):
                    raise ConfigError(f"{key}: unknown criterion {run.criterion!r}; choose a registered one or a "
                                      f"name under 'criteria:' ({', '.join(criterion_names(config))})")
                _require_criterion_fits(config, models[run.model], run.criterion, key)
        _require_metrics_fit(config, models, section, spec, key)
        for index, check in enumerate(spec.get("checks", ())):
            _require_claim_fits(config, check, f"{key}.checks[{index}]", name)
        if spec.get("rule") == "val" and sweep_points:
            raise ConfigError(f"{key}.rule: 'val' maps validation thresholds onto the test sweep exactly, which "
                              f"needs every operating point (sweep.max_points: 0, not {sweep_points})")


def _require_task_fits(config: dict[str, Any], model: dict[str, Any], key: str) -> None:
    """A model's own task must read the labels its dataset has (softmax or sigmoid heads on multi-hot labels)."""
    from eebench.data import DATASETS
    from eebench.tasks import TASKS

    if model.get("task") is None:
        return
    require_registered("task", model["task"], f"{key}.task")
    own = DATASETS.get(dataset_loader(config, model["dataset"])).task
    if TASKS.get(model["task"]).labels != TASKS.get(own).labels:
        fitting = [t for t in TASKS if TASKS.get(t).labels == TASKS.get(own).labels]
        raise ConfigError(f"{key}.task: {model['task']!r} cannot learn dataset {model['dataset']!r}'s labels "
                          f"(a {own} task); choose one of: {', '.join(fitting)}")


def _require_static_baseline_fits(models: dict[str, Any], name: str, key: str) -> None:
    """A shared static baseline must be a setting of the same data and heads, with static heads of its own."""
    baseline = models[name]["static_baseline"]
    if baseline is None:
        return
    if baseline not in models:
        raise ConfigError(f"{key}.static_baseline: unknown model {baseline!r} (models: {', '.join(models)})")
    if is_external(models[baseline]):
        raise ConfigError(f"{key}.static_baseline: {baseline!r} is evaluated from its own caches; a trained "
                          f"setting's baseline is trained with it (same data, backbone and heads)")
    if models[baseline]["static_baseline"] is not None:
        raise ConfigError(f"{key}.static_baseline: {baseline!r} takes its own baseline from "
                          f"{models[baseline]['static_baseline']!r}; name that one")
    for field in ("dataset", "backbone"):
        if models[baseline][field] != models[name][field]:
            raise ConfigError(f"{key}.static_baseline: {baseline!r} has {field} {models[baseline][field]!r}, "
                              f"this setting {models[name][field]!r}")
    if head_blocks(models[baseline]) != head_blocks(models[name]):
        raise ConfigError(f"{key}.static_baseline: {baseline!r} has heads after blocks "
                          f"{list(head_blocks(models[baseline]))}, this setting after {list(head_blocks(models[name]))}")


def _require_paper_items(spec: dict[str, Any], key: str) -> None:
    """Every item an entry regenerates is one of the papers' (a section of the regenerated paper holds it)."""
    from eebench.render.paper import references, section_of

    try:
        for ref in references(spec):
            section_of(ref)
    except ValueError as error:
        raise ConfigError(f"{key}: {error}") from None


def _require_claim_fits(config: dict[str, Any], check: dict[str, str], key: str, own: str) -> None:
    """A claim is checked on another table or figure of the config, of the kind whose numbers it reads."""
    from eebench.claims import CLAIMS

    require_registered("claim", check["claim"], f"{key}.claim")
    claim = CLAIMS.get(check["claim"])
    entries = {**config.get("tables", {}), **config.get("figures", {})}
    if check["entry"] == own or check["entry"] not in entries:
        raise ConfigError(f"{key}.entry: {check['entry']!r} is not another table or figure of this config")
    entry = entries[check["entry"]]
    wanted = {"kind": claim.reads, **dict(claim.requires)}
    wrong = {k: v for k, v in wanted.items() if entry.get(k) != v}
    if wrong:
        raise ConfigError(f"{key}: claim {check['claim']!r} is checked on a {claim.reads} entry with "
                          f"{dict(claim.requires) or 'no further settings'}; {check['entry']!r} has "
                          + ", ".join(f"{k} {entry.get(k)!r}" for k in wrong))


def _require_metrics_fit(config: dict[str, Any], models: dict[str, Any], section: str, spec: dict[str, Any],
                         key: str) -> None:
    """A table cell's metric must be one its model's task reports (no accuracy of a regression model)."""
    from eebench.render import renderer
    from eebench.tasks import TASKS

    listed = getattr(renderer(section, spec["kind"]), "cell_metrics", None)
    for run, metric in listed(spec) if listed is not None else ():
        task = TASKS.get(model_task(config, models[run.model]))
        if metric not in task.metrics:
            raise ConfigError(f"{key}: metric {metric!r} of model {run.model!r}, a {task.name} model; its metrics: "
                              f"{', '.join(task.metrics)}")


def _require_criterion_fits(config: dict[str, Any], model: dict[str, Any], criterion: str, key: str) -> None:
    """A criterion is defined for some tasks only (max-softmax has no meaning for a regression output)."""
    from eebench.exits.criteria import CRITERIA, applicable

    task = model_task(config, model)
    if task not in CRITERIA.get(criterion_setting(config, criterion)[0]).applies_to:
        raise ConfigError(f"{key}: criterion {criterion!r} does not apply to dataset {model['dataset']!r}, a "
                          f"{task} task; criteria for {task}: {', '.join(applicable(task))}")


def _has_merge(entry: dict[str, Any]) -> bool:
    """Whether the model's IC type combines the ICs through a merge module (GPF)."""
    from eebench.models import IC_TYPES

    return getattr(IC_TYPES.get(entry["ic"]["type"]), "build_merge", None) is not None
