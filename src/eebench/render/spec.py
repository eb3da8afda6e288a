"""What each table and figure renderer is given, built from the whole experiment: its caption (what it
regenerates and where it was run), label, budgets and rule with their defaults, the descriptions of the models
it shows, the paper's values a table is compared with; and the body of the regenerated paper (which floats go
where). The workflow (eebench.targets) passes these to the renderers; the renderers never read a config.
"""
from __future__ import annotations

import inspect
from typing import Any, Mapping

from eebench import config as ee
from eebench import paper_numbers
from eebench.acceptance import Comparison, paper_labels, transcribed_tables
from eebench.external_models import is_external
from eebench.sweep_metrics import budget_label
from eebench.render import TABLES, iter_render_entries, render_runs, renderer
from eebench.render.base import entry_caption
from eebench.render.paper import caption_with_provenance, regenerates, setting
from eebench.render.budget_tables import table_layout
from eebench.render.layouts import budget_header


def entry_spec(config: dict[str, Any], section: str, name: str) -> dict[str, Any]:
    """A table or figure entry as its renderer takes it: every key but ``kind``; for kinds that read budgets
    or sweeps, ``rule`` and ``budgets`` with their defaults; and a description of every model it shows."""
    entry = dict(config[section][name])
    entry.pop("kind")
    entry.pop("seeds", None)  # the workflow's: which result files the renderer is given
    entry.pop("regenerates", None)
    if section == "tables":  # the caption names what the table regenerates and its setting (issue 13)
        entry["caption"] = caption_with_provenance(entry_caption(section, config[section][name]), regenerates(config[section][name]),
                                                   setting_of(config, section, name))
        entry["label"] = table_label(config, name)
    else:  # a figure's caption and width are the paper body's (eebench.render.paper), not the plot's
        entry.pop("caption", None)
        entry.pop("width", None)
    render = renderer(section, config[section][name]["kind"])
    takes = inspect.signature(render).parameters
    if render.reads == "budgets" or "rule" in takes:  # tables' engine reads both; figures that take them
        entry.setdefault("rule", "best")
    if render.reads == "budgets" or "budgets" in takes:
        entry.setdefault("budgets", list(config.get("budgets", [0.25, 0.5, 0.75, 1.0])))
    if "criterion_setting" in takes:  # a renderer that scores logits itself needs the criterion's parameters
        registered, params = ee.criterion_setting(config, entry.get("criterion", "confidence"))
        entry["criterion_setting"] = {"criterion": registered, "params": params}
    models = ee.resolved_read_only(config)  # read only
    shown = dict.fromkeys(run.model for run in render_runs(config, section, name))
    entry["model_descriptions"] = {model: ee.describe_model(models[model]) for model in shown}
    return entry


def table_label(config: dict[str, Any], name: str) -> str:
    """The table's LaTeX label: its ``label``, else ``tab:<name>`` (the paper body refers to every table)."""
    return config["tables"][name].get("label") or f"tab:{name}"


def setting_of(config: dict[str, Any], section: str, name: str) -> str:
    """Where a table or figure was run, for its caption: the datasets and backbones of the models it shows, the
    config's ``scale`` and the fidelity presets of those models (of those it trained: a model evaluated from its
    own caches was trained under no preset)."""
    models = ee.resolved_read_only(config)  # read only
    shown = [models[model] for model in dict.fromkeys(run.model for run in render_runs(config, section, name))]
    return setting(list(dict.fromkeys(entry["dataset"] for entry in shown)),
                   list(dict.fromkeys(entry["backbone"] for entry in shown)), config.get("scale", "miniature"),
                   list(dict.fromkeys(entry["fidelity"] for entry in shown if not is_external(entry))))


def body_spec(config: dict[str, Any]) -> dict[str, Any]:
    """What the body is made of: per table and figure, its name, kind, references, label and (figures) caption
    with the provenance sentence, and width; the rule's parameters, so the body is rewritten exactly when they
    change."""
    items = []
    for section, name, entry in iter_render_entries(config):
        items_regenerated = regenerates(entry)
        item = {"section": section, "name": name, "kind": entry["kind"], "regenerates": items_regenerated}
        if section == "figures":
            caption = caption_with_provenance(entry_caption(section, entry), items_regenerated,
                                              setting_of(config, section, name))
            item.update(caption=caption, width=entry.get("width", 1.0))
        else:
            item["label"] = table_label(config, name)
        items.append(item)
    return {"scale": config.get("scale", "miniature"), "items": items}


# The paper's values a table is compared with ------------------------------------------------------------


def _compares(entry: Mapping[str, Any]) -> bool:
    """Whether the entry's kind is one of the budget-table layouts (their cells are what the paper prints)."""
    return hasattr(TABLES.get(entry["kind"]), "layout")


def comparison_spec(config: Mapping[str, Any], name: str) -> dict[str, Any]:
    """What table ``name``'s renderer needs to compare: ``{"paper_comparison": {"scale", "tables"}}``, the
    config's scale and the transcribed tables the entry regenerates; {} where it regenerates none, or is not a
    budget-table layout (the rule render_table adds it to the renderer's spec)."""
    entry = config["tables"][name]
    tables = transcribed_tables(regenerates(entry)) if _compares(entry) else []
    if not tables:
        return {}
    return {"paper_comparison": {"scale": config.get("scale", "miniature"), "tables": tables}}


def check_paper_matches(config: Mapping[str, Any]) -> None:
    """Every table entry's ``paper_match`` names labels its table and the paper's print, and (at paper scale)
    every entry regenerating a transcribed table has a cell that matches one of its values; a ConfigError naming
    the key otherwise. Run when the workflow loads, before any job."""
    for name, entry in config.get("tables", {}).items():
        key = f"tables.{name}"
        spec = comparison_spec(config, name).get("paper_comparison")
        if spec is None:
            if "paper_match" in entry:
                raise ee.ConfigError(f"{key}.paper_match: the entry regenerates no table of the paper "
                                     f"transcribed in eebench.paper_numbers ({', '.join(paper_numbers.tables())}) "
                                     "in a budget-table layout; nothing to match")
            continue
        comparison = Comparison.of(spec, entry.get("paper_match"))
        layout = table_layout(entry["kind"], entry)
        headers = [budget_header(budget_label(b)) for b in entry_spec(config, "tables", name)["budgets"]]
        headers.append(budget_header("unlimited"))
        cells = [(labels, header) for labels in layout.cell_labels() for header in headers]
        try:
            comparison.check([*(label for labels, _ in cells for label in labels), *headers])
        except ValueError as error:
            raise ee.ConfigError(f"{key}.{error}") from None
        if comparison.compares and not any(comparison.counterpart(labels, header) for labels, header in cells):
            labels = ", ".join(label for table in comparison.tables for label in paper_labels(table))
            raise ee.ConfigError(f"{key}: no cell matches a value of paper {' or '.join(comparison.tables)} (its "
                                 f"labels: {labels}); say which with paper_match (setting, labels)")
