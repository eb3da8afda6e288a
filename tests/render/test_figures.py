"""Tests for the B_EE figure: numbers are mean and sample std (ddof=1) over seeds in percentage points."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from eebench.render import FIGURES, render_figure

# B_EE (fraction) per (dataset, seed, metric) for heads 1..3.
BEE = {
    ("imagenet", 0, "accuracy"): [0.01, 0.02, 0.03],
    ("imagenet", 1, "accuracy"): [0.03, 0.04, 0.05],
    ("imagenet", 0, "f1"): [0.02, 0.02, 0.02],
    ("imagenet", 1, "f1"): [0.04, 0.02, float("nan")],
    ("voc", 0, "accuracy"): [-0.01, 0.00, 0.01],
    ("voc", 1, "accuracy"): [0.01, 0.00, -0.01],
    ("voc", 0, "f1"): [0.00, 0.00, 0.00],
    ("voc", 1, "f1"): [0.00, 0.00, 0.00],
}
TASKS = {"imagenet": "single-label", "voc": "multi-label"}
RUN = {"regime": "joint", "criterion": "confidence"}  # every B_EE figure names its runs' regime and criterion


def bee_frame() -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "model": dataset, "dataset": dataset, "backbone": "resnet50", "regime": "joint", "seed": seed,
                "criterion": "confidence", "head": head, "metric": metric, "E_closest": head,
                "P_ee": 0.5, "P_static": 0.5 - value, "B_EE": value,
            }
            for (dataset, seed, metric), values in BEE.items()
            for head, value in enumerate(values, start=1)
        ]
    )


def test_numbers_frame() -> None:
    fig, numbers = FIGURES.get("bee")(bee_frame(), **RUN, tasks=TASKS, title="B_EE")
    assert list(numbers.columns) == ["line", "metric", "head", "mean", "std", "n_values", "p_below_first",
                                     "reading"]
    assert (numbers["reading"] == "nearest_to_head").all()  # a frame without readings reads the whole sweep
    assert list(numbers["line"]) == ["imagenet"] * 6 + ["voc"] * 6
    assert list(numbers["metric"]) == (["accuracy"] * 3 + ["f1"] * 3) * 2
    assert list(numbers["head"]) == [1, 2, 3] * 4
    row = numbers.set_index(["line", "metric", "head"])
    # imagenet accuracy head 1: 1 and 3 pp -> mean 2, sample std sqrt(2).
    assert row.loc[("imagenet", "accuracy", 1), "mean"] == pytest.approx(2.0)
    assert row.loc[("imagenet", "accuracy", 1), "std"] == pytest.approx(math.sqrt(2.0))
    assert row.loc[("voc", "accuracy", 1), "mean"] == pytest.approx(0.0)
    assert row.loc[("voc", "accuracy", 3), "std"] == pytest.approx(math.sqrt(2.0))
    # a NaN seed is dropped: one value left, so no sample std.
    assert row.loc[("imagenet", "f1", 3), "n_values"] == 1
    assert row.loc[("imagenet", "f1", 3), "mean"] == pytest.approx(2.0)
    assert math.isnan(row.loc[("imagenet", "f1", 3), "std"])
    assert row.loc[("imagenet", "f1", 1), "n_values"] == 2

    assert len(fig.axes) == 2
    labels = [text.get_text() for text in fig.axes[-1].get_legend().get_texts()]
    assert labels == ["imagenet (single-label)", "voc (multi-label)"]
    zero_lines = [line for line in fig.axes[0].get_lines() if line.get_linestyle() == "--"]
    assert [list(line.get_ydata()) for line in zero_lines] == [[0.0, 0.0]]


def test_legend_defaults_to_model_name_and_models_select_and_order_lines() -> None:
    fig, _ = FIGURES.get("bee")(bee_frame(), **RUN, metrics=("f1",))
    assert len(fig.axes) == 1
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["imagenet", "voc"]
    fig, numbers = FIGURES.get("bee")(bee_frame(), models=["voc", "imagenet"], regime="joint",
                                      criterion="confidence")
    assert [t.get_text() for t in fig.axes[-1].get_legend().get_texts()] == ["voc", "imagenet"]
    assert list(numbers["line"]) == ["voc"] * 6 + ["imagenet"] * 6
    with pytest.raises(ValueError, match="'resnet' absent"):
        FIGURES.get("bee")(bee_frame(), **RUN, models=["resnet"])
    # the regime selects the runs; two files of one run (say of two datasets) are refused
    _, joint = FIGURES.get("bee")(pd.concat([bee_frame(), bee_frame().assign(regime="mixed", B_EE=1.0)]), **RUN)
    pd.testing.assert_frame_equal(joint, FIGURES.get("bee")(bee_frame(), **RUN)[1])
    with pytest.raises(ValueError, match="several rows per"):
        FIGURES.get("bee")(pd.concat([bee_frame(), bee_frame()]), **RUN)


def test_lines_pool_several_settings_like_paper_as_learning_rate_grid() -> None:
    """lines=[{label, models}]: every seed of every setting of a line is one value of its mean and std (paper A:
    "mean benefits and standard deviations from experiments with different hyperparameters")."""
    frame = pd.concat([bee_frame(), bee_frame().assign(model=lambda f: f["model"] + "_lr4",
                                                       B_EE=lambda f: f["B_EE"] + 0.02)])
    lines = [{"label": "single-label", "models": ["imagenet", "imagenet_lr4"]}, {"label": "multi", "models": ["voc"]}]
    fig, numbers = FIGURES.get("bee")(frame, **RUN, lines=lines, metrics=("accuracy",))
    row = numbers.set_index(["line", "metric", "head"])
    # imagenet accuracy head 1: seeds give 1 and 3 pp, the lr4 setting 3 and 5 pp -> mean 3, n 4.
    assert row.loc[("single-label", "accuracy", 1), "mean"] == pytest.approx(3.0)
    assert row.loc[("single-label", "accuracy", 1), "std"] == pytest.approx(np.std([1, 3, 3, 5], ddof=1))
    assert row.loc[("single-label", "accuracy", 1), "n_values"] == 4
    assert row.loc[("multi", "accuracy", 1), "n_values"] == 2  # voc_lr4 is in no line: left out
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["single-label", "multi"]
    spec = {"lines": lines, "regime": "joint", "criterion": "confidence"}
    assert [run.model for run in FIGURES.get("bee").runs(spec)] == ["imagenet", "imagenet_lr4", "voc"]
    with pytest.raises(ValueError, match="either as models= .* or as lines="):
        FIGURES.get("bee")(frame, **RUN, lines=lines, models=["voc"])
    with pytest.raises(ValueError, match="in two lines"):
        FIGURES.get("bee")(frame, **RUN, lines=[{"label": "a", "models": ["voc"]}, {"label": "b", "models": ["voc"]}])


def test_render_figure_writes_pdf_png_csv(tmp_path) -> None:
    frame = bee_frame()
    paths = []
    for (dataset, seed), part in frame.groupby(["dataset", "seed"]):
        path = tmp_path / f"{dataset}_{seed}.csv"
        part.to_csv(path, index=False)
        paths.append(str(path))
    out = tmp_path / "figures" / "bee.pdf"
    render_figure("bee", {**RUN, "tasks": TASKS}, paths, str(out))
    assert sorted(p.name for p in out.parent.iterdir()) == ["bee.csv", "bee.pdf", "bee.png"]
    assert out.read_bytes().startswith(b"%PDF")
    image = imread(out.with_suffix(".png"))
    assert image.ndim == 3 and image.shape[0] > 0 and image.shape[1] > 0
    _, numbers = FIGURES.get("bee")(frame, **RUN, tasks=TASKS)
    pd.testing.assert_frame_equal(pd.read_csv(out.with_suffix(".csv")), numbers, check_dtype=False)


def test_p_below_first_is_a_one_sided_mann_whitney_u_over_every_value_of_the_line() -> None:
    from scipy.stats import mannwhitneyu

    frame = bee_frame()
    _, numbers = FIGURES.get("bee")(frame, **RUN, models=["imagenet", "voc"], metrics=("accuracy",))
    own = frame.query("model == 'voc' and metric == 'accuracy'")["B_EE"].dropna() * 100
    first = frame.query("model == 'imagenet' and metric == 'accuracy'")["B_EE"].dropna() * 100
    expected = mannwhitneyu(own, first, alternative="less").pvalue
    assert numbers.loc[numbers["line"] == "voc", "p_below_first"].tolist() == pytest.approx([expected] * 3)
    assert numbers.loc[numbers["line"] == "imagenet", "p_below_first"].isna().all()
    assert expected < 0.5  # voc's benefits are the smaller ones here


def test_a_line_may_name_its_own_criterion() -> None:
    frame = pd.concat([bee_frame(), bee_frame().query("model == 'voc'").assign(
        criterion="entropy", B_EE=lambda f: f["B_EE"] - 0.05)])
    lines = [{"label": "confidence", "models": ["voc"]},
             {"label": "entropy", "models": ["voc"], "criterion": "entropy"}]
    _, numbers = FIGURES.get("bee")(frame, **RUN, lines=lines, metrics=("accuracy",))
    row = numbers.set_index(["line", "head"])
    assert row.loc[("entropy", 1), "mean"] == pytest.approx(row.loc[("confidence", 1), "mean"] - 5.0)
    spec = {"lines": lines, "criterion": "confidence", "regime": "joint"}
    assert [(r.model, r.criterion) for r in FIGURES.get("bee").runs(spec)] == [("voc", "confidence"),
                                                                                ("voc", "entropy")]


def test_speedup_curves_report_each_criterions_area_per_seed() -> None:
    from eebench.sweep_metrics import speedup_area

    def rows(criterion, seed, accuracy):
        return pd.DataFrame({"model": "m", "regime": "joint", "criterion": criterion, "seed": seed, "split": "test",
                             "flops_fraction": [1.0, 0.5, 0.25], "accuracy": accuracy})

    frame = pd.concat([rows("confidence", 0, [0.9, 0.8, 0.5]), rows("confidence", 1, [0.9, 0.7, 0.5]),
                       rows("entropy", 0, [0.9, 0.6, 0.4]), rows("entropy", 1, [0.9, 0.6, 0.4])])
    # Speed-ups 1, 2, 4; the best performance at speed-up >= s is 0.8 on (1, 2] and 0.5 on (2, 4]:
    # 0.8 * 1 + 0.5 * 2 = 1.8 (seed 0), 0.7 + 1.0 = 1.7 (seed 1).
    assert speedup_area(rows("confidence", 0, [0.9, 0.8, 0.5]), "accuracy") == pytest.approx(1.8)
    _, numbers = FIGURES.get("speedup_curves")(frame, model="m", regime="joint", criteria=["confidence", "entropy"])
    by = numbers.set_index("criterion")
    assert by.loc["confidence", "area_mean"] == pytest.approx(175.0)  # percent
    assert by.loc["confidence", "area_std"] == pytest.approx(np.std([180.0, 170.0], ddof=1))
    assert by.loc["entropy", "area_mean"] == pytest.approx(100 * (0.6 * 1 + 0.4 * 2))
    assert by.loc["confidence", "area_mean"] > by.loc["entropy", "area_mean"]
    with pytest.raises(ValueError, match="'patience' of m/joint has no test rows"):
        FIGURES.get("speedup_curves")(frame, model="m", regime="joint", criteria=["patience"])


def test_the_area_credits_only_what_a_criterion_delivers() -> None:
    """Two points, everyone at head 1 (speed-up 50, F1 0) and everyone at the last head (1, 0.9): no speed-up
    is bought with performance, so the area is 0, not the trapezoid's 0.9 / 2 * 49; a dense criterion that
    keeps 0.6 up to speed-up 10 gets 0.6 * 9. An envelope point slower but worse than a faster one is
    dominated (the step holds the faster, better value)."""
    from eebench.sweep_metrics import achievable_curve, speedup_area

    def sweep_rows(flops, f1):
        return pd.DataFrame({"split": "test", "flops_fraction": flops, "f1": f1})

    assert speedup_area(sweep_rows([1.0, 0.02], [0.9, 0.0]), "f1") == 0.0
    assert speedup_area(sweep_rows([1.0, 0.1, 0.02], [0.9, 0.6, 0.0]), "f1") == pytest.approx(0.6 * 9)
    speedup, best = achievable_curve(sweep_rows([1.0, 0.5, 0.25], [0.9, 0.5, 0.7]), "f1")
    assert speedup.tolist() == [1.0, 2.0, 4.0] and best.tolist() == [0.9, 0.7, 0.7]
    # Lower is better (MSE): the smallest error at that speed-up or more.
    assert achievable_curve(pd.DataFrame({"split": "test", "flops_fraction": [1.0, 0.5], "mse": [0.2, 0.5]}),
                            "mse")[1].tolist() == [0.2, 0.5]


def test_a_point_criterion_is_the_operating_point_its_threshold_selects_without_an_area() -> None:
    def rows(criterion, seed, thresholds, flops, accuracy):
        return pd.DataFrame({"model": "m", "regime": "joint", "criterion": criterion, "seed": seed, "split": "test",
                             "threshold": thresholds, "flops_fraction": flops, "accuracy": accuracy})

    frame = pd.concat([
        rows("confidence", 0, [0.1, 0.6, np.inf], [0.25, 0.5, 1.0], [0.5, 0.8, 0.9]),
        # Threshold 0.5 selects the first row whose threshold is >= 0.5: 0.7 (seed 0), 0.5 itself (seed 1).
        rows("learned", 0, [0.2, 0.7, np.inf], [0.25, 0.5, 1.0], [0.4, 0.7, 0.9]),
        rows("learned", 1, [0.5, 0.9, np.inf], [0.25, 0.5, 1.0], [0.6, 0.8, 0.9]),
    ])
    _, numbers = FIGURES.get("speedup_curves")(frame, model="m", regime="joint", criteria=["confidence", "learned"],
                                               points={"learned": 0.5})
    by = numbers.set_index("criterion")
    assert math.isnan(by.loc["learned", "area_mean"]) and by.loc["confidence", "area_mean"] > 0
    assert by.loc["learned", "speedup_mean"] == pytest.approx((2.0 + 4.0) / 2)
    assert by.loc["learned", "value_mean"] == pytest.approx((70.0 + 60.0) / 2)
    assert by.loc["learned", "value_std"] == pytest.approx(np.std([70.0, 60.0], ddof=1))
    assert math.isnan(by.loc["confidence", "speedup_mean"])
    with pytest.raises(ValueError, match="points: 'entropy' not among"):
        FIGURES.get("speedup_curves")(frame, model="m", regime="joint", criteria=["confidence"], points={"entropy": 0.5})


def binary_cache(path, logits, labels, fingerprint="same"):
    """A one-class multi-label logit cache: logits [H, N] (test; val is a copy), labels [N]."""
    import json

    from eebench.io import save_npz

    logits = np.asarray(logits, dtype=np.float32)[..., None]
    labels = np.asarray(labels, dtype=np.uint8)[:, None]
    save_npz(path, val_logits=logits, test_logits=logits, val_labels=labels, test_labels=labels,
             head_flops=np.arange(1.0, logits.shape[0] + 1), backbone_flops=np.float64(logits.shape[0]),
             task=np.array("multi_label"), meta=np.array(json.dumps({"model": path.stem})),
             test_inputs=np.array(fingerprint))
    return str(path)


# Three binary models (rows) on five test examples; a logit >= 0 is "present" (sigmoid >= 0.5).
EXIT_LOGITS = {
    "a": [[1, -1, -1, 1, -1], [1, 1, -1, 1, -1], [1, 1, 1, 1, -1]],   # exits at heads 1, 2, 3, 1, 3
    "b": [[-1, 1, -1, -1, -1], [1, 1, -1, 1, -1], [1, 1, 1, 1, -1]],  # 2, 1, 3, 2, 3
    "c": [[-1, -1, -1, -1, -1], [-1, 1, -1, -1, -1], [-1, 1, 1, 1, 1]],  # 3 (unrecognised), 2, 3, 3, 3
}
EXIT_LABELS = {"a": [1, 1, 0, 1, 1], "b": [1, 1, 1, 0, 0], "c": [0, 1, 0, 1, 0]}


def test_exit_heads_figure_marks_each_classs_exit_head_on_examples_with_two_classes(tmp_path):
    from eebench.exits.sweep import load_cache

    paths = [binary_cache(tmp_path / f"{m}.npz", EXIT_LOGITS[m], EXIT_LABELS[m]) for m in "abc"]
    caches = [load_cache(p) for p in paths]
    _, numbers = FIGURES.get("exit_heads")(caches, models=["a", "b", "c"], regime="joint",
                                           labels={"a": "class a"})
    # Examples holding >= 2 of the classes: 0 (a, b), 1 (a, b, c), 3 (a, c); 2 and 4 hold one each.
    assert sorted(set(numbers["example"])) == [0, 1, 3]
    cell = numbers.set_index(["example", "model"])
    assert [cell.loc[(e, "a"), "exit_head"] for e in (0, 1, 3)] == [1, 2, 1]
    assert [cell.loc[(e, "b"), "exit_head"] for e in (0, 1, 3)] == [2, 1, 2]
    assert [cell.loc[(e, "c"), "exit_head"] for e in (0, 1, 3)] == [3, 2, 3]
    assert cell.loc[(0, "a"), "label"] == "class a" and cell.loc[(0, "b"), "label"] == "b"
    assert not cell.loc[(0, "c"), "present"] and cell.loc[(1, "c"), "present"]
    # Example 1: a and c both exit at head 2 (same head); b exits at 1. Example 0 and 3: all differ.
    same = {key for key, flag in cell["same_head"].items() if flag}
    assert same == {(1, "a"), (1, "c")}
    # Recognised: the exit head predicts "present" (c finds its class on example 3 only at the last head, and
    # never on example 0, where it is absent).
    assert cell.loc[(3, "c"), "recognised"] and not cell.loc[(0, "c"), "recognised"]
    # At most `examples`, the first in test order; a stricter threshold exits later.
    _, first_two = FIGURES.get("exit_heads")(caches, models=["a", "b", "c"], regime="joint", examples=2)
    assert sorted(set(first_two["example"])) == [0, 1]
    _, strict = FIGURES.get("exit_heads")(caches, models=["a", "b", "c"], regime="joint", threshold=0.99)
    assert (strict["exit_head"] == 3).all()


def test_exit_heads_figure_refuses_models_tested_on_other_images(tmp_path):
    from eebench.exits.sweep import load_cache

    caches = [load_cache(binary_cache(tmp_path / f"{m}.npz", EXIT_LOGITS[m], EXIT_LABELS[m], fingerprint=m))
              for m in "ab"]
    with pytest.raises(ValueError, match="same images"):
        FIGURES.get("exit_heads")(caches, models=["a", "b"], regime="joint")
    with pytest.raises(ValueError, match="one seed"):
        FIGURES.get("exit_heads")(caches, models=["a"], regime="joint")


def test_render_figure_reads_logit_caches_for_the_exit_heads_figure(tmp_path):
    paths = [binary_cache(tmp_path / f"{m}.npz", EXIT_LOGITS[m], EXIT_LABELS[m]) for m in "abc"]
    out = tmp_path / "figures" / "heads.pdf"
    render_figure("exit_heads", {"models": ["a", "b", "c"], "regime": "joint"}, paths, str(out))
    numbers = pd.read_csv(out.with_suffix(".csv"))
    assert len(numbers) == 9 and out.read_bytes().startswith(b"%PDF") and imread(out.with_suffix(".png")).ndim == 3


def dominance_checkpoint(regime, seed, offset=0.0):
    """Phase 1 (two epochs of 4 steps, the final head, records every 2 steps) in init_history, then a joint
    phase (one epoch, heads 0-1)."""
    backbone = [{"phase": "backbone", "epoch": e, "steps_per_epoch": 4,
                 "gradient_dominance": [{"step": (e - 1) * 4 + k, "heads": [1], "gd": [1.0]} for k in (0, 2)]}
                for e in (1, 2)]
    joint = [{"phase": "joint", "epoch": 1, "steps_per_epoch": 4,
              "gradient_dominance": [{"step": k, "heads": [0, 1], "gd": [0.2 + offset, 0.9 - offset]}
                                     for k in (0, 2)]}]
    return {"meta": {"model": "m", "regime": regime, "seed": seed}, "init_history": backbone, "history": joint}


def test_gradient_dominance_figure_places_records_over_every_phase_and_averages_seeds():
    from eebench.render.analysis_figures import dominance_records

    records = dominance_records(dominance_checkpoint("mixed", 0))
    assert records["epochs"].tolist() == [0.0, 0.5, 1.0, 1.5, 2.0, 2.0, 2.5, 2.5]
    assert records["head"].tolist() == [1, 1, 1, 1, 0, 1, 0, 1]
    _, numbers = FIGURES.get("gradient_dominance")(
        [dominance_checkpoint("mixed", 0), dominance_checkpoint("mixed", 1, offset=0.1)], model="m",
        regimes=["mixed"])
    first = numbers[(numbers["head"] == 1) & (numbers["epochs"] == 2.0)].iloc[0]  # IC (head 1, 1-based)
    assert first["mean"] == pytest.approx(0.25) and first["std"] == pytest.approx(np.std([0.2, 0.3], ddof=1))
    assert first["n_seeds"] == 2
    assert set(numbers.loc[numbers["epochs"] < 2, "head"]) == {2}  # phase 1: the final head only
    with pytest.raises(ValueError, match="gradient_dominance_every"):
        FIGURES.get("gradient_dominance")([{"meta": {"regime": "joint", "seed": 0}, "history": [{"phase": "joint"}]}],
                                          model="m", regimes=["joint"])


def test_layer_profile_is_the_mean_and_std_of_each_blocks_value_over_seeds():
    frame = pd.DataFrame([
        {"model": "m", "regime": regime, "seed": seed, "analysis": "numerical_rank", "block": block,
         "samples": 50, "features": 64, "value": value}
        for regime, values in {"joint": [[10, 6], [12, 8]], "mixed": [[9, 9], [9, 7]]}.items()
        for seed, seed_values in enumerate(values) for block, value in enumerate(seed_values)])
    _, numbers = FIGURES.get("layer_profile")(frame, analysis="numerical_rank", model="m", regimes=["mixed", "joint"])
    assert numbers["regime"].tolist() == ["mixed", "mixed", "joint", "joint"] and numbers["block"].tolist() == [1, 2, 1, 2]
    assert numbers["mean"].tolist() == [9.0, 8.0, 11.0, 7.0]
    assert numbers["std"].tolist() == pytest.approx([0.0, np.std([9, 7], ddof=1), np.std([10, 12], ddof=1), np.std([6, 8], ddof=1)])
    with pytest.raises(ValueError, match="regime\\(s\\) backbone"):
        FIGURES.get("layer_profile")(frame, analysis="numerical_rank", model="m", regimes=["backbone"])
    assert (numbers["variant"] == "").all()  # one value per block: one panel


def test_layer_profile_draws_one_panel_per_variant_of_the_analysis():
    frame = pd.DataFrame([
        {"model": "m", "regime": regime, "seed": 0, "analysis": "numerical_rank", "block": block, "samples": 50,
         "features": 64, "variant": variant, "value": value}
        for regime in ("joint", "mixed") for block in (0, 1)
        for variant, value in {"variance_rtol=0.001": 30 + block, "variance_rtol=0.01": 10 + block}.items()])
    fig, numbers = FIGURES.get("layer_profile")(frame, analysis="numerical_rank", model="m", regimes=["mixed", "joint"])
    assert [ax.get_title() for ax in fig.axes] == ["variance_rtol=0.001", "variance_rtol=0.01"]
    assert numbers["variant"].tolist() == ["variance_rtol=0.001"] * 4 + ["variance_rtol=0.01"] * 4
    assert numbers["regime"].tolist() == ["mixed", "mixed", "joint", "joint"] * 2
    assert numbers["mean"].tolist() == [30, 31, 30, 31, 10, 11, 10, 11]


def connectivity_frame() -> pd.DataFrame:
    """Two seeds of two regime pairs on two splits, λ in {0, 0.5, 1}, heads 1-2 and the total (sum of losses)."""
    # Head losses at λ = 0, 0.5, 1: a bump in the middle for joint-mixed, a straight line for disjoint-mixed.
    losses = {("disjoint", "mixed"): [[0.2, 0.3, 0.4], [0.1, 0.1, 0.1]],
              ("joint", "mixed"): [[0.2, 1.5, 0.4], [0.1, 0.9, 0.3]]}
    rows = []
    for (first, second), heads in losses.items():
        for seed in (0, 1):
            for split in ("test", "train"):
                shift = 0.1 * seed + (0.05 if split == "train" else 0.0)
                for index, lam in enumerate((0.0, 0.5, 1.0)):
                    values = [head[index] + shift for head in heads]
                    accuracy = [0.9 - value / 4 for value in values]
                    for head, (loss, acc) in enumerate(zip(values, accuracy), start=1):
                        rows.append({"model": "m", "regime_a": first, "regime_b": second, "seed": seed,
                                     "lambda": lam, "split": split, "head": str(head), "loss": loss, "accuracy": acc})
                    rows.append({"model": "m", "regime_a": first, "regime_b": second, "seed": seed, "lambda": lam,
                                 "split": split, "head": "total", "loss": sum(values),
                                 "accuracy": sum(accuracy) / 2})
    return pd.DataFrame(rows).assign(distance_before=2.0, distance_after=1.0)


def test_mode_connectivity_figure_averages_seeds_and_reports_each_pairs_loss_barrier():
    frame = connectivity_frame()
    render = FIGURES.get("mode_connectivity")
    _, numbers = render(frame, model="m", pairs=[["joint", "mixed"], ["disjoint", "mixed"]])
    assert list(pd.unique(numbers["pair"])) == ["Joint–Mixed", "Disjoint–Mixed"]
    test = numbers[numbers["split"] == "test"].set_index(["regime_a", "lambda"])
    # Total loss (seed 0, seed 1): joint-mixed at λ = 0.5: 1.5 + 0.9 = 2.4 and 2.6.
    assert test.loc[("joint", 0.5), "loss_mean"] == pytest.approx(2.5)
    assert test.loc[("joint", 0.5), "loss_std"] == pytest.approx(np.std([2.4, 2.6], ddof=1))
    assert test.loc[("joint", 0.5), "accuracy_mean"] == pytest.approx(100 * (0.9 - 2.5 / 8))
    # Barrier: the path's loss above the chord between its ends: 2.4 - (0.3 + 0.7) / 2 = 1.9 at seed 0, and the
    # same at seed 1 (a constant shift); a straight path has none.
    assert test.loc[("joint", 0.5), "barrier_mean"] == pytest.approx(1.9)
    assert test.loc[("disjoint", 0.5), "barrier_mean"] == pytest.approx(0.0, abs=1e-12)
    assert (numbers["n_seeds"] == 2).all() and set(numbers["split"]) == {"test", "train"}
    _, head2 = render(frame, model="m", pairs=[["joint", "mixed"]], head=2, splits=["train"])
    assert head2["loss_mean"].tolist() == pytest.approx([0.1 + 0.1, 0.9 + 0.1, 0.3 + 0.1])  # mean shift 0.05 + 0.05
    with pytest.raises(ValueError, match="disjoint-joint"):
        render(frame, model="m", pairs=[["disjoint", "joint"]])
    with pytest.raises(ValueError, match="no head 3"):
        render(frame, model="m", pairs=[["joint", "mixed"]], head=3)


def landscape_frame(seeds=(0,)) -> pd.DataFrame:
    """f(x, y) = c + x² + 2y² per regime (c = 1, 2), heads 1-2 (head 2 twice head 1) and their total."""
    rows = []
    for regime, c in (("joint", 1.0), ("mixed", 2.0)):
        for seed in seeds:
            for x in (-1.0, 0.0, 1.0):
                for y in (-1.0, 0.0, 1.0):
                    head = c + x * x + 2 * y * y
                    for name, loss in (("1", head), ("2", 2 * head), ("total", 3 * head)):
                        rows.append({"model": "m", "regime": regime, "seed": seed, "x": x, "y": y, "head": name,
                                     "loss": loss, "accuracy": 0.5})
    return pd.DataFrame(rows)


def test_loss_landscape_figure_draws_one_panel_per_regime_of_one_head(tmp_path):
    render = FIGURES.get("loss_landscape")
    fig, numbers = render(landscape_frame(), model="m", regimes=["mixed", "joint"], head=1)
    assert len([ax for ax in fig.axes if ax.get_title()]) == 2  # two panels (and a colour bar)
    assert numbers["regime"].tolist()[:9] == ["mixed"] * 9 and len(numbers) == 18
    centre = numbers[(numbers["x"] == 0) & (numbers["y"] == 0)].set_index("regime")["loss"]
    assert centre.to_dict() == {"mixed": 2.0, "joint": 1.0}
    corner = numbers[(numbers["regime"] == "joint") & (numbers["x"] == 1) & (numbers["y"] == -1)]["loss"]
    assert corner.tolist() == [4.0]
    _, total = render(landscape_frame(), model="m", regimes=["joint"])
    assert total["loss"].max() == 3 * (1 + 1 + 2)
    with pytest.raises(ValueError, match="one seed"):
        render(landscape_frame(seeds=(0, 1)), model="m", regimes=["joint"])
    with pytest.raises(ValueError, match="regime\\(s\\) disjoint"):
        render(landscape_frame(), model="m", regimes=["disjoint"])
    # Through render_figure: the CSVs written by the analyses, PDF + PNG + CSV out.
    paths = []
    for regime, part in landscape_frame().groupby("regime"):
        part.to_csv(tmp_path / f"{regime}.csv", index=False)
        paths.append(str(tmp_path / f"{regime}.csv"))
    out = tmp_path / "figures" / "loss_landscape.pdf"
    render_figure("loss_landscape", {"model": "m", "regimes": ["joint", "mixed"], "head": 1}, paths, str(out))
    assert sorted(p.name for p in out.parent.iterdir()) == ["loss_landscape.csv", "loss_landscape.pdf",
                                                           "loss_landscape.png"]
    written = pd.read_csv(out.with_suffix(".csv"))
    assert written["regime"].tolist()[0] == "joint" and len(written) == 18


def learned_frame() -> pd.DataFrame:
    """voc under confidence (whole sweep) and under the learned exit: its whole-sweep rows, and its one point
    at threshold 0.5 per seed (seed 0 at head 2, B_EE 4 pp; seed 1 at head 3, B_EE -2 pp)."""
    base = bee_frame().query("model == 'voc'").assign(reading="nearest_to_head")
    learned = base.assign(criterion="learned", B_EE=lambda f: f["B_EE"] + 0.1)
    points = pd.DataFrame([
        {**base.iloc[0].to_dict(), "criterion": "learned", "reading": "threshold_0.5", "seed": seed,
         "metric": metric, "head": head, "E_closest": head - 0.2, "B_EE": value}
        for seed, head, value in ((0, 2, 0.04), (1, 3, -0.02)) for metric in ("accuracy", "f1")])
    return pd.concat([base, learned, points], ignore_index=True)


def test_the_learned_exit_is_one_point_at_threshold_half_by_default_or_its_whole_sweep():
    """Paper A Fig. 5: one operating point per setting (threshold 0.5), drawn as markers; learned_exit_point
    nearest_to_head reads its whole sweep, as the threshold criteria's."""
    lines = [{"label": "Confidence", "models": ["voc"]},
             {"label": "Learned", "models": ["voc"], "criterion": "learned"}]
    fig, numbers = FIGURES.get("bee")(learned_frame(), **RUN, lines=lines, metrics=("accuracy",))
    learned = numbers[numbers["line"] == "Learned"].set_index("head")
    assert learned.index.tolist() == [2, 3] and (learned["reading"] == "threshold_0.5").all()
    assert learned["mean"].tolist() == pytest.approx([4.0, -2.0]) and learned["n_values"].tolist() == [1, 1]
    confidence = numbers[numbers["line"] == "Confidence"]
    assert confidence["head"].tolist() == [1, 2, 3] and (confidence["reading"] == "nearest_to_head").all()
    styles = {bars.get_label(): bars.lines[0].get_linestyle() for bars in fig.axes[0].containers}
    assert styles == {"Confidence": "-", "Learned": "None"}
    _, whole = FIGURES.get("bee")(learned_frame(), **RUN, lines=lines, metrics=("accuracy",),
                                  learned_exit_point="nearest_to_head")
    learned = whole[whole["line"] == "Learned"].set_index("head")
    assert learned.index.tolist() == [1, 2, 3] and (learned["reading"] == "nearest_to_head").all()
    assert learned.loc[1, "mean"] == pytest.approx(10.0)  # voc accuracy head 1: -1 and 1 pp, + 10 pp
    with pytest.raises(ValueError, match="learned_exit_point must be one of threshold_0.5, nearest_to_head"):
        FIGURES.get("bee")(learned_frame(), **RUN, lines=lines, learned_exit_point="best")


def test_single_label_f1_gets_no_duplicate_panel():
    """Single-label F1 is accuracy (eebench.tasks): a figure of single-label lines draws one panel, "Accuracy =
    F1", and still reports both metrics; with a multi-label line beside it, both panels."""
    single = bee_frame().query("model == 'imagenet'")
    accuracy = single[single["metric"] == "accuracy"]
    single = pd.concat([accuracy, accuracy.assign(metric="f1")], ignore_index=True)
    fig, numbers = FIGURES.get("bee")(single, **RUN)
    assert len(fig.axes) == 1 and fig.axes[0].get_title() == "Accuracy = F1"
    assert sorted(set(numbers["metric"])) == ["accuracy", "f1"]
    fig, _ = FIGURES.get("bee")(pd.concat([single, bee_frame().query("model == 'voc'")], ignore_index=True), **RUN)
    assert [ax.get_title() for ax in fig.axes] == ["Accuracy", "F1"]
