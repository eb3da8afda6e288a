"""LaTeX for the tests that compile documents: installing it, stand-ins for the paper's generated files, and
what a pdflatex log says a document read.

    python tests/latex.py install   # apt-get install the packages `eebench build-paper` needs, if any is missing
    python tests/latex.py status

Installing is tests/apt.py's, as for tests/slurm/cluster.py: Debian's packages (``eebench.latex.DEBIAN_PACKAGES``,
the list the error message of a machine without LaTeX gives) with ``apt-get install --no-install-recommends``,
``apt-get update`` and once more on failure. It needs root and apt-get; without them the tests skip, saying why.
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

if not __package__:  # run as a script (python tests/latex.py): tests.apt is found from the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eebench.latex import DEBIAN_PACKAGES, ENGINES  # noqa: E402
from tests import apt  # noqa: E402

# What paper/main.tex loads beyond the engines: checked with kpsewhich, so a half-installed TeX counts as missing.
STYLES = ("amsmath.sty", "booktabs.sty", "graphicx.sty", "lmodern.sty")


class LatexInstallError(RuntimeError):
    pass


def missing() -> list[str]:
    """The engines and style files not found here."""
    absent = apt.missing(ENGINES)
    kpsewhich = shutil.which("kpsewhich")
    if kpsewhich is None:
        return absent + list(STYLES)
    found = subprocess.run([kpsewhich, *STYLES], capture_output=True, text=True).stdout.split()
    return absent + [style for style in STYLES if not any(path.endswith(f"/{style}") for path in found)]


def unavailable_reason() -> str | None:
    """Why LaTeX can be neither found nor installed here, or None. Meant for pytest.skip."""
    absent = missing()
    why = apt.cannot_install() if absent else None
    return f"LaTeX is incomplete ({', '.join(absent)} missing) and {why}" if why else None


def install(log=print) -> None:
    """apt-get install DEBIAN_PACKAGES if anything is missing (tests/apt.py: apt-get update and retry on failure)."""
    try:
        apt.install(DEBIAN_PACKAGES, missing, log)
    except apt.AptError as error:
        raise LatexInstallError(str(error)) from None


# --- the paper's inputs, and reading a pdflatex log ----------------------------------------------------------


def unwrapped(log_text: str) -> str:
    """The log with TeX's line wrapping undone (it breaks lines at 79 characters, mid-name), as one string: a
    file name is then found whole wherever it was wrapped."""
    return log_text.replace("\n", "")


def read_files(log_text: str) -> set[str]:
    """Every file the log says was read: ``(./tables/x.tex`` for \\input, ``File: figures/x.pdf Graphic file``
    for \\includegraphics (paths as written in the document, ``./`` dropped)."""
    text = unwrapped(log_text)
    inputs = re.findall(r"\(\./([^\s()]+?\.tex)", text)
    graphics = re.findall(r"File: (\S+?) Graphic file", text)
    return set(inputs) | set(graphics)


def unread_paper_files(log_text: str, config: dict) -> set[str]:
    """The config's tables and figures that paper/main.tex did not read, according to its log."""
    expected = {f"tables/{name}.tex" for name in config.get("tables", {})}
    expected |= {f"figures/{name}.pdf" for name in config.get("figures", {})}
    return expected - read_files(log_text)


def problems(log_text: str) -> list[str]:
    """What a clean build's log must not say: undefined references or citations, files not found."""
    text = unwrapped(log_text)
    patterns = (r"There were undefined references", r"Reference `[^']*' on page \d+ undefined",
                r"Citation `[^']*' on page \d+ undefined", r"File `[^']*' not found")
    return [match for pattern in patterns for match in re.findall(pattern, text)]


def fake_paper_inputs(workdir: Path, config: dict) -> None:
    """What the default target writes into paper/: the real body and readings (cheap to make), and stand-ins
    for the results: each table a float with its caption and label, each figure a one-line PDF (matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from eebench import readings, targets
    from eebench.render.paper import render_body
    from eebench.render.spec import body_spec, table_label

    generated = {targets.BODY_TEX: lambda: render_body(body_spec(config)),
                 targets.READINGS_TEX: lambda: readings.latex()}
    for name in targets.final_outputs(config):
        path = workdir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if name in generated:
            path.write_text(generated[name](), encoding="utf-8")
        elif path.suffix == ".pdf":
            figure = plt.figure(figsize=(2, 1))
            figure.text(0.1, 0.5, path.stem)
            figure.savefig(path)
            plt.close(figure)
        elif path.parent.name == "tables":
            label = table_label(config, path.stem)
            path.write_text("\\begin{table}\\centering\\caption{" + path.stem.replace("_", "\\_") + "}"
                            + f"\\label{{{label}}}\\end{{table}}\n")
        else:
            raise ValueError(f"{name}: no stand-in for this kind of output")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["install", "status"])
    args = parser.parse_args(argv)
    if args.action == "status":
        print(f"missing: {', '.join(missing())}" if missing() else "complete")
        return 0
    reason = unavailable_reason()
    if reason:
        print(f"error: {reason}", file=sys.stderr)
        return 1
    try:
        install()
    except LatexInstallError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
