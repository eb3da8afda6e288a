"""Regenerate the papers' tables (LaTeX) and figures (PDF/PNG), each with a CSV of the numbers shown.

The registries of table and figure kinds, and the three lookups the experiment's checks need (eebench.config):
which renderer a config entry names, the runs it shows, every entry in config order. What a renderer is given
(its caption, label and the descriptions of its models) is built from the whole experiment in
eebench.render.spec.
"""
from __future__ import annotations

from typing import Any, Iterator

from eebench.render.base import FIGURES, TABLES
from eebench.render.figures import render_figure
from eebench.render.tables import render_table

__all__ = ["FIGURES", "TABLES", "render_figure", "render_table", "renderer", "render_runs", "iter_render_entries"]


def renderer(section: str, kind: str):
    """The registered renderer of a ``tables`` or ``figures`` entry's ``kind``."""
    return {"tables": TABLES, "figures": FIGURES}[section].get(kind)


def render_runs(config: dict[str, Any], section: str, name: str):
    """The runs (model, regime, criterion) the entry ``name`` of ``section`` shows."""
    spec = config[section][name]
    return renderer(section, spec["kind"]).runs(spec)


def iter_render_entries(config: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(section, name, entry) of every table, then every figure, in config order."""
    for section in ("tables", "figures"):
        for name, spec in config.get(section, {}).items():
            yield section, name, spec
