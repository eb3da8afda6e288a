"""Figure kinds of what the trained models do and are: the exit head of each class's binary model per test
example (paper A Fig. 6), and paper B's analyses (§3, Appendix B): gradient dominance over training, per-layer
profiles, mode connectivity and loss landscapes.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal, Mapping, Sequence

import matplotlib
import matplotlib.colors
import matplotlib.patches
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from pydantic import Field

from eebench.declare import Param, Registered
from eebench.render.base import RunKey, kind, reads, regime_label, regime_pair_runs, regime_runs
from eebench.render.figures import axis_label
from eebench.render.keys import Criterion, Metric, Model, Name, Regime, RegimeName, Regimes, Title
from eebench.tasks import display_scale


def _exit_head_runs(spec) -> list[RunKey]:
    return [RunKey(model, spec["regime"], spec.get("criterion", "confidence")) for model in spec["models"]]


@kind("figures", "exit_heads",
      regenerates=("A", "Fig. 6: the exit head of each class's binary model per test example"),
      caption="The exit head of each class's binary early-exit model on test examples holding several of the "
              "classes; two models exiting at the same head are ringed, the example whose exit heads lie furthest "
              "apart is framed.", one_seed=True)
@reads("logits", _exit_head_runs)
def exit_heads(
    caches: Sequence[Mapping[str, Any]],
    criterion_setting: Mapping[str, Any] | None = None,
    model_descriptions: Mapping[str, str] | None = None,
    *,
    models: Annotated[list[Name], Param("One binary model setting per class (rows).", min_length=2)],
    regime: Regime,
    criterion: Annotated[Criterion, Param("Exit criterion (confidence, the default: at 0.5, exit once the "
                                          "class is recognised present).")] = "confidence",
    threshold: Annotated[float, Param("A model exits at the first head whose score is >= this.")] = 0.5,
    min_classes: Annotated[int, Param("Examples shown hold at least this many of the models' classes (paper A: 2).",
                                      ge=1)] = 2,
    examples: Annotated[int, Param("At most this many examples (columns), the first in test order.", ge=1)] = 40,
    labels: Annotated[dict[str, str] | None, Param("Row label per model (e.g. its class).")] = None,
    title: Title = None,
) -> tuple[Figure, pd.DataFrame]:
    """Paper A Fig. 6: one binary early-exit model per class (datasets that keep one label column of the same
    images), and the head each exits at on test examples holding several of the classes; same-head exits ringed
    in orange, the widest spread framed in red. The CSV has one row per (example, model).

    ``models``, each trained on one label column of the same images, exit on test examples holding at least
    ``min_classes`` of those classes; the figure gets the logit cache of each (``criterion_setting``: the
    criterion with its parameters, eebench.render.spec). A model exits at the first head whose ``criterion``
    score is >= ``threshold`` (with the default, confidence at 0.5, "if the classifier recognizes its class as
    present, it exits at the current head"), else at its last head.

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


@kind("figures", "gradient_dominance", regenerates=("B", "Fig. 2: gradient dominance per head over training"),
      caption="Gradient dominance of each head (the cosine of its gradient on the backbone with the total gradient) "
              "over training, per training regime, mean over seeds.")
@reads("models", regime_runs)
def gradient_dominance_figure(
    checkpoints: Sequence[Mapping[str, Any]],
    model_descriptions: Mapping[str, str] | None = None,
    *,
    model: Model,
    regimes: Regimes,
    title: Title = None,
) -> tuple[Figure, pd.DataFrame]:
    """Paper B Fig. 2: each head's gradient dominance over training, one panel per regime, mean over seeds; read
    from the checkpoints of a model setting trained with training.gradient_dominance_every > 0.

    Gradient dominance (§3.1) is the cosine of a head's gradient on the backbone with the total gradient; the
    records of the seeds share their steps. ``numbers``: regime, head (1-based), epochs, mean, std, n_seeds."""
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


@kind("figures", "layer_profile",
      regenerates=("B", "Figs 4-5: a per-layer measure (numerical rank, mutual information)"),
      caption="A per-layer measure of the backbone's blocks per training regime, mean $\\pm$ std over seeds.")
@reads("analysis", regime_runs)
def layer_profile(
    frame: pd.DataFrame,
    model_descriptions: Mapping[str, str] | None = None,
    *,
    analysis: Annotated[str, Registered("eebench.analysis.layers", "LAYER_ANALYSES"), Param(
        "The per-layer analysis drawn (eebench.analysis.layers).")],
    model: Model,
    regimes: Regimes,
    labels: Annotated[dict[str, str] | None, Param("Legend label per regime.")] = None,
    title: Title = None,
) -> tuple[Figure, pd.DataFrame]:
    """Paper B Figs 4-5: a per-layer analysis of the backbone's blocks (numerical rank, mutual information
    I(X; Z)), one line per regime, mean and std over seeds; computed from the checkpoints (rule analyze_layers).

    The analyses: numerical rank §3.3, mutual information §3.4; an analysis with several values per block (the rank at
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


@kind("figures", "mode_connectivity",
      regenerates=("B", "Fig. 3: loss and accuracy along the linear path between regimes"),
      caption="Loss and test performance along the linear path between the models of two training regimes, the "
              "second aligned to the first by weight matching, mean over seeds.")
@reads("mode_connectivity", regime_pair_runs)
def mode_connectivity_figure(
    frame: pd.DataFrame,
    model_descriptions: Mapping[str, str] | None = None,
    *,
    model: Model,
    pairs: Annotated[list[Annotated[list[RegimeName], Field(min_length=2, max_length=2)]], Param(
        "Regime pairs [A, B] (B is aligned to A; lambda 0 is A), one file per pair and seed: "
        "results/analysis/mode_connectivity/<model>/<A>-<B>/seed<s>.csv.", min_length=1)],
    head: Annotated[Literal["total"] | Annotated[int, Field(ge=1)], Param(
        "\"total\" (the sum of the heads' losses; its metric is the mean over heads) or a 1-based head.")] = "total",
    splits: Annotated[list[Literal["train", "test"]], Param(
        "Splits drawn (solid, dashed); each must be among analysis.mode_connectivity.splits.", min_length=1,
        json_schema_extra={"uniqueItems": True})] = ("test", "train"),
    metric: Annotated[Metric, Param("The right panel's metric.")] = "accuracy",
    labels: Annotated[dict[str, str] | None, Param("Legend label per pair, keyed \"A-B\".")] = None,
    title: Title = None,
) -> tuple[Figure, pd.DataFrame]:
    """Paper B Fig. 3 (§3.2): loss and a metric along the linear path (eq. 4) from regime A's model to regime B's,
    B aligned to A by weight matching, one line per regime pair and split, mean over seeds; computed from the
    checkpoints (rule connect_modes, settings under analysis.mode_connectivity). The model's backbone and IC type
    need a permutation spec (eebench.analysis.permutation), checked at DAG build.

    The loss (left) and ``metric`` (right) along the aligned linear path Θ(λ) = (1 − λ)Θ_A +
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
    metric_ax.set_ylabel(axis_label(metric, "(mean over heads)" if str(head) == "total" else f"of head {head}"))
    for ax in (loss_ax, metric_ax):
        ax.set_xlabel(r"$\lambda$ (0: regime A, 1: regime B aligned to A)")
    loss_ax.legend(fontsize="x-small")
    fig.suptitle(title or f"Mode connectivity, {_head_title(head)}")
    return fig, numbers


def _require_permutation_spec(entry: Mapping[str, Any]) -> None:
    """Checked at DAG build (eebench.config_checks.check_config): weight matching needs the network's permutation spec."""
    from eebench.analysis.permutation import require_permutation_spec

    require_permutation_spec(entry)


mode_connectivity_figure.check_model = _require_permutation_spec  # type: ignore[attr-defined]


@kind("figures", "loss_landscape", regenerates=("B", "Fig. 6: loss landscape around each regime's model"),
      caption="The training loss around each training regime's model on a grid of two random directions, one "
              "panel per regime; the star marks the trained model.", one_seed=True)
@reads("loss_landscape", regime_runs)
def loss_landscape_figure(
    frame: pd.DataFrame,
    model_descriptions: Mapping[str, str] | None = None,
    *,
    model: Model,
    regimes: Regimes,
    head: Annotated[Literal["total"] | Annotated[int, Field(ge=1)], Param(
        "A 1-based head (paper B Fig. 6: head 1) or \"total\" (the sum of the heads' losses).")] = "total",
    levels: Annotated[int, Param("Contour levels, log-spaced, shared by the panels.", ge=2)] = 20,
    vmax: Annotated[float | None, Param(
        "The top contour level (default: the largest loss shown); higher losses take the top colour.", gt=0)] = None,
    labels: Annotated[dict[str, str] | None, Param("Panel title per regime.")] = None,
    title: Title = None,
) -> tuple[Figure, pd.DataFrame]:
    """Paper B Fig. 6 (Appendix B, eq. 6): the training loss on a grid of two filter-normalised random directions
    around each regime's model, one contour panel per regime, of one head or the total; computed from the
    checkpoints (rule map_loss_landscape, settings under analysis.loss_landscape).

    The training loss f(x, y) = L(θ* + xδ + yη) (eq. 6) around each regime's
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

