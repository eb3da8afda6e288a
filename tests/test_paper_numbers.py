"""eebench.paper_numbers: the papers' numbers, transcribed once (issue 23), checked against the papers' text."""
from __future__ import annotations

import math
import os
import re
from importlib import resources
from pathlib import Path

import pandas as pd
import pytest

from eebench import paper_numbers
from eebench.cli import main

ROOT = Path(__file__).resolve().parents[1]
PAPER_FILES = {"B": "how-to-train-your-multi-exit-model.txt", "A": "limitations-of-early-exits-single-multi-label.txt"}


def _papers_dir() -> Path | None:
    """Where the papers' text is: $EEBENCH_PAPERS, else ../shared/papers beside the checkout (as CI has it) or the
    checkout's own shared/papers."""
    candidates = [os.environ.get("EEBENCH_PAPERS"), ROOT.parent / "shared" / "papers", ROOT / "shared" / "papers"]
    for candidate in candidates:
        if candidate and all((Path(candidate) / name).is_file() for name in PAPER_FILES.values()):
            return Path(candidate)
    return None


PAPERS = _papers_dir()
needs_papers = pytest.mark.skipif(PAPERS is None, reason="the papers' text is not here (set EEBENCH_PAPERS to "
                                                         "the folder holding the two .txt files)")


def _lines(paper: str) -> list[str]:
    return (PAPERS / PAPER_FILES[paper]).read_text(encoding="utf-8").splitlines()


_CAPTION = re.compile(r"^(?:\*|<i>)?(Table|Figure|Fig\.) (\d+)[.:]")
_HEADING_B = re.compile(r"^#")
_HEADING_A = re.compile(r"^\d+(?:\.\d+)* [A-Z][^.]{0,80}$")


def block(paper: str, item: str) -> str:
    """The text of one item: a table from its caption to the next caption or section heading; a section from its
    heading to the next heading."""
    lines = _lines(paper)
    heading = _HEADING_B if paper == "B" else _HEADING_A
    if item.startswith("Table"):
        number = item.split()[1]
        start = next(i for i, line in enumerate(lines)
                     if (m := _CAPTION.match(line)) and m[1] == "Table" and m[2] == number)
        end = next((i for i in range(start + 1, len(lines))
                    if heading.match(lines[i]) or ((m := _CAPTION.match(lines[i])) and
                                                   (m[1], m[2]) != ("Table", number))), len(lines))
    else:
        number = re.escape(item.lstrip("§"))
        start = next(i for i, line in enumerate(lines)
                     if heading.match(line) and re.match(rf"^[#\s*]*{number}\.? ", line))
        end = next((i for i in range(start + 1, len(lines)) if heading.match(lines[i])), len(lines))
    return "\n".join(lines[start:end])


def normalise(text: str) -> str:
    """The text with LaTeX's ± spellings (``\\pm``, ``\\!``, ``{\\pm}``, ``\\ ``), ``$`` and HTML tags removed."""
    text = re.sub(r"</?[a-z]+>", " ", text)
    for token in ("{\\pm}", "\\pm", "\\!", "\\ ", "$"):
        text = text.replace(token, " ")
    return text


_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?")


def problems(frame: pd.DataFrame, text: str) -> list[str]:
    """What of one item's rows its block of text does not print: each value (and std) must appear, in the order
    of the rows (the files list values in the order the text prints them), and each label of a table's row."""
    text = normalise(text)
    numbers = [float(token) for token in _NUMBER.findall(text)]
    found, position = [], 0
    for row in frame.itertuples(index=False):
        expected = [row.value] + ([] if math.isnan(row.std) else [row.std])
        for number in expected:
            try:
                position = numbers.index(number, position) + 1
            except ValueError:
                found.append(f"{row.table} {row.setting} {row.row} {row.column}: {number} is not in the text "
                             "(after the row before it)")
                break
        if row.table.startswith("Table"):  # labels: a text value's row and column describe it, not quote it
            # a setting printed over its group's lines ("ViT-T", "", "C-100"): each word of it
            printed = row.printed_setting.split(" / ") if row.printed_setting else row.setting.split()
            column = "Unlim" if row.column == "Unlimited" else row.column  # Table 11 prints "Unlim" (README)
            for label in (*printed, row.row, column):
                if label not in text:
                    found.append(f"{row.table}: label {label!r} is not in the text")
    return found


