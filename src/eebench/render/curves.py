"""Figure kinds that draw curves of the exit criteria's trade-off: the benefit of early exiting B_EE per head
(paper A Figs 2-5), performance against the speed-up (paper A §3) and against the cost (paper B Fig. 1, Figs
7-17).
"""
from __future__ import annotations

from typing import Annotated, Any, Literal, Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from pydantic import ConfigDict, Field
from typing_extensions import NotRequired, TypedDict

from eebench.declare import Param, Ref
from eebench.sweep_metrics import BUDGET_TOLERANCE, NEAREST_TO_HEAD, achievable_curve, budget_performance, speedup_area
from eebench.render.base import RunKey, kind, reads, regime_label
from eebench.render.figures import METRIC_TITLES, axis_label
from eebench.render.keys import Criterion, CriterionName, Metric, MetricName, Model, Name, Regime, Regimes, Rule, Title
from eebench.tasks import display_scale


def _legend_label(model: str, tasks: dict[str, str] | None) -> str:
    if tasks and model in tasks:
        return f"{model} ({tasks[model]})"
    return model


def _line_runs(spec: Mapping[str, Any]) -> dict[tuple[str, str], str]:
    """(model, criterion) -> line label of a B_EE figure: one line per model (``models``), or per entry of
    ``lines: [{label, models, criterion}]`` (a line's criterion overrides the figure's)."""
    if "lines" not in spec:
        return {(model, spec["criterion"]): model for model in spec["models"]}
    runs: dict[tuple[str, str], str] = {}
    for line in spec["lines"]:
        for model in line["models"]:
            key = (model, line.get("criterion", spec["criterion"]))
            if key in runs:
                raise ValueError(f"model {key[0]!r} under criterion {key[1]!r} is in two lines of the B_EE figure")
            runs[key] = str(line["label"])
    return runs


def _p_below_first(values: pd.DataFrame, order: list[str]) -> dict[tuple[str, str], float]:
    """Per (line, metric): the p-value of paper A's "significantly less" (§4.2, "p <= 0.05"): a one-sided
    Mann-Whitney U test (scipy.stats.mannwhitneyu, alternative "less") that the line's B_EE values (every head,
    setting and seed) lie below the first line's. Rank-based, because B_EE values are bounded differences of
    accuracies, far from normal, and the lines' values are independent samples (different data or models),
    not pairs. {(line, metric): p}; the first line has none."""
    from scipy.stats import mannwhitneyu

    p: dict[tuple[str, str], float] = {}
    for metric, rows in values.groupby("metric"):
        first = rows.loc[rows["line"] == order[0], "B_EE"].to_numpy()
        for line in order[1:]:
            own = rows.loc[rows["line"] == line, "B_EE"].to_numpy()
            p[(line, metric)] = (float(mannwhitneyu(own, first, alternative="less").pvalue)
                                 if len(own) and len(first) else np.nan)
    return p


# How a B_EE figure reads the learned exit (the figure's `learned_exit_point`): paper A Fig. 5 shows it as one
# operating point per setting, its classifier's threshold 0.5 (§4.2, "a value exceeding 0.5 indicating a decision
# to exit"), the default; "nearest_to_head" reads its whole threshold sweep as the threshold criteria's (§3's
# E_closest per head).
LEARNED_EXIT_POINTS: tuple[str, ...] = ("threshold_0.5", NEAREST_TO_HEAD)


def _reading_rows(frame: pd.DataFrame, learned_exit_point: str) -> pd.DataFrame:
    """The rows of one reading per run: a run with an operating point of its own (the learned exit: rows whose
    ``reading`` is not nearest_to_head, eebench.metrics.run_bee) keeps the ``learned_exit_point`` reading, every
    other run nearest_to_head. A frame without a ``reading`` column (B_EE CSVs from before it) reads the whole
    sweep."""
    if learned_exit_point not in LEARNED_EXIT_POINTS:
        raise ValueError(f"learned_exit_point must be one of {', '.join(LEARNED_EXIT_POINTS)}, got "
                         f"{learned_exit_point!r}")
    if "reading" not in frame.columns:
        return frame.assign(reading=NEAREST_TO_HEAD)
    runs = list(zip(frame["model"], frame["criterion"]))
    pointed = {run for run, reading in zip(runs, frame["reading"]) if reading != NEAREST_TO_HEAD}
    wanted = [learned_exit_point if run in pointed else NEAREST_TO_HEAD for run in runs]
    kept = frame[frame["reading"].to_numpy() == np.asarray(wanted, dtype=object)]
    absent = sorted(pointed - set(zip(kept["model"], kept["criterion"])))
    if absent:
        raise ValueError(f"no {learned_exit_point!r} B_EE rows for {', '.join(f'{m} ({c})' for m, c in absent)}")
    return kept


