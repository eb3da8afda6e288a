"""What every table and figure kind declares besides how it draws: the per-run metric stage it reads, and which
runs (model, regime, criterion) its config entry names. ``eebench.targets`` turns the two into file paths, so
adding a kind never touches the workflow."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, TypeVar

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
