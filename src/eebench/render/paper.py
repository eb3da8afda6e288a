"""The regenerated paper's body (``paper/body.tex``, which ``paper/main.tex`` inputs): every table and figure of
the config, in the order of the two papers, under sections that follow theirs.

A table or figure entry names what it regenerates (``regenerates: "B Table 8"``, or a list such as
``["B Fig. 1", "B Figs 7-17"]``); its first reference places it: the paper, then the section of that paper
whose items include it (:data:`SECTIONS`, in each paper's own order), then its item's position there. An entry
that regenerates nothing of the papers goes where its kind says (eebench.render.base.Kind.body): after both papers
("Beyond the papers"), or in the claims' section, which closes the body. Every caption names what the entry
regenerates and the setting it was run in (datasets, backbones and the config's ``scale``): tables carry it in
their own caption (``eebench.render.spec.entry_spec``), figures get it here.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from eebench.io import write_text
from eebench.latex import latex_escape
from eebench.render.base import kind_of


@dataclass(frozen=True)
class Paper:
    """One of the two papers: its title (a section heading of the regenerated paper) and its short name (the
    category Snakemake's HTML report groups its tables and figures under, eebench.render.report)."""

    title: str
    short: str


PAPERS = {
    # Paper B first, as the mission lists the papers; each paper's sections in its own order.
    "B": Paper("How to Train Your Multi-Exit Model? Analyzing the Impact of Training Strategies",
               "Paper B (how to train your multi-exit model)"),
    "A": Paper("Limitations of Early Exits for Single- and Multi-Label Classification",
               "Paper A (limitations of early exits, single and multi-label)"),
}
SCALES = {
    "miniature": "miniature scale (the laptop-CPU stand-in: small data that ships in a package, small models)",
    "paper": "paper scale (the paper's datasets and architectures)",
}

_REFERENCE = re.compile(r"^(?P<paper>[AB]) (?P<item>Tables?|Figs?\.?|Figures?|§) ?(?P<first>\d+(?:\.\d+)*)"
                        r"(?:[-–](?P<last>\d+(?:\.\d+)*))?$")


@dataclass(frozen=True)
class Reference:
    """One table, figure or section of a paper (a range: its first item places the entry)."""

    paper: str
    item: str  # "Table", "Fig." or "§"
    first: str
    last: str | None = None

    @property
    def key(self) -> str:
        return f"{self.item} {self.first}" if self.item != "§" else f"§{self.first}"

    def text(self) -> str:
        """As a caption says it, e.g. "paper B Figs 7–17"."""
        if self.item == "§":
            number = f"§{self.first}" + (f"–{self.last}" if self.last else "")
            return f"paper {self.paper} {number}"
        plural = {"Table": "Tables", "Fig.": "Figs"}[self.item] if self.last else self.item
        return f"paper {self.paper} {plural} {self.first}" + (f"–{self.last}" if self.last else "")


def parse_reference(text: str) -> Reference:
    """``"B Table 8"``, ``"B Tables 8-18"``, ``"A Fig. 3"``, ``"B Figs 7-17"``, ``"B §4.7"``."""
    match = _REFERENCE.match(text.strip())
    if match is None:
        raise ValueError(f"regenerates: {text!r} is not a paper item (e.g. 'B Table 8', 'A Fig. 3', "
                         "'B Figs 7-17', 'B §4.7')")
    item = match["item"]
    item = "Table" if item.startswith("Table") else "§" if item == "§" else "Fig."
    return Reference(match["paper"], item, match["first"], match["last"])


def regenerates(entry: dict[str, Any]) -> list[str]:
    """The entry's ``regenerates`` (a string or a list) as a list; [] if it has none."""
    value = entry.get("regenerates", [])
    return [value] if isinstance(value, str) else list(value)


def references(entry: dict[str, Any]) -> list[Reference]:
    return [parse_reference(text) for text in regenerates(entry)]


def _items(kind: str, numbers) -> tuple[str, ...]:
    return tuple(f"{kind} {n}" for n in numbers)


@dataclass(frozen=True)
class Section:
    """A section of one paper: the items it holds, in the paper's order, and what it studies."""

    paper: str
    title: str
    source: str  # where in the paper, e.g. "§4.3; App. C, D"
    items: tuple[str, ...]
    intro: str  # LaTeX


SECTIONS: tuple[Section, ...] = (
    Section("B", "A framework for analysing multi-exit models", "§3, §4.2; App. B",
            _items("Fig.", range(2, 7)),
            "Paper B explains the regimes' differences with four analyses of the trained models: how much each "
            "head's gradient dominates the backbone's (\\S3.1), whether two regimes' models lie in one basin of "
            "the loss (mode connectivity, \\S3.2), the numerical rank of each block's representation (\\S3.3) and "
            "the information it keeps about the input (\\S3.4); Appendix B adds the heads' loss landscapes."),
    Section("B", "Performance under computational budgets", "§4.3; App. A, C, D",
            ("Fig. 1", *_items("Table", (1, 2, 3, 4, *range(8, 19))), *_items("Fig.", range(7, 18))),
            "Each table column is a maximum average computational budget, as a percentage of the backbone's "
            "cost; each cell is the mean~$\\pm$ sample standard deviation over seeds of the test performance. "
            "The best mean per column (per block) is bold, and a dash marks a budget that no operating point "
            "of at least one seed fits; each caption states the budget rule and the settings shown. The "
            "performance--cost figures draw the same rule on a fine grid of budgets."),
    Section("B", "Impact of gradient and loss scaling", "§4.4; App. C",
            _items("Table", (5, 19)),
            "Loss weights per head (increasing, decreasing, SDN's ramp) and gradient equilibrium, in the joint "
            "and mixed regimes, against constant weights."),
    Section("B", "Impact of IC size", "§4.5; App. C", _items("Table", (6, 20)),
            "Internal classifiers of growing size, per regime."),
    Section("B", "Impact of IC placement", "§4.6", ("Table 7",),
            "Where the internal classifiers sit: every block, every second block, dense then sparse and the "
            "reverse."),
    Section("B", "Training time", "§4.7", ("§4.7",),
            "Epochs to convergence (phase~1 included for the regimes that start from it) and wall-clock time "
            "per regime."),
    Section("A", "The evaluation framework", "§3", ("§3",),
            "Paper A compares an early-exit model with static models of matching cost: the benefit $B_{EE}$ "
            "per exit head, and the area under the performance--speed-up curve of each exit strategy."),
    Section("A", "Early exits for single-label classification", "§4.1", ("Fig. 2",),
            "The benefit $B_{EE}$ per exit head for a growing number of classes, each line pooling one model "
            "per learning rate. Points are means with one standard deviation as error bars; curves above the "
            "dashed zero line indicate a favourable performance--speed-up trade-off."),
    Section("A", "Early exits for multi-label classification", "§4.2", _items("Fig.", (3, 4, 5)),
            "Single- against multi-label classification, and the exit strategies of \\S4.2 on multi-label "
            "data: confidence, entropy, rank-patience (nDCG and Kendall's $\\tau$), a hybrid, the learned "
            "exit."),
    Section("A", "Ablation: one exit for several objects", "§4.3", ("Fig. 6",),
            "One binary early-exit model per class on images holding several classes: where the classes of one "
            "image exit at different heads, one exit decision for the whole image cannot serve them all."),
)

BEYOND = ("Beyond the papers", "Tables and figures this config adds that neither paper has.")
CLAIMS = ("The papers' claims, checked",
          "Each row is a sentence of one of the two papers, the table or figure of this document whose numbers "
          "test it, those numbers (mean~$\\pm$ std over seeds where the entry has several seeds) and the verdict. "
          "Where a sentence is qualitative (``rare'', ``dominates'', ``the same basin''), the reading that makes "
          "it testable is stated in \\texttt{eebench/claim\\_checks.py}. Nothing in the default setting is tuned to "
          "make a claim hold.")
# The sections after both papers ((title, introduction), label) by the name a kind's ``body`` gives
# (eebench.render.base.BODY_SECTIONS), in the body's order.
CLOSING = {"beyond": (BEYOND, "sec:beyond"), "claims": (CLAIMS, "sec:claims")}


def section_of(first: Reference) -> tuple[int, int]:
    """(index in :data:`SECTIONS`, position of the item there) of a reference (an entry's first places it)."""
    for index, section in enumerate(SECTIONS):
        if section.paper == first.paper and first.key in section.items:
            return index, section.items.index(first.key)
    known = ", ".join(f"{s.paper} {item}" for s in SECTIONS for item in s.items)
    raise ValueError(f"regenerates: {first.text()} is in no section of eebench.render.paper.SECTIONS ({known})")


_BEFORE_NUMBER = re.compile(r"\b(Tables?|Fig\.|Figs) (?=\d)")


def _tied(latex: str) -> str:
    """"Table 8", "Figs 7--17" with a tie, so no line breaks between the word and its number."""
    return _BEFORE_NUMBER.sub(r"\1~", latex)


def provenance(regenerates: list[str], setting: str) -> str:
    """The caption sentence(s) saying what an entry regenerates and where it was run (LaTeX)."""
    refs = [parse_reference(text) for text in regenerates]
    sentences = []
    if refs:
        named = [ref.text() if i == 0 else ref.text().removeprefix(f"paper {refs[0].paper} ")
                 for i, ref in enumerate(refs)]
        sentences.append("Regenerates " + (" and ".join(named) if len(named) < 3
                                           else ", ".join(named[:-1]) + " and " + named[-1]) + ".")
    if setting:
        sentences.append(f"Setting: {setting}.")
    return _tied(latex_escape(" ".join(sentences))) if sentences else ""


def caption_with_provenance(caption: str, regenerates: list[str], setting: str) -> str:
    """A table's or figure's caption (LaTeX) followed by its :func:`provenance`."""
    return " ".join(part for part in (caption.strip(), provenance(regenerates, setting)) if part)


def setting(datasets: list[str], backbones: list[str], scale: str, presets: list[str] = ()) -> str:
    """E.g. "dataset digits, backbone cnn, miniature scale, fidelity preset paper" (plain text; the presets of
    eebench.fidelity that made the models shown)."""
    parts = []
    if datasets:
        parts.append(("datasets " if len(datasets) > 1 else "dataset ") + ", ".join(datasets))
    if backbones:
        parts.append(("backbones " if len(backbones) > 1 else "backbone ") + ", ".join(backbones))
    parts.append(f"{scale} scale")
    if presets:
        parts.append(("fidelity presets " if len(presets) > 1 else "fidelity preset ") + " and ".join(presets))
    return ", ".join(parts)


def _figure(item: dict[str, Any]) -> str:
    width = item["width"]
    size = "\\linewidth" if width == 1.0 else f"{width:g}\\linewidth"
    return "\n".join([
        "\\begin{figure}[htbp]",
        "  \\centering",
        f"  \\includegraphics[width={size}]{{figures/{item['name']}.pdf}}",
        f"  \\caption{{{item['caption']}}}",
        f"  \\label{{fig:{item['name']}}}",
        "\\end{figure}",
    ])


def _float(item: dict[str, Any]) -> str:
    return f"\\input{{tables/{item['name']}.tex}}" if item["section"] == "tables" else _figure(item)


def _ref(item: dict[str, Any]) -> str:
    if item["section"] == "tables":
        return f"Table~\\ref{{{item['label']}}}"
    return f"Figure~\\ref{{fig:{item['name']}}}"


def _listing(placed: list[dict[str, Any]]) -> str:
    """"Here: paper B Table 8 as Table 3, ..." — which of this document's floats regenerates what."""
    said = []
    for item in placed:
        refs = [parse_reference(text) for text in item["regenerates"]]
        what = " and ".join(_tied(latex_escape(ref.text())) for ref in refs)
        said.append(f"{what} as {_ref(item)}")
    return "Regenerated here: " + "; ".join(said) + "."


def render_body(spec: dict[str, Any]) -> str:
    """``paper/body.tex``: one \\section per paper, one \\subsection per section of it that this config has
    items for (in the paper's order), then the entries beyond the papers, then the claims (an entry that
    regenerates nothing of the papers goes where its kind says)."""
    placed: dict[int, list[tuple[int, int, dict[str, Any]]]] = {}
    closing: dict[str, list[dict[str, Any]]] = {name: [] for name in CLOSING}
    for order, item in enumerate(spec["items"]):
        refs = [parse_reference(text) for text in item["regenerates"]]
        if not refs:
            closing[kind_of(item["section"], item["kind"]).body].append(item)
        else:
            index, position = section_of(refs[0])
            placed.setdefault(index, []).append((position, order, item))
    scale = SCALES.get(spec["scale"], f"{spec['scale']} scale")
    lines = ["% Generated by eebench (rule render_body, eebench.render.paper) from the config's tables and",
             "% figures; edit the config or eebench/render/paper.py, not this file.",
             f"Every table and figure below was computed at {latex_escape(scale)}; each caption names the "
             "table or figure of the papers it regenerates and its setting.", ""]
    for paper, about in PAPERS.items():
        indices = [i for i in placed if SECTIONS[i].paper == paper]
        if not indices:
            continue
        lines += [f"\\section{{{latex_escape(about.title)}}}", ""]
        for index in sorted(indices):
            section = SECTIONS[index]
            items = [item for _, _, item in sorted(placed[index], key=lambda t: t[:2])]
            lines += [f"\\subsection{{{latex_escape(section.title)}}}",
                      f"\\emph{{Paper {paper}, {latex_escape(section.source)}.}} {section.intro} {_listing(items)}",
                      "", *(_float(item) for item in items), "\\clearpage", ""]
    for name, ((title, intro), label) in CLOSING.items():
        items = closing[name]
        if items:
            lines += [f"\\section{{{latex_escape(title)}}}", f"\\label{{{label}}}", intro, "",
                      *(_float(item) for item in items), "\\clearpage", ""]
    return "\n".join(lines)


def write_body(spec: dict[str, Any], out: str) -> None:
    write_text(out, render_body(spec))
