"""Compile the regenerated paper (``paper/main.tex``) to PDF: ``eebench build-paper``, the ``build_paper`` rule;
and :func:`latex_escape`, the one way the package writes plain text into the LaTeX it generates.

The document compiles in its own directory, so that its relative ``\\input`` and ``\\includegraphics`` paths
resolve, with every auxiliary file in a temporary directory, so that ``paper/`` holds sources and results only.
The PDF and LaTeX's log then replace their targets atomically: a failed or killed build leaves the previous PDF
(or none), never half of one. Only the default target's files are generated without LaTeX; this module is the
one place that needs it.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from eebench.io import atomic_path

ENGINES = ("latexmk", "pdflatex")
# What paper/main.tex's \usepackage lines need on Debian/Ubuntu: amsmath, graphicx, inputenc and fontenc are in
# texlive-latex-base, booktabs in texlive-latex-recommended (`dpkg -S booktabs.sty`), lmodern.sty (vector fonts
# for the T1 text, instead of bitmaps Metafont makes) in lmodern, which texlive-base only recommends and
# --no-install-recommends would skip.
DEBIAN_PACKAGES = ("texlive-latex-base", "texlive-latex-recommended", "lmodern", "latexmk")
INSTALL_HINT = (f"on Debian/Ubuntu `sudo apt-get install {' '.join(DEBIAN_PACKAGES)}`; on macOS MacTeX "
                "(`brew install --cask mactex-no-gui`); elsewhere any TeX Live with latexmk")
# LaTeX's request for another pass (labels moved since the last one); latexmk acts on it itself.
RERUN = "Rerun to get cross-references right"
MIN_PDFLATEX_PASSES, MAX_PDFLATEX_PASSES = 2, 3  # two for \ref to see the labels; a third if the log asks
TEX_LINE_WIDTH = 79  # TeX's max_print_line: a log line this long continues on the next
ERROR_CONTEXT_LINES = 10  # how far below its "! ..." line an error's "l.<n>" line may be


# TeX's special characters in text mode, and the non-ASCII symbols the package's texts use, as commands pdflatex
# (T1, utf8 inputenc: paper/main.tex) knows.
_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "_": r"\_", "%": r"\%", "&": r"\&", "#": r"\#",
    "$": r"\$", '"': r"\textquotedbl{}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
}
_LATEX_SYMBOLS = {
    "§": r"\S{}", "–": "--", "—": "---", "…": r"\ldots{}", "²": r"\textsuperscript{2}",
    "⁴": r"\textsuperscript{4}", "⁵": r"\textsuperscript{5}", "×": r"$\times$", "−": r"$-$", "→": r"$\rightarrow$",
    "±": r"$\pm$", "≤": r"$\leq$", "≥": r"$\geq$", "≈": r"$\approx$", "∈": r"$\in$", "∞": r"$\infty$", "‖": r"$\|$",
    "α": r"$\alpha$", "δ": r"$\delta$", "ε": r"$\varepsilon$", "η": r"$\eta$", "θ": r"$\theta$",
    "λ": r"$\lambda$", "σ": r"$\sigma$", "τ": r"$\tau$", "Θ": r"$\Theta$", "Π": r"$\Pi$", "Σ": r"$\Sigma$",
}


def latex_escape(text: str) -> str:
    """Plain text as LaTeX (text mode): TeX's special characters escaped, the known symbols mapped; any other
    non-ASCII character is refused (pdflatex could stop on it, far from the text that brought it)."""
    out = []
    for char in text:
        if char in _LATEX_SPECIAL:
            out.append(_LATEX_SPECIAL[char])
        elif char in _LATEX_SYMBOLS:
            out.append(_LATEX_SYMBOLS[char])
        elif ord(char) > 127:
            raise ValueError(f"no LaTeX for {char!r} (U+{ord(char):04X}) in {text!r}; add it to "
                             "eebench.latex._LATEX_SYMBOLS")
        else:
            out.append(char)
    return "".join(out)


class LatexError(Exception):
    """The document could not be built; the message is one line."""


class LatexMissingError(LatexError):
    """Neither latexmk nor pdflatex (or not the engine asked for) is on PATH."""


def build_pdf(tex: str | Path, out: str | Path, engine: str | None = None, log: str | Path | None = None) -> Path:
    """Compile ``tex`` into ``out`` with ``engine`` (latexmk or pdflatex; default: latexmk if installed, else
    pdflatex) and keep LaTeX's log at ``log`` (default: beside ``out``, ``<stem>.log``), also on failure.
    Raises LatexMissingError, FileNotFoundError (no ``tex``) or LatexError quoting LaTeX's first error."""
    named, tex, out = tex, Path(tex).resolve(), Path(out)  # errors name the document as the caller did
    log = Path(log) if log is not None else out.with_suffix(".log")
    if not tex.is_file():
        raise FileNotFoundError(f"{named}: no such file (expected a LaTeX document)")
    program = find_engine(engine)
    with tempfile.TemporaryDirectory(prefix="eebench-latex-") as build_dir:
        build = Path(build_dir)
        if Path(program).name == "latexmk":
            result = _run([program, "-pdf", "-interaction=nonstopmode", "-halt-on-error", f"-outdir={build}",
                           tex.name], tex.parent)
        else:
            for passes in range(1, MAX_PDFLATEX_PASSES + 1):
                result = _run([program, "-interaction=nonstopmode", "-halt-on-error", f"-output-directory={build}",
                               tex.name], tex.parent)
                if result.returncode != 0 or (passes >= MIN_PDFLATEX_PASSES
                                              and RERUN not in _read(build / f"{tex.stem}.log")):
                    break
        latex_log, pdf = build / f"{tex.stem}.log", build / f"{tex.stem}.pdf"
        if latex_log.is_file():
            _publish(latex_log, log)
        if result.returncode != 0 or not pdf.is_file():
            where = f"full log: {log}" if latex_log.is_file() else f"{Path(program).name} wrote no log"
            text = _read(latex_log)
            error, in_file = first_error(text) or _tail(result.stdout), error_file(text)
            inside = f" in {in_file}" if in_file and in_file != tex.name else ""  # e.g. an \\input table
            raise LatexError(f"{named}: LaTeX failed{inside}: {error} ({where})")
        _publish(pdf, out)
    return out