def _duplicate_metrics(frame: pd.DataFrame, metrics: list[str]) -> dict[str, str]:
    """{metric: the earlier metric it duplicates}: a metric whose B_EE equals another's on every row (single-label
    F1 is accuracy, eebench.tasks) would draw the same panel twice."""
    keys = ["model", "criterion", "head", "seed"]
    wide = frame.set_index([*keys, "metric"])["B_EE"].unstack("metric")
    duplicates: dict[str, str] = {}
    for index, metric in enumerate(metrics):
        for earlier in metrics[:index]:
            if earlier not in duplicates and np.array_equal(wide[metric].to_numpy(float),
                                                            wide[earlier].to_numpy(float), equal_nan=True):
                duplicates[metric] = earlier
                break
    return duplicates


def _bee_runs(spec) -> list[RunKey]:
    """A B_EE figure's runs: every (model, criterion) of its lines under its regime."""
    return [RunKey(model, spec["regime"], criterion) for model, criterion in _line_runs(spec)]


class Line(TypedDict):
    """A line of a B_EE figure: a group of model settings, pooled."""

    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]
    label: str
    models: Annotated[list[Name], Field(min_length=1)]
    criterion: NotRequired[Annotated[CriterionName, Param("This line's exit criterion (default the figure's).")]]


@kind("figures", "bee", regenerates=("A", "Figs 2-5: the benefit of early exiting B_EE per head"),
      caption="The benefit of early exiting $B_{EE}$ per exit head, mean $\\pm$ std; above the dashed zero line "
              "exiting early beats the static model of the same cost.",
      one_of=(("models", "lines"),))
