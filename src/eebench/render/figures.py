"""Figures regenerated from result CSVs, drawn with the object-oriented Matplotlib API.

``matplotlib.figure.Figure`` is used directly (no pyplot), so rendering needs no display and leaves no
global figure state behind in long-running workflow processes.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import matplotlib
import matplotlib.colors
import matplotlib.patches

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from eebench.io import BEE_CSV, SWEEP_CSV, ResultFileError, atomic_path, read_csv, write_csv  # noqa: E402
from eebench.metrics import (  # noqa: E402
    BUDGET_TOLERANCE, NEAREST_TO_HEAD, achievable_curve, budget_performance, speedup_area,
)
from eebench.registry import Registry  # noqa: E402
from eebench.tasks import display_scale  # noqa: E402
from eebench.render.base import RunKey, reads, regime_label, regime_pair_runs, regime_runs  # noqa: E402

FigureFn = Callable[..., tuple[Figure, pd.DataFrame]]
FIGURES: Registry[FigureFn] = Registry("figure")

_METRIC_TITLES = {"accuracy": "Accuracy", "f1": "F1", "mse": "MSE"}


def _axis_label(metric: str, what: str) -> str:
    """E.g. "Accuracy on test [%]"; a metric shown as computed (MSE) has no unit."""
    unit = " [%]" if display_scale(metric) == 100.0 else ""
    return f"{_METRIC_TITLES.get(metric, metric)} {what}{unit}"


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


@FIGURES.register("bee")
@reads("bee", _bee_runs)
def bee(
    frame: pd.DataFrame,
    *,
    models: Sequence[str] | None = None,
    lines: Sequence[Mapping[str, Any]] | None = None,
    regime: str | None = None,
    criterion: str | None = None,
    metrics: Sequence[str] = ("accuracy", "f1"),
    title: str | None = None,
    tasks: dict[str, str] | None = None,
    learned_exit_point: str = "threshold_0.5",
    model_descriptions: dict[str, str] | None = None,
) -> tuple[Figure, pd.DataFrame]:
    """B_EE per exit head, one subplot per metric, like paper A Figs 2-5: one line per model setting
    (``models``), or per group of settings (``lines: [{label, models}]``), e.g. the same data trained with
    several learning rates, pooled as paper A does ("mean benefits and standard deviations from experiments
    with different hyperparameters").

    y is B_EE in percentage points (an MSE as computed), mean ± sample std (ddof=1) over the line's values
    (every seed of every setting in it); NaN values are dropped and the remaining count is ``n_values``. The
    dashed line at zero separates a favourable from an unfavourable trade-off. ``regime`` and ``criterion``
    select the runs when the frame holds more; ``tasks`` maps a line -> e.g. "single-label"/"multi-label" for
    the legend.

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
    if regime is not None:
        frame = frame[frame["regime"] == regime]
    if criterion is None and (lines is None or any("criterion" not in line for line in lines)):
        criteria = pd.unique(frame["criterion"])  # the frame's only criterion, if it has one
        if len(criteria) > 1:
            raise ValueError("several rows per (model, metric, head, seed); the frame mixes criteria "
                             "(pass criterion=, or restrict the input files)")
        criterion = criteria[0] if len(criteria) else None
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
            "several rows per (model, criterion, metric, head, seed); the frame mixes regimes "
            "(pass regime=, or restrict the input files)"
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
        ax.set_title(" = ".join(_METRIC_TITLES.get(m, m) for m in [metric, *(d for d in duplicates
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


@FIGURES.register("cost_curves")
@reads("sweeps")
def cost_curves(
    frame: pd.DataFrame,
    *,
    models: Sequence[str] | None = None,
    model: str | None = None,
    regimes: Sequence[str] | None = None,
    regime: str | None = None,
    criterion: str | None = None,
    metric: str = "accuracy",
    rule: str = "best",
    budgets: Sequence[float] = (0.25, 0.5, 0.75, 1.0),
    title: str | None = None,
    labels: Mapping[str, str] | None = None,
    model_descriptions: Mapping[str, str] | None = None,
    grid_points: int = 200,
) -> tuple[Figure, pd.DataFrame]:
    """Test performance against % of the backbone's FLOPs, one curve per (model, regime), like paper B Fig. 1
    and Figs 7-17 (Appendix D).

    A seed's curve is :func:`eebench.metrics.budget_performance` under ``rule`` at every budget of a grid
    (``grid_points`` budgets from the cheapest to the most expensive operating point of the split the rule
    selects on, plus ``budgets``), so at the dashed budget marks it equals the budget tables. x is the budget,
    not the chosen point's cost (under rule ``val`` the test cost can exceed it). The line is the mean over
    seeds, drawn as steps (a budget's value holds until the next grid budget), the band ± one sample std
    (ddof=1); both are NaN where any seed has no point within the budget, so a curve starts where every seed
    fits. ``criterion`` selects one exit criterion when the frame holds several; ``model_descriptions`` is
    accepted with the other config keys and not drawn.
    ``numbers`` has columns model, regime, flops_percent, mean, std (percent), n_seeds (seeds with a value).
    """
    del model_descriptions  # the caption, not the figure, names what each model setting is
    models, regimes = _names(models, model, "model"), _names(regimes, regime, "regime")
    if grid_points < 2:
        raise ValueError(f"grid_points must be at least 2 (the cheapest and the dearest point), got {grid_points}")
    if criterion is not None:
        frame = frame[frame["criterion"] == criterion]
    frame = frame[frame["model"].isin(models) & frame["regime"].isin(regimes)]
    runs = [(m, r) for m in models for r in regimes]
    test_rows = frame[frame["split"] == "test"]
    present = set(zip(test_rows["model"], test_rows["regime"]))
    missing = [f"{m}/{r}" for m, r in runs if (m, r) not in present]
    if missing:
        raise ValueError(f"run(s) {', '.join(missing)} have no test rows in the sweep frame")
    if frame.duplicated(["model", "regime", "seed", "split", "threshold"]).any():
        raise ValueError(
            "several sweeps per (model, regime, seed); the frame mixes datasets, backbones or criteria "
            "(pass criterion= or restrict the input files)"
        )
    # Per run, per seed: the test rows and, for rule val, the val rows the budget is checked against.
    seeds: dict[tuple[str, str], list[tuple[pd.DataFrame, pd.DataFrame | None]]] = {}
    for (m, r, seed), rows in frame.groupby(["model", "regime", "seed"], sort=False):
        val = rows[rows["split"] == "val"] if rule == "val" else None
        if val is not None and val.empty:
            raise ValueError(f"rule 'val' needs val rows; {m}/{r} seed {seed} has none")
        seeds.setdefault((m, r), []).append((rows[rows["split"] == "test"], val))

    selected_on = frame[frame["split"] == ("val" if rule == "val" else "test")]
    budget_marks = np.asarray(budgets, dtype=float)
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
    ax.set_ylabel(_axis_label(metric, "on test"))
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return fig, numbers


@FIGURES.register("speedup_curves")
@reads("sweeps")
def speedup_curves(
    frame: pd.DataFrame,
    *,
    model: str,
    regime: str,
    criteria: Sequence[str],
    metric: str = "accuracy",
    points: Mapping[str, float] | None = None,
    labels: Mapping[str, str] | None = None,
    title: str | None = None,
    model_descriptions: Mapping[str, str] | None = None,
) -> tuple[Figure, pd.DataFrame]:
    """Paper A §3's evaluation framework: test performance against the speed-up (backbone FLOPs / average
    FLOPs), one curve per criterion (its achievable envelope, ``eebench.metrics.achievable_curve``, mean over
    seeds on a common speed-up grid), and each curve's area (``eebench.metrics.speedup_area``, per seed, then mean ± std): "the larger the area, the
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
    ax.set_ylabel(_axis_label(metric, "on test"))
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


def _exit_head_runs(spec) -> list[RunKey]:
    return [RunKey(model, spec["regime"], spec.get("criterion", "confidence")) for model in spec["models"]]


@FIGURES.register("exit_heads")
@reads("logits", _exit_head_runs)
def exit_heads(
    caches: Sequence[Mapping[str, Any]],
    *,
    models: Sequence[str],
    regime: str,
    criterion: str = "confidence",
    criterion_setting: Mapping[str, Any] | None = None,
    threshold: float = 0.5,
    min_classes: int = 2,
    examples: int = 40,
    labels: Mapping[str, str] | None = None,
    title: str | None = None,
    model_descriptions: Mapping[str, str] | None = None,
) -> tuple[Figure, pd.DataFrame]:
    """Paper A Fig. 6: one binary early-exit model per class (``models``, each trained on one label column of
    the same images), and the head at which each exits on test examples holding at least ``min_classes`` of
    those classes. A model exits at the first head whose ``criterion`` score is >= ``threshold`` (with the
    default, confidence at 0.5, "if the classifier recognizes its class as present, it exits at the current
    head"), else at its last head.

    Columns: the first ``examples`` such test examples, in test order; rows: the models. A cell is coloured by
    the exit head where the example holds the model's class and left blank where it does not; two models
    exiting at the same head on one example are ringed in orange, and the example whose classes' exit heads lie
    furthest apart is framed in red (paper A: "an example with objects of significantly different recognition
    difficulty"). ``numbers``: one row per (example, model): example (index in the test split), model, label,
    present, exit_head (1-based), recognised (the exit head predicts the class present), same_head (another
    model whose class is present exits at the same head)."""
    del model_descriptions
    from eebench.exits.sweep import criterion_scores, exit_heads as first_ready_heads

    setting = dict(criterion_setting or {"criterion": criterion, "params": {}})
    # One cache per model, in the models' order (the workflow's input order; a shared run's cache may carry
    # another entry's name).
    if len(caches) != len(models):
        raise ValueError(f"the exit-head figure shows one run per model: {len(models)} models, {len(caches)} logit "
                         f"caches (give it one seed: seeds: [s])")
    by_model = dict(zip(models, caches))
    fingerprints = {model: str(by_model[model].get("test_inputs", "")) for model in models}
    if "" in fingerprints.values() or len(set(fingerprints.values())) > 1:
        raise ValueError("the exit-head figure compares models sample by sample, so they must be tested on the "
                         "same images (datasets differing only in `classes`); test-input fingerprints: "
                         + ", ".join(f"{m}: {f[:12] or 'none (cache written before fingerprints)'}"
                                     for m, f in fingerprints.items()))
    present_columns, heads, recognised = [], [], []
    for model in models:
        cache = by_model[model]
        labels_of_model = np.asarray(cache["test_labels"])
        if not cache["task"].multilabel or labels_of_model.ndim != 2 or labels_of_model.shape[1] != 1:
            raise ValueError(f"model {model!r} is not a binary (one-class multi-label) model: its test labels "
                             f"have shape {labels_of_model.shape}")
        task, scores = criterion_scores(cache, setting["criterion"], setting["params"], source=model)
        head = first_ready_heads(scores["test"], threshold)
        positive = task.predicted_positive(cache["test_logits"])[head, np.arange(head.size), 0]
        present_columns.append(labels_of_model[:, 0] > 0.5)
        heads.append(head)
        recognised.append(positive)
    present = np.stack(present_columns)  # [M, N]
    head = np.stack(heads)  # [M, N], 0-based
    chosen = np.flatnonzero(present.sum(axis=0) >= min_classes)[:examples]
    if chosen.size == 0:
        raise ValueError(f"no test example holds {min_classes} or more of the models' classes")
    present, head, hit = present[:, chosen], head[:, chosen], np.stack(recognised)[:, chosen]
    # Same head: another present-class model of the example exits at the same head.
    same = np.zeros_like(present)
    for i in range(len(models)):
        others = present & (head == head[i]) & (np.arange(len(models)) != i)[:, None]
        same[i] = present[i] & others.any(axis=0)
    spread = np.where(present, head, -1).max(axis=0) - np.where(present, head, np.iinfo(head.dtype).max).min(axis=0)
    widest = int(np.argmax(spread))

    n_heads = int(caches[0]["test_logits"].shape[0])
    fig = Figure(figsize=(max(5.0, 0.18 * chosen.size + 2.0), 0.3 * len(models) + 1.6), layout="constrained")
    ax = fig.subplots()
    grid = np.ma.masked_where(~present, head + 1.0)
    cmap = matplotlib.colormaps["viridis"].resampled(n_heads)
    image = ax.imshow(grid, aspect="auto", cmap=cmap, vmin=0.5, vmax=n_heads + 0.5, interpolation="nearest")
    rows, cols = np.nonzero(same)
    ax.scatter(cols, rows, s=40, facecolors="none", edgecolors="orange", linewidths=1.5, label="same exit head")
    ax.add_patch(matplotlib.patches.Rectangle((widest - 0.5, -0.5), 1.0, len(models), fill=False,
                                              edgecolor="red", linewidth=1.5))
    ax.set_yticks(range(len(models)), [(labels or {}).get(m, m) for m in models])
    ax.set_xticks(range(chosen.size), [str(i) for i in chosen], rotation=90, fontsize="x-small")
    ax.set_xlabel("Test example")
    fig.colorbar(image, ax=ax, ticks=range(1, n_heads + 1), label="Exit head")
    if rows.size:
        ax.legend(loc="lower right", fontsize="x-small", bbox_to_anchor=(1.0, 1.0), frameon=False)
    if title:
        ax.set_title(title)
    numbers = pd.DataFrame({
        "example": np.repeat(chosen[None, :], len(models), axis=0).ravel(),
        "model": np.repeat(np.asarray(models, dtype=object), chosen.size),
        "label": np.repeat(np.asarray([(labels or {}).get(m, m) for m in models], dtype=object), chosen.size),
        "present": present.ravel(),
        "exit_head": (head + 1).ravel(),
        "recognised": hit.ravel(),
        "same_head": same.ravel(),
    })
    return fig, numbers


def dominance_records(saved: Mapping[str, Any]) -> pd.DataFrame:
    """A checkpoint's gradient-dominance records (``training.gradient_dominance_every``), one row per (record,
    head): phase, epochs (training progress in epochs, counted over every phase of the run, the shared phase 1
    it started from included), head (0-based), gd."""
    rows, done = [], 0.0
    epochs = [*saved.get("init_history", []), *saved["history"]]
    for epoch in epochs:
        for record in epoch.get("gradient_dominance", []):
            within = record["step"] / epoch["steps_per_epoch"] - (epoch["epoch"] - 1)  # in [0, 1)
            for head, gd in zip(record["heads"], record["gd"]):
                rows.append({"phase": epoch["phase"], "epochs": done + within, "head": head, "gd": gd})
        done += 1.0
    return pd.DataFrame(rows, columns=["phase", "epochs", "head", "gd"])


@FIGURES.register("gradient_dominance")
@reads("models", regime_runs)
def gradient_dominance_figure(
    checkpoints: Sequence[Mapping[str, Any]],
    *,
    model: str,
    regimes: Sequence[str],
    title: str | None = None,
    model_descriptions: Mapping[str, str] | None = None,
) -> tuple[Figure, pd.DataFrame]:
    """Paper B Fig. 2: each head's gradient dominance (§3.1, cosine of its gradient on the backbone with the
    total gradient) over training, one panel per regime, mean over seeds (records of the seeds share their
    steps). ``numbers``: regime, head (1-based), epochs, mean, std, n_seeds."""
    del model_descriptions
    frames = []
    for saved in checkpoints:
        records = dominance_records(saved)
        if records.empty:
            raise ValueError(f"{saved.get('path', 'a checkpoint')} has no gradient-dominance records: train it "
                             f"with training.gradient_dominance_every > 0")
        meta = saved["meta"]
        frames.append(records.assign(regime=meta["regime"], seed=meta["seed"]))
    frame = pd.concat(frames, ignore_index=True)
    numbers = (frame.assign(epochs=frame["epochs"].round(6), head=frame["head"] + 1)
               .groupby(["regime", "head", "epochs"], sort=True)["gd"]
               .agg(mean="mean", std=lambda s: s.std(ddof=1), n_seeds="count").reset_index())
    fig = Figure(figsize=(4.0 * len(regimes), 3.2), layout="constrained")
    axes = fig.subplots(1, len(regimes), squeeze=False, sharey=True)[0]
    for ax, regime in zip(axes, regimes):
        rows = numbers[numbers["regime"] == regime]
        if rows.empty:
            raise ValueError(f"no gradient-dominance records of {model}/{regime}")
        for head, line in rows.groupby("head"):
            ax.plot(line["epochs"], line["mean"], label=f"head {head}", linewidth=1.0)
        ax.set_title(regime_label(regime))
        ax.set_xlabel("Training epochs")
    axes[0].set_ylabel("Gradient dominance (cosine)")
    axes[-1].legend(fontsize="small")
    if title:
        fig.suptitle(title)
    numbers["regime"] = pd.Categorical(numbers["regime"], categories=list(regimes))
    return fig, numbers.sort_values(["regime", "head", "epochs"]).astype({"regime": str}).reset_index(drop=True)


_ANALYSIS_LABELS = {"numerical_rank": "Numerical rank", "mutual_information": "I(X; Z) [nats]"}


@FIGURES.register("layer_profile")
@reads("analysis", regime_runs)
def layer_profile(
    frame: pd.DataFrame,
    *,
    analysis: str,
    model: str,
    regimes: Sequence[str],
    title: str | None = None,
    labels: Mapping[str, str] | None = None,
    model_descriptions: Mapping[str, str] | None = None,
) -> tuple[Figure, pd.DataFrame]:
    """Paper B Figs 4-5: a per-layer analysis (numerical rank §3.3, mutual information §3.4) of the backbone's
    blocks, one line per regime, mean ± std over seeds; an analysis with several values per block (the rank at
    each tolerance) gets one panel per variant. ``numbers``: variant, regime, block (1-based), features, mean,
    std, n_seeds."""
    del model_descriptions
    rows = frame[frame["analysis"] == analysis]
    present = set(rows["regime"])
    absent = [regime for regime in regimes if regime not in present]
    if absent:
        raise ValueError(f"no {analysis} results of {model} for regime(s) {', '.join(absent)}")
    # A CSV's empty variant (one value per block) reads as NaN.
    variant = rows["variant"].map(lambda v: "" if pd.isna(v) else str(v)) if "variant" in rows else ""
    rows = rows[rows["regime"].isin(regimes)].assign(block=lambda f: f["block"] + 1, variant=variant)
    variants = list(pd.unique(rows["variant"]))
    numbers = (rows.groupby(["variant", "regime", "block", "features"], sort=False)["value"]
               .agg(mean="mean", std=lambda s: s.std(ddof=1), n_seeds="count").reset_index())
    numbers["variant"] = pd.Categorical(numbers["variant"], categories=variants)
    numbers["regime"] = pd.Categorical(numbers["regime"], categories=list(regimes))
    numbers = (numbers.sort_values(["variant", "regime", "block"]).astype({"variant": str, "regime": str})
               .reset_index(drop=True))
    fig = Figure(figsize=(5.0 * len(variants), 3.6), layout="constrained")
    axes = fig.subplots(1, len(variants), squeeze=False)[0]
    for ax, name in zip(axes, variants):
        for regime, line in numbers[numbers["variant"] == name].groupby("regime", sort=False):
            ax.errorbar(line["block"], line["mean"], yerr=line["std"].fillna(0.0), marker="o", markersize=3,
                        capsize=3, label=(labels or {}).get(regime, regime_label(regime)))
        ax.set_xlabel("Block")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if name:
            ax.set_title(name, fontsize="medium")
    axes[0].set_ylabel(_ANALYSIS_LABELS.get(analysis, analysis))
    axes[-1].legend(fontsize="small")
    if title:
        fig.suptitle(title)
    return fig, numbers


def _head_rows(frame: pd.DataFrame, head: int | str, what: str) -> pd.DataFrame:
    """The rows of one head ("total", or a 1-based head number) of a checkpoint-analysis frame."""
    heads = frame["head"].astype(str)
    rows = frame[heads == str(head)]
    if rows.empty:
        raise ValueError(f"{what}: no head {head!r} in the results (heads: {', '.join(pd.unique(heads))})")
    return rows


def _head_title(head: int | str) -> str:
    return "total (sum over heads)" if str(head) == "total" else f"head {head}"


@FIGURES.register("mode_connectivity")
@reads("mode_connectivity", regime_pair_runs)
def mode_connectivity_figure(
    frame: pd.DataFrame,
    *,
    model: str,
    pairs: Sequence[Sequence[str]],
    head: int | str = "total",
    splits: Sequence[str] = ("test", "train"),
    metric: str = "accuracy",
    labels: Mapping[str, str] | None = None,
    title: str | None = None,
    model_descriptions: Mapping[str, str] | None = None,
) -> tuple[Figure, pd.DataFrame]:
    """Paper B Fig. 3: the loss (left) and ``metric`` (right) along the aligned linear path Θ(λ) = (1 − λ)Θ_A +
    λΠΘ_B (eq. 4) between the models of two regimes, one colour per regime pair, a line style per split; mean
    over seeds. ``head``: "total" (the sum of the heads' losses; its metric is the mean over heads) or a 1-based
    head. ``labels`` names a pair by "A-B". ``numbers``: pair, regime_a, regime_b, split, lambda, loss_mean,
    loss_std, <metric>_mean, <metric>_std (percent), n_seeds, and the pair's loss barrier on that split,
    barrier_mean / barrier_std over seeds: max over λ of L(λ) − ((1 − λ)L(0) + λL(1)) (Frankle et al., 2020;
    Ainsworth et al. §4), 0 for a path no worse than the chord between its ends."""
    del model_descriptions
    rows = _head_rows(frame, head, "mode-connectivity figure")
    rows = rows[rows["split"].isin(splits)]
    if metric not in rows.columns:
        raise ValueError(f"mode-connectivity figure: metric {metric!r} is not in the results")
    scale = display_scale(metric)
    frames = []
    for first, second in pairs:
        pair = rows[(rows["regime_a"] == first) & (rows["regime_b"] == second)]
        for split in splits:
            if pair[pair["split"] == split].empty:
                raise ValueError(f"no mode-connectivity results of {model} {first}-{second} on the {split} split")
        label = (labels or {}).get(f"{first}-{second}", f"{regime_label(first)}–{regime_label(second)}")
        for (split, seed), path in pair.groupby(["split", "seed"], sort=False):
            path = path.sort_values("lambda")
            lam, loss = path["lambda"].to_numpy(float), path["loss"].to_numpy(float)
            barrier = float(np.max(loss - ((1 - lam) * loss[0] + lam * loss[-1])))
            frames.append(path.assign(pair=label, barrier=barrier, value=path[metric] * scale))
    data = pd.concat(frames, ignore_index=True)
    keys = ["pair", "regime_a", "regime_b", "split", "lambda"]
    numbers = (data.groupby(keys, sort=False)
               .agg(loss_mean=("loss", "mean"), loss_std=("loss", lambda v: v.std(ddof=1)),
                    metric_mean=("value", "mean"), metric_std=("value", lambda v: v.std(ddof=1)),
                    n_seeds=("loss", "count"), barrier_mean=("barrier", "mean"),
                    barrier_std=("barrier", lambda v: v.std(ddof=1)))
               .reset_index()
               .rename(columns={"metric_mean": f"{metric}_mean", "metric_std": f"{metric}_std"}))
    fig = Figure(figsize=(8.0, 3.4), layout="constrained")
    loss_ax, metric_ax = fig.subplots(1, 2)
    styles = ["-", "--", ":", "-."]
    colours = matplotlib.colormaps["tab10"]
    for index, (label, lines) in enumerate(numbers.groupby("pair", sort=False)):
        for style, split in zip(styles, splits):
            line = lines[lines["split"] == split]
            common = {"color": colours(index), "linestyle": style, "marker": "o", "markersize": 2.5}
            loss_ax.plot(line["lambda"], line["loss_mean"], label=f"{label} ({split})", **common)
            metric_ax.plot(line["lambda"], line[f"{metric}_mean"], **common)
    loss_ax.set_ylabel("Loss" + (" (sum over heads)" if str(head) == "total" else ""))
    metric_ax.set_ylabel(_axis_label(metric, "(mean over heads)" if str(head) == "total" else f"of head {head}"))
    for ax in (loss_ax, metric_ax):
        ax.set_xlabel(r"$\lambda$ (0: regime A, 1: regime B aligned to A)")
    loss_ax.legend(fontsize="x-small")
    fig.suptitle(title or f"Mode connectivity, {_head_title(head)}")
    return fig, numbers


def _require_permutation_spec(entry: Mapping[str, Any]) -> None:
    """Checked at DAG build (eebench.config.check_config): weight matching needs the network's permutation spec."""
    from eebench.analysis.permutation import require_permutation_spec

    require_permutation_spec(entry)


mode_connectivity_figure.check_model = _require_permutation_spec  # type: ignore[attr-defined]


@FIGURES.register("loss_landscape")
@reads("loss_landscape", regime_runs)
def loss_landscape_figure(
    frame: pd.DataFrame,
    *,
    model: str,
    regimes: Sequence[str],
    head: int | str = "total",
    levels: int = 20,
    vmax: float | None = None,
    labels: Mapping[str, str] | None = None,
    title: str | None = None,
    model_descriptions: Mapping[str, str] | None = None,
) -> tuple[Figure, pd.DataFrame]:
    """Paper B Fig. 6 (Appendix B): the training loss f(x, y) = L(θ* + xδ + yη) (eq. 6) around each regime's
    model, one contour panel per regime, of one ``head`` (1-based) or the "total" (the sum of the heads'
    losses). The panels share ``levels`` log-spaced contour levels from the smallest loss shown to ``vmax``
    (default the largest; higher values take the top colour); the star marks θ* (x = y = 0). One seed (the
    directions are drawn per model). ``numbers``: regime, x, y, loss and the task's metrics."""
    del model_descriptions
    rows = _head_rows(frame, head, "loss-landscape figure")
    if rows.groupby("regime")["seed"].nunique().max() > 1:
        raise ValueError("the loss-landscape figure shows one run per regime: give it one seed (seeds: [s])")
    absent = [regime for regime in regimes if regime not in set(rows["regime"])]
    if absent:
        raise ValueError(f"no loss-landscape results of {model} for regime(s) {', '.join(absent)}")
    rows = rows[rows["regime"].isin(regimes)]
    low = max(float(rows["loss"].min()), 1e-12)
    high = float(vmax) if vmax is not None else float(rows["loss"].max())
    bounds = np.geomspace(low, high if high > low else low * 1.01, levels)
    fig = Figure(figsize=(3.4 * len(regimes) + 0.8, 3.2), layout="constrained")
    axes = fig.subplots(1, len(regimes), squeeze=False, sharey=True)[0]
    norm = matplotlib.colors.LogNorm(vmin=bounds[0], vmax=bounds[-1])
    for ax, regime in zip(axes, regimes):
        grid = rows[rows["regime"] == regime].pivot_table(index="y", columns="x", values="loss")
        filled = ax.contourf(grid.columns, grid.index, grid.to_numpy(), levels=bounds, norm=norm, cmap="viridis",
                             extend="max" if vmax is not None else "neither")
        ax.contour(grid.columns, grid.index, grid.to_numpy(), levels=bounds, colors="white", linewidths=0.4)
        ax.plot([0.0], [0.0], marker="*", color="red", markersize=8)
        ax.set_title((labels or {}).get(regime, regime_label(regime)))
        ax.set_xlabel(r"$x$ (direction $\delta$)")
        ax.set_aspect("equal")
    axes[0].set_ylabel(r"$y$ (direction $\eta$)")
    bar = fig.colorbar(filled, ax=list(axes), label=f"Training loss, {_head_title(head)}", format="%.3g")
    bar.set_ticks(bounds[::max(1, len(bounds) // 8)])
    if title:
        fig.suptitle(title)
    metrics = [c for c in ("accuracy", "f1", "mse") if c in rows.columns]
    numbers = rows.assign(regime=pd.Categorical(rows["regime"], categories=list(regimes)))
    numbers = numbers.sort_values(["regime", "x", "y"]).astype({"regime": str})
    return fig, numbers[["regime", "seed", "x", "y", "loss", *metrics]].reset_index(drop=True)


def render_figure(kind: str, spec: dict, input_paths: list[str], out_pdf: str) -> None:
    """Build figure ``kind`` and write ``<stem>.pdf``, ``<stem>.png`` (150 dpi) and ``<stem>.csv``."""
    renderer = FIGURES.get(kind)
    if renderer.reads == "logits":  # per-sample figures read the caches themselves
        from eebench.exits.sweep import load_cache

        data: Any = [load_cache(path) | {"path": path} for path in input_paths]
    elif renderer.reads == "models":  # what training recorded, from the checkpoints
        from eebench.io import MODEL_CHECKPOINT, read_checkpoint

        data = [{**read_checkpoint(path, MODEL_CHECKPOINT, keys=("meta", "history")), "path": path}
                for path in input_paths]
    else:
        expected = {"bee": BEE_CSV, "sweeps": SWEEP_CSV, "analysis": "a per-layer analysis CSV written by "
                    "`eebench analyze`", "mode_connectivity": "a mode-connectivity CSV written by `eebench "
                    "connect-modes`", "loss_landscape": "a loss-landscape CSV written by `eebench landscape`"
                    }[renderer.reads]
        if renderer.reads == "sweeps":  # checked as every reader of a sweep checks it
            from eebench.exits.sweep import read_sweep

            frames = [read_sweep(path) for path in input_paths]
            for path, frame in zip(input_paths, frames):  # a figure's lines are named by the run's model
                if "model" not in frame.columns:
                    raise ResultFileError(path, f"lacks column(s) model (it has: {', '.join(frame.columns)})",
                                          SWEEP_CSV)
        else:
            frames = [read_csv(path, expected, columns=("model",)) for path in input_paths]
        data = pd.concat(frames, ignore_index=True)
    fig, numbers = renderer(data, **spec)
    out = Path(out_pdf)
    # Blank the timestamp / software metadata so re-rendering the same numbers gives identical files.
    with atomic_path(out.with_suffix(".pdf")) as tmp:
        fig.savefig(tmp, format="pdf", metadata={"CreationDate": None, "Producer": None, "Creator": None})
    with atomic_path(out.with_suffix(".png")) as tmp:
        fig.savefig(tmp, format="png", dpi=150, metadata={"Software": None})
    write_csv(out.with_suffix(".csv"), numbers)
