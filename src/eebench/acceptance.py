"""Our tables beside paper B's printed numbers (issue 23): each regenerated cell with the value the paper prints
for it, our difference from it and whether our mean lies outside the paper's mean ± 2 std; and the acceptance
report of a paper-scale run, every such cell of ``paper/tables`` summed up in one glance (``eebench
acceptance``).

Only a config of ``scale: paper`` compares: the miniature runs other data and other models, so its numbers are
not the paper's to within any spread, and its captions say so instead.

Which value of the paper a cell is compared with. A table entry names what it regenerates (``regenerates: "B
Table 10"``); the tables among those that :mod:`eebench.paper_numbers` transcribes are its counterparts. Our cell
is named by its labels, those of its column group, block and row (``Mixed-gradual``; ``ResNet-34 C-100`` and
``Disjoint``; a variant ``Inc.`` and a regime ``Joint``), and by its budget header (``25%``, ``Unlimited``); a
value of the paper by its setting, row and column. The counterpart of a cell is the value whose setting and row
hold the same words as the cell's labels, in any order, under the same column header. Words rather than label
columns, because the paper and our kinds lay the same labels out differently: Table 5 groups its rows by regime
where our ``differences`` kind makes a block of each variant, and Table 20 prints one row "Disjoint 1L" where
Table 6 and our ``ic_size`` kind print a block "Disjoint" with a row "1L"; the words are the same either way, and
within each transcribed table they name one value (tests/render/test_paper_comparison.py checks it). The first
table, in the entry's ``regenerates`` order, that holds a counterpart is the one compared with.

Where a table names its cells otherwise, its entry says how with ``paper_match`` (:class:`PaperMatch`):
``setting``, the paper's setting that every cell of the table belongs to (a ``budgets`` table of ViT-S on
ImageNet-1k against Table 1's block "ViT-S IN-1k"), and ``labels``, our labels mapped to the paper's (``{"35%":
"25%"}``). Both are checked against the table's labels and the paper's, an error naming the key.

Paper B's Tables 1-4 print means only; they repeat the means of Appendix C's tables, which print mean ± std
(:data:`APPENDIX_TWINS`). A cell of Tables 1-4 takes the std of the appendix value that prints the same mean (the
reading "Spread of paper B's main-text tables" in :mod:`eebench.readings`); a cell with no std anywhere shows the
paper's value and the difference, unmarked, and its note says why.
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd

from eebench import paper_numbers
from eebench.io import RENDERED_CSV, read_csv, write_csv
from eebench.latex import latex_escape

# The one scale whose numbers are the paper's setting (config `scale:`); every other is not compared.
COMPARED_SCALE = "paper"
NOT_COMPARED_SENTENCE = "{Scale} scale: not compared with the paper's values (different data and models)."

# Columns a compared table's CSV gains, one value per cell (empty where the note says why not).
COMPARISON_COLUMNS = [
    "paper_table",  # the transcribed table holding the counterpart, e.g. "B Table 10"
    "paper_setting", "paper_row", "paper_column",  # the counterpart's labels, as eebench.paper_numbers spells them
    "paper_value",
    "paper_std",  # the std printed with it, or with the same mean in its appendix twin; empty where none
    "difference",  # our mean minus the paper's, both on the digits the tables print (two decimals for ours)
    "outside_2std",  # True where |difference| > 2 paper_std; empty where no std is printed
    "comparison_note",  # why a cell is not compared or not marked, and where a borrowed std comes from
]

# Paper B's main-text tables repeat the means of Appendix C's tables (eebench/paper_numbers/README.md; checked
# value by value in tests/test_paper_numbers.py): (main table, its setting) -> the appendix table of that setting.
APPENDIX_TWINS: dict[tuple[str, str], str] = {
    ("B Table 1", "ResNet-34 C-100"): "B Table 8", ("B Table 1", "MSDNet C-100"): "B Table 9",
    ("B Table 1", "ViT-T C-100"): "B Table 10", ("B Table 1", "ResNet-50 Tiny-IN"): "B Table 11",
    ("B Table 1", "ViT-T IN-1k"): "B Table 12", ("B Table 2", "Newsgr. (class.)"): "B Table 13",
    ("B Table 2", "STS-B (regr.)"): "B Table 14", ("B Table 3", "PBEE"): "B Table 15",
    ("B Table 3", "GPF"): "B Table 16", ("B Table 3", "Entropy"): "B Table 17", ("B Table 4", ""): "B Table 18",
}


# The paper's values ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PaperValue:
    """One value a transcribed table prints, with its std (its own, or its appendix twin's; NaN where none)."""

    table: str  # "B Table 10"
    setting: str
    row: str
    column: str
    printed: str  # the value with the digits the paper prints ("28.50")
    std: float
    std_from: str  # the table printing the std: ``table``, its appendix twin, or "" where none does

    @property
    def value(self) -> float:
        return float(self.printed)


def _words(labels: Iterable[str]) -> tuple[str, ...]:
    """What names a cell, whatever label column each word sits in: its labels' words, sorted."""
    return tuple(sorted(word for label in labels for word in label.split()))


def _printed(table: str) -> pd.DataFrame:
    """A table's rows with every cell as printed (strings: "28.50", std "" where none)."""
    return pd.read_csv(io.StringIO(paper_numbers.csv_text(table)), dtype=str, keep_default_na=False)


def _twin_std(table: str, setting: str, row: str, column: str, printed: str) -> tuple[float, str]:
    """The std its appendix twin prints with the same mean, and that twin; (NaN, "") where there is none. The
    twin's value is found by column position, as tests/test_paper_numbers.py pairs them (Table 11 heads with 35%
    the numbers Table 1 heads with 25%), and taken only where it prints the same mean."""
    twin = APPENDIX_TWINS.get((table, setting))
    if twin is None:
        return math.nan, ""
    main = _printed(table)
    columns = list(dict.fromkeys(main.loc[main["setting"] == setting, "column"]))
    appendix = _printed(twin)
    twin_column = list(dict.fromkeys(appendix["column"]))[columns.index(column)]
    hit = appendix[(appendix["row"] == row) & (appendix["column"] == twin_column)]
    if len(hit) != 1 or float(hit.iloc[0]["value"]) != float(printed) or hit.iloc[0]["std"] == "":
        return math.nan, ""
    return float(hit.iloc[0]["std"]), twin


@lru_cache(maxsize=None)
def paper_values(table: str) -> dict[tuple[tuple[str, ...], str], PaperValue]:
    """Every value of transcribed table ``table`` ("B Table 10"), keyed by the words of its setting and row and
    by its column."""
    values = {}
    for entry in _printed(table).itertuples(index=False):
        if entry.std != "":
            std, std_from = float(entry.std), table
        else:
            std, std_from = _twin_std(table, entry.setting, entry.row, entry.column, entry.value)
        values[(_words([entry.setting, entry.row]), entry.column)] = PaperValue(
            table, entry.setting, entry.row, entry.column, entry.value, std, std_from)
    return values


def paper_labels(table: str) -> list[str]:
    """The labels a transcribed table prints (settings, rows, columns), and each of their words."""
    labels = [label for value in paper_values(table).values() for label in (value.setting, value.row, value.column)]
    return [label for label in dict.fromkeys([*labels, *(w for label in labels for w in label.split())]) if label]


def transcribed_tables(regenerates: Sequence[str]) -> list[str]:
    """The tables of ``regenerates`` (an entry's list, e.g. ["B Table 4", "B Table 18"], "B Tables 8-18") that
    :mod:`eebench.paper_numbers` transcribes, each once, in order: "B Table 4", ..."""
    from eebench.render.paper import parse_reference  # here: eebench.render imports the renderers, which import this

    names = []
    for text in regenerates:
        if parse_reference(text).item != "Table":
            continue
        try:
            rows = paper_numbers.load(text)
        except ValueError:  # a table the paper has but nobody transcribed: nothing to compare with
            continue
        names += [f"{paper} {table}" for paper, table in zip(rows["paper"], rows["table"])]
    return list(dict.fromkeys(names))


# The entry option and the comparison ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PaperMatch:
    """A table entry's ``paper_match``: how its cells name the paper's, where their labels do not already.
    ``setting``: the paper's setting every cell belongs to (its words join each cell's labels); ``labels``: our
    label (a row, block or column-group label, or a budget header as the table prints it) -> the paper's."""

    setting: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, option: Mapping[str, Any] | None) -> "PaperMatch":
        if option is None:
            return cls()
        if not isinstance(option, Mapping) or set(option) - {"setting", "labels"}:
            raise ValueError(f"paper_match: takes 'setting' and 'labels', not {option!r}")
        labels = option.get("labels", {})
        if not isinstance(labels, Mapping) or not all(isinstance(k, str) and isinstance(v, str) and v
                                                      for k, v in labels.items()):
            raise ValueError(f"paper_match.labels: a mapping of our labels to the paper's (non-empty strings), "
                             f"not {labels!r}")
        if not isinstance(option.get("setting", ""), str):
            raise ValueError(f"paper_match.setting: a setting of the paper's table, not {option['setting']!r}")
        return cls(option.get("setting", ""), dict(labels))


