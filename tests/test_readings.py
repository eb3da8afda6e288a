"""eebench.readings: the one list of readings, the README section and paper/readings.tex generated from it."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from eebench import latex, readings
from eebench.readings import READINGS, latex_markup
from eebench.schema import schema

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- readings:start", "<!-- readings:end -->"
REGENERATE = "eebench readings --format markdown"


def test_readme_section_is_the_generated_list():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert text.count(START) == 1 and text.count(END) == 1, f"README.md needs one {START} ... {END} section"
    section = text.split(START, 1)[1].split("-->", 1)[1].lstrip("\n").split(END, 1)[0]
    assert section == readings.markdown(), (
        "README.md's readings section differs from src/eebench/readings.py; edit the module, then replace the "
        f"lines between the markers with the output of `{REGENERATE}`")


@pytest.mark.parametrize("reading", READINGS, ids=lambda r: r.title)
def test_every_reading_has_a_text_and_a_source(reading):
    assert reading.title.strip() and reading.text.strip() and reading.source.strip()
    assert reading.text == reading.text.strip(), "the renderers add the space after the title"
    assert all(isinstance(key, str) and key for key in reading.keys)


def test_titles_are_distinct():
    titles = [reading.title for reading in READINGS]
    assert len(titles) == len(set(titles))


# Config keys ------------------------------------------------------------------------------------------------

SCHEMA = schema()  # the skeleton composed with the generated parts
# Sections checked by eebench.config against a per-kind definition rather than by the schema itself: a dataset's
# parameters (dataset_params/<loader>), a backbone's (backbone_params/<backbone>).
_DISPATCHED = {("datasets", "<name>"): "dataset_params", ("models", "<name>", "params"): "backbone_params"}


def _children(node: dict) -> list[dict]:
    """``node`` and every schema it delegates to ($ref, allOf/anyOf/oneOf, if/then/else)."""
    if not isinstance(node, dict):
        return []
    found = [node]
    if "$ref" in node:
        found += _children(SCHEMA["$defs"][node["$ref"].rsplit("/", 1)[1]])
    for combination in ("allOf", "anyOf", "oneOf"):
        for sub in node.get(combination, []):
            found += _children(sub)
    for branch in ("then", "else"):
        found += _children(node.get(branch))
    return found


def resolve(key: str) -> bool:
    """Whether the dotted ``key`` (``<name>`` for a user-chosen name) names a key of the config schema; a
    criterion setting's keys are its criterion's parameters or a task's evaluation parameters (checked by
    eebench.config against eebench.exits.criteria and eebench.tasks, not by the schema)."""
    parts = key.split(".")
    if parts[0] == "criteria" and len(parts) == 3 and parts[1] == "<name>":
        from eebench.exits import criteria
        from eebench.tasks import task_parameter_names

        return (parts[2] == "criterion" or parts[2] in task_parameter_names()
                or any(parts[2] in criteria.parameters(name) for name in criteria.CRITERIA.names()))
    nodes, path = [SCHEMA], ()
    for part in parts:
        following = []
        for node in (child for n in nodes for child in _children(n)):
            if part.startswith("<"):
                extra = node.get("additionalProperties")
                following += [extra] if isinstance(extra, dict) else []
            elif part in node.get("properties", {}):
                following.append(node["properties"][part])
        path += (part,)
        if path in _DISPATCHED:
            following += list(SCHEMA["$defs"][_DISPATCHED[path]]["properties"].values())
        if not following:
            return False
        nodes = following
    return True


def test_resolver():
    assert resolve("sweep.max_points") and resolve("training.loss_scaling.ramp_epochs")
    assert resolve("tables.<name>.rule") and resolve("datasets.<name>.val_fraction")
    assert resolve("models.<name>.params.shortcut") and resolve("criteria.<name>.tolerance")
    assert not resolve("sweep.max_point") and not resolve("tables.<name>.rules")
    assert not resolve("models.<name>.params.nonsense") and not resolve("criteria.<name>.nonsense")


@pytest.mark.parametrize("key", sorted({key for reading in READINGS for key in reading.keys}))
def test_config_keys_exist_in_the_schema(key):
    assert resolve(key), f"{key} (named by a reading in eebench/readings.py) is not a key of the config schema"


# LaTeX ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("`sweep.max_points` must be 0", r"\texttt{sweep.max\_points} must be 0"),
    ("**Loss** of *validation*", r"\textbf{Loss} of \emph{validation}"),
    ("**`val` rule**: x", r"\textbf{\texttt{val} rule}: x"),
    ("Π\\* = argmin, θ\\*'s slice (see *Initialisation*)",
     r"$\Pi$* = argmin, $\theta$*'s slice (see \emph{Initialisation})"),
    ("`config/paper/a_fig*.yaml`", r"\texttt{config/paper/a\_fig*.yaml}"),
])
def test_latex_markup(text, expected):
    assert latex_markup(text) == expected


_UNESCAPED = re.compile(r"(?<!\\)[_%&#$^~]|\*\*|`")


def test_latex_of_every_reading_has_no_unescaped_special_character():
    for reading in READINGS:
        item = readings.latex((reading,)).split(r"\item ", 1)[1].split("\n", 1)[0]
        assert item.isascii(), reading.title
        assert (item.count("$") - item.count(r"\$")) % 2 == 0, reading.title
        plain = item
        for symbol in sorted(latex._LATEX_SYMBOLS.values(), key=len, reverse=True):  # the math symbols
            plain = plain.replace(symbol, "")
        assert not _UNESCAPED.search(plain), (reading.title, _UNESCAPED.search(plain), item)
        assert item.count("{") - item.count(r"\{") == item.count("}") - item.count(r"\}"), reading.title


def test_markdown_and_latex_have_one_item_per_reading():
    assert readings.markdown().count("\n- ") + 1 == len(READINGS)
    assert readings.latex().count(r"\item ") == len(READINGS)


def test_readings_command_writes_the_latex(tmp_path):
    from eebench.cli import main

    assert main(["readings", "--format", "latex", "--out", str(tmp_path / "readings.tex")]) == 0
    assert (tmp_path / "readings.tex").read_text(encoding="utf-8") == readings.latex()


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed, so the generated "
                    "section is not compiled (the escaping tests above still run)")
def test_pdflatex_compiles_the_section(tmp_path):
    # The preamble of paper/main.tex, which is what \input{readings.tex} reaches.
    (tmp_path / "readings.tex").write_text(readings.latex(), encoding="utf-8")
    (tmp_path / "doc.tex").write_text(
        "\\documentclass{article}\n\\usepackage[utf8]{inputenc}\n\\usepackage[T1]{fontenc}\n"
        "\\usepackage{amsmath}\n\\begin{document}\n\\input{readings.tex}\n\\end{document}\n", encoding="utf-8")
    result = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"], cwd=tmp_path,
                            capture_output=True, text=True, errors="replace", timeout=120)
    assert result.returncode == 0, result.stdout[-3000:]
    assert (tmp_path / "doc.pdf").exists()
