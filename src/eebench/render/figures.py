"""Figures regenerated from result CSVs, drawn with the object-oriented Matplotlib API.

``matplotlib.figure.Figure`` is used directly (no pyplot), so rendering needs no display and leaves no
global figure state behind in long-running workflow processes.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from eebench.io import BEE_CSV, SWEEP_CSV, atomic_path, read_csv, write_csv  # noqa: E402
from eebench.metrics import BUDGET_TOLERANCE, budget_performance, speedup_area  # noqa: E402
from eebench.registry import Registry  # noqa: E402
from eebench.tasks import display_scale  # noqa: E402
from eebench.render.base import RunKey, reads, regime_label  # noqa: E402

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
    model_descriptions: dict[str, str] | None = None,
) -> tuple[Figure, pd.DataFrame]:
    """B_EE per exit head, one subplot per metric, like paper A Figs 2-3: one line per model setting
    (``models``), or per group of settings (``lines: [{label, models}]``), e.g. the same data trained with
    several learning rates, pooled as paper A does ("mean benefits and standard deviations from experiments
    with different hyperparameters").

    y is B_EE in percentage points (an MSE as computed), mean ± sample std (ddof=1) over the line's values
    (every seed of every setting in it); NaN values are dropped and the remaining count is ``n_values``. The
    dashed line at zero separates a favourable from an unfavourable trade-off. ``regime`` and ``criterion``
    select the runs when the frame holds more; ``tasks`` maps a line -> e.g. "single-label"/"multi-label" for
    the legend. ``numbers`` has columns line, metric, head, mean, std, n_values, p_below_first (see
    :func:`_p_below_first`).
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
    frame = frame.dropna(subset=["line"])
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

    fig = Figure(figsize=(4.0 * len(metrics), 3.2), layout="constrained")
    axes = fig.subplots(1, len(metrics), squeeze=False, sharey=True)[0]
    for ax, metric in zip(axes, metrics):
        for name, points in numbers[numbers["metric"] == metric].groupby("line", sort=False):
            ax.errorbar(
                points["head"], points["mean"], yerr=points["std"].fillna(0.0),
                marker="o", markersize=3, capsize=3, label=_legend_label(str(name), tasks),
            )
        ax.axhline(0.0, color="black", linestyle="--", linewidth=0.8)
        ax.set_title(_METRIC_TITLES.get(metric, metric))
        ax.set_xlabel("Exit head")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].set_ylabel(r"$B_{EE}$" + (" [pp]" if all(display_scale(m) == 100.0 for m in metrics) else ""))
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
    labels: Mapping[str, str] | None = None,
    title: str | None = None,
    model_descriptions: Mapping[str, str] | None = None,
) -> tuple[Figure, pd.DataFrame]:
    """Paper A §3's evaluation framework: test performance against the speed-up (backbone FLOPs / average
    FLOPs) of every operating point, one curve per criterion (mean over seeds on a common speed-up grid), and
    each curve's area (``eebench.metrics.speedup_area``, per seed, then mean ± std): "the larger the area, the
    more effective the strategy". A criterion with one operating point (the learned exit at its 0.5 threshold
    is a whole sweep here) is drawn like the others. ``numbers``: one row per criterion: criterion, area_mean,
    area_std, n_seeds."""
    del model_descriptions
    rows = frame[(frame["model"] == model) & (frame["regime"] == regime) & (frame["split"] == "test")]
    scale = display_scale(metric)
    fig = Figure(figsize=(5.0, 3.6), layout="constrained")
    ax = fig.subplots()
    areas = []
    for name in criteria:
        runs = rows[rows["criterion"] == name]
        if runs.empty:
            raise ValueError(f"criterion {name!r} of {model}/{regime} has no test rows in the sweep frame")
        per_seed = [speedup_area(seed_rows, metric) * scale for _, seed_rows in runs.groupby("seed")]
        areas.append({"criterion": name, "area_mean": float(np.mean(per_seed)),
                      "area_std": float(np.std(per_seed, ddof=1)) if len(per_seed) > 1 else np.nan,
                      "n_seeds": len(per_seed)})
        speedup = 1.0 / runs["flops_fraction"].to_numpy(dtype=float)
        grid = np.linspace(speedup.min(), speedup.max(), 100)
        curves = []
        for _, seed_rows in runs.groupby("seed"):
            x = 1.0 / seed_rows["flops_fraction"].to_numpy(dtype=float)
            order = np.argsort(x, kind="stable")
            curves.append(np.interp(grid, x[order], seed_rows[metric].to_numpy(dtype=float)[order]) * scale)
        ax.plot(grid, np.mean(curves, axis=0), label=(labels or {}).get(name, name))
    ax.set_xlabel("Speed-up [backbone FLOPs / average FLOPs]")
    ax.set_ylabel(_axis_label(metric, "on test"))
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return fig, pd.DataFrame(areas)


def render_figure(kind: str, spec: dict, input_paths: list[str], out_pdf: str) -> None:
    """Build figure ``kind`` and write ``<stem>.pdf``, ``<stem>.png`` (150 dpi) and ``<stem>.csv``."""
    renderer = FIGURES.get(kind)
    expected = {"bee": BEE_CSV, "sweeps": SWEEP_CSV}[renderer.reads]
    frame = pd.concat([read_csv(path, expected, columns=("model",)) for path in input_paths], ignore_index=True)
    fig, numbers = renderer(frame, **spec)
    out = Path(out_pdf)
    # Blank the timestamp / software metadata so re-rendering the same numbers gives identical files.
    with atomic_path(out.with_suffix(".pdf")) as tmp:
        fig.savefig(tmp, format="pdf", metadata={"CreationDate": None, "Producer": None, "Creator": None})
    with atomic_path(out.with_suffix(".png")) as tmp:
        fig.savefig(tmp, format="png", dpi=150, metadata={"Software": None})
    write_csv(out.with_suffix(".csv"), numbers)
