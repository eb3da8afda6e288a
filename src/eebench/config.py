"""The experiment a config describes: named datasets, named model settings (variants), tables and figures.

The JSON schema (eebench.schema: the skeleton workflow/schemas/config.schema.yaml with the parts generated from
the registries' declarations) checks the shape of the raw config. This module reads a config, merges a suite's
files, resolves ``base:`` inheritance between model entries and decides which runs two model settings share;
eebench.config_checks checks what a schema cannot (names against the registries, cross references between
sections, each resolved entry against the part of the schema that applies to it). Every error names the
offending key.

Sharing (the identity of a run is its settings, not its name):
- the phase-1 (``backbone`` regime) run depends on the dataset, the backbone and its parameters and the
  training settings, never on the ICs (the plain backbone is trained without them), so variants that differ
  only in their ICs or placement share it;
- a static head (paper A's baseline) is the backbone truncated after one block plus the classifier there, so
  it is shared between variants whose classifier at that block is identical.
The run of a shared setting lives under the name of the FIRST model entry (in config order) that has it:
adding an entry never moves an existing run.

A model entry with ``caches:`` is a network this package does not train: it is evaluated from its own logit
caches (eebench.logit_cache.write_cache, ``eebench import-logits``), one per seed, plus one static model's cache per
head where a B_EE entry reads it (:func:`is_external`). It names no dataset, backbone or training, shares nothing
and is shown wherever a table or figure reads caches, sweeps, budget tables or B_EE.
"""
from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any, Callable

import yaml

from eebench.external_models import external_task, is_external, resolve_external
from eebench.fidelity import DEFAULT_PRESET, apply_preset, check_preset
from eebench.schema import YAML_LOADER, ConfigError, model_rules, registries, short_repr, type_name

# Keys of a model entry merged key by key with its base's; every other key replaces the base's value whole
# (an `ic` of another type must not inherit the old type's parameters).
MERGED_MODEL_KEYS = ("params", "training")
FINAL_IC = {"type": "linear"}  # the backbone's own classifier after the last block


