"""The config keys of table and figure entries, declared once, and the config schema's parts generated from them.

Every kind's own keys are the keyword-only parameters of its registered function (eebench.declare; a budget-table
kind's layout builder). The keys every entry takes besides its kind's own are declared here: :class:`TableKeys`
and :class:`FigureKeys` (the workflow's: caption, label, what it regenerates, the seeds it reads) and
:class:`TableBase` (those of every budget-table kind, which its engine reads). :func:`schema_defs` returns the
config schema's ``$defs`` ``table``, ``table_base`` and ``figure`` generated from the registries
(eebench.render.base): the kind enums and one branch per kind, with what a kind says about itself (its
description, and the constraints of :class:`eebench.render.base.Kind`).

Two readings of a declaration, both for the keys an entry may leave out: a parameter whose default is None has no
default in the schema and does not take null (the key is absent, e.g. a figure's ``title``, a table's
``budgets``, where the top-level budgets apply); and a config definition a type refers to inside a list or a
mapping is :class:`ItemRef` (pydantic resolves a ``$ref`` itself, so :class:`eebench.declare.Ref` marks a whole
parameter only).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Annotated, Any, Callable

from pydantic import ConfigDict, Field
from typing_extensions import TypedDict

from eebench.declare import ItemRef, Param, Ref, declared_parameters, parameters_schema
from eebench.render.base import FIGURES, TABLES, Kind

__all__ = ["TableKeys", "TableBase", "FigureKeys", "schema_defs", "table_schema",
           "figure_schema"]

# Values the kinds share, each the config schema's definition: inside a list or a mapping (an ItemRef) ...
Name = Annotated[str, ItemRef("name")]
CriterionName = Annotated[str, ItemRef("criterion_ref")]
RegimeName = Annotated[str, ItemRef("regime_name")]
MetricName = Annotated[str, ItemRef("metric_name")]
# ... or a whole parameter (a Ref; a kind adds its own description with Param).
Model = Annotated[str, Ref("name")]
Criterion = Annotated[str, Ref("criterion_ref")]
Regime = Annotated[str, Ref("regime_name")]
Regimes = Annotated[list[str], Ref("regimes")]
Metric = Annotated[str, Ref("metric_name")]
LabelledModels = Annotated[list[dict[str, Any]], Ref("labelled_models")]
Rule = Annotated[str, Ref("budget_rule")]
Title = Annotated[str | None, Param("Figure title.")]


# The keys every entry takes ----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class TableKeys:
    """The keys of every table entry besides its kind's own: the workflow's (eebench.render.spec), which gives the
    renderer the caption with what the table regenerates and its setting appended, and the label."""

    kind: Annotated[str, Param("Registry name of the table kind.")]
    caption: Annotated[str | None, Param(
        "LaTeX caption (default: the kind's); a sentence naming what the table regenerates and its setting is "
        "appended, and for a budget table one stating the budget rule and one naming the settings shown.")] = None
    regenerates: Annotated[str | list[str] | None, Ref("regenerates")] = None
    label: Annotated[str | None, Param("LaTeX label (default: tab:<name>).")] = None


class PaperMatch(TypedDict, total=False):
    # How a table's labels name the values of the paper's table it regenerates (eebench.acceptance.PaperMatch);
    # no docstring: pydantic would make it the description, and it would replace paper_match's own.
    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]
    setting: Annotated[str, Param("The paper's setting every cell of this table belongs to (e.g. \"ViT-S "
                                  "IN-1k\", a block of paper B Table 1).", min_length=1)]
    labels: Annotated[dict[str, Annotated[str, Field(min_length=1)]], Param(
        "Our label (a row, block or column-group label, or a budget header, as this table prints it) -> the "
        "paper's.")]


@dataclass(frozen=True, kw_only=True)
class TableBase:
    """The keys every budget-table kind takes besides its layout's own (eebench.render.budget_tables): the runs'
    regimes and criterion, the metric in the cells, and how the budgets are read."""

    rule: Rule = "best"
    budgets: Annotated[list[float] | None, Ref("budgets"), Param(
        "This table's budgets (default: the top-level budgets); paper B Tables 4, 11, 18 print 35%.")] = None
    metric: Annotated[Metric, Param("Performance measure in the cells.")] = "accuracy"
    criterion: Annotated[Criterion, Param("Exit criterion whose sweeps the budgets read.")]
    regimes: Regimes
    paper_match: Annotated[PaperMatch | None, Param(
        "Where this table's labels do not name the values of the paper's table it regenerates "
        "(eebench.acceptance: at scale paper each cell is shown beside the paper's value; a cell matches the value "
        "whose setting and row hold the same words as its labels, under the same budget header): how they do. "
        "Checked when the workflow loads, an error naming the key.")] = None


@dataclass(frozen=True, kw_only=True)
class FigureKeys:
    """The keys of every figure entry besides its kind's own: the workflow's (eebench.render.spec, eebench.targets):
    the paper body's caption and width, and the seeds whose runs it reads."""

    kind: Annotated[str, Param("Registry name of the figure kind.")]
    regenerates: Annotated[str | list[str] | None, Ref("regenerates")] = None
    caption: Annotated[str | None, Param(
        "LaTeX caption in the regenerated paper (paper/body.tex; default: the kind's); a sentence naming what the "
        "figure regenerates and its setting is appended.")] = None
    width: Annotated[float, Param("Width in the regenerated paper, as a fraction of the text width.", gt=0,
                                  le=1)] = 1.0
    seeds: Annotated[list[int] | None, Ref("figure_seeds")] = None


