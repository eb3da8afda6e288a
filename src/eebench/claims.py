"""Claims of the papers, checked against the numbers of a run.

Each claim is a function of the per-seed budget frame of one setting (columns model, regime, criterion, rule,
budget, seed and the metric) that returns whether it holds and the numbers it compared; the ``claims`` table
kind prints them, so the regenerated paper says where this run agrees with the paper and where it does not.
The default's numbers are whatever they are: nothing is tuned until a claim holds.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from eebench.registry import Registry
from eebench.tasks import LOWER_IS_BETTER, display_scale


@dataclass(frozen=True)
class Verdict:
    holds: bool | None  # None: the numbers needed are missing (a regime not run, a budget no point fits)
    numbers: str  # what was compared, in the table's units (percent), as plain text


@dataclass(frozen=True)
class Claim:
    source: str  # where the paper says it
    sentence: str  # what the paper says
    check: Callable[[pd.DataFrame, str], Verdict]  # (frame of one setting, metric) -> verdict
    regimes: tuple[str, ...]  # the regimes it needs


CLAIMS: Registry[Claim] = Registry("claim")


def _means(frame: pd.DataFrame, metric: str, budget: str) -> dict[str, tuple[float, float]]:
    """Mean and std over seeds, per regime, at one budget, as tables show them (percent; an MSE as computed);
    NaN if any seed has none."""
    out = {}
    for regime, rows in frame[frame["budget"] == budget].groupby("regime", sort=False):
        values = rows[metric].to_numpy(dtype=np.float64) * display_scale(metric)
        out[regime] = ((float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0)
                       if not np.isnan(values).any() and len(values) else (np.nan, np.nan))
    return out


def _goodness(metric: str, value: float) -> float:
    """Larger = better, whichever way the metric points (an MSE is negated)."""
    return -value if metric in LOWER_IS_BETTER else value


def _show(regime: str, mean_std: tuple[float, float]) -> str:
    return f"{regime} {mean_std[0]:.2f} ± {mean_std[1]:.2f}"


def _at_least(better: str, worse: str, budgets: tuple[str, ...]) -> Callable[[pd.DataFrame, str], Verdict]:
    def check(frame: pd.DataFrame, metric: str) -> Verdict:
        holds, shown = [], []
        for budget in budgets:
            means = _means(frame, metric, budget)
            if better not in means or worse not in means or np.isnan([means[better][0], means[worse][0]]).any():
                return Verdict(None, f"{budget}: missing")
            holds.append(_goodness(metric, means[better][0]) >= _goodness(metric, means[worse][0]))
            shown.append(f"{budget}: {_show(better, means[better])} vs {_show(worse, means[worse])}")
        return Verdict(all(holds), "; ".join(shown))
    return check


def _weakest(regime: str, others: tuple[str, ...], budget: str) -> Callable[[pd.DataFrame, str], Verdict]:
    def check(frame: pd.DataFrame, metric: str) -> Verdict:
        means = _means(frame, metric, budget)
        needed = (regime, *others)
        if any(r not in means or np.isnan(means[r][0]) for r in needed):
            return Verdict(None, f"{budget}: missing")
        holds = all(_goodness(metric, means[regime][0]) < _goodness(metric, means[r][0]) for r in others)
        return Verdict(holds, f"{budget}: " + ", ".join(_show(r, means[r]) for r in needed))
    return check


CLAIMS.register("mixed_at_least_joint_at_high_budgets", Claim(
    "paper B §4.3 (Table 1, Fig. 1)",
    "The joint regime has a performance gap at higher budgets: mixed $\\geq$ joint at 75\\% and 100\\%.",
    _at_least("mixed", "joint", ("75%", "100%")), ("joint", "mixed")))
CLAIMS.register("disjoint_weakest_at_low_budget", Claim(
    "paper B §4.3 (Table 1)",
    "The disjoint regime is the weakest at the lowest budget (25\\%).",
    _weakest("disjoint", ("joint", "mixed"), "25%"), ("disjoint", "joint", "mixed")))
CLAIMS.register("mixed_gradual_at_least_mixed", Claim(
    "paper B Appendix A",
    "The mixed-gradual regime outperforms the mixed regime (at 75\\% and 100\\%).",
    _at_least("mixed_gradual", "mixed", ("75%", "100%")), ("mixed", "mixed_gradual")))
CLAIMS.register("alternating_below_mixed", Claim(
    "paper B Appendix A",
    "The alternating regime falls short of the mixed regime (at 75\\% and 100\\%).",
    _at_least("mixed", "alternating", ("75%", "100%")), ("alternating", "mixed")))
