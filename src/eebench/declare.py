"""Parameters declared once, where they are taken: a registered entry's keyword-only parameters, with their type
annotations, defaults and a one-line description, are the declaration, and the JSON schema of the entry's part of
the config is generated from them (eebench.schema composes the parts into the config schema).

A parameter declares itself as ``name: Annotated[type, Param("what it is", ge=1)] = default``: ``Param`` is
pydantic's ``Field`` (its constraints: ``ge``, ``gt``, ``le``, ``lt``, ``min_length``, ``max_length``,
``pattern``...), and pydantic turns the annotation into JSON schema. ``Ref("budgets")`` instead names one of the
config schema's shared definitions (``#/$defs/budgets``) that the parameter takes as it stands. Only
keyword-only parameters are config parameters; the positional ones are what the workflow passes (the logits,
the frame of numbers).
"""
from __future__ import annotations

import importlib
import inspect
import typing
from dataclasses import dataclass
from typing import Any, Callable

__all__ = ["Param", "Ref", "ItemRef", "Registered", "PresetDefault", "Unset", "item_refs", "parameters_schema", "declared_parameters", "entry_description"]


def Param(description: str, **constraints: Any):
    """A parameter's one-line description and constraints (pydantic's ``Field``; the default stays in the
    signature, where Python uses it)."""
    from pydantic import Field

    return Field(description=description, **constraints)


@dataclass(frozen=True)
class Ref:
    """A parameter whose schema is the config schema's shared definition ``#/$defs/<definition>``."""

    definition: str


@dataclass(frozen=True)
class PresetDefault:
    """Marks a parameter whose default the schema leaves out: a fidelity preset fills it where the config leaves it
    unset (eebench.readings), so the schema's default would hide which preset chose the value."""


@dataclass(frozen=True)
class Unset:
    """Marks a parameter whose Python default stands for the key left out (the shared definition's default, or a
    value the workflow fills, applies): the schema states no default, so validation fills nothing in."""


_ITEM_REF = "x-config-ref"  # the placeholder pydantic writes for an ItemRef, made a $ref by item_refs


@dataclass(frozen=True)
class ItemRef:
    """A value inside a list or a mapping that takes the config schema's ``#/$defs/<definition>``."""

    definition: str

    def __get_pydantic_json_schema__(self, core_schema: Any, handler: Any) -> dict[str, Any]:
        schema = {key: value for key, value in handler(core_schema).items() if key != "type"}
        return {**schema, _ITEM_REF: self.definition}


@dataclass(frozen=True)
class Registered:
    """A name registered in ``module``'s registry ``attribute`` (e.g. a claim): the schema's enum is the
    registry's names, read when the schema is generated (so this module imports no registry's providers)."""

    module: str
    attribute: str

    def __get_pydantic_json_schema__(self, core_schema: Any, handler: Any) -> dict[str, Any]:
        schema = {key: value for key, value in handler(core_schema).items() if key != "type"}
        return {**schema, "enum": getattr(importlib.import_module(self.module), self.attribute).names()}


def item_refs(schema: Any) -> Any:
    """A generated schema with each :class:`ItemRef` placeholder made the ``$ref`` it stands for."""
    if isinstance(schema, list):
        return [item_refs(value) for value in schema]
    if not isinstance(schema, dict):
        return schema
    schema = {key: item_refs(value) for key, value in schema.items()}
    if _ITEM_REF in schema:
        schema["$ref"] = f"#/$defs/{schema.pop(_ITEM_REF)}"
        schema.pop("type", None)  # pydantic's type of the annotated value (str): the definition says it
    return schema


def declared_parameters(function: Callable) -> dict[str, inspect.Parameter]:
    """The keyword-only parameters of ``function``, by name, in order: the config parameters it declares (a class:
    those of its constructor, e.g. a ``kw_only`` dataclass)."""
    return {name: parameter for name, parameter in inspect.signature(function).parameters.items()
            if parameter.kind is inspect.Parameter.KEYWORD_ONLY}


