"""LaTeX tables regenerated from result CSVs (regime x budget, "mean ± std" over seeds).

Every table is returned together with the numbers it shows, so the CSV written beside the .tex lets a
reader check any cell without re-parsing LaTeX.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from eebench.io import write_csv, write_text
from eebench.registry import Registry
from eebench.render.base import reads

TableFn = Callable[..., tuple[str, pd.DataFrame]]
TABLES: Registry[TableFn] = Registry("table")

EN_DASH = "\u2013"


def _budget_header(budget: str) -> str:
    # "unlimited" -> "Unlimited" as in the paper; "25%" is escaped later by the Styler.
    return budget.capitalize()


def _cell(mean: float, std: float, bold: bool) -> str:
    if np.isnan(mean):
        return EN_DASH
    body = f"{mean:.2f}" if np.isnan(std) else f"{mean:.2f} \\pm {std:.2f}"
    return f"$\\mathbf{{{body}}}$" if bold else f"${body}$"


@TABLES.register("budgets")
@reads("budgets")
def budgets(
    frame: pd.DataFrame,
    *,
    regimes: list[str],
    metric: str = "accuracy",
    caption: str,
    label: str,
    criterion: str | None = None,
) -> tuple[str, pd.DataFrame]:
    """Regime x budget table like paper B Table 1 / Tables 8-12.

    Cells are mean ± sample std (ddof=1) over seeds, in percent. A cell where any seed is NaN (no operating
    point fits the budget) is shown as an en dash and has NaN mean/std in ``numbers``: averaging only the
    seeds that happen to fit would bias the cell upwards. With a single seed the ``± std`` is omitted.
    The best mean per column (after rounding to the shown two decimals, so ties are all bold) is bold.
    ``criterion`` optionally selects one exit criterion when the frame holds several.
    ``numbers`` has columns regime, budget, mean, std, n_seeds (seeds with a finite value), in percent.
    """
    if metric not in frame.columns:
        raise ValueError(f"metric {metric!r} is not a column of the budget frame")
    if criterion is not None:
        frame = frame[frame["criterion"] == criterion]
    present = set(frame["regime"])
    missing = [regime for regime in regimes if regime not in present]
    if missing:
        raise ValueError(f"regime(s) {', '.join(map(repr, missing))} absent from the budget frame")
    frame = frame[frame["regime"].isin(regimes)]
    keys = ["regime", "seed", "budget"]
    if frame.duplicated(keys).any():
        raise ValueError(
            "several rows per (regime, seed, budget); the frame mixes datasets, backbones or criteria "
            "(pass criterion= or restrict the input files)"
        )
    budget_order = list(pd.unique(frame["budget"]))

    rows = []
    for regime in regimes:
        sub = frame[frame["regime"] == regime]
        seeds = pd.unique(sub["seed"])
        # Reindex on all seeds of the regime so a missing row counts like a NaN metric.
        wide = sub.pivot(index="seed", columns="budget", values=metric).reindex(index=seeds, columns=budget_order)
        for budget in budget_order:
            values = wide[budget].to_numpy(dtype=float) * 100.0
            finite = values[~np.isnan(values)]
            complete = finite.size == values.size
            rows.append(
                {
                    "regime": regime,
                    "budget": budget,
                    "mean": finite.mean() if complete else np.nan,
                    "std": finite.std(ddof=1) if complete and finite.size > 1 else np.nan,
                    "n_seeds": int(finite.size),
                }
            )
    numbers = pd.DataFrame(rows, columns=["regime", "budget", "mean", "std", "n_seeds"])

    rounded = numbers.assign(shown=numbers["mean"].round(2))
    best = rounded.groupby("budget")["shown"].transform("max")
    rounded["bold"] = rounded["shown"] == best
    cells = rounded.assign(
        cell=[_cell(m, s, b) for m, s, b in zip(rounded["mean"], rounded["std"], rounded["bold"])]
    ).pivot(index="regime", columns="budget", values="cell")
    cells = cells.reindex(index=regimes, columns=budget_order)
    cells.index = [regime.capitalize() for regime in regimes]
    cells.columns = pd.Index([_budget_header(b) for b in budget_order], name="Regime")

    styler = cells.style.format_index(escape="latex", axis=0).format_index(escape="latex", axis=1)
    tex = styler.to_latex(
        hrules=True,
        caption=caption,
        label=label,
        position_float="centering",
        column_format="l" + "c" * len(budget_order),
    )
    return tex, numbers


def render_table(kind: str, spec: dict, input_paths: list[str], out_tex: str) -> None:
    """Build table ``kind`` from the concatenated CSVs and write ``out_tex`` plus its numbers as ``.csv``."""
    frame = pd.concat([pd.read_csv(path) for path in input_paths], ignore_index=True)
    tex, numbers = TABLES.get(kind)(frame, **spec)
    write_text(out_tex, tex)
    write_csv(Path(out_tex).with_suffix(".csv"), numbers)
