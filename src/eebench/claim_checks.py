"""The papers' claims, each registered in eebench.claims.CLAIMS with the check that tests it on the numbers of a
run (the CSV of the table or figure kind the claim ``reads``). A new claim is a check and its registration here.

Where a sentence is qualitative ("rare", "dominates", "in the same basin"), the check's docstring states the
reading that makes it testable.

A verdict never turns on rounding: every check compares its numbers at the precision it prints them
(:func:`_as_shown`), so two means that print alike are equal, whatever order their sums ran in.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from eebench.claims import CLAIMS, Claim, Verdict
from eebench.tasks import LOWER_IS_BETTER


def _as_shown(value: float, decimals: int = 2) -> float:
    """``value`` as the claims table prints it (``decimals`` places), for comparisons: 98.6111111111111 and
    98.61111111111113 (one mean summed in two orders) both print 98.61 and compare equal."""
    return float(f"{value:.{decimals}f}") if np.isfinite(value) else float(value)


def _shown(mean: float, std: float, n: float | None = None) -> str:
    spread = "" if std is None or np.isnan(std) else f" ± {std:.2f}"
    return f"{mean:.2f}{spread}" + ("" if n is None or np.isnan(n) else f" (n={int(n)})")


# Paper B §4.3 and App. A: the regimes at FLOPs budgets (a `budgets` table's CSV: one row per model, regime,
# criterion, metric, budget with the mean and std over seeds, already in percent, or an MSE as computed) -------


def _budget_means(frame: pd.DataFrame, budget: str) -> tuple[str, dict[str, tuple[float, float]]]:
    """The metric and {regime: (mean, std)} at one budget of a budgets table holding one setting."""
    settings = frame[["model", "criterion", "metric"]].drop_duplicates()
    if len(settings) != 1:
        raise ValueError("a regime claim is checked on a budgets table of one model, criterion and metric; this "
                         f"one has {len(settings)}: {settings.to_dict('records')}")
    metric = str(settings["metric"].iloc[0])
    rows = frame[frame["budget"] == budget]
    return metric, {str(r.regime): (float(r.mean), float(r.std) if pd.notna(r.std) else float("nan"))
                    for r in rows.itertuples() if pd.notna(r.mean)}  # no std (one seed, a paper's mean): none shown


def _goodness(metric: str, value: float) -> float:
    """Larger = better, whichever way the metric points (an MSE is negated)."""
    return -value if metric in LOWER_IS_BETTER else value


def _at_least(better: str, worse: str, budgets: tuple[str, ...]) -> Callable[[pd.DataFrame], Verdict]:
    def check(frame: pd.DataFrame) -> Verdict:
        holds, shown = [], []
        for budget in budgets:
            metric, means = _budget_means(frame, budget)
            if better not in means or worse not in means:
                return Verdict(None, f"{budget}: missing")
            holds.append(_goodness(metric, _as_shown(means[better][0])) >= _goodness(metric, _as_shown(means[worse][0])))
            shown.append(f"{budget}: {better} {_shown(*means[better])} vs {worse} {_shown(*means[worse])}")
        return Verdict(all(holds), "; ".join(shown))
    return check


def _weakest(regime: str, others: tuple[str, ...], budget: str) -> Callable[[pd.DataFrame], Verdict]:
    def check(frame: pd.DataFrame) -> Verdict:
        metric, means = _budget_means(frame, budget)
        needed = (regime, *others)
        if any(r not in means for r in needed):
            return Verdict(None, f"{budget}: missing")
        holds = all(_goodness(metric, _as_shown(means[regime][0])) < _goodness(metric, _as_shown(means[r][0]))
                    for r in others)
        return Verdict(holds, f"{budget}: " + ", ".join(f"{r} {_shown(*means[r])}" for r in needed))
    return check


# On the paper's numbers: §4.3 says both of Table 1 and extends them to Tables 2-4 ("consistent", "similar
# patterns"; Table 4's caption says both again), so each setting of Tables 1-4 is one test (Tables 8-18 repeat
# their means with stds, Table 1's ViT-S excepted). The alternative regimes are printed only in Tables 8, 9, 10,
# 13 and 14 (Tables 11, 12 and 15-18 have the three main regimes alone).
SECTION_4_3_TABLES = ("B Table 1", "B Table 2", "B Table 3", "B Table 4")
ALTERNATIVE_REGIME_TABLES = ("B Table 8", "B Table 9", "B Table 10", "B Table 13", "B Table 14")

CLAIMS.register("mixed_at_least_joint_at_high_budgets", Claim(
    "paper B §4.3 (Tables 1-4, Fig. 1)",
    "The joint regime has a performance gap at higher budgets: mixed $\\geq$ joint at 75\\% and 100\\%.",
    "budgets", _at_least("mixed", "joint", ("75%", "100%")), paper_tables=SECTION_4_3_TABLES))
CLAIMS.register("disjoint_weakest_at_low_budget", Claim(
    "paper B §4.3 (Tables 1-4)",
    "The disjoint regime is the weakest at the lowest budget (25\\%).",
    "budgets", _weakest("disjoint", ("joint", "mixed"), "25%"), paper_tables=SECTION_4_3_TABLES))
CLAIMS.register("mixed_gradual_at_least_mixed", Claim(
    "paper B Appendix A (Tables 8-10, 13-14)",
    "The mixed-gradual regime outperforms the mixed regime (at 75\\% and 100\\%).",
    "budgets", _at_least("mixed_gradual", "mixed", ("75%", "100%")), paper_tables=ALTERNATIVE_REGIME_TABLES))
CLAIMS.register("alternating_below_mixed", Claim(
    "paper B Appendix A (Tables 8-10, 13-14)",
    "The alternating regime falls short of the mixed regime (at 75\\% and 100\\%).",
    "budgets", _at_least("mixed", "alternating", ("75%", "100%")), paper_tables=ALTERNATIVE_REGIME_TABLES))


# Paper A: the benefit of early exits (a `bee` figure's CSV: line, metric, head, mean, std, n_values and
# p_below_first, the one-sided Mann-Whitney U p-value of the line's values being below the first line's) -------

SIGNIFICANCE = 0.05  # paper A: "p <= 0.05"


def _paper_a_figure(figure: str) -> str:
    """Why paper A's numbers decide none of its claims: it has no tables and its text states no measured result
    (eebench/paper_numbers/README.md; a_text.csv holds only the significance level p <= 0.05 it tests at)."""
    return f"paper A prints its results only as figures (here {figure}); its text states no measured value"


def _lines(frame: pd.DataFrame, metric: str) -> pd.DataFrame:
    rows = frame[frame["metric"] == metric]
    if rows.empty:
        raise ValueError(f"the B_EE figure has no {metric!r} rows (metrics: {sorted(set(frame['metric']))})")
    return rows


def _single_label_benefit(frame: pd.DataFrame) -> Verdict:
    """Reading of "predominantly positive": the first line's (single-label) mean F1 B_EE is positive at more
    than half of its heads."""
    rows = _lines(frame, "f1")
    first = rows[rows["line"] == rows["line"].iloc[0]]
    positive = sum(_as_shown(mean) > 0 for mean in first["mean"])
    shown = ", ".join(f"head {int(r.head)} {_shown(r.mean, r.std)}" for r in first.itertuples())
    return Verdict(positive > len(first) / 2, f"{first['line'].iloc[0]} F1 B_EE (pp): {shown}")


def _below_first(frame: pd.DataFrame) -> Verdict:
    """Every other line's F1 B_EE values lie significantly below the first line's (one-sided Mann-Whitney U,
    p <= 0.05, over every head, setting and seed: the figure's p_below_first)."""
    rows = _lines(frame, "f1")
    order = list(dict.fromkeys(rows["line"]))
    if len(order) < 2:
        return Verdict(None, "one line only")
    shown, holds = [], []
    for line in order[1:]:
        p = rows.loc[rows["line"] == line, "p_below_first"].dropna()
        if p.empty:
            return Verdict(None, f"{line}: no p-value")
        holds.append(float(p.iloc[0]) <= SIGNIFICANCE)
        mean = rows.loc[rows["line"] == line, "mean"].mean()
        shown.append(f"{line}: mean {mean:.2f} pp, p = {float(p.iloc[0]):.3g}")
    first_mean = rows.loc[rows["line"] == order[0], "mean"].mean()
    return Verdict(all(holds), f"{order[0]}: mean {first_mean:.2f} pp; " + "; ".join(shown))


CLAIMS.register("single_label_benefit_positive", Claim(
    "paper A §4.2 (Fig. 3)",
    "For single-label classification, benefits (B$_{EE}$) are predominantly positive.",
    "bee", _single_label_benefit, paper_missing=_paper_a_figure("Fig. 3")))
CLAIMS.register("multi_label_benefit_below_single_label", Claim(
    "paper A §4.2 (Fig. 3)",
    "The benefits of early exits for multi-label classification are significantly less pronounced than for "
    "single-label ($p \\leq 0.05$).",
    "bee", _below_first, paper_missing=_paper_a_figure("Fig. 3")))
CLAIMS.register("rank_patience_below_confidence", Claim(
    "paper A §4.3 (Fig. 4)",
    "Strategies based on patience and predicted-probability order did not surpass the confidence-based "
    "strategy, all results being statistically significant ($p \\leq 0.05$).",
    "bee", _below_first, paper_missing=_paper_a_figure("Fig. 4")))


RARE = 0.1  # reading of "rare": at most one example in ten


def _same_head_rare(frame: pd.DataFrame) -> Verdict:
    """Reading of "rare instances where two different models exit at the same layer": at most 10% of the shown
    examples have two present classes whose binary models exit at the same head."""
    per_example = frame.assign(pair=frame["present"].astype(bool) & frame["same_head"].astype(bool)) \
        .groupby("example")["pair"].any()
    share = float(per_example.mean())
    return Verdict(share <= RARE, f"{int(per_example.sum())} of {len(per_example)} examples ({100 * share:.0f}%) "
                                  f"have a same-head pair; rare read as at most {100 * RARE:.0f}%")


CLAIMS.register("same_head_exits_rare", Claim(
    "paper A §4.4 (Fig. 6)",
    "Instances where the binary models of two classes present in one example exit at the same layer are rare.",
    "exit_heads", _same_head_rare, paper_missing=_paper_a_figure("Fig. 6")))


# Paper B §3-4: the analysis framework ----------------------------------------------------------------------


def _last_ic_dominates_in_mixed(frame: pd.DataFrame) -> Verdict:
    """Reading of "the last IC dominates the most in the mixed regime": averaged over the logged steps, the last
    head's gradient dominance is the largest of the mixed regime's heads, and larger than the last head's in
    the joint regime."""
    means = frame.groupby(["regime", "head"])["mean"].mean()
    if "mixed" not in means.index.get_level_values(0) or "joint" not in means.index.get_level_values(0):
        return Verdict(None, "needs the joint and mixed regimes")
    mixed, joint = means["mixed"], means["joint"]
    last = int(mixed.index.max())
    mixed, joint = mixed.map(lambda v: _as_shown(v, 3)), joint.map(lambda v: _as_shown(v, 3))  # printed .3f
    holds = bool((mixed.drop(last) < mixed[last]).all() and mixed[last] > joint[last])
    shown = "; ".join(f"{regime}: " + ", ".join(f"head {int(h)} {v:.3f}" for h, v in means[regime].items())
                      for regime in ("joint", "mixed"))
    return Verdict(holds, f"mean GD over training, {shown}")


CLAIMS.register("last_ic_dominates_in_mixed", Claim(
    "paper B §3.1 (Fig. 2)",
    "The last IC dominates the most in the mixed regime (its gradient aligns best with the total gradient).",
    "gradient_dominance", _last_ic_dominates_in_mixed,
    paper_missing="paper B shows gradient dominance only as a plot (Fig. 2); it prints no values"))


def _barriers(frame: pd.DataFrame, split: str = "test") -> dict[frozenset, tuple[float, float]]:
    rows = frame[frame["split"] == split].drop_duplicates(["regime_a", "regime_b"])
    return {frozenset((r.regime_a, r.regime_b)): (float(r.barrier_mean), float(r.barrier_std))
            for r in rows.itertuples()}


def _disjoint_mixed_same_basin(frame: pd.DataFrame) -> Verdict:
    """Reading of "disjoint and mixed in one basin, joint in another": on the test split, the loss barrier
    along the aligned path between disjoint and mixed is below the barriers of both pairs with joint."""
    barriers = _barriers(frame)
    pairs = [frozenset(p) for p in (("disjoint", "mixed"), ("joint", "mixed"), ("disjoint", "joint"))]
    if any(p not in barriers for p in pairs):
        return Verdict(None, "needs the pairs disjoint-mixed, joint-mixed and disjoint-joint")
    within = _as_shown(barriers[pairs[0]][0])
    holds = all(within < _as_shown(barriers[p][0]) for p in pairs[1:])
    shown = "; ".join(f"{'-'.join(sorted(p))} {_shown(*barriers[p])}" for p in pairs)
    return Verdict(holds, f"test-loss barrier: {shown}")


CLAIMS.register("disjoint_and_mixed_share_a_basin", Claim(
    "paper B §4 (Fig. 3)",
    "The loss remains low along the interpolation between the mixed and disjoint models (one basin), while the "
    "joint model lies in a different basin.",
    "mode_connectivity", _disjoint_mixed_same_basin,
    paper_missing="paper B shows mode connectivity only as a plot (Fig. 3); it prints no loss barrier"))


def _profiles(frame: pd.DataFrame) -> pd.DataFrame:
    """The first variant's (e.g. the first rank tolerance) profile, regime x block."""
    variants = frame["variant"].fillna("") if "variant" in frame else pd.Series("", index=frame.index)
    first = frame[variants == variants.iloc[0]]
    return first.pivot_table(index="regime", columns="block", values="mean", sort=False)


def _ics_raise_rank(frame: pd.DataFrame) -> Verdict:
    """Reading of "the rank increases when the ICs are allowed to affect the backbone": the joint and mixed
    regimes' numerical rank, averaged over blocks, exceeds the plain network's (``backbone``)."""
    profile = _profiles(frame)
    if not {"backbone", "joint", "mixed"} <= set(profile.index):
        return Verdict(None, "needs the backbone, joint and mixed regimes")
    mean = profile.mean(axis=1).map(lambda v: _as_shown(v, 1))  # printed .1f
    holds = bool(mean["joint"] > mean["backbone"] and mean["mixed"] > mean["backbone"])
    return Verdict(holds, "mean rank over blocks: " + ", ".join(f"{r} {mean[r]:.1f}" for r in ("backbone", "joint",
                                                                                                 "mixed")))


CLAIMS.register("ics_raise_numerical_rank", Claim(
    "paper B §4 (Fig. 4)",
    "The numerical rank of the backbone's layers increases when the ICs are allowed to affect the backbone.",
    "layer_profile", _ics_raise_rank, (("analysis", "numerical_rank"),),
    paper_missing="paper B shows the numerical rank only as a plot (Fig. 4); it prints no values"))


def _information_shift(frame: pd.DataFrame) -> Verdict:
    """Paper B: with ICs I(X; Z) is larger than the plain network's in the earlier layers and lower in the final
    ones; read as the first block's value above the backbone's and the last block's below it, for joint and
    mixed alike."""
    profile = _profiles(frame)
    if not {"backbone", "joint", "mixed"} <= set(profile.index):
        return Verdict(None, "needs the backbone, joint and mixed regimes")
    profile = profile.map(lambda v: _as_shown(v, 3))  # printed .3f
    first, last = profile.columns.min(), profile.columns.max()
    holds = all(profile.loc[r, first] > profile.loc["backbone", first]
                and profile.loc[r, last] < profile.loc["backbone", last] for r in ("joint", "mixed"))
    shown = "; ".join(f"block {int(b)}: " + ", ".join(f"{r} {profile.loc[r, b]:.3f}" for r in ("backbone", "joint",
                                                                                          "mixed"))
                      for b in (first, last))
    return Verdict(holds, shown)


CLAIMS.register("ics_shift_information_to_early_layers", Claim(
    "paper B §4 (Fig. 5)",
    "With ICs, the mutual information $I(X;Z)$ is larger than without them in the earlier layers and lower in "
    "the final layers.",
    "layer_profile", _information_shift, (("analysis", "mutual_information"),),
    paper_missing="paper B shows I(X; Z) only as a plot (Fig. 5); it prints no values"))


# Paper B §4.4-4.7: loss scaling, IC size, training time (a `differences` table's CSV: one row per variant block,
# regime and budget, the mean of the per-seed differences in percentage points; a `training_time` table's CSV:
# one row per regime and quantity) ----------------------------------------------------------------------------


def _mean_differences(frame: pd.DataFrame) -> pd.DataFrame:
    """Variant block x regime: the difference averaged over the table's limited budgets (not "unlimited", which
    repeats 100% for the last head)."""
    limited = frame[frame["budget"].astype(str) != "unlimited"]
    means = limited.pivot_table(index="block", columns="regime", values="mean", aggfunc="mean", sort=False)
    return means.map(_as_shown)  # printed .2f


def _scaling_helps_mixed_less(frame: pd.DataFrame) -> Verdict:
    """Reading of "the improvements observed in the mixed regime are notably smaller compared to those seen in
    the joint regime": for every scaling variant, its difference from constant weights averaged over the
    budgets is smaller in mixed than in joint (paper B Table 5's own numbers satisfy it for all four)."""
    means = _mean_differences(frame)
    if not {"joint", "mixed"} <= set(means.columns):
        return Verdict(None, "needs the joint and mixed regimes")
    holds = bool((means["mixed"] < means["joint"]).all())
    return Verdict(holds, "mean difference over budgets (pp): " + "; ".join(
        f"{block} joint {row['joint']:+.2f}, mixed {row['mixed']:+.2f}" for block, row in means.iterrows()))


GE_LABEL = "GE"  # the gradient-equilibrium variant's label, as paper B Table 5 prints it


def _ge_helps_joint_only(frame: pd.DataFrame) -> Verdict:
    """Reading of "gradient equilibrium enhances performance in the joint regime, it does not benefit the mixed
    regime": the variant labelled GE gains on average over the budgets in joint (> 0) and not in mixed (<= 0)."""
    means = _mean_differences(frame)
    if GE_LABEL not in means.index or not {"joint", "mixed"} <= set(means.columns):
        return Verdict(None, f"needs a variant labelled {GE_LABEL} in the joint and mixed regimes")
    joint, mixed = float(means.loc[GE_LABEL, "joint"]), float(means.loc[GE_LABEL, "mixed"])
    return Verdict(joint > 0 >= mixed, f"{GE_LABEL} mean difference over budgets (pp): joint {joint:+.2f}, "
                                       f"mixed {mixed:+.2f}")


def _larger_ics_help_disjoint(frame: pd.DataFrame) -> Verdict:
    """Reading of "under the disjoint regime larger ICs yield clear gains ... especially for lower budgets;
    in the mixed regime this trend reverses": for every larger-IC variant, its gain at the lowest budget is
    positive and largest in disjoint, and its gain averaged over the budgets is not positive in mixed."""
    means = _mean_differences(frame)
    limited = frame[frame["budget"].astype(str) != "unlimited"]
    lowest = limited["budget"].iloc[0]
    at_lowest = limited[limited["budget"] == lowest].pivot_table(index="block", columns="regime", values="mean",
                                                                  sort=False).map(_as_shown)
    if not {"disjoint", "mixed"} <= set(means.columns):
        return Verdict(None, "needs the disjoint and mixed regimes")
    holds = bool(((at_lowest["disjoint"] > 0) & (at_lowest["disjoint"] >= at_lowest.max(axis=1))).all()
                 and (means["mixed"] <= 0).all())
    shown = "; ".join(f"{block}: at {lowest} " + ", ".join(f"{r} {v:+.2f}" for r, v in at_lowest.loc[block].items())
                      + f"; mixed mean {means.loc[block, 'mixed']:+.2f}" for block in at_lowest.index)
    return Verdict(holds, f"gain over the reference IC (pp), {shown}")


def _training_time_order(frame: pd.DataFrame) -> Verdict:
    """Paper B §4.7: disjoint converges in the fewest epochs (phase 1 included), mixed in fewer than joint."""
    epochs = frame[frame["quantity"] == "epochs"].set_index("regime")
    if not {"disjoint", "joint", "mixed"} <= set(epochs.index):
        return Verdict(None, "needs the disjoint, joint and mixed regimes")
    mean = epochs["mean"]
    shown = {r: _as_shown(mean[r]) for r in ("disjoint", "mixed", "joint")}
    holds = bool(shown["disjoint"] < shown["mixed"] < shown["joint"])
    return Verdict(holds, "epochs: " + ", ".join(f"{r} {_shown(mean[r], epochs.loc[r, 'std'])}"
                                                 for r in ("disjoint", "mixed", "joint")))


CLAIMS.register("scaling_helps_mixed_less_than_joint", Claim(
    "paper B §4.4 (Table 5)",
    "The improvements from loss scaling observed in the mixed regime are notably smaller than in the joint "
    "regime.",
    "differences", _scaling_helps_mixed_less, paper_tables=("B Table 5",)))
CLAIMS.register("gradient_equilibrium_helps_joint_not_mixed", Claim(
    "paper B §4.4 (Table 5)",
    "Gradient equilibrium enhances performance in the joint regime; it does not benefit the mixed regime.",
    "differences", _ge_helps_joint_only, paper_tables=("B Table 5",)))
CLAIMS.register("larger_ics_help_disjoint_not_mixed", Claim(
    "paper B §4.5 (Table 6)",
    "Under the disjoint regime larger ICs yield clear gains, especially at lower budgets; in the mixed regime "
    "this trend reverses.",
    "differences", _larger_ics_help_disjoint, paper_tables=("B Table 6",)))
CLAIMS.register("disjoint_fastest_mixed_before_joint", Claim(
    "paper B §4.7",
    "Disjoint training converges most rapidly, and the mixed regime converges faster than the joint one.",
    "training_time", _training_time_order, paper_tables=("B §4.7",)))
