"""LaTeX tables in the layouts of paper B, regenerated from per-run budget CSVs.

Every kind turns its config entry into a :class:`Layout` (blocks of rows; each row names the run, metric and,
for differences, reference run of each cell), and one engine (:func:`render_layout`) fills it from the budget
frame. Adding a kind is one ``@table_kind`` function that builds its layout.

Shared rules for every kind:
- a cell is the mean ± sample std (ddof=1) over seeds, in percent (metrics in ``UNSCALED`` as computed), two
  decimals; with one seed the ``± std`` is omitted;
- a cell where any seed is NaN (no operating point fits the budget) or missing is an en dash, with NaN mean and
  std in the numbers: averaging only the seeds that happen to fit would bias the cell upwards;
- the best cell per column is bold (per block where the layout has blocks), compared after rounding to the
  shown decimals so ties are all bold; the best is the minimum for metrics in ``LOWER_IS_BETTER``;
- one column per budget of the frame, in frame order, headed as in the frame ("unlimited" -> "Unlimited");
- the caption gets a sentence stating the budget rule and, given ``model_descriptions``, one naming the
  settings shown;
- given ``paper_comparison`` (an entry regenerating a table of paper B that eebench.paper_numbers transcribes),
  a paper-scale table shows beside each cell the paper's value and our difference, a dagger on a mean outside
  the paper's mean ± 2 std, and its CSV the columns of eebench.acceptance.COMPARISON_COLUMNS; a miniature one
  says in its caption that it is not compared (eebench.acceptance).
Every table is returned with the numbers it shows, so the CSV written beside the .tex lets a reader check any
cell without re-parsing LaTeX.
"""
from __future__ import annotations

import inspect
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from eebench.acceptance import COMPARISON_COLUMNS, Comparison, caption_sentences, cell_text
from eebench.io import BUDGETS_CSV, MODEL_CHECKPOINT, RENDERED_CSV, read_checkpoint, read_csv, write_csv, write_text
from eebench.latex import latex_escape
from eebench.metrics import BUDGET_RULE_DESCRIPTIONS
from eebench.registry import Registry
from eebench.render.base import RunKey, product_runs, reads, regime_label, regime_runs
from eebench.tasks import LOWER_IS_BETTER, display_scale

TableFn = Callable[..., tuple[str, pd.DataFrame]]
TABLES: Registry[TableFn] = Registry("table")

EN_DASH = "\u2013"
# The sentence appended to every caption, per budget rule (see eebench.metrics for the rules themselves).
# One sentence per budget rule for the caption, from the one description of each rule.
RULE_SENTENCES = {rule: f"Budget rule: {rule} \u2014 {text}." for rule, text in BUDGET_RULE_DESCRIPTIONS.items()}
RUN_COLUMNS = ["model", "regime", "criterion"]
# Columns of every kind's numbers; differences add REFERENCE_COLUMNS.
NUMBERS_COLUMNS = ["block", "row", "group", "model", "regime", "criterion", "metric", "rule", "budget",
                   "mean", "std", "n_seeds"]
REFERENCE_COLUMNS = ["reference", "reference_mean", "variant_mean"]