@reads("bee", _bee_runs)
def bee(
    frame: pd.DataFrame,
    model_descriptions: dict[str, str] | None = None,
    *,
    criterion: Annotated[Criterion, Param("Exit criterion of the early-exit model.")],
    regime: Annotated[Regime, Param("Regime of the early-exit model compared with the static heads.")],
    models: Annotated[list[Name] | None, Param("One line per model setting.", min_length=1)] = None,
    lines: Annotated[list[Line] | None, Param(
        "One line per group of model settings, pooled: mean and std over every seed of every setting (paper A: "
        "over the learning-rate grid); a line may name its own criterion (paper A Figs 4-5: criteria side by "
        "side). The CSV's p_below_first is a one-sided Mann-Whitney U test of each line's values against the "
        "first line's.", min_length=1)] = None,
    metrics: Annotated[list[MetricName], Param("One panel per metric.")] = ("accuracy", "f1"),
    title: Title = None,
    tasks: Annotated[dict[str, str] | None, Param("Legend label per model, e.g. single-label / multi-label.")] = None,
    learned_exit_point: Annotated[Literal[LEARNED_EXIT_POINTS], Param(
        "How the learned exit's lines read its B_EE: threshold_0.5 = paper A Fig. 5's form, one operating point "
        "per setting (its classifier's output >= 0.5, §4.2), at the static head nearest its average exit head, "
        "drawn as markers; nearest_to_head = its whole threshold sweep, the point nearest each head (E_closest, "
        "§3), as the threshold criteria.")] = "threshold_0.5",
) -> tuple[Figure, pd.DataFrame]:
    """Paper A Figs 2-5: B_EE per head, one line per model setting or per group of settings (e.g. a single- and
    a multi-label dataset, each trained at several learning rates).

    B_EE per exit head, one subplot per metric: one line per model setting (``models``), or per group of
    settings (``lines: [{label, models}]``), e.g. the same data trained with several learning rates, pooled as
    paper A does ("mean benefits and standard deviations from experiments with different hyperparameters").

    y is B_EE in percentage points (an MSE as computed), mean ± sample std (ddof=1) over the line's values
    (every seed of every setting in it); NaN values are dropped and the remaining count is ``n_values``. The
    dashed line at zero separates a favourable from an unfavourable trade-off. ``regime`` and ``criterion``
    select the runs (a line's criterion replaces the figure's); ``tasks`` maps a line -> e.g.
    "single-label"/"multi-label" for the legend.

    ``learned_exit_point`` (:data:`LEARNED_EXIT_POINTS`): how a run with an operating point of its own, the
    learned exit, is read. "threshold_0.5" (paper A Fig. 5): its one operating point at threshold 0.5, at the
    static head nearest its average exit head, drawn as markers without a line (a line pooling several settings
    has one point per setting, at their heads); "nearest_to_head": its whole sweep, E_closest per head, as the
    threshold criteria.

    A metric whose values equal an earlier metric's on every row gets no panel of its own (single-label F1 is
    accuracy, so a figure of single-label lines only draws one panel, titled "Accuracy = F1"); ``numbers`` still
    holds it. ``numbers`` has columns line, metric, head, mean, std, n_values, p_below_first (see
    :func:`_p_below_first`), reading (the line's: nearest_to_head or threshold_0.5).
    """
    del model_descriptions  # the legend names the lines; their settings are in the config
    if lines is not None and models is not None:
        raise ValueError("give the B_EE figure's lines either as models= (one each) or as lines=, not both")
    frame = frame[frame["regime"] == regime]
    if lines is None and models is None:
        models = list(pd.unique(frame["model"]))
    line_of = _line_runs({"lines": lines, "criterion": criterion} if lines is not None
                         else {"models": models, "criterion": criterion})
    present = set(zip(frame["model"], frame["criterion"]))
    absent = [model if name == criterion else f"{model} ({name})"
              for model, name in line_of if (model, name) not in present]
    if absent:
        raise ValueError(f"model(s) {', '.join(map(repr, absent))} absent from the B_EE frame")
    frame = frame.assign(line=[line_of.get(key) for key in zip(frame["model"], frame["criterion"])])
    frame = _reading_rows(frame.dropna(subset=["line"]), learned_exit_point)
    metrics = list(metrics)
    frame = frame[frame["metric"].isin(metrics)]
    absent = [metric for metric in metrics if metric not in set(frame["metric"])]
    if absent:
        raise ValueError(f"metric(s) {', '.join(map(repr, absent))} absent from the B_EE frame")
    if frame.duplicated(["model", "criterion", "metric", "head", "seed"]).any():
        raise ValueError(
            f"several rows per (model, criterion, metric, head, seed) of regime {regime!r}; the input mixes "
            "files of several datasets (restrict the input files)"
        )

    order = list(dict.fromkeys(line_of.values()))
    values = frame.dropna(subset=["B_EE"]).assign(
        B_EE=lambda f: f["B_EE"] * f["metric"].map(display_scale),
        # Categoricals keep lines in the requested order (else of appearance) and metrics as requested.
        line=lambda f: pd.Categorical(f["line"], categories=order),
        metric=lambda f: pd.Categorical(f["metric"], categories=metrics),
    )
    numbers = (
        values.groupby(["line", "metric", "head"], observed=True)["B_EE"]
        .agg(mean="mean", std=lambda s: s.std(ddof=1), n_values="count")
        .reset_index()
        .astype({"line": str, "metric": str})
    )
    p_values = _p_below_first(values.astype({"line": str, "metric": str}), order)
    numbers["p_below_first"] = [p_values.get(key, np.nan) for key in zip(numbers["line"], numbers["metric"])]
    line_reading = {line: ", ".join(sorted(set(rows["reading"]))) for line, rows in frame.groupby("line")}
    numbers["reading"] = numbers["line"].map(line_reading)

    duplicates = _duplicate_metrics(frame, metrics)
    panels = [metric for metric in metrics if metric not in duplicates]
    fig = Figure(figsize=(4.0 * len(panels), 3.2), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False, sharey=True)[0]
    for ax, metric in zip(axes, panels):
        for name, points in numbers[numbers["metric"] == metric].groupby("line", sort=False):
            ax.errorbar(
                points["head"], points["mean"], yerr=points["std"].fillna(0.0),
                marker="o", markersize=3, capsize=3, label=_legend_label(str(name), tasks),
                linestyle="none" if line_reading[name] != NEAREST_TO_HEAD else "-",
            )
        ax.axhline(0.0, color="black", linestyle="--", linewidth=0.8)
        ax.set_title(" = ".join(METRIC_TITLES.get(m, m) for m in [metric, *(d for d in duplicates
                                                                           if duplicates[d] == metric)]))
        ax.set_xlabel("Exit head")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].set_ylabel(r"$B_{EE}$" + (" [pp]" if all(display_scale(m) == 100.0 for m in panels) else ""))
    axes[-1].legend(fontsize="small")
    if title:
        fig.suptitle(title)
    return fig, numbers


