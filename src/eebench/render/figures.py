"""Figures regenerated from result CSVs, drawn with the object-oriented Matplotlib API: the one entry point that
renders any figure kind (:func:`render_figure`) and what the kinds share. The kinds are registered by family:
the B_EE, speed-up and cost curves (eebench.render.curves) and the figures of the trained models' analyses
(eebench.render.analysis_figures).

``matplotlib.figure.Figure`` is used directly (no pyplot), so rendering needs no display and leaves no
global figure state behind in long-running workflow processes.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402

from eebench.io import BEE_CSV, SWEEP_CSV, ResultFileError, atomic_path, read_csv, write_csv  # noqa: E402
from eebench.render.base import FIGURES  # noqa: E402
from eebench.tasks import display_scale  # noqa: E402

__all__ = ["FIGURES", "render_figure", "METRIC_TITLES", "axis_label"]

METRIC_TITLES = {"accuracy": "Accuracy", "f1": "F1", "mse": "MSE"}


def axis_label(metric: str, what: str) -> str:
    """E.g. "Accuracy on test [%]"; a metric shown as computed (MSE) has no unit."""
    unit = " [%]" if display_scale(metric) == 100.0 else ""
    return f"{METRIC_TITLES.get(metric, metric)} {what}{unit}"


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