@dataclass(frozen=True)
class Comparison:
    """The cells of one table entry against the transcribed tables it regenerates (``tables``)."""

    scale: str
    tables: tuple[str, ...]
    match: PaperMatch = PaperMatch()

    @classmethod
    def of(cls, paper_comparison: Mapping[str, Any], paper_match: Mapping[str, Any] | None) -> "Comparison":
        """From the renderer's ``paper_comparison`` (:func:`comparison_spec`) and the entry's ``paper_match``."""
        return cls(paper_comparison["scale"], tuple(paper_comparison["tables"]), PaperMatch.of(paper_match))

    @property
    def compares(self) -> bool:
        return self.scale == COMPARED_SCALE

    def check(self, our_labels: Iterable[str]) -> None:
        """Refuse a ``paper_match`` naming a label this table does not print (``our_labels``: its row, block and
        group labels and budget headers), or a setting or label the paper's tables do not."""
        ours = [label for label in dict.fromkeys(our_labels) if label]
        theirs = [label for table in self.tables for label in paper_labels(table)]
        tables = ", ".join(self.tables)
        for label, paper_label in self.match.labels.items():
            if label not in ours:
                raise ValueError(f"paper_match.labels: {label!r} is not a label of this table (its labels: "
                                 f"{', '.join(ours)})")
            if paper_label not in theirs:
                raise ValueError(f"paper_match.labels.{label}: {paper_label!r} is not a label of {tables} (its "
                                 f"labels: {', '.join(theirs)})")
        settings = list(dict.fromkeys(v.setting for t in self.tables for v in paper_values(t).values() if v.setting))
        if self.match.setting and self.match.setting not in settings:
            raise ValueError(f"paper_match.setting: {self.match.setting!r} is not a setting of {tables} (its "
                             f"settings: {', '.join(settings) or 'none: it has one label column'})")

    def _key(self, labels: Sequence[str], header: str) -> tuple[tuple[str, ...], str]:
        mapped = [self.match.labels.get(label, label) for label in labels]
        return _words([*mapped, self.match.setting]), self.match.labels.get(header, header)

    def counterpart(self, labels: Sequence[str], header: str) -> PaperValue | None:
        """The paper's value of our cell (its group, block and row labels and its budget header), or None."""
        key = self._key(labels, header)
        return next((paper_values(t)[key] for t in self.tables if key in paper_values(t)), None)

    def absence(self, labels: Sequence[str], header: str) -> str:
        """Why a cell has no counterpart: the paper's table has no such column or row, or no value there."""
        words, column = self._key(labels, header)
        keys = [key for table in self.tables for key in paper_values(table)]
        one = len(self.tables) == 1
        named = "paper " + " and ".join(self.tables)
        shown = " / ".join(label for label in labels if label)
        if not any(key[1] == column for key in keys):
            return f"{named} {'has' if one else 'have'} no column {column}"
        if not any(key[0] == words for key in keys):
            return f"{named} {'has' if one else 'have'} no row {shown}"
        return f"{named} print{'s' if one else ''} no value at {shown}, {column}"

    def compare(self, labels: Sequence[str], header: str, mean: float) -> dict[str, Any]:
        """The :data:`COMPARISON_COLUMNS` of one cell of ours: its labels, budget header and mean (display unit)."""
        paper = self.counterpart(labels, header)
        row: dict[str, Any] = {column: math.nan for column in COMPARISON_COLUMNS}
        row.update(paper_table="", paper_setting="", paper_row="", paper_column="", comparison_note="")
        if paper is None:
            row["comparison_note"] = f"not compared: {self.absence(labels, header)}"
            return row
        row.update(paper_table=paper.table, paper_setting=paper.setting, paper_row=paper.row,
                   paper_column=paper.column, paper_value=paper.value, paper_std=paper.std)
        if math.isnan(mean):
            row["comparison_note"] = ("not compared: our cell has no value (a seed has no operating point within "
                                      "the budget, or no result)")
            return row
        # On the digits both tables print, so that a reader checks the difference and the mark by eye.
        row["difference"] = difference = round(float(f"{mean:.2f}") - paper.value, 2)
        if math.isnan(paper.std):
            row["comparison_note"] = (f"not marked: paper {paper.table} prints no std here, nor does an appendix "
                                      "table with the same mean")
        else:
            row["outside_2std"] = abs(difference) > 2 * paper.std + 1e-9  # the slack absorbs float rounding
            if paper.std_from != paper.table:
                row["comparison_note"] = f"std of paper {paper.std_from}, which prints the same mean"
        return row


