"""Figures regenerated from result CSVs, drawn with the object-oriented Matplotlib API.

``matplotlib.figure.Figure`` is used directly (no pyplot), so rendering needs no display and leaves no
global figure state behind in long-running workflow processes.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from eebench.io import atomic_path, write_csv  # noqa: E402
from eebench.registry import Registry  # noqa: E402
from eebench.render.base import reads  # noqa: E402

FigureFn = Callable[..., tuple[Figure, pd.DataFrame]]
FIGURES: Registry[FigureFn] = Registry("figure")

_METRIC_TITLES = {"accuracy": "Accuracy", "f1": "F1"}


def _legend_label(dataset: str, tasks: dict[str, str] | None) -> str:
    if tasks and dataset in tasks:
        return f"{dataset} ({tasks[dataset]})"
    return dataset


@FIGURES.register("bee")
@reads("bee")
def bee(
    frame: pd.DataFrame,
    *,
    metrics: Sequence[str] = ("accuracy", "f1"),
    title: str | None = None,
    tasks: dict[str, str] | None = None,
    criterion: str | None = None,
) -> tuple[Figure, pd.DataFrame]:
    """B_EE per exit head, one subplot per metric and one line per dataset, like paper A Fig. 3.

    y is B_EE in percentage points, mean ± sample std (ddof=1) over seeds; NaN values are dropped and the
    remaining count is ``n_seeds``. The dashed line at zero separates a favourable from an unfavourable
    trade-off. ``tasks`` maps dataset -> "single-label"/"multi-label" for the legend. ``criterion``
    optionally selects one exit criterion when the frame holds several.
    ``numbers`` has columns dataset, metric, head, mean, std, n_seeds.
    """
    metrics = list(metrics)
    if criterion is not None:
        frame = frame[frame["criterion"] == criterion]
    frame = frame[frame["metric"].isin(metrics)]
    absent = [metric for metric in metrics if metric not in set(frame["metric"])]
    if absent:
        raise ValueError(f"metric(s) {', '.join(map(repr, absent))} absent from the B_EE frame")
    if frame.duplicated(["dataset", "metric", "head", "seed"]).any():
        raise ValueError(
            "several rows per (dataset, metric, head, seed); the frame mixes regimes, backbones or criteria "
            "(pass criterion= or restrict the input files)"
        )

    values = frame.dropna(subset=["B_EE"]).assign(
        B_EE=lambda f: f["B_EE"] * 100.0,
        # Categoricals keep datasets in order of appearance and metrics in the requested order.
        dataset=lambda f: pd.Categorical(f["dataset"], categories=pd.unique(frame["dataset"])),
        metric=lambda f: pd.Categorical(f["metric"], categories=metrics),
    )
    numbers = (
        values.groupby(["dataset", "metric", "head"], observed=True)["B_EE"]
        .agg(mean="mean", std=lambda s: s.std(ddof=1), n_seeds="count")
        .reset_index()
        .astype({"dataset": str, "metric": str})
    )

    fig = Figure(figsize=(4.0 * len(metrics), 3.2), layout="constrained")
    axes = fig.subplots(1, len(metrics), squeeze=False, sharey=True)[0]
    for ax, metric in zip(axes, metrics):
        for dataset, line in numbers[numbers["metric"] == metric].groupby("dataset", sort=False):
            ax.errorbar(
                line["head"], line["mean"], yerr=line["std"].fillna(0.0),
                marker="o", markersize=3, capsize=3, label=_legend_label(str(dataset), tasks),
            )
        ax.axhline(0.0, color="black", linestyle="--", linewidth=0.8)
        ax.set_title(_METRIC_TITLES.get(metric, metric))
        ax.set_xlabel("Exit head")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].set_ylabel(r"$B_{EE}$ [pp]")
    axes[-1].legend(fontsize="small")
    if title:
        fig.suptitle(title)
    return fig, numbers


def render_figure(kind: str, spec: dict, input_paths: list[str], out_pdf: str) -> None:
    """Build figure ``kind`` and write ``<stem>.pdf``, ``<stem>.png`` (150 dpi) and ``<stem>.csv``."""
    frame = pd.concat([pd.read_csv(path) for path in input_paths], ignore_index=True)
    fig, numbers = FIGURES.get(kind)(frame, **spec)
    out = Path(out_pdf)
    # Blank the timestamp / software metadata so re-rendering the same numbers gives identical files.
    with atomic_path(out.with_suffix(".pdf")) as tmp:
        fig.savefig(tmp, format="pdf", metadata={"CreationDate": None, "Producer": None, "Creator": None})
    with atomic_path(out.with_suffix(".png")) as tmp:
        fig.savefig(tmp, format="png", dpi=150, metadata={"Software": None})
    write_csv(out.with_suffix(".csv"), numbers)