ITEMS = paper_numbers.tables()


# (a) every transcribed value appears in its item's block of the paper's text

@needs_papers
@pytest.mark.parametrize("name", ITEMS)
def test_every_value_is_in_its_tables_text(name):
    paper, item = name.split(" ", 1)
    assert problems(paper_numbers.load(name), block(paper, item)) == []


@needs_papers
def test_a_value_typed_wrong_or_out_of_order_fails():
    frame = paper_numbers.load("B Table 8")
    text = block("B", "Table 8")
    assert problems(frame, text) == []
    typo = frame.copy()
    typo.loc[(typo["row"] == "Mixed-gradual") & (typo["column"] == "25%"), "value"] = 61.11
    assert any("61.11" in problem for problem in problems(typo, text))
    std = frame.copy()
    std.loc[(std["row"] == "Joint") & (std["column"] == "50%"), "std"] = 0.43
    assert problems(std, text)
    swapped = frame.copy()
    swapped.loc[[0, 1], "value"] = swapped.loc[[1, 0], "value"].to_numpy()
    assert problems(swapped, text)
    relabelled = frame.copy()
    relabelled.loc[0, "row"] = "Mixed-abrupt"
    assert problems(relabelled, text)


@needs_papers
def test_the_blocks_are_the_tables():
    assert block("B", "Table 13").splitlines()[0] == "Table 13. BERT-B 20-Newsgroups"
    assert "Table 14" not in block("B", "Table 13")
    assert block("B", "§4.7").startswith("#### 4.7. Training time")
    assert "523" in block("B", "§4.7") and "Related Work" not in block("B", "§4.7")
    assert block("A", "§4.2").startswith("4.2 Early-exits for multi-label")
    assert "Ablation" not in block("A", "§4.2")


# (b) every table of paper B has a file, and no file is empty

def _files() -> set[str]:
    return {entry.name for entry in resources.files(paper_numbers).iterdir() if entry.name.endswith(".csv")}


def test_every_table_of_paper_b_has_a_file():
    files = _files()
    for number in range(1, 21):
        assert f"b_table{number:02d}.csv" in files
        assert f"B Table {number}" in ITEMS
        assert paper_numbers.counts()[f"B Table {number}"] > 0
    assert files == {f"b_table{n:02d}.csv" for n in range(1, 21)} | {"b_text.csv", "a_text.csv"}


@needs_papers
def test_every_table_the_paper_captions_is_transcribed():
    captioned = {int(m[2]) for line in _lines("B") if (m := _CAPTION.match(line)) and m[1] == "Table"}
    assert captioned == set(range(1, 21))
    assert not any((m := _CAPTION.match(line)) and m[1] == "Table" for line in _lines("A"))


def test_no_file_is_empty_and_every_row_is_an_item():
    total = 0
    for name in sorted(_files()):
        with resources.files(paper_numbers).joinpath(name).open(encoding="utf-8") as handle:
            frame = pd.read_csv(handle, dtype=str, keep_default_na=False)
        assert tuple(frame.columns) == paper_numbers.COLUMNS, name
        assert len(frame) > 0, name
        assert set(frame["paper"] + " " + frame["table"]) <= set(ITEMS), name
        assert (frame["value"] != "").all(), name
        total += len(frame)
    assert sum(paper_numbers.counts().values()) == total


