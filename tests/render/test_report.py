"""The HTML report's grouping and captions (eebench.render.report): every kind names its paper."""
import copy
from pathlib import Path

import pytest
import yaml
from docutils.core import publish_parts

from eebench.render import FIGURES, TABLES
from eebench.render import report
from eebench.render.paper import PAPERS

CONFIG = yaml.safe_load((Path(__file__).resolve().parents[2] / "config.yaml").read_text())


@pytest.mark.parametrize(("section", "kind"), [("tables", k) for k in TABLES.names()]
                         + [("figures", k) for k in FIGURES.names()])
def test_every_registered_kind_names_its_paper(section, kind):
    paper, what = report.REGENERATES[(section, kind)]
    assert paper in PAPERS and what


def test_no_entry_for_an_unregistered_kind():
    registered = {("tables", k) for k in TABLES.names()} | {("figures", k) for k in FIGURES.names()}
    assert set(report.REGENERATES) <= registered


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