def _names(plural: Sequence[str] | None, singular: str | None, key: str) -> list[str]:
    if plural is not None:
        return list(plural)
    if singular is not None:
        return [singular]
    raise ValueError(f"name the runs' {key}: pass {key}s= or {key}=")


def _budget_grid(flops: np.ndarray, budgets: np.ndarray, grid_points: int) -> np.ndarray:
    """``grid_points`` budgets evenly spaced from the cheapest to the most expensive operating point, plus the
    budget marks themselves, so the curve passes exactly through the tables' values there. Grid points within
    rounding of a mark are dropped rather than drawn twice."""
    fine = np.linspace(flops.min(), flops.max(), grid_points)
    if budgets.size:
        fine = fine[np.abs(fine[:, None] - budgets[None, :]).min(axis=1) > BUDGET_TOLERANCE]
    return np.union1d(fine, budgets)


def _curve_label(model: str, regime: str, models: list[str], regimes: list[str],
                 labels: Mapping[str, str] | None) -> str:
    """The regime (capitalised, as paper B's legends) when one model is shown, the model when one regime is,
    else both; ``labels`` overrides by that same key (regime, model, or "model regime")."""
    if len(models) == 1:
        key, default = regime, regime_label(regime)
    elif len(regimes) == 1:
        key, default = model, model
    else:
        key = default = f"{model} {regime}"
    return (labels or {}).get(key, default)


@kind("figures", "cost_curves", regenerates=("B", "Fig. 1 / Figs 7-17: performance against cost per regime"),
      caption="Test performance against the cost (percent of the backbone's FLOPs) per training regime, mean over "
              "seeds with a band of $\\pm$ one std; the dashed lines mark the tables' budgets.",
      one_of=(("model", "models"),))
