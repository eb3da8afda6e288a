"""The regenerated paper's body (eebench.render.paper): every table and figure of a config, in the papers' order,
under their sections, each caption naming what it regenerates and its setting."""
import re
from pathlib import Path

import pytest
import yaml

from eebench import config as ee
from eebench.config_checks import check_config
from eebench.cli import main
from eebench.render.spec import body_spec, entry_spec
from eebench.render.paper import (SECTIONS, Reference, parse_reference, provenance, render_body,
                                  section_of)

REPO = Path(__file__).resolve().parents[2]


def default_config() -> dict:
    return yaml.safe_load((REPO / "config.yaml").read_text())


@pytest.mark.parametrize("text, reference, said", [
    ("B Table 8", Reference("B", "Table", "8"), "paper B Table 8"),
    ("B Tables 8-18", Reference("B", "Table", "8", "18"), "paper B Tables 8–18"),
    ("A Fig. 3", Reference("A", "Fig.", "3"), "paper A Fig. 3"),
    ("B Figs 7-17", Reference("B", "Fig.", "7", "17"), "paper B Figs 7–17"),
    ("B Figure 2", Reference("B", "Fig.", "2"), "paper B Fig. 2"),
    ("B §4.7", Reference("B", "§", "4.7"), "paper B §4.7"),
])
def test_references_parse_and_read_as_captions_say_them(text, reference, said):
    assert parse_reference(text) == reference
    assert reference.text() == said


@pytest.mark.parametrize("text", ["C Table 1", "B Tab 8", "Table 8", "B Table", "B Table 8 and 9"])
def test_a_malformed_reference_is_named(text):
    with pytest.raises(ValueError, match=re.escape(repr(text))):
        parse_reference(text)


def test_sections_follow_each_papers_order_and_hold_every_item_once():
    # Paper B: framework (Figs 2-6), budgets (Fig. 1, Tables 1-4, 8-18, Figs 7-17), scaling (5, 19),
    # IC size (6, 20), placement (7), training time (§4.7); paper A: §3, Fig. 2, Figs 3-5, Fig. 6.
    b_tables = sorted(int(i.split()[1]) for s in SECTIONS if s.paper == "B" for i in s.items if i.startswith("Table"))
    b_figures = sorted(int(i.split()[1]) for s in SECTIONS if s.paper == "B" for i in s.items if i.startswith("Fig."))
    assert b_tables == list(range(1, 21)) and b_figures == list(range(1, 18))
    a_figures = [i for s in SECTIONS if s.paper == "A" for i in s.items if i.startswith("Fig.")]
    assert a_figures == ["Fig. 2", "Fig. 3", "Fig. 4", "Fig. 5", "Fig. 6"]
    assert [s.source for s in SECTIONS if s.paper == "B"][:2] == ["§3, §4.2; App. B", "§4.3; App. A, C, D"]
    assert section_of(parse_reference("B Table 20")) == (3, 1)  # IC size, after Table 6
    with pytest.raises(ValueError, match="paper B Table 21 is in no section"):
        section_of(parse_reference("B Table 21"))


def test_provenance_names_every_item_and_the_setting_escaped():
    said = provenance(["B Fig. 1", "B Figs 7-17"], "dataset digits_composite, backbone cnn, miniature scale")
    assert said == ("Regenerates paper B Fig.~1 and Figs~7--17. "
                    "Setting: dataset digits\\_composite, backbone cnn, miniature scale.")
    assert provenance([], "") == ""