def find_engine(engine: str | None = None) -> str:
    """The path of ``engine``, or of the first of ENGINES on PATH; LatexMissingError saying how to install."""
    if engine is not None and engine not in ENGINES:
        raise ValueError(f"unknown LaTeX engine {engine!r} (expected one of: {', '.join(ENGINES)})")
    for name in (engine,) if engine else ENGINES:
        path = shutil.which(name)
        if path:
            return path
    if engine:
        raise LatexMissingError(f"{engine} is not installed (not on PATH): {INSTALL_HINT}")
    raise LatexMissingError(f"LaTeX is not installed (neither {' nor '.join(ENGINES)} is on PATH): {INSTALL_HINT}")


def first_error(log_text: str) -> str:
    """LaTeX's first error in a log, on one line: the ``! ...`` message and the ``l.<n>`` line where it stopped."""
    lines = _unwrapped_lines(log_text)
    start = _first_error_line(lines)
    if start is None:
        return ""
    context = lines[start + 1:start + 1 + ERROR_CONTEXT_LINES]
    where = next((line.strip() for line in context if re.match(r"l\.\d+ ", line)), None)
    return f"{lines[start]} | {where}" if where else lines[start]


def error_file(log_text: str) -> str | None:
    """The file LaTeX was reading at its first error (an \\input table, say), from the log's nesting of
    ``(./file`` ... ``)``; None if there is no error or no file is open."""
    lines = _unwrapped_lines(log_text)
    start = _first_error_line(lines)
    if start is None:
        return None
    open_files: list[str | None] = []  # every "(" is pushed (None unless it opens a file), so ")" pops its own
    for match in re.finditer(r"\((\.{0,2}/[^\s()]+)?|\)", "\n".join(lines[:start])):
        if match.group(0) != ")":
            open_files.append(match.group(1))
        elif open_files:
            open_files.pop()
    name = next((name for name in reversed(open_files) if name), None)
    return name[2:] if name and name.startswith("./") else name


def _first_error_line(lines: list[str]) -> int | None:
    return next((i for i, line in enumerate(lines) if line.startswith("! ")), None)


def _unwrapped_lines(log_text: str) -> list[str]:
    """The log's lines, those TeX broke at TEX_LINE_WIDTH characters (mid-word, mid-file-name) joined again."""
    lines: list[str] = []
    continued = False
    for line in log_text.splitlines():
        if continued:
            lines[-1] += line
        else:
            lines.append(line)
        continued = len(line) >= TEX_LINE_WIDTH
    return lines


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    # stdin closed: in nonstopmode LaTeX never asks, and a program that would ask must not hang a job.
    return subprocess.run(argv, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          errors="replace")


def _publish(built: Path, target: Path) -> None:
    # Copied beside the target, then renamed over it: the temporary directory may be on another file system.
    with atomic_path(target) as tmp:
        shutil.copyfile(built, tmp)


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.is_file() else ""


def _tail(output: str, lines: int = 3) -> str:
    return " | ".join(line.strip() for line in output.strip().splitlines()[-lines:]) or "no output"
