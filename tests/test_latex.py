"""eebench.latex: plain text as LaTeX (latex_escape); compiling the paper (`eebench build-paper`) without LaTeX,
with a LaTeX error, and for real on small documents and on paper/main.tex with stand-ins for every table and
figure of config.yaml."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from eebench.latex import ENGINES, LatexError, LatexMissingError, build_pdf, error_file, first_error, latex_escape
from tests.latex import fake_paper_inputs, problems, read_files, unread_paper_files

REPO = Path(__file__).resolve().parents[1]
APT_LINE = "sudo apt-get install texlive-latex-base texlive-latex-recommended lmodern latexmk"
needs_pdflatex = pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")


@pytest.mark.parametrize("text, expected", [
    ("a_b 50% & #1 $x {y} ~ ^", r"a\_b 50\% \& \#1 \$x \{y\} \textasciitilde{} \textasciicircum{}"),
    ("C:\\path", r"C:\textbackslash{}path"),
    ("≥ 0.5 → σ × ‖θ‖ − 1 … §3", r"$\geq$ 0.5 $\rightarrow$ $\sigma$ $\times$ $\|$$\theta$$\|$ $-$ 1 \ldots{} \S{}3"),
    ('"quoted"', r"\textquotedbl{}quoted\textquotedbl{}"),
])
def test_latex_escape_escapes_the_specials_and_maps_the_symbols(text, expected):
    assert latex_escape(text) == expected


def test_latex_escape_refuses_an_unmapped_character():
    with pytest.raises(ValueError, match="U\\+2203"):
        latex_escape("∃")


@pytest.fixture(params=ENGINES)
def engine(request):
    if request.param == "latexmk":
        request.getfixturevalue("latex")  # installs latexmk where it can
    elif shutil.which("pdflatex") is None:
        pytest.skip("pdflatex is not installed")
    return request.param


@pytest.fixture
def no_latex(tmp_path, monkeypatch):
    """A PATH on which neither latexmk nor pdflatex is found; returns the environment for a subprocess."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    return {**os.environ, "PATH": str(empty)}


def write_document(folder: Path, body: str, name: str = "main.tex") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    tex = folder / name
    tex.write_text("\\documentclass{article}\n\\begin{document}\n" + body + "\n\\end{document}\n")
    return tex


def test_without_latex_the_error_says_how_to_install_it(tmp_path, no_latex):
    tex = write_document(tmp_path, "Hello.")
    with pytest.raises(LatexMissingError) as error:
        build_pdf(tex, tmp_path / "main.pdf")
    message = str(error.value)
    assert message.startswith("LaTeX is not installed") and "\n" not in message
    assert APT_LINE in message and "brew install --cask mactex-no-gui" in message
    assert not (tmp_path / "main.pdf").exists()


def test_the_cli_without_latex_exits_2_in_one_line_and_keeps_the_pdf(tmp_path, no_latex):
    paper = tmp_path / "paper"
    write_document(paper, "Hello.")
    old_pdf = b"%PDF-1.5 an earlier build\n"
    (paper / "main.pdf").write_bytes(old_pdf)
    result = subprocess.run([sys.executable, "-m", "eebench.cli", "build-paper", "--tex", "paper/main.tex",
                             "--out", "paper/main.pdf"], cwd=tmp_path, env=no_latex, capture_output=True, text=True)
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith("eebench build-paper: error: LaTeX is not installed") and APT_LINE in result.stderr
    assert (paper / "main.pdf").read_bytes() == old_pdf
    assert sorted(p.name for p in paper.iterdir()) == ["main.pdf", "main.tex"]


@needs_pdflatex
def test_a_latex_error_names_the_file_quotes_the_error_and_leaves_no_pdf(tmp_path):
    tex = write_document(tmp_path / "paper", "Hello.\n\\undefinedmacro")
    out = tmp_path / "paper" / "main.pdf"
    with pytest.raises(LatexError) as error:
        build_pdf(tex, out, engine="pdflatex")
    message = str(error.value)
    assert message.startswith(f"{tex}: LaTeX failed: ") and "\n" not in message
    assert "! Undefined control sequence." in message and "l.4 \\undefinedmacro" in message
    assert f"full log: {out.with_suffix('.log')}" in message
    assert "! Undefined control sequence." in out.with_suffix(".log").read_text()
    assert sorted(p.name for p in out.parent.iterdir()) == ["main.log", "main.tex"]  # no PDF, no aux, no temp


@needs_pdflatex
def test_an_error_in_an_input_file_names_that_file(tmp_path):
    paper = tmp_path / "paper"
    (paper / "tables").mkdir(parents=True)
    (paper / "tables" / "broken.tex").write_text("\\undefinedmacro\n")
    tex = write_document(paper, "Hello.\n\\input{tables/broken.tex}")
    with pytest.raises(LatexError) as error:
        build_pdf(tex, paper / "main.pdf", engine="pdflatex")
    assert f"{tex}: LaTeX failed in tables/broken.tex: ! Undefined control sequence. | l.1 \\undefinedmacro" in str(
        error.value)


def test_the_first_error_is_quoted_whole_with_its_line():
    log = ("(./main.tex\n! Package pdftex.def Error: File `figures/bee.pdf' not found: using draft setti\nng.\n\n"
           "See the pdftex.def package documentation for explanation.\nType  H <return>  for immediate help.\n"
           " ...\n\nl.111 ...aphics[width=\\linewidth]{figures/bee.pdf}\n\n! Emergency stop.\n")
    assert first_error(log) == ("! Package pdftex.def Error: File `figures/bee.pdf' not found: using draft setting. "
                                "| l.111 ...aphics[width=\\linewidth]{figures/bee.pdf}")
    assert error_file(log) == "main.tex"
    assert first_error("This is pdfTeX\nOutput written on main.pdf\n") == ""


def test_inputs_and_references_resolve_in_the_documents_folder(tmp_path, engine):
    paper = tmp_path / "paper"
    (paper / "sections").mkdir(parents=True)
    (paper / "sections" / "part.tex").write_text("\\section{Part}\\label{sec:part}\nText.\n")
    # \ref before its \label: right only after a second pass (latexmk decides it, pdflatex is run twice).
    tex = write_document(paper, "See Section~\\ref{sec:part}.\n\\input{sections/part.tex}")
    out = build_pdf(tex, paper / "main.pdf", engine=engine)
    assert out.read_bytes().startswith(b"%PDF")
    log = (paper / "main.log").read_text(errors="replace")
    assert "sections/part.tex" in read_files(log) and problems(log) == []
    assert "Rerun to get cross-references right" not in log
    assert sorted(p.name for p in paper.iterdir()) == ["main.log", "main.pdf", "main.tex", "sections"]


@needs_pdflatex
def test_main_tex_reads_every_table_and_figure_of_the_default_config(tmp_path):
    """paper/main.tex against config.yaml's names: each table and figure is read, each \\ref resolves."""
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    (tmp_path / "paper").mkdir()
    shutil.copy(REPO / "paper/main.tex", tmp_path / "paper/main.tex")
    fake_paper_inputs(tmp_path, config)
    out = build_pdf(tmp_path / "paper/main.tex", tmp_path / "paper/main.pdf", engine="pdflatex")
    assert out.read_bytes().startswith(b"%PDF")
    log = (tmp_path / "paper/main.log").read_text(errors="replace")  # T1 bytes of e.g. § are not UTF-8
    assert unread_paper_files(log, config) == set() and problems(log) == []
