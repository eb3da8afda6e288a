"""The budget-table kinds, in the layouts of paper B: each is one ``@table_kind`` function that builds its
:class:`~eebench.render.layouts.Layout` from its config entry, and the engine (eebench.render.layouts) fills it
from the per-run budget CSVs. A builder takes the keys every budget table takes (:class:`TableBase`: regimes,
criterion, metric...) and declares its own as keyword-only parameters (eebench.declare).
"""
from __future__ import annotations

import inspect
from typing import Annotated, Any, Callable, Mapping, Sequence

import pandas as pd
from pydantic import ConfigDict
from typing_extensions import NotRequired, TypedDict

from eebench.declare import Param
from eebench.render.base import TABLES, RunKey, kind, product_runs, reads, regime_label
from eebench.render.keys import CriterionName, LabelledModels, Model, Name, TableBase
from eebench.render.layouts import Block, Cell, Layout, Row, render_layout

__all__ = ["TableBase", "table_kind", "table_layout"]


def _regime(regime: str) -> str:
    return regime_label(regime)


def _label(entry: Mapping[str, Any]) -> str:
    return str(entry.get("label", entry["model"]))


def _flat(rows: Sequence[tuple[str, Cell]]) -> Block:
    """A table without blocks: one label column."""
    return Block("", tuple(Row(name, (name,), (cell,)) for name, cell in rows))


def _block(name: str, rows: Sequence[tuple[str, Cell]]) -> Block:
    """A block whose name is shown in the first column of its first row only."""
    return Block(name, tuple(Row(row, (name if i == 0 else "", row), (cell,)) for i, (row, cell) in enumerate(rows)))


# Registration ----------------------------------------------------------------------------------------------

_BASE_KEYS = tuple(inspect.signature(TableBase).parameters)


def _table_and_own(build: Callable[..., Layout], spec: Mapping[str, Any], strict: bool) -> tuple[TableBase, dict]:
    """A config entry (which also holds keys neither takes: kind, caption...) as the keys every budget table
    takes and the builder's own; ``strict``: every other key is the builder's (an unknown key fails)."""
    table = TableBase(**{key: value for key, value in spec.items() if key in _BASE_KEYS})
    accepted = inspect.signature(build).parameters
    own = {key: value for key, value in spec.items() if key not in _BASE_KEYS and (strict or key in accepted)}
    return table, own


def _layout_of(build: Callable[..., Layout], spec: Mapping[str, Any]) -> Layout:
    table, own = _table_and_own(build, spec, strict=False)
    return build(table, **own)


def table_layout(kind: str, spec: Mapping[str, Any]) -> Layout:
    """The layout of a config entry of a kind registered with :func:`table_kind`."""
    return _layout_of(TABLES.get(kind).layout, spec)


def table_kind(name: str, *, regenerates: tuple[str, str] | None, caption: str,
               runs: Callable[[Mapping[str, Any]], list[RunKey]] | None = None):
    """Register the layout builder ``build`` as table kind ``name`` (``regenerates`` and ``caption``:
    :class:`eebench.render.base.Kind`): the registered renderer takes the frame, the ``caption`` and ``label``
    the workflow gives it, ``model_descriptions``, ``paper_comparison`` (:func:`render_layout`), the keys of
    :class:`TableBase` and the builder's own, and reads the budget CSVs of the runs its layout lists (or of
    ``runs(spec)``)."""
    default_caption = caption

    def register(build: Callable[..., Layout]) -> Callable[..., tuple[str, pd.DataFrame]]:
        def render(frame: pd.DataFrame, caption: str, label: str, model_descriptions: Mapping[str, str] | None = None,
                   paper_comparison: Mapping[str, Any] | None = None, **entry: Any) -> tuple[str, pd.DataFrame]:
            # ``budgets`` selects the input files (eebench.targets); the headers come from the frame's labels.
            table, own = _table_and_own(build, entry, strict=True)
            return render_layout(frame, build(table, **own), caption=caption, label=label, rule=table.rule,
                                 model_descriptions=model_descriptions, paper_comparison=paper_comparison,
                                 paper_match=table.paper_match)

        def listed(spec: Mapping[str, Any]) -> list[RunKey]:
            return _layout_of(build, spec).runs()

        render.__name__ = render.__qualname__ = build.__name__
        render.__doc__ = build.__doc__
        render.layout = build  # type: ignore[attr-defined]
        render.cell_metrics = lambda spec: _layout_of(build, spec).cell_metrics()  # type: ignore[attr-defined]
        kind("tables", name, regenerates=regenerates, caption=default_caption)(reads("budgets", runs or listed)(render))
        return render

    return register


