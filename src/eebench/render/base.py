"""What every table and figure kind declares besides how it draws: the per-run metric stage it reads, which runs
(model, regime, criterion) its config entry names, what of the papers it regenerates, its default caption and
where its entries go in the regenerated paper. ``eebench.targets`` turns the first two into file paths, so adding
a kind never touches the workflow; the HTML report (eebench.render.report), the paper's body
(eebench.render.paper) and the config schema (eebench.render.keys) read the rest from the registries here.

A kind is one registered function: ``@kind("figures", "bee", regenerates=("A", "..."), caption="...")`` over
``@reads(stage, runs)``; its keyword-only parameters are its config keys (eebench.declare).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, TypeVar

from eebench.registry import Registry

F = TypeVar("F", bound=Callable)

# Per-run stages a renderer can read; eebench.targets maps each to its result path ("models": the trained
# checkpoints themselves, for what training recorded; "logits": the logit caches, for per-sample figures;
# "analysis": the per-layer analyses of trained models, the one the entry's ``analysis`` names;
# "mode_connectivity": the interpolation path between two regimes' models, one file per regime pair;
# "loss_landscape": the loss around one trained model on a grid of two random directions; "rendered": the CSVs
# of other tables and figures of the same config, e.g. the numbers a claim is checked on).
METRIC_STAGES = ("budgets", "bee", "sweeps", "models", "logits", "analysis", "mode_connectivity", "loss_landscape",
                 "rendered")


# Regimes as paper B prints them (Appendix C); any other regime is its name capitalised.
REGIME_LABELS = {"branchwise": "Branch-wise", "mixed_gradual": "Mixed-gradual",
                 "disjoint_trained_final": "Disjoint (trained final)"}


def regime_label(regime: str) -> str:
    return REGIME_LABELS.get(regime, regime.capitalize())


@dataclass(frozen=True)
class RunKey:
    """One early-exit run a table or figure shows: a named model setting, a regime and an exit criterion
    (seeds are added by the workflow: every run is read for every configured seed)."""

    model: str
    regime: str
    criterion: str
    versus: str = ""  # the regime this run is compared with, if any (mode connectivity: a regime pair)


def _listed(spec: Mapping[str, Any], plural: str, singular: str) -> list[str]:
    return list(spec[plural]) if plural in spec else [spec[singular]]


def product_runs(spec: Mapping[str, Any]) -> list[RunKey]:
    """The runs of an entry that names ``model``/``models``, ``regime``/``regimes`` and
    ``criterion``/``criteria``: every combination, models outermost."""
    return [
        RunKey(model, regime, criterion)
        for model in _listed(spec, "models", "model")
        for regime in _listed(spec, "regimes", "regime")
        for criterion in _listed(spec, "criteria", "criterion")
    ]


def regime_runs(spec: Mapping[str, Any]) -> list[RunKey]:
    """The runs of an entry that names one ``model`` and its ``regimes`` (no criterion: what it reads was not
    swept)."""
    return [RunKey(spec["model"], regime, "") for regime in spec["regimes"]]


def regime_pair_runs(spec: Mapping[str, Any]) -> list[RunKey]:
    """The runs of an entry that names one ``model`` and regime ``pairs`` ([regime A, regime B] each): one run per
    pair, regime A's, compared with regime B's."""
    return [RunKey(spec["model"], first, "", second) for first, second in spec["pairs"]]


def no_runs(spec: Mapping[str, Any]) -> list[RunKey]:
    """An entry that reads no run of its own (other entries' numbers, or none at all)."""
    return []


def reads(stage: str, runs: Callable[[Mapping[str, Any]], list[RunKey]] = product_runs) -> Callable[[F], F]:
    """Mark a renderer with the metric stage whose per-run CSVs it reads and the function that lists the runs
    of its config entry (one CSV per run and seed)."""
    if stage not in METRIC_STAGES:
        raise ValueError(f"unknown metric stage {stage!r}; known: {', '.join(METRIC_STAGES)}")

    def mark(render: F) -> F:
        render.reads = stage  # type: ignore[attr-defined]
        render.runs = runs  # type: ignore[attr-defined]
        return render

    return mark


# The kinds -------------------------------------------------------------------------------------------------

# Where the regenerated paper's body puts an entry that names nothing of the papers it regenerates
# (eebench.render.paper): after both papers, or in the closing section of the papers' claims.
BODY_SECTIONS = ("beyond", "claims")


@dataclass(frozen=True)
class Kind:
    """What a table or figure kind says about itself besides its parameters.

    ``regenerates``: the paper ("A" or "B") and what of it the kind's layout regenerates, for the HTML report of
    an entry that names no item itself; None where the kind regenerates nothing of the papers. ``caption``: the
    LaTeX caption of an entry that gives none. ``body``: where the paper's body puts an entry that names nothing
    it regenerates (:data:`BODY_SECTIONS`). Two constraints of the entry's keys that no single parameter can
    declare: ``one_of``, groups of keys of which an entry gives exactly one (``model`` or ``models``);
    ``one_seed``, an entry names the one seed it shows (``seeds: [s]``)."""

    regenerates: tuple[str, str] | None
    caption: str
    body: str = "beyond"
    one_of: tuple[tuple[str, ...], ...] = ()
    one_seed: bool = False

    def __post_init__(self) -> None:
        if self.regenerates is not None and self.regenerates[0] not in ("A", "B"):
            raise ValueError(f"regenerates: paper {self.regenerates[0]!r} is neither A nor B")
        if self.body not in BODY_SECTIONS:
            raise ValueError(f"body: {self.body!r} is none of {', '.join(BODY_SECTIONS)}")


def _declaring(render: Callable) -> Callable:
    """The callable whose keyword-only parameters are a kind's own config keys: a budget-table kind's layout
    builder (eebench.render.budget_tables), else the renderer itself."""
    return getattr(render, "layout", render)


# The kinds register from their own modules, imported at the registries' first lookup.
TABLES: Registry[Callable] = Registry("table", declared=_declaring,
                                      providers=("eebench.render.budget_tables", "eebench.render.tables"))
FIGURES: Registry[Callable] = Registry("figure", declared=_declaring,
                                       providers=("eebench.render.curves", "eebench.render.analysis_figures"))
SECTIONS = {"tables": TABLES, "figures": FIGURES}


def kind(section: str, name: str, *, regenerates: tuple[str, str] | None, caption: str, body: str = "beyond",
         one_of: tuple[tuple[str, ...], ...] = (), one_seed: bool = False) -> Callable[[F], F]:
    """Register a renderer (marked with :func:`reads`) as kind ``name`` of ``section`` ("tables" or "figures"),
    with what it says about itself (:class:`Kind`)."""

    def register(render: F) -> F:
        if not hasattr(render, "reads"):
            raise TypeError(f"{section[:-1]} kind {name!r}: mark its renderer with @reads(stage, runs) first")
        render.kind = Kind(regenerates, caption, body, one_of, one_seed)  # type: ignore[attr-defined]
        SECTIONS[section].register(name, render)
        return render

    return register


def kind_of(section: str, name: str) -> Kind:
    """What kind ``name`` of ``section`` ("tables" or "figures") says about itself."""
    return SECTIONS[section].get(name).kind


def entry_caption(section: str, entry: Mapping[str, Any]) -> str:
    """A table or figure entry's caption (LaTeX): its own ``caption``, else its kind's."""
    return entry.get("caption") or kind_of(section, entry["kind"]).caption