def _named(tables: Sequence[str]) -> str:
    """"B Table 4", "B Table 18" (one paper's: only paper B prints tables) -> "paper B Tables~4 and~18" (LaTeX)."""
    paper = tables[0].split(" ", 1)[0]
    numbers = [table.rsplit(" ", 1)[1] for table in tables]
    if len(numbers) == 1:
        return f"paper {paper} Table~{numbers[0]}"
    return f"paper {paper} Tables~" + ", ".join(numbers[:-1]) + " and~" + numbers[-1]


def _tied(latex: str) -> str:
    """"Table 10" with a tie, so no line breaks between the word and its number."""
    return latex.replace("Table ", "Table~")


def _counterpart_of(compared: Mapping[str, Any]) -> PaperValue:
    """The paper's value a compared cell's CSV row names."""
    key = _words([compared["paper_setting"], compared["paper_row"]]), compared["paper_column"]
    return paper_values(compared["paper_table"])[key]


def caption_sentences(comparison: Comparison, compared: Sequence[Mapping[str, Any]]) -> list[str]:
    """The caption's account of a table's comparison (LaTeX): what the small print and the dagger are, and why
    some cells are not marked or not compared; for a scale that is not compared, the one sentence saying so."""
    if not comparison.compares:
        return [latex_escape(NOT_COMPARED_SENTENCE.format(Scale=comparison.scale.capitalize()))]
    counterparts = [_counterpart_of(row) for row in compared if row["paper_table"]]
    absent = list(dict.fromkeys(row["comparison_note"].removeprefix("not compared: ") for row in compared
                                if not row["paper_table"]))
    if not counterparts:
        return [f"Not compared: no cell has a counterpart in the paper ({_tied(latex_escape('; '.join(absent)))})."]
    matched = list(dict.fromkeys(paper.table for paper in counterparts))
    markable = any(not math.isnan(paper.std) for paper in counterparts)
    sentences = [f"Small print after a cell: the value of {_named(matched)} and our difference from it (ours $-$ "
                 "paper, on the digits shown)" + ("; $^{\\dagger}$: our mean lies outside the paper's mean $\\pm$ 2 "
                                                  "std." if markable else ".")]
    for table in matched:
        mine = [paper for paper in counterparts if paper.table == table]
        twins = list(dict.fromkeys(paper.std_from for paper in mine if paper.std_from not in ("", table)))
        if twins:
            sentences.append(f"P{_named([table])[1:]} prints means only: the std is that of {_named(twins)}, "
                             f"which print{'s' if len(twins) == 1 else ''} the same means.")
        unmarked = [paper for paper in mine if math.isnan(paper.std)]
        if unmarked and markable:
            # Which of its settings, where the table's other values can be marked (Table 1's ViT-S block).
            settings = list(dict.fromkeys(paper.setting for paper in unmarked if paper.setting))
            where = f" ({latex_escape(', '.join(settings))})" if settings and len(unmarked) < len(mine) else ""
            sentences.append(f"No $^{{\\dagger}}$ can be computed for the values of {_named([table])}{where}: it "
                             "prints no std, nor does an appendix table with the same means.")
        elif unmarked:
            sentences.append(f"No cell is marked as outside the paper's mean $\\pm$ 2 std: {_named([table])} "
                             "prints no std, nor does an appendix table with the same means.")
    if absent:
        reasons = _tied(latex_escape("; ".join(absent)))
        sentences.append(f"No small print where the paper has no counterpart: {reasons}.")
    return sentences


