"""What Snakemake's HTML report (``snakemake --report report.html``) says about each table and figure.

Every table and figure kind names the paper it comes from and what of that paper it regenerates; the report
groups its items by paper (the category) and by tables / figures (the subcategory), and captions each with
that, plus the config entry's own caption when it has one. A kind registered without an entry here fails
the registry-parametrised test (tests/render/test_report.py).
"""
from __future__ import annotations

import re
from typing import Any

from eebench.render.paper import PAPERS, references

# (section, kind) -> (paper, what of it this kind regenerates)
REGENERATES: dict[tuple[str, str], tuple[str, str]] = {
    ("tables", "budgets"): ("B", "Table 1 / Tables 8-18 layout: accuracy at each FLOPs budget per regime"),
    ("tables", "settings"): ("B", "Table 1 layout: several settings as blocks"),
    ("tables", "side_by_side"): ("B", "Table 2 layout: settings side by side"),
    ("tables", "methods"): ("B", "Table 3 layout: exit method per regime"),
    ("tables", "ic_size"): ("B", "Table 6 layout: IC size per regime"),
    ("tables", "differences"): ("B", "Table 5 layout: differences against a reference setting"),
    ("tables", "loss_scaling"): ("B", "Table 19 layout: loss and gradient scaling methods"),
    ("tables", "claims"): ("B", "claims about the training regimes, checked on a regimes table"),
    ("tables", "training_time"): ("B", "Section 4.7: epochs to convergence and wall-clock per regime"),
    ("tables", "placement"): ("B", "Table 7 layout: IC placement schemes"),
    ("figures", "bee"): ("A", "Figs 2-5: the benefit of early exiting B_EE per head"),
    ("figures", "speedup_curves"): ("A", "Section 3: performance against speed-up per exit strategy"),
    ("figures", "exit_heads"): ("A", "Fig. 6: the exit head of each class's binary model per test example"),
    ("figures", "gradient_dominance"): ("B", "Fig. 2: gradient dominance per head over training"),
    ("figures", "layer_profile"): ("B", "Figs 4-5: a per-layer measure (numerical rank, mutual information)"),
    ("figures", "mode_connectivity"): ("B", "Fig. 3: loss and accuracy along the linear path between regimes"),
    ("figures", "loss_landscape"): ("B", "Fig. 6: loss landscape around each regime's model"),
    ("figures", "cost_curves"): ("B", "Fig. 1 / Figs 7-17: performance against cost per regime"),
}


def paper_and_item(config: dict[str, Any], section: str, name: str) -> tuple[str, str]:
    """(paper letter, what of it) the table or figure ``name`` of ``section`` ("tables" or "figures")
    regenerates: the entry's own ``regenerates`` (e.g. paper B Table 8) when it has one, else what its kind's
    layout regenerates."""
    entry = config[section][name]
    refs = references(entry)
    if refs:
        return refs[0].paper, " and ".join(ref.text().removeprefix(f"paper {ref.paper} ") for ref in refs)
    kind = entry["kind"]
    try:
        return REGENERATES[(section, kind)]
    except KeyError:
        raise KeyError(f"{section[:-1]} kind {kind!r} names no paper in eebench.render.report.REGENERATES") from None


def category(config: dict[str, Any], section: str, name: str) -> str:
    """The report's category: the paper's short name, e.g. "Paper B (how to train your multi-exit model)"."""
    return PAPERS[paper_and_item(config, section, name)[0]].short


def subcategory(section: str) -> str:
    return section.capitalize()


def _plain(latex: str) -> str:
    """A LaTeX caption as reStructuredText: ``$\\pm$`` as ±, other maths without dollars, markup escaped."""
    text = latex.replace("$\\pm$", "±").replace("\\%", "%").replace("$", "")
    return re.sub(r"([\\*`|_<>\[\]])", r"\\\1", text)


def caption(config: dict[str, Any], section: str, name: str) -> str:
    """The item's caption (reStructuredText, one paragraph): which paper table or figure ``name`` regenerates,
    its kind, and the config entry's caption when it has one."""
    paper, what = paper_and_item(config, section, name)
    entry = config[section][name]
    text = f"{name} ({section[:-1]} kind {entry['kind']}) regenerates paper {paper}, {what}."
    if entry.get("caption"):
        text += " " + entry["caption"]
    return _plain(text)
