"""Every number the two papers report, transcribed once from their text, with its provenance (issue 23).

One CSV per table of paper B (``b_table01.csv`` ... ``b_table20.csv``) and one per paper for the numbers its
prose states (``b_text.csv``: B §4.5, §4.7; ``a_text.csv``: A §4.2), in long format: one row per printed
value, in the order the text prints them. ``README.md`` beside them says what each column means, every
correction of an OCR-garbled label and every value left out.

    from eebench import paper_numbers
    paper_numbers.load("B Table 8")           # or "B Tables 8-18", "B §4.7", "A §4.2"
    paper_numbers.tables()                    # ["B Table 1", ..., "A §4.2"]
    paper_numbers.counts()["B Table 8"]       # 35
    paper_numbers.csv_text("B Table 8")       # the rows as CSV, numbers with the printed digits

Items are spelled as a config's ``regenerates:`` strings are (``eebench.render.paper.parse_reference``).
"""
from __future__ import annotations

from functools import lru_cache
from importlib import resources

import pandas as pd

COLUMNS = ("paper", "table", "setting", "printed_setting", "row", "column", "value", "std")

# (paper, item, file): every transcribed item, in the papers' order (paper B first, as eebench.render.paper's
# PAPERS; within a paper, the order its text prints them).
_CATALOGUE: tuple[tuple[str, str, str], ...] = (
    *(("B", f"Table {n}", f"b_table{n:02d}.csv") for n in (1, 2, 3, 4, 5)),
    ("B", "§4.5", "b_text.csv"),
    *(("B", f"Table {n}", f"b_table{n:02d}.csv") for n in (6, 7)),
    ("B", "§4.7", "b_text.csv"),
    *(("B", f"Table {n}", f"b_table{n:02d}.csv") for n in range(8, 21)),
    ("A", "§4.2", "a_text.csv"),
)


def _name(paper: str, item: str) -> str:
    return f"{paper} {item}"


@lru_cache(maxsize=None)
def _file(name: str) -> pd.DataFrame:
    """A file's rows, every cell the text it holds (numbers with the digits the paper prints)."""
    with resources.files(__name__).joinpath(name).open("r", encoding="utf-8") as handle:
        frame = pd.read_csv(handle, dtype=str, keep_default_na=False)
    if tuple(frame.columns) != COLUMNS:
        raise ValueError(f"eebench/paper_numbers/{name}: columns {list(frame.columns)}, not {list(COLUMNS)}")
    return frame


def _item(paper: str, item: str) -> pd.DataFrame:
    file = next(entry[2] for entry in _CATALOGUE if entry[:2] == (paper, item))
    frame = _file(file)
    return frame[(frame["paper"] == paper) & (frame["table"] == item)]


def tables() -> list[str]:
    """Every transcribed item, e.g. ``"B Table 1"``, ``"B §4.7"``, ``"A §4.2"``, in the papers' order."""
    return [_name(paper, item) for paper, item, _ in _CATALOGUE]


def counts() -> dict[str, int]:
    """The number of values transcribed per item of :func:`tables`."""
    return {_name(paper, item): len(_item(paper, item)) for paper, item, _ in _CATALOGUE}


def _number(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def _items(table: str) -> list[tuple[str, str]]:
    """The (paper, item) pairs a reference names; a ValueError where one is not transcribed."""
    from eebench.render.paper import parse_reference  # here: it imports the renderers

    known = ", ".join(tables())
    try:
        ref = parse_reference(table)
    except ValueError:
        raise ValueError(f"{table!r} is not a paper item such as 'B Table 8' or 'B Tables 8-18' "
                         f"(transcribed: {known})") from None
    first, last = _number(ref.first), _number(ref.last or ref.first)
    items = {(paper, item) for paper, item, _ in _CATALOGUE}
    if ref.item == "Table" and len(first) == len(last) == 1:  # a range of tables is whole: each one transcribed
        wanted = [(ref.paper, f"Table {n}") for n in range(first[0], last[0] + 1)]
    elif ref.item == "§":  # the transcribed sections in the range
        wanted = [(paper, item) for paper, item, _ in _CATALOGUE
                  if paper == ref.paper and item.startswith("§") and first <= _number(item[1:]) <= last]
    else:  # figures print no numbers to transcribe
        wanted = []
    if not wanted or any(entry not in items for entry in wanted):
        raise ValueError(f"{table!r} is not transcribed in eebench.paper_numbers (transcribed: {known})")
    return wanted


def _rows(table: str) -> pd.DataFrame:
    return pd.concat([_item(paper, item) for paper, item in _items(table)], ignore_index=True)


def load(table: str) -> pd.DataFrame:
    """The values of one item (``"B Table 10"``, ``"B Tables 10"``, ``"B §4.7"``, ``"A §4.2"``), or of every item
    of a range (``"B Tables 8-18"``, which must all be transcribed), as a frame with :data:`COLUMNS`: ``value``
    and ``std`` floats (``std`` NaN where the paper gives none), the rest strings ('' where empty), in the order
    the text prints them. A ValueError names an item that is not transcribed and lists those that are."""
    frame = _rows(table)
    return frame.assign(value=frame["value"].astype(float),
                        std=pd.to_numeric(frame["std"].replace("", float("nan"))))


def csv_text(table: str) -> str:
    """:func:`load`'s rows as CSV, each number with the digits the paper prints (``28.50``, not ``28.5``)."""
    return _rows(table).to_csv(index=False, lineterminator="\n")