def test_items_are_in_the_papers_order_and_keys_unique():
    assert ITEMS[0] == "B Table 1" and ITEMS[-1] == "A §4.2"
    tables_b = [int(name.split()[-1]) for name in ITEMS if name.startswith("B Table")]
    assert tables_b == list(range(1, 21))
    for name in ITEMS:
        frame = paper_numbers.load(name)
        keys = frame[["setting", "row", "column"]]
        assert not keys.duplicated().any(), f"{name}: {keys[keys.duplicated()].to_dict('records')}"
        printed = frame["printed_setting"]
        assert ((printed == "") | (printed != frame["setting"])).all(), f"{name}: printed_setting repeats setting"


# (c) values checked by hand, and the tables that print the same numbers twice

def _cell(name: str, row: str, column: str, setting: str = "") -> pd.Series:
    frame = paper_numbers.load(name)
    hit = frame[(frame["setting"] == setting) & (frame["row"] == row) & (frame["column"] == column)]
    assert len(hit) == 1, (name, setting, row, column)
    return hit.iloc[0]


@pytest.mark.parametrize("name, setting, row, column, value, std", [
    ("B Table 8", "", "Mixed-gradual", "25%", 60.11, 0.68),
    ("B Table 1", "ViT-S IN-1k", "Joint", "100%", 76.44, None),
    ("B Table 1", "ResNet-34 C-100", "Disjoint", "25%", 52.57, None),
    ("B Table 2", "STS-B (regr.)", "Joint", "25%", 1.70, None),
    ("B Table 4", "", "Disjoint", "35%", 28.50, None),
    ("B Table 5", "Joint", "Inc.", "25%", -1.7, None),
    ("B Table 5", "Mixed", "GE", "100%", -0.02, None),
    ("B Table 6", "Disjoint", "2L-2048", "25%", 33.96, None),
    ("B Table 7", "DenSpa.", "Mixed", "100%", 66.27, None),
    ("B Table 9", "", "Mixed-gradual", "100%", 77.21, 0.61),
    ("B Table 11", "", "Disjoint", "Unlimited", 65.80, 0.90),
    ("B Table 14", "", "Separate", "Unlimited", 1.39, 0.0),
    ("B Table 19", "", "Mixed SDN", "25%", 49.50, 0.74),
    ("B Table 20", "", "Mixed 2L-2048", "100%", 80.70, 0.51),
    ("B §4.7", "ResNet-50 Tinyimagenet", "Joint", "epochs", 1610, 395),
])
def test_spot_values(name, setting, row, column, value, std):
    cell = _cell(name, row, column, setting)
    assert cell["value"] == value
    assert math.isnan(cell["std"]) if std is None else cell["std"] == std


def test_left_out_cells_are_absent():
    frame = paper_numbers.load("B Table 7")
    assert frame[frame["setting"].isin(["Every-3", "Every-4", "Every-5"]) & (frame["column"] == "25%")].empty
    separate = paper_numbers.load("B Table 13").query("row == 'Separate'")
    assert list(separate["column"]) == ["25%", "50%"]
    assert paper_numbers.counts()["B Table 7"] == 84 - 9 and paper_numbers.counts()["B Table 13"] == 35 - 3


def test_corrected_labels_keep_the_printed_text():
    table1 = paper_numbers.load("B Table 1")
    printed = dict(zip(table1["setting"], table1["printed_setting"]))
    assert printed["ViT-S IN-1k"] == "ViT-S / VII-S IN-1k / 11N-1K"
    assert printed["ResNet-34 C-100"] == "DecNet 24 / ResNet-34 / C-100"
    assert printed["ViT-T C-100"] == ""
    assert list(dict.fromkeys(paper_numbers.load("B Table 11")["column"])) == ["35%", "50%", "75%", "100%",
                                                                                 "Unlimited"]


