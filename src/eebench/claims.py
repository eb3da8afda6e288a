"""Claims of the papers: what a claim is, the registry of them (:data:`CLAIMS`), and a claim's verdict on the
paper's own numbers (:func:`on_paper`). The claims themselves, each with its check, are eebench.claim_checks's,
registered when CLAIMS is first read.

Each claim is a sentence of a paper, where it says it, the kind of table or figure whose numbers test it, and a
check: a function of that entry's CSV (the numbers the regenerated paper prints, means and seed-to-seed spread
included) that says whether it holds and shows what it compared. A ``claims`` table names ``checks`` (a claim and
the table or figure ``entry`` it is checked on); the workflow renders those entries first. The default's numbers are
whatever they are: nothing is tuned until a claim holds.

Each claim also declares what decides it on the paper's own numbers (issue 23): ``paper_tables``, the items of
:mod:`eebench.paper_numbers` whose transcribed values stand in for the entry's CSV (:data:`PAPER_FRAMES`), or
``paper_missing``, why none can (the result is only a figure). :func:`on_paper` runs the same check on each
setting of those items; a claim the paper's numbers do not support is a reading to report, not a check to bend.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from eebench.registry import Registry

@dataclass(frozen=True)
class Verdict:
    holds: bool | None  # None: the numbers needed are missing (a regime not run, a budget no point fits)
    numbers: str  # what was compared, in the printed units (percent, nats, ...), as plain text


@dataclass(frozen=True)
class Claim:
    source: str  # where the paper says it
    sentence: str  # what the paper says (LaTeX)
    reads: str  # the kind of table or figure whose CSV the check reads
    check: Callable[[pd.DataFrame], Verdict]  # that entry's CSV -> verdict
    requires: tuple[tuple[str, str], ...] = ()  # settings that entry must have too (e.g. the analysis it draws)
    # The paper's own verdict (issue 23): the transcribed items (eebench.paper_numbers, e.g. "B Table 8", "B §4.7")
    # whose values the same check reads, each setting of each item on its own (:func:`on_paper`); where there
    # are none, ``paper_missing`` says why the paper's numbers cannot decide the claim (a figure only).
    paper_tables: tuple[str, ...] = ()
    paper_missing: str = ""


# The claims and their checks register from their own module, imported at the registry's first lookup.
CLAIMS: Registry[Claim] = Registry("claim", providers=("eebench.claim_checks",))


# The claims on the papers' own numbers (issue 23) ------------------------------------------------------------
# Each claim's ``paper_tables`` are read from eebench.paper_numbers into the frame its check reads (the CSV of the
# entry kind ``reads``), one frame per setting (a row group of Tables 1-3, a whole appendix table), and the same
# check runs on each. The paper's verdict: holds where it holds in every setting that has the numbers the check
# needs, does not hold where any such setting fails (k of n shown), not evaluable where none has them.

PAPER_MSE = frozenset({("B Table 2", "STS-B (regr.)"), ("B Table 14", "")})  # (item, setting) printing an MSE
# Items printing absolute values that a `differences` check reads as gains over one row (the reference IC of
# §4.5: "moving from a single-layer IC"); Table 5 prints its differences itself.
DIFFERENCE_REFERENCE = {"B Table 6": "1L"}


def _regime_name(label: str) -> str:
    """A regime as the paper prints it (``Mixed-gradual``, ``Branch-wise``) as this project names it."""
    return {"Branch-wise": "branchwise"}.get(label, label.lower().replace("-", "_"))


def _budget_name(column: str) -> str:
    return "unlimited" if column == "Unlimited" else column


def _paper_budgets(item: str, values: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """A budgets table's CSV per setting: one row per regime and budget, the paper's mean (and std, where it
    prints one)."""
    frames = []
    for setting, rows in values.groupby("setting", sort=False):
        frames.append((setting, pd.DataFrame({
            "model": f"{item} {setting}".strip(), "regime": rows["row"].map(_regime_name),
            "criterion": "as printed", "metric": "mse" if (item, setting) in PAPER_MSE else "accuracy",
            "budget": rows["column"].map(_budget_name), "mean": rows["value"], "std": rows["std"],
            "n_seeds": np.nan}).reset_index(drop=True)))
    return frames


def _paper_differences(item: str, values: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """A differences table's CSV (block = the variant, regime, budget, mean in points): Table 5's rows group by
    regime (``setting``) with the scaling as row; Table 6's absolute values minus its reference row's, per regime
    and budget."""
    values = values.assign(regime=values["setting"].map(_regime_name), budget=values["column"].map(_budget_name))
    reference = DIFFERENCE_REFERENCE.get(item)
    if reference is None:
        frame = values.assign(block=values["row"], mean=values["value"])
    else:
        base = values[values["row"] == reference].set_index(["regime", "budget"])["value"]
        variants = values[values["row"] != reference]
        frame = variants.assign(block=variants["row"], std=np.nan, mean=[
            value - base[(regime, budget)] for regime, budget, value in
            zip(variants["regime"], variants["budget"], variants["value"])])
    return [("", frame[["block", "regime", "budget", "mean", "std"]].reset_index(drop=True))]


def _paper_training_time(item: str, values: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """A training_time table's CSV: epochs to convergence per regime (§4.7's prose)."""
    return [(setting, pd.DataFrame({
        "model": setting, "regime": rows["row"].map(_regime_name), "quantity": rows["column"],
        "mean": rows["value"], "std": rows["std"], "n_seeds": np.nan}).reset_index(drop=True))
        for setting, rows in values.groupby("setting", sort=False)]


# The entry kinds whose CSV a transcribed item can stand in for: item name and its rows -> [(setting, frame)].
PAPER_FRAMES: dict[str, Callable[[str, pd.DataFrame], list[tuple[str, pd.DataFrame]]]] = {
    "budgets": _paper_budgets, "differences": _paper_differences, "training_time": _paper_training_time,
}


@dataclass(frozen=True)
class PaperVerdict:
    """A claim's check run on the paper's transcribed values: one verdict per (item, setting)."""

    tables: tuple[str, ...]
    settings: tuple[tuple[str, str, Verdict], ...]  # (item, setting or "", verdict)
    missing: str = ""  # why no transcribed value decides the claim

    @property
    def evaluated(self) -> int:
        """Settings that have the numbers the check needs."""
        return sum(v.holds is not None for _, _, v in self.settings)

    @property
    def held(self) -> int:
        return sum(v.holds is True for _, _, v in self.settings)

    @property
    def holds(self) -> bool | None:
        return None if self.evaluated == 0 else self.held == self.evaluated

    def verdict(self) -> str:
        """``holds``, ``does not hold`` or ``not evaluable``, with k of n settings where there are several."""
        shown = {True: "holds", False: "does not hold", None: "not evaluable"}[self.holds]
        if len(self.settings) <= 1:
            return shown
        unevaluated = len(self.settings) - self.evaluated
        return (f"{shown} ({'' if self.holds else 'holds in '}{self.held} of {self.evaluated} settings"
                + (f"; {unevaluated} not evaluable" if unevaluated else "") + ")")

    @staticmethod
    def _name(item: str, setting: str) -> str:
        return f"{item} {setting}".strip()

    def numbers(self) -> str:
        """Every setting's compared numbers (or why none decides the claim), as plain text."""
        if not self.settings:
            return self.missing
        return " | ".join(f"{self._name(item, setting)}: {v.numbers}" for item, setting, v in self.settings)

    def summary(self) -> str:
        """Short, for a table cell: one setting's numbers in full; of several, the numbers of each setting where
        the check fails or cannot be read, and how many settings (of which items) it holds in."""
        if len(self.settings) <= 1:
            return self.numbers()
        failed = [f"{'fails' if v.holds is False else 'not evaluable'} in {self._name(item, setting)}: {v.numbers}"
                  for item, setting, v in self.settings if v.holds is not True]
        if not failed:
            return f"holds in all {len(self.settings)} settings of {_items(self.tables)}"
        return "; ".join(failed + ([f"holds in the other {self.held}"] if self.held else []))


