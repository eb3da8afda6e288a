"""The budget tables' engine: a table kind's :class:`Layout` (blocks of rows; each row names the run, metric and,
for differences, reference run of each cell) filled from the budget frame and written as LaTeX in the layouts of
paper B (:func:`render_layout`). The kinds themselves, each a layout builder, are eebench.render.budget_tables.

Shared rules for every budget-table kind:
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

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from eebench.acceptance import COMPARISON_COLUMNS, Comparison, caption_sentences, cell_text
from eebench.latex import latex_escape
from eebench.sweep_metrics import BUDGET_RULE_DESCRIPTIONS
from eebench.render.base import RunKey
from eebench.tasks import LOWER_IS_BETTER, display_scale

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


def seed_stats(values: np.ndarray) -> tuple[float, float, int]:
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
    ``paper_comparison`` (eebench.render.spec.comparison_spec: the config's scale and the transcribed tables the
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
                        record["mean"], record["std"], record["n_seeds"] = seed_stats(variant)
                    else:
                        reference = values(cell.reference, cell.metric)[budget].to_numpy()
                        reference_mean, _, _ = seed_stats(reference)
                        variant_mean, _, _ = seed_stats(variant)
                        mean, std, n_seeds = seed_stats(variant - reference)  # paired by seed
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
    return fit_to_line_width(tex)


def fit_to_line_width(tex: str) -> str:
    """Shrink the tabular to the line width when it is wider (mean ± std cells make paper B's layouts wider
    than a page), never enlarge it: graphicx's resizebox, comparing the tabular's natural width."""
    start = tex.index("\\begin{tabular}")
    end = tex.index("\\end{tabular}") + len("\\end{tabular}")
    fitted = "\\resizebox{\\ifdim\\width>\\linewidth\\linewidth\\else\\width\\fi}{!}{%\n" + tex[start:end] + "%\n}"
    return tex[:start] + fitted + tex[end:]