@reads("sweeps")
def cost_curves(
    frame: pd.DataFrame,
    model_descriptions: Mapping[str, str] | None = None,
    *,
    criterion: Criterion,
    regimes: Regimes,
    model: Annotated[str | None, Ref("name"), Param("The model setting shown: one curve per regime.")] = None,
    models: Annotated[list[Name] | None, Param("The model settings shown: one curve per model and regime.",
                                               min_length=1)] = None,
    metric: Annotated[Metric, Param("Performance on the y axis.")] = "accuracy",
    rule: Rule = "best",
    budgets: Annotated[list[float] | None, Ref("budgets"), Param(
        "Budget lines drawn (the workflow gives the top-level budgets where the entry names none).")] = None,
    title: Title = None,
    labels: Annotated[dict[str, str] | None, Param("Legend label overrides.")] = None,
    grid_points: Annotated[int, Param("Points of the FLOPs grid.", ge=2)] = 200,
) -> tuple[Figure, pd.DataFrame]:
    """Paper B Fig. 1 and Figs 7-17: test performance against % of the backbone's FLOPs, one curve per regime (or
    model and regime), mean over seeds with a std band.

    A seed's curve is :func:`eebench.sweep_metrics.budget_performance` under ``rule`` at every budget of a grid
    (``grid_points`` budgets from the cheapest to the most expensive operating point of the split the rule
    selects on, plus ``budgets``), so at the dashed budget marks it equals the budget tables. x is the budget,
    not the chosen point's cost (under rule ``val`` the test cost can exceed it). The line is the mean over
    seeds, drawn as steps (a budget's value holds until the next grid budget), the band ± one sample std
    (ddof=1); both are NaN where any seed has no point within the budget, so a curve starts where every seed
    fits. ``criterion`` selects the exit criterion's sweeps; ``model_descriptions`` is accepted with the other
    config keys and not drawn; without ``budgets``, no budget is marked.
    ``numbers`` has columns model, regime, flops_percent, mean, std (percent), n_seeds (seeds with a value).
    """
    del model_descriptions  # the caption, not the figure, names what each model setting is
    models, regimes = _names(models, model, "model"), list(regimes)
    if grid_points < 2:
        raise ValueError(f"grid_points must be at least 2 (the cheapest and the dearest point), got {grid_points}")
    frame = frame[(frame["criterion"] == criterion) & frame["model"].isin(models) & frame["regime"].isin(regimes)]
    runs = [(m, r) for m in models for r in regimes]
    test_rows = frame[frame["split"] == "test"]
    present = set(zip(test_rows["model"], test_rows["regime"]))
    missing = [f"{m}/{r}" for m, r in runs if (m, r) not in present]
    if missing:
        raise ValueError(f"run(s) {', '.join(missing)} have no test rows in the sweep frame")
    if frame.duplicated(["model", "regime", "seed", "split", "threshold"]).any():
        raise ValueError(
            "several sweeps per (model, regime, seed); the frame mixes datasets or backbones "
            "(restrict the input files)"
        )
    # Per run, per seed: the test rows and, for rule val, the val rows the budget is checked against.
    seeds: dict[tuple[str, str], list[tuple[pd.DataFrame, pd.DataFrame | None]]] = {}
    for (m, r, seed), rows in frame.groupby(["model", "regime", "seed"], sort=False):
        val = rows[rows["split"] == "val"] if rule == "val" else None
        if val is not None and val.empty:
            raise ValueError(f"rule 'val' needs val rows; {m}/{r} seed {seed} has none")
        seeds.setdefault((m, r), []).append((rows[rows["split"] == "test"], val))

    selected_on = frame[frame["split"] == ("val" if rule == "val" else "test")]
    budget_marks = np.asarray(budgets if budgets is not None else (), dtype=float)
    grid = _budget_grid(selected_on["flops_fraction"].to_numpy(dtype=float), budget_marks, grid_points)
    parts = []
    for m, r in runs:
        # The unlimited row is not on the x axis.
        values = np.vstack([
            budget_performance(test, grid, metric, rule=rule, val_df=val)[metric].to_numpy()[:-1]
            for test, val in seeds[(m, r)]
        ]) * display_scale(metric)
        parts.append(pd.DataFrame({
            "model": m, "regime": r, "flops_percent": grid * 100.0,
            "mean": values.mean(axis=0),  # NaN as soon as one seed has no point within the budget
            "std": values.std(axis=0, ddof=1) if len(values) > 1 else np.full(grid.size, np.nan),
            "n_seeds": np.isfinite(values).sum(axis=0),
        }))
    numbers = pd.concat(parts, ignore_index=True)

    fig = Figure(figsize=(5.0, 3.6), layout="constrained")
    ax = fig.subplots()
    for (m, r), curve in numbers.groupby(["model", "regime"], sort=False):
        (line,) = ax.plot(curve["flops_percent"], curve["mean"], drawstyle="steps-post",
                          label=_curve_label(m, r, models, regimes, labels))
        ax.fill_between(curve["flops_percent"], curve["mean"] - curve["std"], curve["mean"] + curve["std"],
                        step="post", color=line.get_color(), alpha=0.2, linewidth=0)
    for fraction in budget_marks:
        ax.axvline(fraction * 100.0, color="gray", linestyle="--", linewidth=0.8)
    ax.set_xlabel("FLOPs [% of the backbone]")
    ax.set_ylabel(axis_label(metric, "on test"))
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return fig, numbers


@kind("figures", "speedup_curves", regenerates=("A", "Section 3: performance against speed-up per exit strategy"),
      caption="Test performance against the speed-up (the backbone's FLOPs over the average FLOPs) per exit "
              "strategy; the larger the area under a curve, the more effective the strategy.")