# The kinds -------------------------------------------------------------------------------------------------

Settings = Annotated[LabelledModels, Param("The settings shown, each {model, label, metric, criterion}: the last two "
                                           "override the table's.")]
Variants = Annotated[LabelledModels, Param("The variants shown, each {model, label, metric, criterion}.")]


@table_kind("budgets", runs=product_runs,
            regenerates=("B", "Table 1 / Tables 8-18 layout: accuracy at each FLOPs budget per regime"),
            caption="Test performance at each FLOPs budget (percent of the backbone's cost) per training regime, "
                    "mean $\\pm$ std over seeds.")
def budgets(table: TableBase, *, model: Annotated[Model, Param("The model setting shown.")]) -> Layout:
    """Paper B Tables 8-18: one setting, regime x budget.

    Numbers: model, regime, criterion, metric, rule, budget, mean, std, n_seeds."""
    rows = [(_regime(regime), Cell(RunKey(model, regime, table.criterion), table.metric)) for regime in table.regimes]
    return Layout(("Regime",), (_flat(rows),),
                  numbers_columns=("model", "regime", "criterion", "metric", "rule", "budget", "mean", "std",
                                   "n_seeds"))


def _setting_cell(entry: dict, regime: str, table: TableBase, **reference: RunKey) -> "Cell":
    """The cell of a labelled setting ({model, label, metric, criterion}) under ``regime``; the entry's metric
    and criterion override the table's (e.g. MSE under regression_patience beside accuracy)."""
    return Cell(RunKey(entry["model"], regime, entry.get("criterion", table.criterion)),
                entry.get("metric", table.metric), **reference)


def _blocks_of_regimes(entries: list[dict], table: TableBase, header: str) -> Layout:
    """A block of regime rows per entry ({model, label, metric, criterion}: the last two override the table's),
    headed ``header``; bold per block."""
    blocks = [
        _block(_label(entry), [(_regime(regime), _setting_cell(entry, regime, table)) for regime in table.regimes])
        for entry in entries
    ]
    return Layout((header, "Regime"), tuple(blocks))


@table_kind("settings", regenerates=("B", "Table 1 layout: several settings as blocks"),
            caption="Test performance of several settings at each FLOPs budget per training regime, mean $\\pm$ "
                    "std over seeds.")
def settings(table: TableBase, *, settings: Settings) -> Layout:
    """Paper B Table 1: a block of regime rows per setting ({model, label, metric, criterion}); bold per block."""
    return _blocks_of_regimes(settings, table, "Setting")


@table_kind("side_by_side", regenerates=("B", "Table 2 layout: settings side by side"),
            caption="Settings side by side: test performance at each FLOPs budget per training regime, mean "
                    "$\\pm$ std over seeds.")
def side_by_side(table: TableBase, *, settings: Settings) -> Layout:
    """Paper B Table 2: settings side by side, a column group of budgets each, regime rows; bold per column
    by that setting's metric.

    A setting's ``metric`` and ``criterion`` override the table's (classification beside regression: accuracy
    under max-softmax beside MSE under the regression criterion)."""
    rows = [
        Row(_regime(regime), (_regime(regime),), tuple(_setting_cell(entry, regime, table) for entry in settings))
        for regime in table.regimes
    ]
    return Layout(("Regime",), (Block("", tuple(rows)),), groups=tuple(_label(entry) for entry in settings),
                  bold="table")