# Layout ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """What a row shows in one column group: a run's metric, or (given ``reference``) the run minus the
    reference run, in percentage points on paired seeds."""

    run: RunKey
    metric: str
    reference: RunKey | None = None


@dataclass(frozen=True)
class Row:
    """``name`` identifies the row in the numbers; ``labels`` are its cells in the label columns."""

    name: str
    labels: tuple[str, ...]
    cells: tuple[Cell, ...]  # one per column group


@dataclass(frozen=True)
class Block:
    """Rows between two \\midrule; ``name`` is "" in a table without blocks."""

    name: str
    rows: tuple[Row, ...]


@dataclass(frozen=True)
class Layout:
    columns: tuple[str, ...]  # headers of the label columns
    blocks: tuple[Block, ...]
    groups: tuple[str, ...] = ("",)  # column groups, each over every budget; ("",) = one unlabelled group
    bold: str = "block"  # best per column within each "block", over the whole "table", or "none"
    numbers_columns: tuple[str, ...] | None = None  # a kind's own selection of NUMBERS_COLUMNS

    def cell_metrics(self) -> list[tuple[RunKey, str]]:
        """(run, metric) of every cell and reference, each once: what the budget CSVs must hold."""
        cells = [cell for block in self.blocks for row in block.rows for cell in row.cells]
        pairs = [(cell.reference, cell.metric) for cell in cells if cell.reference is not None]
        return list(dict.fromkeys([*pairs, *((cell.run, cell.metric) for cell in cells)]))

    def runs(self) -> list[RunKey]:
        """Every run the cells read, each once, in table order; reference runs first."""
        cells = [cell for block in self.blocks for row in block.rows for cell in row.cells]
        references = [cell.reference for cell in cells if cell.reference is not None]
        return list(dict.fromkeys([*references, *(cell.run for cell in cells)]))

    def cell_labels(self) -> list[tuple[str, str, str]]:
        """(column group, block, row) of every cell, in table order: what names it beside its budget header
        (eebench.acceptance matches it with the paper's value by these)."""
        return [(group, block.name, row.name) for block in self.blocks for row in block.rows for group in self.groups]


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


# Kinds -----------------------------------------------------------------------------------------------------


def _layout_of(build: Callable[..., Layout], spec: Mapping[str, Any]) -> Layout:
    """The layout of a config entry, which also holds keys the builder does not take (kind, caption...)."""
    accepted = inspect.signature(build).parameters
    return build(**{key: value for key, value in spec.items() if key in accepted})


def table_layout(kind: str, spec: Mapping[str, Any]) -> Layout:
    """The layout of a config entry of a kind registered with :func:`table_kind`."""
    return _layout_of(TABLES.get(kind).layout, spec)


def table_kind(name: str, runs: Callable[[Mapping[str, Any]], list[RunKey]] | None = None):
    """Register the layout builder ``build`` as table kind ``name``: the registered renderer takes the frame,
    ``caption``, ``label``, ``rule``, ``budgets``, ``model_descriptions``, ``paper_comparison``, ``paper_match``
    (:func:`render_layout`) and the builder's own keyword arguments, and reads the budget CSVs of the runs its
    layout lists (or of ``runs(spec)``)."""

    def register(build: Callable[..., Layout]) -> TableFn:
        def render(
            frame: pd.DataFrame,
            *,
            caption: str,
            label: str,
            rule: str = "best",
            budgets: Sequence[float] | None = None,
            model_descriptions: Mapping[str, str] | None = None,
            paper_comparison: Mapping[str, Any] | None = None,
            paper_match: Mapping[str, Any] | None = None,
            **entry: Any,
        ) -> tuple[str, pd.DataFrame]:
            # ``budgets`` selects the input files (eebench.targets); the headers come from the frame's labels.
            del budgets
            return render_layout(frame, build(**entry), caption=caption, label=label, rule=rule,
                                 model_descriptions=model_descriptions, paper_comparison=paper_comparison,
                                 paper_match=paper_match)

        def listed(spec: Mapping[str, Any]) -> list[RunKey]:
            return _layout_of(build, spec).runs()

        render.__name__ = render.__qualname__ = build.__name__
        render.__doc__ = build.__doc__
        render.layout = build  # type: ignore[attr-defined]
        render.cell_metrics = lambda spec: _layout_of(build, spec).cell_metrics()  # type: ignore[attr-defined]
        TABLES.register(name, reads("budgets", runs=runs or listed)(render))
        return render

    return register


@table_kind("budgets", runs=product_runs)
def budgets(*, model: str, regimes: list[str], criterion: str, metric: str = "accuracy") -> Layout:
    """Paper B Tables 8-18: one setting, regime x budget. Numbers: model, regime, criterion, metric, rule,
    budget, mean, std, n_seeds."""
    rows = [(_regime(regime), Cell(RunKey(model, regime, criterion), metric)) for regime in regimes]
    return Layout(("Regime",), (_flat(rows),),
                  numbers_columns=("model", "regime", "criterion", "metric", "rule", "budget", "mean", "std",
                                   "n_seeds"))


def _setting_cell(entry: dict, regime: str, criterion: str, metric: str, **reference: RunKey) -> "Cell":
    """The cell of a labelled setting ({model, label, metric, criterion}) under ``regime``; the entry's metric
    and criterion override the table's (e.g. MSE under regression_patience beside accuracy)."""
    return Cell(RunKey(entry["model"], regime, entry.get("criterion", criterion)), entry.get("metric", metric),
                **reference)


def _blocks_of_regimes(entries: list[dict], regimes: list[str], criterion: str, metric: str,
                       header: str) -> Layout:
    """A block of regime rows per entry ({model, label, metric, criterion}: the last two override the table's),
    headed ``header``; bold per block."""
    blocks = [
        _block(_label(entry), [(_regime(regime), _setting_cell(entry, regime, criterion, metric))
                               for regime in regimes])
        for entry in entries
    ]
    return Layout((header, "Regime"), tuple(blocks))


@table_kind("settings")
def settings(*, settings: list[dict], regimes: list[str], criterion: str, metric: str = "accuracy") -> Layout:
    """Paper B Table 1: a block of regime rows per setting ({model, label, metric, criterion}); bold per block."""
    return _blocks_of_regimes(settings, regimes, criterion, metric, "Setting")


@table_kind("side_by_side")
def side_by_side(*, settings: list[dict], regimes: list[str], criterion: str, metric: str = "accuracy") -> Layout:
    """Paper B Table 2: settings side by side, a column group of budgets each, regime rows; bold per column
    by that setting's metric. A setting's ``metric`` and ``criterion`` override the table's (classification
    beside regression: accuracy under max-softmax beside MSE under the regression criterion)."""
    rows = [
        Row(_regime(regime), (_regime(regime),),
            tuple(_setting_cell(entry, regime, criterion, metric) for entry in settings))
        for regime in regimes
    ]
    return Layout(("Regime",), (Block("", tuple(rows)),), groups=tuple(_label(entry) for entry in settings),
                  bold="table")


@table_kind("methods")
def methods(*, model: str, regimes: list[str], methods: list[dict], metric: str = "accuracy",
            criterion: str | None = None) -> Layout:
    """Paper B Table 3: a block of regime rows per exit method ({criterion, label, model}); bold per block.
    Each method's criterion replaces the entry's ``criterion`` (accepted, unused); a method that changes the
    heads (GPF) names its own model setting, the others show ``model``."""
    del criterion
    blocks = [
        _block(str(entry.get("label", entry["criterion"].capitalize())),
               [(_regime(regime), Cell(RunKey(entry.get("model", model), regime, entry["criterion"]), metric))
                for regime in regimes])
        for entry in methods
    ]
    return Layout(("EE Method", "Regime"), tuple(blocks))


@table_kind("differences")
def differences(*, reference: str, variants: list[dict], regimes: list[str], criterion: str,
                metric: str = "accuracy", variant_header: str = "Scaling") -> Layout:
    """Paper B Table 5: each variant minus the reference setting, per regime, in percentage points (mean of
    the per-seed differences), a block per variant; no bold. ``variant_header`` heads the variant column
    (the paper's "Scaling")."""
    blocks = [
        Block(_label(entry), tuple(
            Row(_regime(regime), (_regime(regime), _label(entry)),
                (_setting_cell(entry, regime, criterion, metric, reference=RunKey(reference, regime, criterion)),))
            for regime in regimes))
        for entry in variants
    ]
    return Layout(("Regime", variant_header), tuple(blocks), bold="none")


@table_kind("ic_size")
def ic_size(*, variants: list[dict], regimes: list[str], criterion: str, metric: str = "accuracy") -> Layout:
    """Paper B Tables 6 and 20: a block of variant rows ({model, label}) per regime; bold per block."""
    blocks = [
        _block(_regime(regime), [(_label(entry), _setting_cell(entry, regime, criterion, metric))
                                 for entry in variants])
        for regime in regimes
    ]
    return Layout(("Regime", "IC arch."), tuple(blocks))


@table_kind("placement")
def placement(*, schemes: list[dict], regimes: list[str], criterion: str, metric: str = "accuracy") -> Layout:
    """Paper B Table 7: a block of regime rows per placement scheme ({model, label}); bold per block."""
    return _blocks_of_regimes(schemes, regimes, criterion, metric, "Scheme")


@table_kind("loss_scaling")
def loss_scaling(*, variants: list[dict], regimes: list[str], criterion: str, metric: str = "accuracy") -> Layout:
    """Paper B Table 19: flat rows "Regime Label", regime-major (label "" = the unscaled setting); bold per
    column over all rows."""
    rows = [
        (f"{_regime(regime)} {_label(entry)}".strip(),
         _setting_cell(entry, regime, criterion, metric))
        for regime in regimes for entry in variants
    ]
    return Layout(("Regime",), (_flat(rows),), bold="table")


# Engine ----------------------------------------------------------------------------------------------------


def budget_header(budget: str) -> str:
    # "unlimited" -> "Unlimited" as in the paper; "25%" is escaped by the Styler.
    return budget.capitalize()


def _shown(value: float) -> float:
    """The value as the table prints it (two decimals), so bold ties follow what the reader sees."""
    return float(f"{value:.2f}")


def _cell(mean: float, std: float, bold: bool) -> str:
    if np.isnan(mean):
        return EN_DASH
    body = f"{mean:.2f}" if np.isnan(std) else f"{mean:.2f} \\pm {std:.2f}"
    return f"$\\mathbf{{{body}}}$" if bold else f"${body}$"


def _difference_cell(mean: float) -> str:
    if np.isnan(mean):
        return EN_DASH
    text = f"{mean:+.2f}"
    return "$+0.00$" if float(text) == 0 else f"${text}$"  # never "-0.00"


def _stats(values: np.ndarray) -> tuple[float, float, int]:
    """Mean, sample std and finite count of per-seed values; NaN mean/std unless every seed is finite."""
    finite = values[~np.isnan(values)]
    if finite.size == 0 or finite.size < values.size:
        return math.nan, math.nan, int(finite.size)
    std = float(finite.std(ddof=1)) if finite.size > 1 else math.nan
    return float(finite.mean()), std, int(finite.size)


def _caption(caption: str, rule: str, runs: list[RunKey], model_descriptions: Mapping[str, str] | None,
             comparison: Sequence[str] = ()) -> str:
    sentences = [caption.strip(), *comparison, RULE_SENTENCES[rule]]
    if model_descriptions:
        shown = [model for model in dict.fromkeys(run.model for run in runs) if model in model_descriptions]
        if shown:
            named = "; ".join(f"{latex_escape(model)} = {latex_escape(model_descriptions[model])}" for model in shown)
            sentences.append(f"Settings: {named}.")
    return " ".join(sentence for sentence in sentences if sentence)


def _select(frame: pd.DataFrame, layout: Layout, rule: str) -> pd.DataFrame:
    """The rows of the runs the layout lists, after checking the frame holds each exactly once per seed."""
    metrics = {cell.metric for block in layout.blocks for row in block.rows for cell in row.cells}
    absent = sorted({*RUN_COLUMNS, "seed", "budget", *metrics} - set(frame.columns))
    if absent:
        raise ValueError(f"column(s) {', '.join(map(repr, absent))} absent from the budget frame "
                         f"(metrics are columns; columns: {', '.join(map(str, frame.columns))})")
    if "rule" in frame.columns:
        rules = set(frame["rule"])
        if rule not in rules:
            raise ValueError(f"the budget frame holds rule(s) {', '.join(map(repr, sorted(rules)))}, "
                             f"not the table's rule {rule!r}")
        frame = frame[frame["rule"] == rule]
    runs = layout.runs()
    keys = pd.MultiIndex.from_frame(frame[RUN_COLUMNS])
    wanted = pd.MultiIndex.from_tuples([(run.model, run.regime, run.criterion) for run in runs], names=RUN_COLUMNS)
    present = set(keys)
    missing = [key for key in wanted if key not in present]
    if missing:
        raise ValueError("(model, regime, criterion) absent from the budget frame: "
                         + ", ".join(map(str, missing)))
    frame = frame[keys.isin(wanted)]
    duplicated = frame[frame.duplicated([*RUN_COLUMNS, "seed", "budget"], keep=False)]
    if not duplicated.empty:
        doubled = list(dict.fromkeys(map(tuple, duplicated[RUN_COLUMNS].itertuples(index=False))))
        raise ValueError("several rows per seed and budget of (model, regime, criterion) "
                         + ", ".join(map(str, doubled)) + "; the input mixes files of several datasets, rules "
                         "or budget lists")
    return frame


def render_layout(
    frame: pd.DataFrame,
    layout: Layout,
    *,
    caption: str,
    label: str,
    rule: str,
    model_descriptions: Mapping[str, str] | None = None,
    paper_comparison: Mapping[str, Any] | None = None,
    paper_match: Mapping[str, Any] | None = None,
) -> tuple[str, pd.DataFrame]:
    """Fill ``layout`` from the budget frame: (LaTeX table, numbers with one row per cell). Given
    ``paper_comparison`` (eebench.acceptance.comparison_spec: the config's scale and the transcribed tables the
    entry regenerates) and the entry's ``paper_match``, each cell is compared with the paper's value
    (eebench.acceptance)."""
    if rule not in RULE_SENTENCES:
        raise ValueError(f"unknown budget rule {rule!r}; known: {', '.join(RULE_SENTENCES)}")
    if layout.bold not in ("block", "table", "none"):
        raise ValueError(f"unknown bold scope {layout.bold!r}")
    frame = _select(frame, layout, rule)
    # Every run is expected for every seed of the table: a seed absent from a run counts as a NaN value.
    seeds = sorted(pd.unique(frame["seed"]))
    budget_order = [str(budget) for budget in pd.unique(frame["budget"])]
    comparison = None if paper_comparison is None else Comparison.of(paper_comparison, paper_match)
    if comparison is not None:
        comparison.check([*(label for labels in layout.cell_labels() for label in labels),
                          *map(budget_header, budget_order)])
    by_run = {key: part for key, part in frame.groupby(RUN_COLUMNS, sort=False)}
    wide: dict[tuple[RunKey, str], pd.DataFrame] = {}

    def values(run: RunKey, metric: str) -> pd.DataFrame:
        """seed x budget, NaN where a seed's value is missing or NaN, in the metric's display unit."""
        if (run, metric) not in wide:
            part = by_run[(run.model, run.regime, run.criterion)].assign(budget=lambda f: f["budget"].astype(str))
            table = part.pivot(index="seed", columns="budget", values=metric).reindex(index=seeds, columns=budget_order)
            wide[(run, metric)] = table.astype(float) * display_scale(metric)
        return wide[(run, metric)]

    records: list[dict[str, Any]] = []
    positions: list[tuple[int, int, int]] = []  # (block, row in table, group) of each record
    compared: list[dict[str, Any]] = []  # each record's comparison with the paper, where the table compares
    row_number = 0
    for b, block in enumerate(layout.blocks):
        for row in block.rows:
            for g, cell in enumerate(row.cells):
                for budget in budget_order:
                    variant = values(cell.run, cell.metric)[budget].to_numpy()
                    record = {
                        "block": block.name, "row": row.name, "group": layout.groups[g], "model": cell.run.model,
                        "regime": cell.run.regime, "criterion": cell.run.criterion, "metric": cell.metric,
                        "rule": rule, "budget": budget,
                    }
                    if cell.reference is None:
                        record["mean"], record["std"], record["n_seeds"] = _stats(variant)
                    else:
                        reference = values(cell.reference, cell.metric)[budget].to_numpy()
                        reference_mean, _, _ = _stats(reference)
                        variant_mean, _, _ = _stats(variant)
                        mean, std, n_seeds = _stats(variant - reference)  # paired by seed
                        if np.isnan(reference_mean) or np.isnan(variant_mean):
                            mean = std = math.nan
                        record.update(mean=mean, std=std, n_seeds=n_seeds, reference=cell.reference.model,
                                      reference_mean=reference_mean, variant_mean=variant_mean)
                    records.append(record)
                    positions.append((b, row_number, g))
                    if comparison is not None and comparison.compares:
                        compared.append(comparison.compare((layout.groups[g], block.name, row.name),
                                                           budget_header(budget), record["mean"]))
            row_number += 1
    has_reference = any("reference" in record for record in records)
    columns = list(layout.numbers_columns or NUMBERS_COLUMNS + (REFERENCE_COLUMNS if has_reference else []))
    numbers = pd.DataFrame(records).reindex(columns=columns)
    if compared:
        numbers = pd.concat([numbers, pd.DataFrame(compared, columns=COMPARISON_COLUMNS)], axis=1)

    bold = _bold(records, positions, layout.bold)
    texts: dict[tuple[int, int, str], str] = {}
    for i, (record, (_, r, g), is_bold) in enumerate(zip(records, positions, bold)):
        text = (_difference_cell(record["mean"]) if "reference" in record
                else _cell(record["mean"], record["std"], is_bold))
        texts[(r, g, record["budget"])] = cell_text(text, compared[i]) if compared else text
    sentences = caption_sentences(comparison, compared) if comparison is not None else []
    tex = _latex(layout, budget_order, texts, _caption(caption, rule, layout.runs(), model_descriptions, sentences),
                 label)
    return tex, numbers


def _bold(records: list[dict[str, Any]], positions: list[tuple[int, int, int]], scope: str) -> list[bool]:
    """Whether each record's cell is bold: the best shown value within its scope and budget."""
    bold = [False] * len(records)
    if scope == "none":
        return bold
    scopes: dict[tuple, list[int]] = defaultdict(list)
    for i, (record, (b, _, g)) in enumerate(zip(records, positions)):
        scopes[(b if scope == "block" else None, g, record["budget"])].append(i)
    for members in scopes.values():
        metrics = {records[i]["metric"] for i in members}
        if len(metrics) > 1:
            raise ValueError(f"cannot bold the best of a column mixing metrics {', '.join(sorted(metrics))}; "
                             "give the rows compared with each other one metric")
        shown = {i: _shown(records[i]["mean"]) for i in members if not np.isnan(records[i]["mean"])}
        if shown:
            best = (min if metrics.pop() in LOWER_IS_BETTER else max)(shown.values())
            for i, value in shown.items():
                bold[i] = value == best
    return bold


def _latex(layout: Layout, budget_order: list[str], texts: dict[tuple[int, int, str], str], caption: str,
           label: str) -> str:
    rows = [row for block in layout.blocks for row in block.rows]
    grouped = layout.groups != ("",)
    n_labels = len(layout.columns)
    data: list[list[str]] = [
        [*row.labels, *(texts[(r, g, budget)] for g in range(len(layout.groups)) for budget in budget_order)]
        for r, row in enumerate(rows)
    ]
    headers = [budget_header(budget) for budget in budget_order]
    if grouped:
        columns = pd.MultiIndex.from_tuples(
            [("", name) for name in layout.columns]
            + [(group, header) for group in layout.groups for header in headers])
    else:
        columns = pd.Index([*layout.columns, *headers])
    table = pd.DataFrame(data, columns=columns)
    label_keys = list(table.columns[:n_labels])

    styler = table.style.hide(axis="index").format(escape="latex", subset=label_keys)
    starts, first = [], 0
    for block in layout.blocks[:-1]:
        first += len(block.rows)
        starts.append(first)
    if starts:  # booktabs \midrule on its own line before every block but the first
        styler = styler.format(lambda text: "\\midrule\n" + text, escape="latex", subset=(starts, label_keys[:1]))
    if grouped:
        # A \cmidrule under each group's label, before the budget header line.
        width = len(budget_order)
        rules = " ".join(f"\\cmidrule(lr){{{n_labels + 1 + g * width}-{n_labels + (g + 1) * width}}}"
                         for g in range(len(layout.groups)))
        first_header = latex_escape(layout.columns[0])
        styler = styler.format_index(escape="latex", axis=1, level=0).format_index(
            lambda text: f"{rules}\n{text}" if text == first_header else text, escape="latex", axis=1, level=1)
    else:
        styler = styler.format_index(escape="latex", axis=1)
    tex = styler.to_latex(
        hrules=True,
        caption=caption,
        label=label,
        position_float="centering",
        column_format="l" * n_labels + "c" * (len(layout.groups) * len(budget_order)),
        multicol_align="c",
    )
    return _fit_to_line_width(tex)


def _fit_to_line_width(tex: str) -> str:
    """Shrink the tabular to the line width when it is wider (mean ± std cells make paper B's layouts wider
    than a page), never enlarge it: graphicx's resizebox, comparing the tabular's natural width."""
    start = tex.index("\\begin{tabular}")
    end = tex.index("\\end{tabular}") + len("\\end{tabular}")
    fitted = "\\resizebox{\\ifdim\\width>\\linewidth\\linewidth\\else\\width\\fi}{!}{%\n" + tex[start:end] + "%\n}"
    return tex[:start] + fitted + tex[end:]


# Training time (paper B §4.7) --------------------------------------------------------------------------------

TIME_QUANTITIES = {
    "epochs": "Epochs", "phase1_epochs": "Phase-1 epochs", "seconds": "Wall-clock [s]",
}


def training_record(path: str | Path) -> dict[str, Any]:
    """What a trained checkpoint says about its training: epochs of every phase, those of phase 1 (run here or
    in the shared backbone run it started from, whose history it carries), and wall-clock seconds."""
    saved = read_checkpoint(path, MODEL_CHECKPOINT, keys=("meta", "history"))
    epochs = [*saved.get("init_history", []), *saved["history"]]
    phase1 = [e for e in epochs if e["phase"] == "backbone"]
    seconds = [e.get("seconds", math.nan) for e in epochs]
    meta = saved["meta"]
    return {"model": meta["model"], "regime": meta["regime"], "seed": meta["seed"], "epochs": len(epochs),
            "phase1_epochs": len(phase1), "seconds": float(np.sum(seconds)),
            # phases that ran into max_epochs instead of stopping early (the loop marks each phase's end)
            "capped_phases": sum(e.get("end") == "max_epochs" for e in epochs)}


@reads("models", runs=regime_runs)
def training_time(frame: pd.DataFrame, *, model: str, regimes: list[str], caption: str, label: str,
                  model_descriptions: Mapping[str, str] | None = None, **unused: Any) -> tuple[str, pd.DataFrame]:
    """Paper B §4.7: per regime, epochs to convergence (every phase; phase 1 counted for the regimes that start
    from it, also when that run is shared) and wall-clock seconds, mean ± std over seeds. The ``backbone``
    regime's runs carry the name of the setting that owns the shared phase 1, so rows match by regime."""
    del unused
    records, rows = [], []
    for regime in regimes:
        runs = frame[frame["regime"] == regime]
        cells = [_regime(regime)]
        for quantity, header in TIME_QUANTITIES.items():
            mean, std, n = _stats(runs[quantity].to_numpy(dtype=np.float64))
            records.append({"model": model, "regime": regime, "quantity": quantity, "mean": mean, "std": std,
                            "n_seeds": n})
            digits = 1 if quantity == "seconds" else 0
            cells.append(EN_DASH if np.isnan(mean) else
                         f"${mean:.{digits}f}$" if np.isnan(std) else f"${mean:.{digits}f} \\pm {std:.{digits}f}$")
        rows.append(cells)
    table = pd.DataFrame(rows, columns=["Regime", *TIME_QUANTITIES.values()])
    sentences = [caption.strip()]
    if model_descriptions and model in model_descriptions:
        sentences.append(f"Settings: {latex_escape(model)} = {latex_escape(model_descriptions[model])}.")
    tex = table.style.hide(axis="index").format(escape="latex", subset=["Regime"]).format_index(
        escape="latex", axis=1).to_latex(hrules=True, caption=" ".join(s for s in sentences if s), label=label,
                                         position_float="centering", column_format="l" + "c" * len(TIME_QUANTITIES))
    return _fit_to_line_width(tex), pd.DataFrame(records)


TABLES.register("training_time", training_time)


# The papers' claims, checked (eebench.claims) ------------------------------------------------------------------


def _no_runs(spec: Mapping[str, Any]) -> list[RunKey]:
    return []


@reads("rendered", runs=_no_runs)
def claims(frame: pd.DataFrame, *, checks: list[Mapping[str, str]], caption: str, label: str,
           **unused: Any) -> tuple[str, pd.DataFrame]:
    """Each check (a claim of ``eebench.claims`` and the table or figure entry it is checked on): the paper's
    sentence, where it says it, the numbers compared (with their seed-to-seed spread), and whether this run
    reproduces it. ``frame``: the CSVs of the named entries, concatenated, with an ``entry`` column. A check's
    ``runs`` (eebench.targets.claim_runs) are the trained checkpoints behind its entry's numbers: a verdict read
    on runs of which some trained a phase to ``max_epochs`` instead of stopping early is marked, with the count.

    Beside this run's verdict, the paper's (issue 23): the same check on the values the paper prints in the
    claim's ``paper_tables`` (:func:`eebench.claims.on_paper`, one verdict per setting, k of n where several), or
    why none decides it; a claim the paper's own numbers do not support is shown as such. The CSV adds
    ``paper_tables``, ``paper_holds``, ``paper_verdict``, ``paper_settings`` (settings with the numbers needed),
    ``paper_settings_held`` and ``paper_numbers`` (every setting's numbers). The LaTeX is one float per page's
    worth of claims (:func:`_claims_floats`): a float taller than the page runs off its bottom."""
    from eebench.claims import CLAIMS, on_paper

    del unused
    records, rows, any_capped = [], [], False
    capped_phases = {}  # checkpoint path -> phases that hit max_epochs (a run several checks read is read once)
    for check in checks:
        claim = CLAIMS.get(check["claim"])
        numbers = frame[frame["entry"] == check["entry"]]
        verdict = claim.check(numbers)
        paper = on_paper(claim)
        runs = check.get("runs", [])
        for path in runs:
            if path not in capped_phases:
                capped_phases[path] = training_record(path)["capped_phases"]
        capped = sum(capped_phases[path] > 0 for path in runs)
        any_capped = any_capped or capped > 0
        shown = {True: "holds", False: "does not hold", None: "not computed"}[verdict.holds]
        records.append({"claim": check["claim"], "entry": check["entry"], "source": claim.source, "holds": verdict.holds,
                        "numbers": verdict.numbers, "runs": len(runs), "capped_runs": capped,
                        "paper_tables": "; ".join(paper.tables), "paper_holds": paper.holds,
                        "paper_verdict": paper.verdict(), "paper_settings": paper.evaluated,
                        "paper_settings_held": paper.held, "paper_numbers": paper.numbers()})
        paper_shown = {True: "holds", False: "does not hold", None: "not evaluable"}[paper.holds]
        entry = latex_escape(check["entry"]).replace("\\_", "\\_\\hspace{0pt}")  # breakable in a narrow column
        rows.append([claim.sentence, f"{latex_escape(claim.source)}; {entry}", latex_escape(paper.summary()),
                     (f"\\textbf{{{paper_shown}}}" if paper.holds is False else paper_shown)
                     + (f" ({'' if paper.holds else 'holds in '}{paper.held} of {paper.evaluated})"
                        if len(paper.settings) > 1 else ""),
                     latex_escape(verdict.numbers),
                     (f"\\textbf{{{shown}}}" if verdict.holds is False else shown)
                     + (f"$^\\dagger$ ({capped} of {len(runs)})" if capped else "")])
    caption = (f"{caption.strip()} Paper: the same check on the values the paper prints in the tables named "
               "(transcribed in eebench.paper\\_numbers), each setting on its own; it holds there if it holds in "
               "every setting that has the numbers it needs (k of n where several), and is not evaluable where the "
               "paper shows the result only in a figure.")
    if any_capped:
        caption = (f"{caption} $^\\dagger$: computed on runs of which some (counted: of the runs the "
                   "checked entry reads) trained a phase to its epoch cap (max\\_epochs) instead of stopping early, "
                   "the papers' protocol (paper B \\S4.1); such a verdict reads unconverged models.")
    return _claims_floats(rows, caption, label), pd.DataFrame(records)


# The claims table's columns and their widths (fractions of the line), and how many lines of its small type a
# float holds: a page of text (550 pt, 50 lines of \small) less the header, the rules and a margin for the
# estimate (checked with pdflatex on the default run's claims: the floats are 420-510 pt high).
CLAIMS_COLUMNS = (("Claim", 0.17), ("Source; checked on", 0.12), ("The paper's numbers", 0.21), ("Paper", 0.085),
                  ("This run", 0.21), ("Verdict", 0.085))
CLAIMS_FLOAT_LINES = 44
_CLAIMS_CHARS_PER_LINE = 80  # characters of \small text in one line width (a cell of width w holds 80 w)


def _claims_lines(row: Sequence[str]) -> int:
    """A row's estimated height in lines: its tallest cell's text over the characters its column fits (LaTeX
    commands counted as the few characters they print)."""
    import re

    def printed(cell: str) -> int:
        return len(re.sub(r"\\[a-zA-Z]+(\{[^}]*\})?|[{}$^]", "", cell.replace("$\\pm$", "±")))

    return max(math.ceil(printed(cell) / max(1, int(_CLAIMS_CHARS_PER_LINE * width) - 1))
               for cell, (_, width) in zip(row, CLAIMS_COLUMNS))


def _claims_floats(rows: list[list[str]], caption: str, label: str) -> str:
    """The claims as one table float per page: rows fill a float up to :data:`CLAIMS_FLOAT_LINES` estimated
    lines (the first float's share less its caption's); each further float repeats the header and keeps the
    table's number ("(continued)")."""
    import re

    chunks: list[list[list[str]]] = [[]]
    used = math.ceil(len(re.sub(r"\\[a-zA-Z]+", "", caption)) / 70)  # the caption, in full-width lines
    for row in rows:
        lines = _claims_lines(row)
        if chunks[-1] and used + lines > CLAIMS_FLOAT_LINES:
            chunks.append([])
            used = 1
        chunks[-1].append(row)
        used += lines
    floats = []
    for i, chunk in enumerate(chunks):
        table = pd.DataFrame(chunk, columns=[name for name, _ in CLAIMS_COLUMNS])
        tex = table.style.hide(axis="index").to_latex(
            hrules=True, caption=caption if i == 0 else "(continued)", label=label if i == 0 else None,
            position_float="centering",
            column_format="".join(f"p{{{width}\\linewidth}}" for _, width in CLAIMS_COLUMNS))
        # Six columns of text: a smaller type and narrower gaps keep them within the line.
        tex = tex.replace("\\begin{tabular}", "\\small\\setlength{\\tabcolsep}{3pt}\n\\begin{tabular}", 1)
        if i:  # a continuation keeps the table's number
            tex = tex.replace("\\caption{", "\\addtocounter{table}{-1}\n\\caption{", 1)
        floats.append(tex)
    return "".join(floats)


TABLES.register("claims", claims)


def _frame(stage: str, input_paths: list[str]) -> pd.DataFrame:
    if stage == "models":
        return pd.DataFrame([training_record(path) for path in input_paths])
    if stage == "rendered":  # other entries' numbers, each tagged with its entry's name (the file's stem)
        return pd.concat([read_csv(path, RENDERED_CSV).assign(entry=Path(path).stem) for path in input_paths],
                         ignore_index=True)
    return pd.concat([read_csv(path, BUDGETS_CSV, columns=RUN_COLUMNS) for path in input_paths], ignore_index=True)


def render_table(kind: str, spec: dict, input_paths: list[str], out_tex: str) -> None:
    """Build table ``kind`` from its inputs (budget CSVs, or checkpoints) and write ``out_tex`` plus its numbers
    as ``.csv``."""
    renderer = TABLES.get(kind)
    frame = _frame(renderer.reads, input_paths)
    tex, numbers = renderer(frame, **spec)
    write_text(out_tex, tex)
    write_csv(Path(out_tex).with_suffix(".csv"), numbers)