def _items(tables: tuple[str, ...]) -> str:
    """``B Table 1, B Table 2`` as ``B Tables 1, 2``."""
    numbers = [table.removeprefix("B Table ") for table in tables]
    if len(tables) > 1 and all(table.startswith("B Table ") for table in tables):
        return "B Tables " + ", ".join(numbers)
    return ", ".join(tables)


def on_paper(claim: Claim) -> PaperVerdict:
    """``claim``'s check on the values its ``paper_tables`` print (eebench.paper_numbers), one setting at a
    time; with none, not evaluable for ``claim.paper_missing``."""
    from eebench import paper_numbers

    if not claim.paper_tables:
        if not claim.paper_missing:
            raise ValueError(f"claim {claim.source!r} names neither paper_tables nor paper_missing")
        return PaperVerdict((), (), claim.paper_missing)
    if claim.reads not in PAPER_FRAMES:
        raise ValueError(f"no transcribed item stands in for a {claim.reads!r} entry (known: "
                         f"{', '.join(PAPER_FRAMES)})")
    settings = []
    for item in claim.paper_tables:
        for setting, frame in PAPER_FRAMES[claim.reads](item, paper_numbers.load(item)):
            settings.append((item, setting, claim.check(frame)))
    return PaperVerdict(tuple(claim.paper_tables), tuple(settings))