def test_the_default_body_places_every_entry_once_in_the_papers_order():
    config = default_config()
    body = render_body(body_spec(config))
    tables = re.findall(r"\\input\{tables/(\w+)\.tex\}", body)
    figures = re.findall(r"\\includegraphics\[[^]]*\]\{figures/(\w+)\.pdf\}", body)
    assert sorted(tables) == sorted(config["tables"]) and sorted(figures) == sorted(config["figures"])
    order = [m.group(1) or m.group(2) for m in re.finditer(r"tables/(\w+)\.tex|figures/(\w+)\.pdf", body)]
    # Paper B first: its framework figures, then the cost curves (Fig. 1 opens §4.3's items) and the budget
    # tables (Table 1 before App. C's layout), then scaling, IC size, placement, training time; paper A's §3 and
    # figures 2..6; the claims last.
    assert order.index("gradient_dominance") < order.index("mode_connectivity") < order.index("loss_landscape")
    assert order.index("loss_landscape") < order.index("cost_curves") < order.index("settings")
    assert order.index("settings") < order.index("side_by_side") < order.index("methods") < order.index("regimes")
    assert order.index("regimes") < order.index("loss_scaling_differences") < order.index("loss_scaling")
    assert order.index("loss_scaling") < order.index("ic_size") < order.index("placement")
    assert order.index("placement") < order.index("training_time") < order.index("exit_strategy_areas")
    assert order.index("exit_strategy_areas") < order.index("bee_classes") < order.index("bee")
    assert order.index("bee") < order.index("rank_patience_grid") < order.index("exit_strategies")
    assert order.index("exit_strategies") < order.index("class_exit_heads") < order.index("claims")
    assert order[-1] == "claims"
    sections = re.findall(r"\\(sub)?section\{([^}]*)\}", body)
    assert [title for sub, title in sections if not sub][:2] == [
        "How to Train Your Multi-Exit Model? Analyzing the Impact of Training Strategies",
        "Limitations of Early Exits for Single- and Multi-Label Classification"]
    # Every default entry regenerates something but the presets' difference table, which no paper has.
    beyond = body.split("Beyond the papers", 1)[1].split("\\section", 1)[0]
    assert "tables/fidelity_differences.tex" in beyond and "tables/regimes.tex" not in beyond


def test_every_figure_caption_names_its_item_and_setting():
    spec = body_spec(default_config())
    captions = {item["name"]: item["caption"] for item in spec["items"] if item["section"] == "figures"}
    assert captions["bee_classes"].endswith(
        "Regenerates paper A Fig.~2. Setting: datasets digits\\_2classes, digits\\_5classes, digits, backbone cnn, "
        "miniature scale, fidelity preset paper.")
    assert "Regenerates paper B Fig.~1 and Figs~7--17." in captions["cost_curves"]
    body = render_body(spec)
    assert "\\includegraphics[width=0.7\\linewidth]{figures/cost_curves.pdf}" in body
    assert "Regenerated here: paper B Fig.~2 as Figure~\\ref{fig:gradient_dominance}" in body


def test_a_table_caption_names_its_item_and_setting_before_the_rule():
    config = default_config()
    spec = entry_spec(config, "tables", "regimes")
    assert spec["caption"].endswith("Regenerates paper B Tables~8--18. Setting: dataset digits, backbone cnn, "
                                    "miniature scale, fidelity preset paper.")
    assert "regenerates" not in spec
    figure = entry_spec(config, "figures", "cost_curves")
    assert not {"caption", "width", "regenerates"} & set(figure)  # the body's, not the plot's
    del config["tables"]["claims"]["label"]
    assert entry_spec(config, "tables", "claims")["label"] == "tab:claims"  # every table can be referred to


def test_entries_without_regenerates_go_beyond_the_papers():
    config = default_config()
    del config["figures"]["bee_variants"]["regenerates"]
    body = render_body(body_spec(config))
    beyond = body.split("\\section{Beyond the papers}")[1].split("\\section{")[0]
    assert "figures/bee_variants.pdf" in beyond and beyond.count("\\begin{figure}") == 1



def test_an_entry_that_regenerates_nothing_goes_where_its_kind_says():
    """The kind's registration places it (eebench.render.base.Kind.body): claims close the body, any other kind
    goes beyond the papers."""
    from eebench.render.base import BODY_SECTIONS
    from eebench.render.paper import CLOSING

    assert list(CLOSING) == list(BODY_SECTIONS)
    items = [{"section": "tables", "name": name, "kind": kind, "regenerates": [], "label": f"tab:{name}"}
             for name, kind in (("checked", "claims"), ("switches", "presets"), ("epochs", "training_time"))]
    body = render_body({"scale": "miniature", "items": items})
    beyond = body.split("\\section{Beyond the papers}")[1].split("\\section{")[0]
    claims = body.split("\\section{The papers' claims, checked}")[1]
    assert "tables/switches.tex" in beyond and "tables/epochs.tex" in beyond and "tables/checked" not in beyond
    assert "\\input{tables/checked.tex}" in claims and "switches" not in claims

def test_a_reference_in_no_section_fails_the_config_check_naming_the_key():
    config = default_config()
    config["tables"]["regimes"]["regenerates"] = "B Table 21"
    with pytest.raises(ee.ConfigError, match=r"tables\.regimes\.regenerates: .*paper B Table 21"):
        check_config(config)


def test_the_command_writes_the_body_of_a_config_file(tmp_path):
    assert main(["render-body", "--config", str(REPO / "config.yaml"), "--out", str(tmp_path / "body.tex")]) == 0
    assert (tmp_path / "body.tex").read_text() == render_body(body_spec(default_config()))