def entry_description(entry: Any) -> str:
    """An entry's description in the schema: the first paragraph of its docstring, on one line."""
    doc = inspect.getdoc(entry) or ""
    return " ".join(doc.split("\n\n")[0].split())


def parameters_schema(function: Callable, *, description: str | None = None,
                      extra: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The JSON schema of a mapping of ``function``'s keyword-only parameters: each one's type, constraints,
    description and default; the parameters without a default are required; no other key is allowed except the
    ``extra`` properties (given as schemas, e.g. the ``type`` key that selects the entry)."""
    hints = _hints(function)
    properties = dict(extra or {})
    required = []
    for name, parameter in declared_parameters(function).items():
        properties[name] = _property(hints.get(name, Any), parameter.default, f"{_qualname(function)}({name})")
        if parameter.default is inspect.Parameter.empty:
            required.append(name)
    schema: dict[str, Any] = {"type": "object", "additionalProperties": False}
    if description:
        schema["description"] = description
    if required:
        schema["required"] = required
    schema["properties"] = properties
    return schema


def _qualname(function: Callable) -> str:
    return f"{function.__module__}.{getattr(function, '__qualname__', function)}"


def _hints(function: Callable) -> dict[str, Any]:
    # Methods and decorated functions keep their module's globals, where the annotations' names resolve.
    target = function if inspect.isclass(function) else inspect.unwrap(function)
    return typing.get_type_hints(target, include_extras=True)


def _metadata(annotation: Any) -> tuple[Any, ...]:
    return getattr(annotation, "__metadata__", ())


def _property(annotation: Any, default: Any, where: str) -> dict[str, Any]:
    metadata = _metadata(annotation)
    ref = next((item for item in metadata if isinstance(item, Ref)), None)
    if ref is not None:
        schema: dict[str, Any] = {"$ref": f"#/$defs/{ref.definition}"}
        described = [item.description for item in metadata if getattr(item, "description", None)]
        if described:
            schema["description"] = described[-1]
    else:
        schema = _type_schema(annotation)
    if not schema.get("description") and ref is None:
        raise TypeError(f"{where}: declare a one-line description (Annotated[..., Param('...')])")
    if default is not inspect.Parameter.empty and not any(isinstance(item, (PresetDefault, Unset)) for item in metadata):
        schema["default"] = _jsonable(default)
    return schema


def _type_schema(annotation: Any) -> dict[str, Any]:
    from pydantic import TypeAdapter

    schema = TypeAdapter(annotation).json_schema()
    definitions = schema.pop("$defs", {})
    return item_refs(_clean(_inline(schema, definitions)))


def _inline(schema: Any, definitions: dict[str, Any]) -> Any:
    if isinstance(schema, dict):
        if "$ref" in schema and schema["$ref"].startswith("#/$defs/"):
            target = definitions[schema["$ref"].split("/")[-1]]
            schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        return {key: _inline(value, definitions) for key, value in schema.items()}
    if isinstance(schema, list):
        return [_inline(value, definitions) for value in schema]
    return schema


def _clean(schema: Any) -> Any:
    """pydantic's schema, shaped as a hand-written one: no titles; ``X | None`` as a type list (or an enum with
    null), so an error names the types allowed rather than "not valid under any of the given schemas"."""
    if isinstance(schema, list):
        return [_clean(value) for value in schema]
    if not isinstance(schema, dict):
        return schema
    schema = {key: _clean(value) for key, value in schema.items() if key != "title"}
    options = schema.get("anyOf")
    if options and {"type": "null"} in options and len(options) == 2:
        other = next(option for option in options if option != {"type": "null"})
        if "enum" in other or "const" in other:
            values = other.get("enum", [other.get("const")])
            merged = {k: v for k, v in other.items() if k not in ("enum", "const", "type")}
            schema = {**{k: v for k, v in schema.items() if k != "anyOf"}, **merged, "enum": [*values, None]}
        elif isinstance(other.get("type"), str) and "anyOf" not in other:
            schema = {**{k: v for k, v in schema.items() if k != "anyOf"}, **other, "type": [other["type"], "null"]}
    return schema


def _jsonable(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    return value

