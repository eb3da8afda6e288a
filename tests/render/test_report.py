"""The HTML report's grouping and captions (eebench.render.report): every kind says what of the papers it
regenerates, at its registration."""
import copy
from pathlib import Path

import pytest
import yaml
from docutils.core import publish_parts

from eebench.render import FIGURES, TABLES
from eebench.render import report
from eebench.render.base import kind_of
from eebench.render.paper import BEYOND, PAPERS

CONFIG = yaml.safe_load((Path(__file__).resolve().parents[2] / "config.yaml").read_text())
KINDS = [("tables", k) for k in TABLES.names()] + [("figures", k) for k in FIGURES.names()]


@pytest.mark.parametrize(("section", "kind"), KINDS)
def test_every_registered_kind_names_its_paper_or_none_and_a_caption(section, kind):
    about = kind_of(section, kind)
    assert about.regenerates is None or (about.regenerates[0] in PAPERS and about.regenerates[1])
    assert about.caption.strip()


@pytest.mark.parametrize(("section", "kind"), KINDS)
def test_an_entry_without_its_own_regenerates_is_grouped_by_its_kind(section, kind):
    config = {section: {"x": {"kind": kind}}}
    paper = kind_of(section, kind).regenerates
    assert report.category(config, section, "x") == (PAPERS[paper[0]].short if paper else BEYOND[0])
    html = publish_parts(report.caption(config, section, "x"), writer="html")["body"]
    assert "problematic" not in html and "system-message" not in html


def test_default_config_items_are_grouped_by_paper():
    assert report.category(CONFIG, "figures", "bee") == PAPERS["A"].short
    assert report.category(CONFIG, "figures", "class_exit_heads") == PAPERS["A"].short
    assert report.category(CONFIG, "figures", "gradient_dominance") == PAPERS["B"].short
    assert report.category(CONFIG, "tables", "regimes") == PAPERS["B"].short


def test_caption_names_the_paper_item_and_keeps_the_config_caption_as_plain_text():
    html = publish_parts(report.caption(CONFIG, "tables", "regimes"), writer="html")["body"]
    assert "regimes (table kind budgets) regenerates paper B, Tables 8–18" in html  # the entry's regenerates
    assert "mean ± std over seeds." in html and "$" not in html and "\\" not in html


def test_caption_without_a_config_caption_says_what_the_kind_regenerates():
    config = copy.deepcopy(CONFIG)
    for key in ("regenerates", "caption"):
        del config["figures"]["bee_classes"][key]
    html = publish_parts(report.caption(config, "figures", "bee_classes"), writer="html")["body"]
    assert "bee_classes (figure kind bee) regenerates paper A, Figs 2-5: the benefit of early exiting B_EE" in html
    assert "problematic" not in html and "system-message" not in html


def test_an_unknown_kind_is_named():
    config = {"figures": {"x": {"kind": "nonesuch"}}}
    with pytest.raises(KeyError, match="nonesuch"):
        report.category(config, "figures", "x")


def test_a_kind_that_regenerates_nothing_of_the_papers_is_beyond_them():
    config = {"tables": {"presets": {"kind": "presets"}}}
    assert report.paper_and_item(config, "tables", "presets") == (None, "")
    assert report.category(config, "tables", "presets") == "Beyond the papers"
    html = publish_parts(report.caption(config, "tables", "presets"), writer="html")["body"]
    assert "presets (table kind presets) regenerates nothing of the papers. What the fidelity preset" in html


def test_the_kinds_default_caption_stands_where_the_entry_gives_none():
    config = copy.deepcopy(CONFIG)
    del config["tables"]["regimes"]["caption"]
    html = publish_parts(report.caption(config, "tables", "regimes"), writer="html")["body"]
    assert "Test performance at each FLOPs budget" in html
