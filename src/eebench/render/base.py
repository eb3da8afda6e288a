"""What every table and figure entry declares besides how it draws: the per-run metric files it reads."""
from __future__ import annotations

from typing import Callable, TypeVar

F = TypeVar("F", bound=Callable)

# Per-run metric stages a renderer can read; eebench.targets maps each to its result path.
METRIC_STAGES = ("budgets", "bee")


def reads(stage: str) -> Callable[[F], F]:
    """Mark a renderer with the metric stage whose per-run CSVs it reads (one per dataset x regime x seed)."""
    if stage not in METRIC_STAGES:
        raise ValueError(f"unknown metric stage {stage!r}; known: {', '.join(METRIC_STAGES)}")

    def mark(render: F) -> F:
        render.reads = stage  # type: ignore[attr-defined]
        return render

    return mark