# The generated schema ----------------------------------------------------------------------------------------

ONE_SEED = "The one seed whose runs are shown (Kind.one_seed: the figure draws one run per model)."


def _resolved(schema: dict[str, Any], declared: Callable) -> dict[str, Any]:
    """A generated object schema as the config takes it: :class:`ItemRef` placeholders as ``$ref``, and a
    parameter whose default is None without default and without null (the config leaves the key out)."""
    schema = copy.deepcopy(schema)
    absent = [name for name, parameter in declared_parameters(declared).items() if parameter.default is None]
    for name in absent:
        prop = schema["properties"][name]
        prop.pop("default", None)
        if isinstance(prop.get("type"), list):
            types = [type_ for type_ in prop["type"] if type_ != "null"]
            prop["type"] = types[0] if len(types) == 1 else types
        if "enum" in prop:
            prop["enum"] = [value for value in prop["enum"] if value is not None]
        if "anyOf" in prop:
            prop["anyOf"] = [option for option in prop["anyOf"] if option != {"type": "null"}]
            if len(prop["anyOf"]) == 1:
                prop.update(prop.pop("anyOf")[0])
    return schema


def _keys(declared: Callable) -> dict[str, Any]:
    """The object schema of ``declared``'s keyword-only parameters (:func:`_resolved`)."""
    return _resolved(parameters_schema(declared), declared)


def _own(registry, name: str) -> dict[str, Any]:
    """Kind ``name``'s own keys: its declaration's schema, described by its docstring."""
    return _resolved(registry.parameters_schema(name), registry.declared(name))


def _branch(name: str, then: dict[str, Any]) -> dict[str, Any]:
    return {"if": {"properties": {"kind": {"const": name}}}, "then": then}


def _one_of(kind: Kind) -> dict[str, Any]:
    """Exactly one key of each of the kind's ``one_of`` groups."""
    groups = [{"oneOf": [{"required": [key]} for key in group]} for group in kind.one_of]
    if len(groups) > 1:
        return {"allOf": groups}
    return groups[0] if groups else {}


def table_schema() -> dict[str, dict[str, Any]]:
    """``$defs`` ``table_base`` (the keys of every budget-table kind) and ``table`` (the kind enum and one branch
    per kind: a budget-table kind's own keys over ``table_base``, another kind's over :class:`TableKeys`)."""
    keys = _keys(TableKeys)
    base = _keys(TableBase)
    table_base = {"type": "object", "required": ["kind", *base["required"]],
                  "properties": {**keys["properties"], **base["properties"]}}
    branches = []
    for name in TABLES.names():
        own = _own(TABLES, name)
        then: dict[str, Any] = {"description": own["description"]}
        if hasattr(TABLES.get(name), "layout"):
            then["allOf"] = [{"$ref": "#/$defs/table_base"}]
            properties = own["properties"]
        else:
            properties = {**keys["properties"], **own["properties"]}
        if own.get("required"):
            then["required"] = own["required"]
        then.update(properties=properties, unevaluatedProperties=False, **_one_of(TABLES.get(name).kind))
        branches.append(_branch(name, then))
    table = {"type": "object", "required": ["kind"],
             "properties": {"kind": {"enum": TABLES.names(), "description": keys["properties"]["kind"]["description"]}},
             "allOf": branches}
    return {"table_base": table_base, "table": table}


def figure_schema() -> dict[str, dict[str, Any]]:
    """``$defs`` ``figure``: the kind enum and one branch per kind, its own keys beside :class:`FigureKeys`."""
    keys = _keys(FigureKeys)["properties"]
    seeds = keys.pop("seeds")
    branches = []
    for name in FIGURES.names():
        kind = FIGURES.get(name).kind
        own = _own(FIGURES, name)
        required = ["kind", *own.get("required", [])]
        if kind.one_seed:
            seeds_of_kind = {"allOf": [seeds], "maxItems": 1, "description": ONE_SEED}
            required.append("seeds")
        then = {"description": own["description"], "additionalProperties": False, "required": required,
                **_one_of(kind),
                "properties": {**keys, **own["properties"], "seeds": seeds_of_kind if kind.one_seed else seeds}}
        branches.append(_branch(name, then))
    return {"figure": {"type": "object", "required": ["kind"],
                       "properties": {"kind": {"enum": FIGURES.names(), "description": keys["kind"]["description"]}},
                       "allOf": branches}}


def schema_defs() -> dict[str, dict[str, Any]]:
    """The config schema's ``$defs`` generated from the table and figure kinds: ``table_base``, ``table``,
    ``figure``."""
    return {**table_schema(), **figure_schema()}

