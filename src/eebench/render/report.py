"""What Snakemake's HTML report (``snakemake --report report.html``) says about each table and figure.

Every table and figure kind names the paper it comes from and what of that paper it regenerates, where it
regenerates something of the papers (its registration, eebench.render.base.Kind); the report groups its items by
paper (the category; "Beyond the papers" for a kind that regenerates nothing of them) and by tables / figures (the
subcategory), and captions each with that, plus the entry's caption (its own, else its kind's).
"""
from __future__ import annotations

import re
from typing import Any

from eebench.render.base import entry_caption, kind_of
from eebench.render.paper import BEYOND, PAPERS, references


def paper_and_item(config: dict[str, Any], section: str, name: str) -> tuple[str | None, str]:
    """(paper letter, what of it) the table or figure ``name`` of ``section`` ("tables" or "figures")
    regenerates: the entry's own ``regenerates`` (e.g. paper B Table 8) when it has one, else what its kind's
    layout regenerates; (None, "") where neither regenerates anything of the papers."""
    entry = config[section][name]
    refs = references(entry)
    if refs:
        return refs[0].paper, " and ".join(ref.text().removeprefix(f"paper {ref.paper} ") for ref in refs)
    regenerated = kind_of(section, entry["kind"]).regenerates
    return regenerated if regenerated is not None else (None, "")


def category(config: dict[str, Any], section: str, name: str) -> str:
    """The report's category: the paper's short name, e.g. "Paper B (how to train your multi-exit model)", or
    "Beyond the papers"."""
    paper = paper_and_item(config, section, name)[0]
    return PAPERS[paper].short if paper is not None else BEYOND[0]


def subcategory(section: str) -> str:
    return section.capitalize()


def _plain(latex: str) -> str:
    """A LaTeX caption as reStructuredText: ``$\\pm$`` as ±, other maths without dollars, markup escaped."""
    text = latex.replace("$\\pm$", "±").replace("\\%", "%").replace("$", "")
    return re.sub(r"([\\*`|_<>\[\]])", r"\\\1", text)


def caption(config: dict[str, Any], section: str, name: str) -> str:
    """The item's caption (reStructuredText, one paragraph): which paper table or figure ``name`` regenerates
    (or that it regenerates nothing of the papers), its kind, and its caption."""
    paper, what = paper_and_item(config, section, name)
    entry = config[section][name]
    said = f"regenerates paper {paper}, {what}" if paper is not None else "regenerates nothing of the papers"
    return _plain(f"{name} ({section[:-1]} kind {entry['kind']}) {said}. {entry_caption(section, entry)}")
