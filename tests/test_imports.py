"""The package's structure (issue 25): no import cycle among src/eebench modules, no module imports one of a
layer above its own, and none is over 500 lines. Every import counts, a function's lazy one included: a lazy
import only hides a cycle. Entries a registry holds beyond its own module's are named in its ``providers``
(eebench.registry), never registered by importing a module at the bottom of another."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "eebench"

# Lowest first; a module belongs to the layer of the longest prefix that names it, and imports from its own layer
# or below only.
LAYERS = [
    # What everything uses: the registry and declarations, file formats, LaTeX, the tasks, the papers' readings,
    # the registries of table and figure kinds.
    ("foundation", ["eebench", "eebench.registry", "eebench.declare", "eebench.latex", "eebench.io",
                    "eebench.tasks", "eebench.readings", "eebench.fidelity", "eebench.render.base"]),
    # The two papers: their sections, references and transcribed numbers.
    ("papers", ["eebench.render.paper", "eebench.paper_numbers"]),
    # The parts of an experiment: data, networks, training, exits, analyses, metrics, one step of each.
    ("parts", ["eebench.data", "eebench.models", "eebench.training", "eebench.exits", "eebench.analysis",
               "eebench.inference", "eebench.sweep_metrics", "eebench.metrics", "eebench.steps"]),
    # What a run's numbers become: claims, the comparison with the papers, tables and figures.
    ("results", ["eebench.claims", "eebench.claim_checks", "eebench.acceptance", "eebench.render"]),
    # The config: its schema (composed from the registries' declarations), then the experiment it describes.
    ("schema", ["eebench.schema"]),
    ("experiment", ["eebench.external_models", "eebench.config", "eebench.config_checks"]),
    # The workflow's side: what each job and renderer is given.
    ("workflow", ["eebench.render.spec", "eebench.targets", "eebench.cost_model", "eebench.plan"]),
    ("commands", ["eebench.cli", "eebench.worker"]),
]


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return modules


MODULES = _modules()


def _module_of(name: str) -> str | None:
    """The src/eebench module an imported name lives in (``eebench.render.TABLES`` -> eebench.render)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports(module: str) -> set[str]:
    """Every eebench module ``module`` imports, anywhere in it."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package.split(".")[:len(package.split(".")) - node.level + 1], *filter(None, [base])])
            # ``from package import submodule`` imports the submodule; ``from module import name``, the module.
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
        else:
            continue
        found |= {_module_of(name) for name in names if name.startswith("eebench")}
    found.discard(None)
    found.discard(module)
    return found


GRAPH = {module: imports(module) for module in MODULES}


def layer_of(module: str) -> int:
    matches = [(len(prefix), index) for index, (_, prefixes) in enumerate(LAYERS) for prefix in prefixes
               if module == prefix or module.startswith(prefix + ".")]
    assert matches, f"{module} is in no layer of tests/test_imports.py LAYERS: place it"
    return max(matches)[1]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_cycle_and_only_cycles():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_imports_are_read_from_every_form_lazy_ones_included():
    assert "eebench.registry" in GRAPH["eebench.tasks"]
    # targets imports the render package's lookups (from eebench.render import ...)
    assert "eebench.render" in GRAPH["eebench.targets"]


def test_no_import_cycle():
    assert cycles(GRAPH) == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_one_of_a_layer_above(module):
    own = layer_of(module)
    above = sorted(other for other in GRAPH[module] if layer_of(other) > own)
    assert not above, (f"{module} ({LAYERS[own][0]}) imports {', '.join(above)} of a layer above; pass what it "
                       "needs down as arguments, or register through the registry (providers)")


# The readings' data (the papers' silences and the readings taken, prose) is one list, kept whole.
LONG_ALLOWED = {"eebench.readings"}


@pytest.mark.parametrize("module", sorted(set(MODULES) - LONG_ALLOWED))
def test_no_module_is_over_500_lines(module):
    """Issue 25: a module that grows past 500 lines has two concerns; split it along them."""
    lines = len(MODULES[module].read_text().splitlines())
    assert lines <= 500, f"{module} has {lines} lines"