def load_config(path: str | Path) -> dict[str, Any]:
    """A config file (YAML, or JSON as Snakemake also reads) as a mapping. A file that is not one fails in one
    line naming the file: a syntax error with its line and column, an empty file as empty."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file (resolved from {Path.cwd()})") from None
    except (IsADirectoryError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: not a config file ({error})") from None
    try:
        config = yaml.load(text, Loader=YAML_LOADER)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark else str(path)
        context = ""
        if error.context and error.context_mark:
            context = f" ({error.context}, line {error.context_mark.line + 1})"
        lines = text.splitlines()
        if mark and mark.line < len(lines) and lines[mark.line][mark.column:mark.column + 1] == "\t":
            context += "; a tab there: YAML indents with spaces"
        raise ConfigError(f"{where}: not valid YAML: {error.problem or error}{context}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {' '.join(str(error).split())}") from None
    if config is None:
        raise ConfigError(f"{path} is empty" + (" (nothing but comments)" if text.strip() else ""))
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: the top level is {type_name(config)}, not a mapping of keys (seeds:, datasets:, "
                          f"models:, ...)")
    return config


def update_config(config: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    """``other`` merged over ``config`` as Snakemake merges a second ``--configfile`` over the first (mappings key
    by key, any other value replaced); a port of snakemake.utils.update_config, so that ``eebench check-config``
    sees what ``snakemake --configfile FILE1 FILE2`` sees."""
    for key, value in other.items():
        if not isinstance(config, dict):
            config = {}
        config[key] = update_config(config.get(key, {}), value) if isinstance(value, dict) else value
    return config


# Datasets --------------------------------------------------------------------------------------------------


def dataset_loader(config: dict[str, Any], dataset: str) -> str:
    """The registered loader of a named dataset entry (by default the entry's own name)."""
    return config["datasets"][dataset].get("loader", dataset)


def dataset_params(config: dict[str, Any], dataset: str) -> dict[str, Any]:
    return {key: value for key, value in config["datasets"][dataset].items() if key != "loader"}


# Suites ----------------------------------------------------------------------------------------------------

DEFAULT_BUDGETS = [0.25, 0.5, 0.75, 1.0]  # the schema's default of the top-level `budgets`


def expand_includes(config: dict[str, Any], check_file: Callable[[dict[str, Any], str], None] | None = None
                    ) -> dict[str, Any]:
    """A suite: ``include: [config files]`` (paths from the working directory) merged into one experiment, so
    one Snakemake run plans (or runs) all of them, e.g. every paper-scale config together. Each file stays what
    it was alone: its global ``training:``, ``fidelity:`` and per-rule ``resources:`` are made each of its models'
    own, its budgets each of its tables' and figures' own. Names shared between files must mean the same setting
    (the first file's resources are kept), and output names must be unique; the suite's own keys (``seeds``,
    ``sweep``, ``budgets``, ``resources``) apply to every file, which must agree with them. ``check_file(part,
    path)`` is called on each file as read, before it is merged (prepare_config: the schema, each file as it is
    alone). Without ``include`` the config is returned unchanged."""
    from eebench.render import renderer

    if "include" not in config:
        return config
    paths = config["include"]
    if not isinstance(paths, list) or not paths or not all(isinstance(path, str) for path in paths):
        raise ConfigError(f"include: expected a list of config files, got {short_repr(paths)} ({type_name(paths)})")
    merged = {key: copy.deepcopy(value) for key, value in config.items() if key != "include"}
    for key in ("datasets", "models", "tables", "figures", "training"):  # training: each model carries its own
        merged.setdefault(key, {})
    merged.setdefault("budgets", DEFAULT_BUDGETS)
    owners: dict[tuple[str, str], str] = {}
    for path in paths:
        if not Path(path).is_file():
            raise ConfigError(f"include: {path} does not exist (resolved from {Path.cwd()})")
        part = load_config(path)
        if "include" in part:
            raise ConfigError(f"include: {path} includes files itself; a suite lists every file once")
        if check_file is not None:
            check_file(part, path)
        for key in ("seeds", "sweep", "analysis", "scale"):  # analysis settings are not in the result paths
            if key in part:
                merged.setdefault(key, part[key])
                if part[key] != merged[key]:
                    raise ConfigError(f"include: {path} has {key} {part[key]!r}, the suite {merged[key]!r}")
        budgets = part.get("budgets", DEFAULT_BUDGETS)
        for name, entry in part.get("models", {}).items():
            entry = _with_file_settings(entry, part)
            _merge_named(merged, owners, "models", name, entry, path)
        for section in ("datasets", "criteria"):  # a criterion setting's name is in its result paths too
            for name, entry in part.get(section, {}).items():
                merged.setdefault(section, {})
                _merge_named(merged, owners, section, name, entry, path)
        for section in ("tables", "figures"):
            for name, spec in part.get(section, {}).items():
                spec = copy.deepcopy(spec)
                if budgets != merged["budgets"] and renderer(section, spec["kind"]).reads in ("budgets", "sweeps"):
                    spec.setdefault("budgets", budgets)
                if name in merged[section]:
                    raise ConfigError(f"include: {section}.{name} is in both {owners[(section, name)]} and {path}")
                owners[(section, name)] = path
                merged[section][name] = spec
    return merged


def _with_file_settings(entry: dict[str, Any], part: dict[str, Any]) -> dict[str, Any]:
    """A model entry of an included file with that file's global training, fidelity preset and resources made its
    own (an entry with a ``base:`` gets only its own overrides: the base carries the file's settings)."""
    entry = copy.deepcopy(entry)
    if is_external(entry):  # no training, no preset, no job with resources: the entry stays as written
        return entry
    if "base" not in entry:
        entry["training"] = {**part.get("training", {}), **entry.get("training", {})}
        if "fidelity" in part:  # else the suite's (or the default) applies, as to a file alone
            entry.setdefault("fidelity", part["fidelity"])
        resources = part.get("resources", {})
        own = entry.get("resources", {})
        entry["resources"] = {rule: {**resources.get("default", {}), **resources.get(rule, {}), **own.get(rule, {})}
                              for rule in model_rules()}
    return entry


def _merge_named(merged: dict, owners: dict, section: str, name: str, entry: dict, path: str) -> None:
    """Add a dataset, model or criterion entry; one already there must be the same setting. Resources are not part of a
    setting (they never change a result): the first file's are kept."""
    if name not in merged[section]:
        owners[(section, name)] = path
        merged[section][name] = entry
        return

    def setting(value: dict) -> dict:
        return {key: item for key, item in value.items() if key != "resources"}

    if setting(merged[section][name]) != setting(entry):
        raise ConfigError(f"include: {section}.{name} differs between {owners[(section, name)]} and {path}")


# Models ----------------------------------------------------------------------------------------------------


def _merge(base: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in entry.items():
        if key == "base":
            continue
        if key in MERGED_MODEL_KEYS and isinstance(value, dict):
            merged[key] = {**merged.get(key, {}), **copy.deepcopy(value)}
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def resolve_models(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every model entry with its ``base:`` chain applied and defaults filled in: ``dataset, backbone, params,
    ic, placement, training`` (the global ``training:`` merged with the entry's overrides, then the keys the
    entry's fidelity preset sets where neither sets them: eebench.fidelity) and ``resources`` (the entry's own,
    per rule; {} if none). Config order."""
    return copy.deepcopy(resolved_read_only(config))


def resolved_read_only(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The cached resolution (shared: never hand it out uncopied). Input functions resolve for every job while
    the DAG is built: each distinct config is resolved once."""
    return _resolve_models(_config_json(config))


def _config_json(config: dict[str, Any]) -> str:
    """What model resolution depends on, as the key of the caches above (a frozen config's, kept)."""
    frozen = _FROZEN.get(id(config))
    if frozen is not None and frozen[0] is config:
        return frozen[1]
    return json.dumps({"models": config.get("models", {}), "training": config.get("training", {}),
                       "fidelity": config.get("fidelity", DEFAULT_PRESET), "datasets": config.get("datasets", {})})


_FROZEN: dict[int, tuple[dict[str, Any], str]] = {}


def freeze(config: dict[str, Any]) -> None:
    """The caller's promise that ``config`` no longer changes (the Snakefile, once it is checked): its models are
    then looked up by the object's identity instead of serialising it at every call (input functions ask once or
    more per job: 3.4 s of the paper suite's planning)."""
    _FROZEN[id(config)] = (config, _config_json(config))


def is_frozen(config: dict[str, Any]) -> bool:
    """Whether ``config`` is one :func:`freeze` was promised never changes (what is derived from it may be kept)."""
    frozen = _FROZEN.get(id(config))
    return frozen is not None and frozen[0] is config


@functools.lru_cache(maxsize=16)
def _resolve_models(config_json: str) -> dict[str, dict[str, Any]]:
    config = json.loads(config_json)
    raw = config["models"]
    resolved: dict[str, dict[str, Any]] = {}

    def resolve(name: str, chain: tuple[str, ...]) -> dict[str, Any]:
        if name in resolved:
            return resolved[name]
        entry = raw[name]
        if "base" in entry:
            base = entry["base"]
            if base not in raw:
                raise ConfigError(f"models.{name}.base: unknown model {base!r} (models: {', '.join(raw)})")
            if is_external(raw[base]):
                raise ConfigError(f"models.{name}.base: {base!r} is evaluated from its own caches (caches:); a "
                                  f"trained setting cannot start from it")
            path = (*chain, name)
            if base in path:
                cycle = [*path[path.index(base):], base]
                raise ConfigError(f"models.{name}.base: inheritance cycle {' -> '.join(cycle)}")
            merged = _merge(resolve(base, path), entry)
        else:
            merged = _merge({}, entry)
        resolved[name] = merged
        return merged

    for name in raw:
        if not is_external(raw[name]):
            resolve(name, ())
    out = {}
    for name in raw:  # config order, whatever order the bases were resolved in
        if is_external(raw[name]):
            out[name] = resolve_external(name, raw[name], config)
            continue
        entry = resolved[name]
        for key in ("dataset", "backbone"):
            if key not in entry:
                raise ConfigError(f"models.{name}: no {key!r} (neither set nor inherited through base:)")
        out[name] = {
            "dataset": entry["dataset"],
            "backbone": entry["backbone"],
            "params": entry.get("params", {}),
            "ic": entry.get("ic", dict(FINAL_IC)),
            "placement": entry.get("placement"),
            "task": entry.get("task"),  # None: the dataset's
            "static_baseline": entry.get("static_baseline"),  # None: its own static heads
            "training": {**config.get("training", {}), **entry.get("training", {})},
            "resources": entry.get("resources", {}),
        }
        # The fidelity preset fills what the config leaves unset, before anything reads the setting (its runs'
        # identity included): eebench.fidelity.
        key = f"models.{name}.fidelity" if "fidelity" in entry else "fidelity"
        try:
            preset = check_preset(entry.get("fidelity", config.get("fidelity", DEFAULT_PRESET)), key)
        except ValueError as error:
            raise ConfigError(str(error)) from None
        explicit = {"training": set(out[name]["training"]), "ic": set(entry.get("ic", {}))}
        apply_preset(out[name], explicit, preset, config)
        out[name]["fidelity"] = preset
    return out


def model_entry(config: dict[str, Any], model: str) -> dict[str, Any]:
    """One resolved entry (a copy of it alone: the DAG asks for one per job)."""
    return copy.deepcopy(resolved_read_only(config)[model])


def model_resources(config: dict[str, Any], model: str) -> dict[str, dict[str, Any]]:
    """A model entry's own per-rule ``resources`` ({} if none). Read for every job while the DAG is built, so
    only this part is copied, not every resolved entry."""
    return copy.deepcopy(resolved_read_only(config)[model]["resources"])


def network_settings(entry: dict[str, Any]) -> dict[str, Any]:
    """What ``eebench train --model`` takes: the network of a resolved model entry, and its task when it is not
    the dataset's (a softmax multi-label model: another loss, so other runs)."""
    settings = {key: entry[key] for key in ("backbone", "params", "ic", "placement")}
    if entry.get("task") is not None:
        settings["task"] = entry["task"]
    return settings


def plain_backbone(settings: dict[str, Any]) -> dict[str, Any]:
    """The network without ICs: the blocks and the backbone's own classifier (what phase 1 trains)."""
    return {**settings, "ic": dict(FINAL_IC), "placement": []}


def static_settings(settings: dict[str, Any], block: int, last_block: int) -> dict[str, Any]:
    """Paper A's static baseline at ``block``: the network truncated after it, with the classifier it has
    there. At the last block this is the plain backbone, so that run is shared with phase 1."""
    if block == last_block:
        return plain_backbone(settings)
    return {**settings, "placement": [block], "truncate_at": block}


def head_blocks(entry: dict[str, Any]) -> list[int]:
    """0-based block index of each head of a resolved model entry (the last is the final classifier)."""
    return list(_head_blocks(json.dumps(network_settings(entry), sort_keys=True)))


@functools.lru_cache(maxsize=256)
def _head_blocks(settings_json: str) -> tuple[int, ...]:
    entry = json.loads(settings_json)
    from eebench.models import ModelSpec
    from eebench.models import head_blocks as model_head_blocks

    # The heads depend on the backbone's blocks and the placement only, not on the data.
    spec = ModelSpec(backbone=entry["backbone"], backbone_params=entry["params"], input_shape=(3, 32, 32),
                     num_classes=2, ic=entry["ic"], placement=entry["placement"])
    return tuple(model_head_blocks(spec))


# Settings a single-loss run (phase 1, a static head) does not depend on: loss scaling weighs several heads'
# losses (eq. 2, 3), never eq. (1)'s one, and so do GPF's loss weights and the sum-or-mean over heads; gradient
# dominance (paper B §3.1) compares heads' gradients, and a single head's is trivially the total.
MULTI_HEAD_ONLY = ("loss_scaling", "gradient_dominance_every", "gpf_loss_weights", "head_loss_reduction")


def phase1_training(training: dict[str, Any]) -> dict[str, Any]:
    """The training settings a single-loss run (phase 1, a static head) depends on (see MULTI_HEAD_ONLY), so
    that settings differing only in those share it."""
    return {key: value for key, value in training.items() if key not in MULTI_HEAD_ONLY}


def _phase1_identity(entry: dict[str, Any]) -> str:
    keyed = {"dataset": entry["dataset"], "network": plain_backbone(network_settings(entry)),
             "training": phase1_training(entry["training"])}
    return json.dumps(keyed, sort_keys=True)


def phase1_owner(config: dict[str, Any], model: str) -> str:
    """The model whose ``backbone`` run ``model`` reuses: the first entry with the same phase-1 identity."""
    return _owners(_config_json(config))[0][model]


def static_baseline(config: dict[str, Any], model: str) -> str:
    """The model whose static heads (and plain backbone) are ``model``'s B_EE baseline: its ``static_baseline``
    entry, else itself. Paper A §4.1 trains "H distinct static models" per dataset and compares every early-exit
    variant of that dataset with them (README, readings)."""
    return resolved_read_only(config)[model]["static_baseline"] or model


def static_owner(config: dict[str, Any], model: str, block: int) -> str:
    """The model under whose name the static baseline of ``model`` at ``block`` (one of its heads' blocks) is
    trained: the first entry with the same phase-1 identity and the same classifier at that block."""
    return _owners(_config_json(config))[1][(model, block)]


@functools.lru_cache(maxsize=16)
def _owners(config_json: str) -> tuple[dict[str, str], dict[tuple[str, int], str]]:
    """Every model's phase-1 owner and every (model, head block)'s static owner, found in one pass in config
    order (input functions ask for them once per job while the DAG is built; a search per question was
    quadratic in the models: 15 of the paper suite's 25 s of planning)."""
    models = _resolve_models(config_json)
    phase1: dict[str, str] = {}
    static: dict[tuple[str, int], str] = {}
    first_phase1: dict[str, str] = {}
    first_static: dict[str, str] = {}
    for name, entry in models.items():
        if is_external(entry):  # trains nothing, so shares nothing
            continue
        phase1_identity = _phase1_identity(entry)
        phase1[name] = first_phase1.setdefault(phase1_identity, name)
        blocks = head_blocks(entry)
        for block in blocks:
            network = static_settings(network_settings(entry), block, blocks[-1])
            identity = json.dumps({"phase1": phase1_identity, "network": network}, sort_keys=True)
            static[(name, block)] = first_static.setdefault(identity, name)
    return phase1, static


def describe_model(entry: dict[str, Any]) -> str:
    """A short human description of a resolved model setting, for captions and CSVs."""
    if is_external(entry):
        return (f"{entry['dataset']}, {entry['backbone']}, evaluated from its own logit caches (regime "
                f"{entry['caches']['regime']})")
    ic = entry["ic"]
    ic_text = ic["type"] + "".join(f" {k}={v}" for k, v in sorted(ic.items()) if k != "type")
    placement = "every block" if entry["placement"] is None else f"blocks {entry['placement']}"
    text = f"{entry['dataset']}, {entry['backbone']}, {ic_text} ICs after {placement}"
    scaling = entry["training"].get("loss_scaling")
    if scaling not in (None, "constant", {"type": "constant"}):
        name = scaling if isinstance(scaling, str) else " ".join(
            [scaling["type"], *(f"{k}={v}" for k, v in sorted(scaling.items()) if k != "type")])
        text += f", {name} loss scaling"
    if entry.get("fidelity", DEFAULT_PRESET) != DEFAULT_PRESET:
        text += f", fidelity preset {entry['fidelity']}"
    return text


# Exit criteria ---------------------------------------------------------------------------------------------


def criterion_setting(config: dict[str, Any], name: str) -> tuple[str, dict[str, Any]]:
    """The registered criterion and parameters a criterion name stands for: an entry under ``criteria:``
    (``{criterion: <registered>, <its parameters>}``), else a registered criterion with its defaults."""
    entry = config.get("criteria", {}).get(name)
    if entry is None:
        return name, {}
    return entry["criterion"], {key: value for key, value in entry.items() if key != "criterion"}


def analysis_settings(config: dict[str, Any], name: str) -> dict[str, Any]:
    """An analysis's settings: its defaults (``parameters`` of eebench.analysis.layers for a per-layer analysis,
    of eebench.analysis.checkpoint for a whole-model one) updated by the config's ``analysis.<name>`` (one
    setting per analysis and config: it is not in the result path)."""
    from eebench.analysis import checkpoint, layers

    module = checkpoint if name in checkpoint.CHECKPOINT_ANALYSES else layers
    return {**module.parameters(name), **config.get("analysis", {}).get(name, {})}


def criterion_names(config: dict[str, Any]) -> list[str]:
    """Every criterion name a table or figure may use: the registered ones and the config's named settings."""
    return [*registries()["criterion"].names(), *config.get("criteria", {})]


def model_task(config: dict[str, Any], model: dict[str, Any]) -> str:
    """The task a resolved model entry trains for: its own ``task``, else its dataset's (an external entry's:
    its caches')."""
    from eebench.data import DATASETS

    if is_external(model):
        return external_task(model)
    return model.get("task") or DATASETS.get(dataset_loader(config, model["dataset"])).task