def cell_text(text: str, compared: Mapping[str, Any]) -> str:
    """A LaTeX cell (``$64.12 \\pm 0.50$``, an en dash) with its comparison: a dagger where our mean lies outside
    the paper's mean ± 2 std, then in small print the paper's value and our difference."""
    if not compared["paper_table"]:
        return text
    if compared["outside_2std"] is True:
        text = text[:-1] + "^{\\dagger}$"
    printed = _counterpart_of(compared).printed
    paper = f"${printed}$" if printed.startswith("-") else printed  # a minus sign, not a hyphen
    difference = compared["difference"]
    if math.isnan(difference):
        return f"{text} {{\\scriptsize ({paper})}}"
    signed = "+0.00" if float(f"{difference:.2f}") == 0 else f"{difference:+.2f}"  # never "-0.00"
    return f"{text} {{\\scriptsize ({paper}; ${signed}$)}}"


# The acceptance report -------------------------------------------------------------------------------------------


def read_comparisons(directory: str | Path) -> pd.DataFrame:
    """Every table CSV in ``directory`` that compares with the paper (it holds :data:`COMPARISON_COLUMNS`),
    concatenated in file-name order, with an ``entry`` column (the file's stem). A FileNotFoundError or a
    ValueError naming ``directory`` where it is missing or holds none."""
    path = Path(directory)
    if not path.is_dir():
        raise FileNotFoundError(f"{directory}: no such directory (the rendered tables of a run, e.g. paper/tables)")
    frames = []
    for csv_path in sorted(path.glob("*.csv")):
        frame = read_csv(csv_path, RENDERED_CSV)
        if set(COMPARISON_COLUMNS) <= set(frame.columns):
            frames.append(frame.assign(entry=csv_path.stem))
    if not frames:
        raise ValueError(f"{directory}: no table CSV compares with the paper's values (no column "
                         f"{', '.join(COMPARISON_COLUMNS[:3])}, ...); a paper-scale config's tables do (scale: "
                         "paper), the miniature's do not")
    frame = pd.concat(frames, ignore_index=True)
    for column in ("paper_table", "paper_setting", "paper_row", "paper_column", "comparison_note"):
        frame[column] = frame[column].fillna("").astype(str)
    frame["outside_2std"] = frame["outside_2std"].map({True: True, False: False, "True": True, "False": False})
    return frame


