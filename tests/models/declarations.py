"""A check shared by the tests of the registries whose config schema is generated (eebench.declare): each
generated default is the default in the declaring signature."""
from __future__ import annotations

import inspect
import json
import typing

from eebench.declare import PresetDefault, Unset, declared_parameters


def assert_defaults_are_the_signatures(registry) -> None:
    """For every entry of ``registry``: a parameter with a default in its signature has that default in the
    generated schema (as JSON: tuples are lists), unless a fidelity preset fills it or it is ``Unset`` (no
    schema default: validation fills nothing in); a parameter without one is required."""
    for name in registry.names():
        declared = registry.declared(name)
        schema = registry.parameters_schema(name)
        target = declared if inspect.isclass(declared) else inspect.unwrap(declared)
        hints = typing.get_type_hints(target, include_extras=True)
        parameters = declared_parameters(declared)
        assert list(schema["properties"]) == list(parameters), name
        for key, parameter in parameters.items():
            unfilled = any(isinstance(item, (PresetDefault, Unset)) for item in getattr(hints[key], "__metadata__", ()))
            if parameter.default is inspect.Parameter.empty:
                assert key in schema.get("required", []), (name, key)
            elif unfilled:
                assert "default" not in schema["properties"][key], (name, key)
            else:
                assert key not in schema.get("required", []), (name, key)
                assert schema["properties"][key]["default"] == json.loads(json.dumps(parameter.default)), (name, key)