# The main text's tables repeat the appendix's means: typed twice, from different lines, they must agree.
SAME = [("B Table 1", "ResNet-34 C-100", "B Table 8"), ("B Table 1", "MSDNet C-100", "B Table 9"),
        ("B Table 1", "ViT-T C-100", "B Table 10"), ("B Table 1", "ResNet-50 Tiny-IN", "B Table 11"),
        ("B Table 1", "ViT-T IN-1k", "B Table 12"), ("B Table 2", "Newsgr. (class.)", "B Table 13"),
        ("B Table 2", "STS-B (regr.)", "B Table 14"), ("B Table 3", "PBEE", "B Table 15"),
        ("B Table 3", "GPF", "B Table 16"), ("B Table 3", "Entropy", "B Table 17"), ("B Table 4", "", "B Table 18")]


@pytest.mark.parametrize("main_table, setting, appendix", SAME, ids=lambda x: x)
def test_main_tables_equal_the_appendix_means(main_table, setting, appendix):
    main_rows = paper_numbers.load(main_table).query("setting == @setting")
    full = paper_numbers.load(appendix)
    # by position: the first four budgets (Table 11 heads with 35% what Table 1 heads with 25%)
    columns, full_columns = list(dict.fromkeys(main_rows["column"])), list(dict.fromkeys(full["column"]))[:4]
    assert len(main_rows) == 12
    for row in main_rows.itertuples():
        twin = full[(full["row"] == row.row) & (full["column"] == full_columns[columns.index(row.column)])]
        assert twin["value"].tolist() == [row.value], (row.row, row.column)


def test_table5_is_table19s_differences():
    table5, table19 = paper_numbers.load("B Table 5"), paper_numbers.load("B Table 19")
    mean = table19.set_index(["row", "column"])["value"]
    assert len(table5) == 32
    for row in table5.itertuples():
        difference = mean[(f"{row.setting} {row.row}", row.column)] - mean[(row.setting, row.column)]
        assert abs(difference - row.value) < 0.0051, (row.setting, row.row, row.column)


# load's spellings, and refusals

def test_load_accepts_regenerates_spellings():
    assert paper_numbers.load("B Tables 10").equals(paper_numbers.load("B Table 10"))
    span = paper_numbers.load("B Tables 8-18")
    assert list(dict.fromkeys(span["table"])) == [f"Table {n}" for n in range(8, 19)]
    assert len(span) == sum(paper_numbers.counts()[f"B Table {n}"] for n in range(8, 19))
    assert list(paper_numbers.load("B §4.7")["row"]) == ["Disjoint", "Joint", "Mixed"]
    assert (paper_numbers.load("A §4.2")["value"] == 0.05).all()
    assert list(paper_numbers.load("B Table 8").columns) == list(paper_numbers.COLUMNS)


@pytest.mark.parametrize("name", ["B Table 21", "A Table 1", "B Fig. 1", "B Tables 19-22", "B §4.6", "Table 8"])
def test_load_refuses_what_is_not_transcribed(name):
    with pytest.raises(ValueError, match="B Table 1, B Table 2"):
        paper_numbers.load(name)


# (d) the command line

def test_cli_prints_a_table(capsys):
    assert main(["paper-numbers", "B Table 10"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == ",".join(paper_numbers.COLUMNS)
    assert lines[1] == "B,Table 10,,,Disjoint,25%,28.33,0.47"
    assert len(lines) == 1 + paper_numbers.counts()["B Table 10"]
    assert main(["paper-numbers", "B Table 4"]) == 0
    assert "B,Table 4,,,Disjoint,35%,28.50," in capsys.readouterr().out.splitlines()  # the printed digits


def test_cli_lists_the_tables(capsys):
    assert main(["paper-numbers", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "table,values"
    assert lines[1:] == [f"{name},{count}" for name, count in paper_numbers.counts().items()]
    assert "B Table 8,35" in lines


def test_cli_refuses_an_unknown_table(capsys):
    assert main(["paper-numbers", "B Table 42"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("eebench paper-numbers: error: 'B Table 42'") and "B Table 20" in err
    with pytest.raises(SystemExit) as raised:
        main(["paper-numbers"])
    assert raised.value.code == 2