def _cell_name(row: pd.Series) -> str:
    labels = [row["paper_setting"], row["paper_row"], row["paper_column"]]
    return f"{row['paper_table']}: " + ", ".join(label for label in labels if label)


def summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Per table entry: its cells, those compared (ours and the paper's value both there), within and outside
    the paper's mean ± 2 std, compared but not marked (no std printed) and not compared."""
    compared = frame["difference"].notna()
    counts = frame.assign(
        compared=compared, within=frame["outside_2std"].eq(False), outside=frame["outside_2std"].eq(True),
        unmarked=compared & frame["outside_2std"].isna(), not_compared=~compared,
    ).groupby("entry", sort=False)
    table = counts[["compared", "within", "outside", "unmarked", "not_compared"]].sum().astype(int)
    table.insert(0, "cells", counts.size())
    table.insert(0, "paper", counts["paper_table"].agg(lambda t: ", ".join(dict.fromkeys(x for x in t if x))))
    return table.reset_index().rename(columns={"not_compared": "not compared"})


def largest_gaps(frame: pd.DataFrame, top: int) -> pd.DataFrame:
    """The ``top`` compared cells farthest from the paper's value (|ours - paper|), farthest first (ties in table
    order)."""
    compared = frame[frame["difference"].notna()]
    order = compared["difference"].abs().sort_values(ascending=False, kind="stable").index[:top]
    rows = compared.loc[order]
    marks = rows["outside_2std"].map({True: "outside", False: "within"}).fillna("not marked")
    return pd.DataFrame({
        "table": rows["entry"], "paper cell": rows.apply(_cell_name, axis=1), "ours": rows["mean"].round(2),
        "paper": rows["paper_value"], "paper std": rows["paper_std"], "difference": rows["difference"],
        "mean ± 2 std": marks,
    }).reset_index(drop=True)


def _aligned(frame: pd.DataFrame) -> str:
    """A frame as a plain-text table: text columns left-aligned, numbers right-aligned with two decimals (a
    difference signed), a missing number as "-"."""
    def shown(column: str, value: Any) -> str:
        if isinstance(value, str):
            return value
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "-"
        if isinstance(value, float):
            return f"{value:+.2f}" if column == "difference" else f"{value:.2f}"
        return str(value)

    cells = [[shown(column, value) for column, value in row.items()] for _, row in frame.iterrows()]
    texts = [frame[column].map(lambda value: isinstance(value, str)).all() for column in frame.columns]
    widths = [max([len(str(column)), *(len(row[i]) for row in cells)]) for i, column in enumerate(frame.columns)]
    lines = []
    for row in [list(map(str, frame.columns)), *cells]:
        lines.append("  ".join(text.ljust(width) if is_text else text.rjust(width)
                               for text, width, is_text in zip(row, widths, texts)).rstrip())
    return "\n".join(lines)


def report(frame: pd.DataFrame, directory: str | Path, top: int = 10) -> str:
    """The acceptance report (plain text): the counts over every compared table, per table, the reasons for the
    cells not compared or not marked, and the largest gaps."""
    table = summary(frame)
    total = table[["cells", "compared", "within", "outside", "unmarked", "not compared"]].sum()
    lines = [
        f"Paper comparison of {directory}: {len(table)} tables, {total['cells']} cells; {total['compared']} "
        f"compared: {total['within']} within the paper's mean ± 2 std, {total['outside']} outside, "
        f"{total['unmarked']} not marked (no std printed); {total['not compared']} not compared.", "",
        _aligned(table), "",
    ]
    notes = frame[frame["comparison_note"].str.startswith(("not compared", "not marked"))]
    if not notes.empty:
        lines.append("Not compared or not marked, and why:")
        for (entry, note), group in notes.groupby(["entry", "comparison_note"], sort=False):
            lines.append(f"  {entry}: {len(group)} cell{'s' if len(group) > 1 else ''}: {note}")
        lines.append("")
    gaps = largest_gaps(frame, top)
    if not gaps.empty:
        lines += [f"Largest gaps (|ours - paper|), {len(gaps)} of {total['compared']}:", _aligned(gaps)]
    return "\n".join(lines) + "\n"


def acceptance(directory: str | Path, top: int = 10, out: str | Path | None = None) -> str:
    """``eebench acceptance``: the report of the tables in ``directory``; with ``out``, every cell compared or
    not also written there as CSV (atomically), the largest gaps first."""
    frame = read_comparisons(directory)
    if out is not None:
        identity = [c for c in ("entry", "block", "row", "group", "model", "regime", "criterion", "metric",
                                "budget", "mean", "std", "n_seeds") if c in frame.columns]
        cells = frame[[*identity, *COMPARISON_COLUMNS]]
        order = cells["difference"].abs().sort_values(ascending=False, kind="stable", na_position="last").index
        write_csv(out, cells.loc[order])
    return report(frame, directory, top)
