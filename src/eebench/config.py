"""The experiment a config describes: named datasets, named model settings (variants), tables and figures.

The JSON schema (workflow/schemas/config.schema.yaml) checks the shape of the raw config. This module does
what a schema cannot: it resolves ``base:`` inheritance between model entries, checks names against the
registries and cross references between sections, validates each resolved entry against the part of the
schema that applies to it (a backbone's parameters, a loader's parameters), and decides which runs two model
settings share. Every error names the offending key.

Sharing (the identity of a run is its settings, not its name):
- the phase-1 (``backbone`` regime) run depends on the dataset, the backbone and its parameters and the
  training settings, never on the ICs (the plain backbone is trained without them), so variants that differ
  only in their ICs or placement share it;
- a static head (paper A's baseline) is the backbone truncated after one block plus the classifier there, so
  it is shared between variants whose classifier at that block is identical.
The run of a shared setting lives under the name of the FIRST model entry (in config order) that has it:
adding an entry never moves an existing run.
"""
from __future__ import annotations

import copy
import functools
import inspect
import json
import shlex
from pathlib import Path
from typing import Any, Callable, Iterator

import yaml

from eebench.fidelity import DEFAULT_PRESET, apply_preset, check_preset

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"
# Keys of a model entry merged key by key with its base's; every other key replaces the base's value whole
# (an `ic` of another type must not inherit the old type's parameters).
MERGED_MODEL_KEYS = ("params", "training")
FINAL_IC = {"type": "linear"}  # the backbone's own classifier after the last block


class ConfigError(ValueError):
    pass


# libyaml's parser where PyYAML was built with it (several times faster; the same safe subset).
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


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
        config = yaml.load(text, Loader=_YAML_LOADER)
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
        raise ConfigError(f"{path}: the top level is {_type_name(config)}, not a mapping of keys (seeds:, datasets:, "
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


def schema() -> dict[str, Any]:
    """The config schema (a copy: callers may change it)."""
    return copy.deepcopy(_schema())


@functools.lru_cache(maxsize=1)
def _schema() -> dict[str, Any]:
    # Read once per process: DAG building checks every model entry against a part of it.
    with open(SCHEMA_PATH) as handle:
        return yaml.load(handle, Loader=_YAML_LOADER)


def registries() -> dict[str, Any]:
    """Every registry a config refers to, by the kind of name it holds."""
    from eebench.data import DATASETS
    from eebench.exits.criteria import CRITERIA
    from eebench.models import BACKBONES, IC_TYPES
    from eebench.render.figures import FIGURES
    from eebench.render.tables import TABLES
    from eebench.training import REGIMES
    from eebench.claims import CLAIMS
    from eebench.tasks import TASKS
    from eebench.training.scaling import SCALINGS
    from eebench.analysis.information import MI_ESTIMATORS
    from eebench.analysis.layers import LAYER_ANALYSES
    from eebench.analysis.checkpoint import CHECKPOINT_ANALYSES

    return {
        "dataset": DATASETS, "backbone": BACKBONES, "ic": IC_TYPES, "regime": REGIMES,
        "criterion": CRITERIA, "table": TABLES, "figure": FIGURES, "loss_scaling": SCALINGS,
        "claim": CLAIMS, "task": TASKS, "analysis": LAYER_ANALYSES, "mi_estimator": MI_ESTIMATORS,
        "checkpoint_analysis": CHECKPOINT_ANALYSES,
    }


def _require(kind: str, name: Any, key: str) -> None:
    registry = registries()[kind]
    if name not in registry:
        raise ConfigError(f"{key}: unknown {kind} {name!r}; choose one of: {', '.join(registry.names())}")


def _require_entry(config: dict, section: str, name: Any, key: str) -> None:
    if name not in config.get(section, {}):
        raise ConfigError(f"{key}: {name!r} is not configured under '{section}:' (configured: "
                          f"{', '.join(config.get(section, {})) or 'none'})")


def _check_against(value: Any, definition: str, key: str) -> None:
    """Validate ``value`` against ``$defs/<definition>`` of the config schema; errors name ``key``."""
    import jsonschema

    full = _schema()  # read only here
    part = {"$schema": full["$schema"], "$defs": full["$defs"], "$ref": f"#/$defs/{definition}"}
    validator = jsonschema.validators.validator_for(full)(part)
    error = jsonschema.exceptions.best_match(validator.iter_errors(value))
    if error is not None:
        where = ".".join([key, *map(str, error.absolute_path)])
        raise ConfigError(f"{where}: {error.message}")


# The schema check of a whole config -----------------------------------------------------------------------

# Plain words for JSON schema's types and the Python types YAML reads.
_TYPE_NAMES = {"array": "a list", "object": "a mapping", "string": "a string", "integer": "an integer",
               "number": "a number", "boolean": "a boolean", "null": "null", "list": "a list", "dict": "a mapping",
               "str": "a string", "int": "an integer", "float": "a number", "bool": "a boolean", "NoneType": "null"}


@functools.lru_cache(maxsize=1)
def _defaults_validator():
    """The config schema's validator that fills in defaults as it goes, as ``snakemake.utils.validate`` does (the
    recipe of jsonschema's FAQ): wherever a ``properties`` keyword is evaluated, a property with a ``default`` that
    the mapping lacks is set to it. The workflow's rules read those defaults (and their params carry them, so
    the same defaults keep the same runs); each is a copy, so no two configs share one."""
    import jsonschema

    base = jsonschema.validators.validator_for(_schema())
    check_properties = base.VALIDATORS["properties"]

    def fill_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):  # Snakemake's fails with an AttributeError on a value of another type
            for name, subschema in properties.items():
                if "default" in subschema and name not in instance:
                    instance[name] = copy.deepcopy(subschema["default"])
        yield from check_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(base, {"properties": fill_defaults})(_schema())


