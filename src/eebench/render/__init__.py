"""Regenerate the papers' tables (LaTeX) and figures (PDF/PNG), each with a CSV of the numbers shown."""
from eebench.render.figures import FIGURES, render_figure
from eebench.render.tables import TABLES, render_table

__all__ = ["FIGURES", "TABLES", "render_figure", "render_table"]