@reads("sweeps")
def speedup_curves(
    frame: pd.DataFrame,
    model_descriptions: Mapping[str, str] | None = None,
    *,
    model: Model,
    regime: Regime,
    criteria: Annotated[list[CriterionName], Param("The exit criteria, a curve each.", min_length=1)],
    metric: Annotated[Metric, Param("Performance on the y axis.")] = "accuracy",
    points: Annotated[dict[str, float] | None, Param(
        "Criteria drawn as one operating point (name -> threshold) beside the curves, without an area: paper A's "
        "learned exit exits where its classifier's output exceeds 0.5 (points: {learned: 0.5}).")] = None,
    labels: Annotated[dict[str, str] | None, Param("Legend label per criterion.")] = None,
    title: Title = None,
) -> tuple[Figure, pd.DataFrame]:
    """Paper A §3: test performance against the speed-up, one curve per exit criterion of one model, with each
    curve's area (the CSV): the larger, the more effective the criterion.

    Paper A §3's evaluation framework: test performance against the speed-up (backbone FLOPs / average
    FLOPs), one curve per criterion (its achievable envelope, ``eebench.sweep_metrics.achievable_curve``, mean over
    seeds on a common speed-up grid), and each curve's area (``eebench.sweep_metrics.speedup_area``, per seed, then mean ± std): "the larger the area, the
    more effective the strategy".

    A criterion in ``points`` (name -> threshold) is one operating point, drawn as a marker beside the curves
    (mean ± std over seeds on both axes): paper A's learned exit, whose classifier "exits" where its output
    exceeds 0.5 (§4.2), so ``points: {learned: 0.5}``. Its point is the sweep row that threshold selects (the
    first row whose threshold is >= it: the sweep's rows are the distinct operating points), and it has no area.

    ``numbers``: one row per criterion: criterion, area_mean, area_std, n_seeds, and for a point criterion
    speedup_mean, speedup_std, value_mean, value_std (the metric, in percent where it is a percentage)."""
    del model_descriptions
    points = dict(points or {})
    unknown = sorted(points.keys() - set(criteria))
    if unknown:
        raise ValueError(f"points: {', '.join(map(repr, unknown))} not among the figure's criteria")
    rows = frame[(frame["model"] == model) & (frame["regime"] == regime) & (frame["split"] == "test")]
    scale = display_scale(metric)
    fig = Figure(figsize=(5.0, 3.6), layout="constrained")
    ax = fig.subplots()
    summary = []
    for name in criteria:
        runs = rows[rows["criterion"] == name]
        if runs.empty:
            raise ValueError(f"criterion {name!r} of {model}/{regime} has no test rows in the sweep frame")
        label = (labels or {}).get(name, name)
        seeds = [seed_rows for _, seed_rows in runs.groupby("seed")]
        if name in points:
            chosen = [_row_at_threshold(seed_rows, points[name]) for seed_rows in seeds]
            speedup = np.array([1.0 / row["flops_fraction"] for row in chosen])
            value = np.array([row[metric] for row in chosen]) * scale
            spread = (lambda v: float(np.std(v, ddof=1)) if len(v) > 1 else np.nan)
            summary.append({"criterion": name, "area_mean": np.nan, "area_std": np.nan, "n_seeds": len(seeds),
                            "speedup_mean": float(speedup.mean()), "speedup_std": spread(speedup),
                            "value_mean": float(value.mean()), "value_std": spread(value)})
            ax.errorbar(speedup.mean(), value.mean(), xerr=np.nan_to_num(spread(speedup)),
                        yerr=np.nan_to_num(spread(value)), marker="*", markersize=10, linestyle="none",
                        capsize=3, label=f"{label} (threshold {points[name]:g})")
            continue
        per_seed = [speedup_area(seed_rows, metric) * scale for seed_rows in seeds]
        summary.append({"criterion": name, "area_mean": float(np.mean(per_seed)),
                        "area_std": float(np.std(per_seed, ddof=1)) if len(per_seed) > 1 else np.nan,
                        "n_seeds": len(per_seed)})
        speedup = 1.0 / runs["flops_fraction"].to_numpy(dtype=float)
        grid = np.linspace(speedup.min(), speedup.max(), 200)
        curves = []
        for seed_rows in seeds:
            x, best = achievable_curve(seed_rows, metric)
            # At speed-up s: the best point at s or faster (NaN beyond this seed's fastest point).
            at = np.searchsorted(x, grid, side="left")
            curves.append(np.where(at < len(x), best[np.minimum(at, len(x) - 1)], np.nan) * scale)
        ax.plot(grid, np.nanmean(curves, axis=0), label=label)
    ax.set_xlabel("Speed-up [backbone FLOPs / average FLOPs]")
    ax.set_ylabel(axis_label(metric, "on test"))
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    columns = ["criterion", "area_mean", "area_std", "n_seeds"]
    if points:
        columns += ["speedup_mean", "speedup_std", "value_mean", "value_std"]
    return fig, pd.DataFrame(summary).reindex(columns=columns)


def _row_at_threshold(sweep_rows: pd.DataFrame, threshold: float) -> pd.Series:
    """The operating point a threshold selects: the first sweep row whose threshold is >= it (row k holds for
    every threshold in (t[k-1], t[k]]; the last row's is +inf)."""
    ordered = sweep_rows.sort_values("threshold", kind="stable")
    position = int(np.searchsorted(ordered["threshold"].to_numpy(dtype=float), threshold, side="left"))
    return ordered.iloc[min(position, len(ordered) - 1)]