class Method(TypedDict):
    """An exit method of a methods table."""

    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]
    criterion: CriterionName
    label: NotRequired[str]
    model: NotRequired[Annotated[Name, Param("This method's own model setting (a method that changes the heads, "
                                             "e.g. GPF); default the table's.")]]


@table_kind("methods", regenerates=("B", "Table 3 layout: exit method per regime"),
            caption="Test performance of each early-exit method at each FLOPs budget per training regime, mean "
                    "$\\pm$ std over seeds.")
def methods(table: TableBase, *, model: Annotated[Model, Param("The model setting shown.")],
            methods: Annotated[list[Method], Param("The exit methods, a block each.", min_length=1)]) -> Layout:
    """Paper B Table 3: exit method x regime for one setting, a block of regime rows per exit method ({criterion,
    label, model}: the method's criterion replaces the table's ``criterion``); bold per block.

    The table's ``criterion`` is accepted, unused; a method that changes the heads (GPF) names its own model
    setting, the others show ``model``."""
    blocks = [
        _block(str(entry.get("label", entry["criterion"].capitalize())),
               [(_regime(regime), Cell(RunKey(entry.get("model", model), regime, entry["criterion"]), table.metric))
                for regime in table.regimes])
        for entry in methods
    ]
    return Layout(("EE Method", "Regime"), tuple(blocks))


@table_kind("differences", regenerates=("B", "Table 5 layout: differences against a reference setting"),
            caption="Change in test performance (percentage points) of each variant against the reference setting, "
                    "per training regime and FLOPs budget.")
def differences(table: TableBase, *, reference: Annotated[Model, Param("The reference setting.")],
                variants: Variants,
                variant_header: Annotated[str, Param("Header of the variant column (paper B Table 5: "
                                                     "Scaling).")] = "Scaling") -> Layout:
    """Paper B Table 5: each variant minus the reference setting, per regime, in percentage points (mean of
    the per-seed differences), a block per variant; no bold."""
    blocks = [
        Block(_label(entry), tuple(
            Row(_regime(regime), (_regime(regime), _label(entry)),
                (_setting_cell(entry, regime, table, reference=RunKey(reference, regime, table.criterion)),))
            for regime in table.regimes))
        for entry in variants
    ]
    return Layout(("Regime", variant_header), tuple(blocks), bold="none")


@table_kind("ic_size", regenerates=("B", "Table 6 layout: IC size per regime"),
            caption="The effect of the IC size: test performance at each FLOPs budget, a block of variants per "
                    "training regime, mean $\\pm$ std over seeds.")
def ic_size(table: TableBase, *, variants: Variants) -> Layout:
    """Paper B Tables 6 and 20: a block of variant rows ({model, label}) per regime; bold per block."""
    blocks = [
        _block(_regime(regime), [(_label(entry), _setting_cell(entry, regime, table)) for entry in variants])
        for regime in table.regimes
    ]
    return Layout(("Regime", "IC arch."), tuple(blocks))


@table_kind("placement", regenerates=("B", "Table 7 layout: IC placement schemes"),
            caption="The effect of the IC placement scheme: test performance at each FLOPs budget per training "
                    "regime, mean $\\pm$ std over seeds.")
def placement(table: TableBase, *, schemes: Annotated[LabelledModels, Param(
        "The placement schemes shown, each {model, label}.")]) -> Layout:
    """Paper B Table 7: a block of regime rows per placement scheme ({model, label}); bold per block."""
    return _blocks_of_regimes(schemes, table, "Scheme")


@table_kind("loss_scaling", regenerates=("B", "Table 19 layout: loss and gradient scaling methods"),
            caption="Test performance with loss and gradient scaling at each FLOPs budget per training regime, "
                    "mean $\\pm$ std over seeds.")
def loss_scaling(table: TableBase, *, variants: Variants) -> Layout:
    """Paper B Table 19: flat rows "Regime Label", regime-major (label "" = the unscaled setting); bold per
    column over all rows."""
    rows = [
        (f"{_regime(regime)} {_label(entry)}".strip(), _setting_cell(entry, regime, table))
        for regime in table.regimes for entry in variants
    ]
    return Layout(("Regime",), (_flat(rows),), bold="table")
