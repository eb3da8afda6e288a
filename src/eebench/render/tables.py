"""The tables that are not budget tables (paper B §4.7's training time, the papers' claims checked, the fidelity
presets' differences) and the one entry point that renders any table kind (:func:`render_table`). The budget
tables are eebench.render.budget_tables (the kinds) and eebench.render.layouts (their engine).

Every table is returned with the numbers it shows, so the CSV written beside the .tex lets a reader check any
cell without re-parsing LaTeX.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Mapping, Sequence

import numpy as np
import pandas as pd
from pydantic import ConfigDict
from typing_extensions import TypedDict

from eebench.declare import Param, Registered
from eebench.io import BUDGETS_CSV, MODEL_CHECKPOINT, RENDERED_CSV, read_checkpoint, read_csv, write_csv, write_text
from eebench.latex import latex_escape
from eebench.render.base import TABLES, kind, no_runs, reads, regime_label, regime_runs
from eebench.render.budget_tables import table_layout
from eebench.render.keys import Model, Name, Regimes
from eebench.render.layouts import EN_DASH, RUN_COLUMNS, budget_header, fit_to_line_width, seed_stats

# budget_header and table_layout: where eebench.render.spec imports them from.
__all__ = ["TABLES", "render_table", "training_record", "budget_header", "table_layout"]


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


@kind("tables", "training_time",
      regenerates=("B", "Section 4.7: epochs to convergence and wall-clock per regime"),
      caption="Training time per regime: epochs over all phases (phase 1 included for the regimes that start from "
              "it) and wall-clock seconds, mean $\\pm$ std over seeds.")
@reads("models", runs=regime_runs)
def training_time(frame: pd.DataFrame, caption: str, label: str, model_descriptions: Mapping[str, str] | None = None,
                  *, model: Annotated[Model, Param("The model setting shown.")], regimes: Regimes,
                  **unused: Any) -> tuple[str, pd.DataFrame]:
    """Paper B §4.7: epochs to convergence (phase 1 counted) and wall-clock seconds per regime, from the
    checkpoints.

    Per regime, epochs over every phase (phase 1 counted for the regimes that start from it, also when that run
    is shared) and wall-clock seconds, mean ± std over seeds. The ``backbone`` regime's runs carry the name of
    the setting that owns the shared phase 1, so rows match by regime."""
    del unused
    records, rows = [], []
    for regime in regimes:
        runs = frame[frame["regime"] == regime]
        cells = [regime_label(regime)]
        for quantity, header in TIME_QUANTITIES.items():
            mean, std, n = seed_stats(runs[quantity].to_numpy(dtype=np.float64))
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
    return fit_to_line_width(tex), pd.DataFrame(records)


# The papers' claims, checked (eebench.claims) ------------------------------------------------------------------


class Check(TypedDict):
    """A claim and the entry whose numbers it is checked on."""

    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]
    claim: Annotated[str, Registered("eebench.claims", "CLAIMS"), Param("A registered claim (eebench.claims.CLAIMS).")]
    entry: Annotated[Name, Param("A table or figure entry of this config.")]


@kind("tables", "claims", regenerates=("B", "claims about the training regimes, checked on a regimes table"),
      caption="The papers' claims checked on this run's tables and figures.", body="claims")
@reads("rendered", runs=no_runs)
def claims(frame: pd.DataFrame, caption: str, label: str, *,
           checks: Annotated[list[Check], Param(
               "Each a registered claim and the table or figure entry whose CSV it is checked on (of the kind the "
               "claim reads).", min_length=1)],
           **unused: Any) -> tuple[str, pd.DataFrame]:
    """The papers' claims (eebench.claims) checked on the numbers of other tables and figures of this config:
    sentence, source, numbers, verdict.

    Each check (a claim of ``eebench.claims`` and the table or figure entry it is checked on): the paper's
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


# The fidelity presets' differences (eebench.fidelity) -----------------------------------------------------------


def _as_written(value: Any) -> str:
    """A switch's value as a config writes it (YAML's true/false)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


@kind("tables", "presets", regenerates=None,
      caption="What the fidelity preset authors\\_code changes against the preset paper: each reading switch whose "
              "value differs, under the papers' text and tables (paper) and under the authors' released code "
              "(authors\\_code).")
@reads("models", runs=no_runs)  # no runs, so no checkpoints: it reads no results
def presets(frame: pd.DataFrame, caption: str, label: str, **unused: Any) -> tuple[str, pd.DataFrame]:
    """The fidelity presets' differences (eebench.fidelity): one row per reading switch whose value differs
    between the presets paper and authors_code, with the title of the reading (eebench.readings) that says why.

    Numbers: key, paper, authors_code, reading (the values as a config writes them)."""
    from eebench.fidelity import differences
    from eebench.readings import READINGS, latex_markup

    del frame, unused  # the workflow gives it no files, and it shows no model setting
    records = [{"key": row["key"], "paper": _as_written(row["paper"]),
                "authors_code": _as_written(row["authors_code"]), "reading": row["reading"]}
               for row in differences() if row["paper"] != row["authors_code"]]
    titles = {reading.title for reading in READINGS}
    unknown = [record["reading"] for record in records if record["reading"] not in titles]
    if unknown:
        raise ValueError(f"fidelity switch reading(s) {', '.join(map(repr, unknown))} are not titles of "
                         "eebench.readings.READINGS")
    code = ("key", "paper", "authors_code")
    table = pd.DataFrame([[*(f"\\texttt{{{latex_escape(record[column])}}}" for column in code),
                           latex_markup(record["reading"])] for record in records],
                         columns=["Config key", "paper", "authors_code", "Reading"])
    tex = table.style.hide(axis="index").format_index(escape="latex", axis=1).to_latex(
        hrules=True, caption=caption.strip(), label=label, position_float="centering", column_format="llll")
    return fit_to_line_width(tex), pd.DataFrame(records, columns=["key", "paper", "authors_code", "reading"])


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
