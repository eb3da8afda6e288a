"""The config's JSON schema and the one-line check against it.

workflow/schemas/config.schema.yaml is the skeleton: the top-level keys, the shared definitions and the sections'
shapes. Each registered entry's part (a loader's, a backbone's, an IC type's, a criterion's, a table or figure
kind's parameters) is generated from the parameters its code declares (eebench.declare), so a parameter, its type,
default and description are written once. :func:`schema` is the composed whole; ``eebench schema`` prints it.
"""
from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import yaml

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"

# libyaml's parser where PyYAML was built with it (several times faster; the same safe subset).
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class ConfigError(ValueError):
    pass


def schema() -> dict[str, Any]:
    """The config schema (a copy: callers may change it)."""
    return copy.deepcopy(_schema())


@functools.lru_cache(maxsize=1)
def _schema() -> dict[str, Any]:
    # Composed once per process: DAG building checks every model entry against a part of it.
    with open(SCHEMA_PATH) as handle:
        composed = yaml.load(handle, Loader=YAML_LOADER)
    for name, part in generated_definitions().items():
        composed["$defs"][name] = {**composed["$defs"].get(name, {}), **part}
    return composed


def schema_text() -> str:
    """The composed schema as YAML (``eebench schema``): for an editor's completion, or for snakemake.utils.validate,
    which reads a file."""
    return yaml.safe_dump(_schema(), sort_keys=False, allow_unicode=True, width=120)


def generated_definitions() -> dict[str, dict[str, Any]]:
    """The schema's parts generated from the code, by ``$defs`` name: each registry's names (the enums the
    skeleton describes) and each registered entry's parameters, from their declarations (eebench.declare)."""
    from eebench.analysis import analysis_schema
    from eebench.data import dataset_params_schema
    from eebench.exits.criteria import criterion_setting_schema
    from eebench.models.backbones import backbone_params_schema
    from eebench.models.heads import ic_schema
    from eebench.render.keys import schema_defs as render_schema_defs
    from eebench.training.config import training_schema
    from eebench.training.scaling import loss_scaling_schema

    names = {kind: registry.names() for kind, registry in registries().items()}
    return {
        "loader_name": {"enum": names["dataset"]},
        "backbone_name": {"enum": names["backbone"]},
        "regime_name": {"enum": names["regime"]},
        "criterion_name": {"enum": names["criterion"]},
        "dataset_params": dataset_params_schema(),
        **backbone_params_schema(),  # backbone_params, resnet_params
        "ic": ic_schema(),
        "criterion_setting": criterion_setting_schema(),
        "analysis": analysis_schema(),
        "training": training_schema(),
        "loss_scaling": loss_scaling_schema(),
        **render_schema_defs(),  # table_base, table, figure
    }


def model_rules() -> list[str]:
    """The workflow rules whose resources a model entry may set (``models.<name>.resources``)."""
    return list(_schema()["$defs"]["model"]["properties"]["resources"]["properties"])


def require_registered(kind: str, name: Any, key: str) -> None:
    """A ConfigError naming ``key`` unless ``name`` is registered in the registry of ``kind``."""
    registry = registries()[kind]
    if name not in registry:
        raise ConfigError(f"{key}: unknown {kind} {name!r}; choose one of: {', '.join(registry.names())}")


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


def check_against(value: Any, definition: str, key: str) -> None:
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


def short_repr(value: Any) -> str:
    import reprlib

    short = reprlib.Repr()
    short.maxstring, short.maxother, short.maxlist, short.maxdict, short.maxlevel = 60, 60, 6, 4, 2
    return short.repr(value)


def type_name(value: Any) -> str:
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
        return f"{prefix}unknown value {short_repr(instance)}; choose one of: {', '.join(map(str, value))}"
    if error.validator == "type":
        types = value if isinstance(value, list) else [value]
        expected = " or ".join(_TYPE_NAMES.get(kind, kind) for kind in types)
        return f"{prefix}expected {expected}, got {short_repr(instance)} ({type_name(instance)})"
    if error.validator in ("oneOf", "anyOf"):
        forms = "; ".join(_describe(part) for part in value)
        matches = "more than one" if error.validator == "oneOf" and not error.context else "none"
        return f"{prefix}{short_repr(instance)} matches {matches} of the allowed forms: {forms}"
    message = error.message.replace(repr(instance), short_repr(instance))
    if error.validator in ("pattern", "propertyNames") and "description" in error.schema:
        message += f" ({error.schema['description'].rstrip('.')})"
    if len(message) > 300:
        message = message[:297] + "..."
    return prefix + message