def validate_schema(config: dict[str, Any]) -> None:
    """Check ``config`` against the JSON schema (workflow/schemas/config.schema.yaml) and fill in its defaults, in
    place; the first error (jsonschema's best match, an unknown key before the keys it leaves missing) raises a
    ConfigError of one line: the key path and what was expected."""
    from jsonschema.exceptions import best_match, by_relevance

    errors = list(_defaults_validator().iter_errors(config))
    # A key that failed inside an allOf (a table's `regimes`) counts as unevaluated too: that error only echoes it.
    errors = [error for error in errors if _unknown_keys(error) != []] or errors
    relevance = by_relevance(strong=frozenset({"additionalProperties", "unevaluatedProperties"}))
    error = best_match(errors, key=relevance)
    if error is not None:
        raise ConfigError(schema_message(error))


def _key_path(parts) -> str:
    """``models.cnn.training.lr``, ``budgets[2]``."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


def _short(value: Any) -> str:
    import reprlib

    short = reprlib.Repr()
    short.maxstring, short.maxother, short.maxlist, short.maxdict, short.maxlevel = 60, 60, 6, 4, 2
    return short.repr(value)


def _type_name(value: Any) -> str:
    return _TYPE_NAMES.get(type(value).__name__, type(value).__name__)


def _deref(subschema: dict[str, Any]) -> dict[str, Any]:
    """A subschema with its local ``$ref`` (``#/$defs/...``, the only kind the config schema has) followed."""
    while "$ref" in subschema and subschema["$ref"].startswith("#/"):
        target = _schema()
        for part in subschema["$ref"][2:].split("/"):
            target = target[part]
        subschema = {**target, **{k: v for k, v in subschema.items() if k != "$ref"}}
    return subschema


def _known_keys(subschema: dict[str, Any]) -> set[str]:
    """The keys a mapping schema names: its ``properties`` and those of the schemas it combines with ``allOf``."""
    subschema = _deref(subschema)
    keys = set(subschema.get("properties", {}))
    for part in subschema.get("allOf", []):
        keys |= _known_keys(part)
    return keys


def _describe(subschema: dict[str, Any]) -> str:
    """What a schema asks for, in a few words (for the alternatives of a oneOf/anyOf)."""
    subschema = _deref(subschema)
    if "const" in subschema:
        return repr(subschema["const"])
    if "enum" in subschema:
        return "one of " + ", ".join(map(str, subschema["enum"]))
    if "type" in subschema:
        types = subschema["type"] if isinstance(subschema["type"], list) else [subschema["type"]]
        return " or ".join(_TYPE_NAMES.get(kind, kind) for kind in types)
    if "required" in subschema:
        return "a mapping with " + ", ".join(map(repr, subschema["required"]))
    return "another form"


def _unknown_keys(error) -> list[str] | None:
    """The keys an unknown-key error (additionalProperties, unevaluatedProperties) is about that its schema does not
    name; None for another error."""
    if error.validator not in ("additionalProperties", "unevaluatedProperties") or not isinstance(error.instance, dict):
        return None
    known = _known_keys(error.schema)
    return [key for key in error.instance if key not in known]


def schema_message(error) -> str:
    """One line for a jsonschema ValidationError: the key path and what was expected, never the schema."""
    path, instance, value = list(error.absolute_path), error.instance, error.validator_value
    where = _key_path(path)
    unknown = _unknown_keys(error)
    if unknown:
        import difflib

        known = sorted(_known_keys(error.schema))
        close = difflib.get_close_matches(str(unknown[0]), known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        others = f" (also unknown: {', '.join(map(str, unknown[1:]))})" if unknown[1:] else ""
        return (f"{_key_path([*path, unknown[0]])}: unknown key{hint}{others} ({where or 'the top level'} takes: "
                f"{', '.join(known)})")
    if error.validator == "required" and isinstance(instance, dict):
        missing = [key for key in value if key not in instance]
        if missing:
            return f"{_key_path([*path, missing[0]])}: missing (a required key)"
    prefix = f"{where}: " if where else ""
    if error.validator == "enum":
        return f"{prefix}unknown value {_short(instance)}; choose one of: {', '.join(map(str, value))}"
    if error.validator == "type":
        types = value if isinstance(value, list) else [value]
        expected = " or ".join(_TYPE_NAMES.get(kind, kind) for kind in types)
        return f"{prefix}expected {expected}, got {_short(instance)} ({_type_name(instance)})"
    if error.validator in ("oneOf", "anyOf"):
        forms = "; ".join(_describe(part) for part in value)
        matches = "more than one" if error.validator == "oneOf" and not error.context else "none"
        return f"{prefix}{_short(instance)} matches {matches} of the allowed forms: {forms}"
    message = error.message.replace(repr(instance), _short(instance))
    if error.validator in ("pattern", "propertyNames") and "description" in error.schema:
        message += f" ({error.schema['description'].rstrip('.')})"
    if len(message) > 300:
        message = message[:297] + "..."
    return prefix + message


# Datasets --------------------------------------------------------------------------------------------------


def dataset_loader(config: dict[str, Any], dataset: str) -> str:
    """The registered loader of a named dataset entry (by default the entry's own name)."""
    return config["datasets"][dataset].get("loader", dataset)


def dataset_params(config: dict[str, Any], dataset: str) -> dict[str, Any]:
    return {key: value for key, value in config["datasets"][dataset].items() if key != "loader"}


# Suites ----------------------------------------------------------------------------------------------------

DEFAULT_BUDGETS = [0.25, 0.5, 0.75, 1.0]  # the schema's default of the top-level `budgets`
# Rules whose jobs carry a model setting, so a model entry may set their resources (models.<name>.resources).
MODEL_RULES = ("train_model", "train_static_head", "connect_modes", "map_loss_landscape")


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
    if "include" not in config:
        return config
    paths = config["include"]
    if not isinstance(paths, list) or not paths or not all(isinstance(path, str) for path in paths):
        raise ConfigError(f"include: expected a list of config files, got {_short(paths)} ({_type_name(paths)})")
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
    if "base" not in entry:
        entry["training"] = {**part.get("training", {}), **entry.get("training", {})}
        if "fidelity" in part:  # else the suite's (or the default) applies, as to a file alone
            entry.setdefault("fidelity", part["fidelity"])
        resources = part.get("resources", {})
        own = entry.get("resources", {})
        entry["resources"] = {rule: {**resources.get("default", {}), **resources.get(rule, {}), **own.get(rule, {})}
                              for rule in MODEL_RULES}
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
    return copy.deepcopy(_resolved(config))


def _resolved(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
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
        resolve(name, ())
    out = {}
    for name in raw:  # config order, whatever order the bases were resolved in
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
    return copy.deepcopy(_resolved(config)[model])


def model_resources(config: dict[str, Any], model: str) -> dict[str, dict[str, Any]]:
    """A model entry's own per-rule ``resources`` ({} if none). Read for every job while the DAG is built, so
    only this part is copied, not every resolved entry."""
    return copy.deepcopy(_resolved(config)[model]["resources"])


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
    return _resolved(config)[model]["static_baseline"] or model


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
        _require("criterion", entry.get("criterion"), f"{key}.criterion")
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


# Tables and figures ----------------------------------------------------------------------------------------


def renderer(section: str, kind: str):
    from eebench.render import FIGURES, TABLES

    return {"tables": TABLES, "figures": FIGURES}[section].get(kind)


def render_spec(config: dict[str, Any], section: str, name: str) -> dict[str, Any]:
    """A table or figure entry as its renderer takes it: every key but ``kind``; for kinds that read budgets
    or sweeps, ``rule`` and ``budgets`` with their defaults; and a description of every model it shows."""
    from eebench.render.paper import caption_with_provenance, regenerates

    entry = dict(config[section][name])
    entry.pop("kind")
    entry.pop("seeds", None)  # the workflow's: which result files the renderer is given
    entry.pop("regenerates", None)
    if section == "tables":  # the caption names what the table regenerates and its setting (issue 13)
        entry["caption"] = caption_with_provenance(entry.get("caption", ""), regenerates(config[section][name]),
                                                   setting_of(config, section, name))
        entry["label"] = table_label(config, name)
    else:  # a figure's caption and width are the paper body's (eebench.render.paper), not the plot's
        entry.pop("caption", None)
        entry.pop("width", None)
    render = renderer(section, config[section][name]["kind"])
    takes = inspect.signature(render).parameters
    if render.reads == "budgets" or "rule" in takes:  # tables' engine reads both; figures that take them
        entry.setdefault("rule", "best")
    if render.reads == "budgets" or "budgets" in takes:
        entry.setdefault("budgets", list(config.get("budgets", [0.25, 0.5, 0.75, 1.0])))
    if "criterion_setting" in takes:  # a renderer that scores logits itself needs the criterion's parameters
        registered, params = criterion_setting(config, entry.get("criterion", "confidence"))
        entry["criterion_setting"] = {"criterion": registered, "params": params}
    models = _resolved(config)  # read only
    shown = dict.fromkeys(run.model for run in render_runs(config, section, name))
    entry["model_descriptions"] = {model: describe_model(models[model]) for model in shown}
    return entry


def table_label(config: dict[str, Any], name: str) -> str:
    """The table's LaTeX label: its ``label``, else ``tab:<name>`` (the paper body refers to every table)."""
    return config["tables"][name].get("label") or f"tab:{name}"


def setting_of(config: dict[str, Any], section: str, name: str) -> str:
    """Where a table or figure was run, for its caption: the datasets and backbones of the models it shows, the
    config's ``scale`` and the fidelity presets of those models."""
    from eebench.render.paper import setting

    models = _resolved(config)  # read only
    shown = [models[model] for model in dict.fromkeys(run.model for run in render_runs(config, section, name))]
    return setting(list(dict.fromkeys(entry["dataset"] for entry in shown)),
                   list(dict.fromkeys(entry["backbone"] for entry in shown)), config.get("scale", "miniature"),
                   list(dict.fromkeys(entry["fidelity"] for entry in shown)))


def render_runs(config: dict[str, Any], section: str, name: str):
    spec = config[section][name]
    return renderer(section, spec["kind"]).runs(spec)


def iter_render_entries(config: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for section in ("tables", "figures"):
        for name, spec in config.get(section, {}).items():
            yield section, name, spec


# Checks ----------------------------------------------------------------------------------------------------


def prepare_config(config: dict[str, Any]) -> None:
    """Everything the workflow does to a config before it plans a job, in place; workflow/rules/common.smk and
    ``eebench check-config`` both call this, so they cannot disagree. In order:

    1. a suite's ``include:`` files, each read and checked against the schema as it is alone, merged into one
       experiment (expand_includes);
    2. the JSON schema: unknown keys, types, ranges, names; its defaults are filled in (validate_schema);
    3. what the schema cannot see: ``base:`` inheritance, registry names, cross references between sections,
       dataset roots and model files on disk, each table's paper_match (check_config).

    Raises ConfigError, one line naming the key (and the file, for an included file)."""

    def check_file(part: dict[str, Any], path: str) -> None:
        try:
            validate_schema(copy.deepcopy(part))  # the file's own defaults are not the suite's
        except ConfigError as error:
            raise ConfigError(f"include: {path}: {error}") from None

    expanded = expand_includes(config, check_file)
    if expanded is not config:
        config.clear()
        config.update(expanded)
    validate_schema(config)
    check_config(config)


def checked_config(*paths: str | Path) -> dict[str, Any]:
    """The config the workflow would run for ``snakemake --configfile PATH...`` (several files merged as Snakemake
    merges them), read and checked as the workflow checks it (prepare_config)."""
    config = load_config(paths[0])
    for path in paths[1:]:
        config = update_config(config, load_config(path))
    prepare_config(config)
    return config


def check_config(config: dict[str, Any]) -> None:
    """Everything the schema cannot check; raises ConfigError naming the key."""
    from eebench.data.core import parameters
    from eebench.training.scaling import GPF_AUTHORS_SCALINGS, loss_scaling, scaling_name

    for name, params in config.get("datasets", {}).items():
        loader = params.get("loader", name)
        _require("dataset", loader, f"datasets.{name}.loader" if "loader" in params else f"datasets.{name}")
        _check_against(dataset_params(config, name), f"dataset_params/properties/{loader}", f"datasets.{name}")
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
        _require_entry(config, "datasets", entry["dataset"], f"{key}.dataset")
        _require("backbone", entry["backbone"], f"{key}.backbone")
        _check_against(entry["params"], f"backbone_params/properties/{entry['backbone']}", f"{key}.params")
        # Pre-trained weights and model directories are never downloaded: a missing one fails here.
        for param, exists in (("weights", Path.is_file), ("model_dir", Path.is_dir)):
            path = entry["params"].get(param)
            if path is not None and not exists(Path(path)):
                raise ConfigError(f"{key}.params.{param}: {path} does not exist (resolved from {Path.cwd()}); "
                                  f"it is read from disk only, never downloaded")
        _require("ic", entry["ic"].get("type"), f"{key}.ic.type")
        _require_task_fits(config, entry, key)
        _require_static_baseline_fits(models, name, key)
        _check_against(entry["training"], "training", f"{key}.training")
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
        _require(section[:-1], spec.get("kind"), f"{key}.kind")
        _require_paper_items(spec, f"{key}.regenerates")
        # A kind that reads what only some networks allow (mode connectivity: a permutation spec) says so.
        check_model = getattr(renderer(section, spec["kind"]), "check_model", None)
        for run in render_runs(config, section, name):
            _require_entry(config, "models", run.model, f"{key}: model")
            if check_model is not None:
                try:
                    check_model(models[run.model])
                except ValueError as error:
                    raise ConfigError(f"{key}: model {run.model!r}: {error}") from None
            if renderer(section, spec["kind"]).reads == "bee" and _has_merge(models[run.model]):
                raise ConfigError(f"{key}: model {run.model!r} has {models[run.model]['ic']['type']} ICs, whose "
                                  f"logits combine every IC's output: no static per-head baseline, so no B_EE")
            _require("regime", run.regime, f"{key}: regime")
            if run.versus:
                _require("regime", run.versus, f"{key}: regime")
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
    from eebench.acceptance import check_paper_matches

    check_paper_matches(config)  # each table's cells against the paper's values it is compared with (paper_match)


def model_task(config: dict[str, Any], model: dict[str, Any]) -> str:
    """The task a resolved model entry trains for: its own ``task``, else its dataset's."""
    from eebench.data import DATASETS

    return model.get("task") or DATASETS.get(dataset_loader(config, model["dataset"])).task


def _require_task_fits(config: dict[str, Any], model: dict[str, Any], key: str) -> None:
    """A model's own task must read the labels its dataset has (softmax or sigmoid heads on multi-hot labels)."""
    from eebench.data import DATASETS
    from eebench.tasks import TASKS

    if model.get("task") is None:
        return
    _require("task", model["task"], f"{key}.task")
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

    _require("claim", check["claim"], f"{key}.claim")
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


def shell_json(obj: Any) -> str:
    """Settings as one shell word of compact JSON, quoted for the rule's shell command."""
    return shlex.quote(json.dumps(obj, sort_keys=True, separators=(",", ":")))
