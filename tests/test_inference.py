"""Real early exiting (eebench.inference) against the cache-based sweep: on a trained digits CNN, both paths
(batched with a shrinking batch, and one sample at a time) exit every sample at the head the cached logits
imply, with that head's cached logits, reproduce the sweep rows' average exit head, and never run a block or a
head on a sample that has exited. Also: BERT (its attention mask cut with the batch), MSDNet (multi-scale block
outputs), GPF (ICs merged through exit_logits), and what is refused.

Rounding: a network's per-sample outputs on the CPU can differ in their last bits between batch sizes (~1e-7 on
the logits at batch 1, oneDNN/MKL kernels), and a sweep row's threshold is by construction some sample's score.
So at the sweep's own thresholds a sample whose cached score lies within ``EPS`` of the threshold may exit at
either neighbouring head (it must exit between the heads the cache implies at threshold -EPS and +EPS); every
other sample must exit exactly where the cache says. Between the sweep's thresholds no score is that close,
and there every sample must agree exactly, and the average exit head must equal the sweep row's."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from eebench.data import prepare_dataset
from eebench.exits.criteria import CRITERIA
from eebench.exits.sweep import exit_heads, load_cache, sweep
from eebench.inference import (backbone_logits, exit_heads_batched, exit_heads_one_by_one, load_trained,
                               split_inputs)
from eebench.models import ModelSpec, build_model
from eebench.steps import cache_logits, train_model

NETWORK = {"backbone": "cnn", "params": {"widths": [16, 32, 64, 64], "strides": [1, 2, 1, 2]},
           "ic": {"type": "linear"}, "placement": None}
TRAINING = {"batch_size": 64, "lr": 0.003, "max_epochs": 2, "patience": 2, "augment": False}
# Largest rounding of a score between batch sizes that the comparisons allow (scores of confidence and entropy
# lie in [0, 1]; patience counts heads, integers, where rounding can only act through an argmax tie).
EPS = {"confidence": 1e-6, "entropy": 1e-6, "patience": 0.0}
PATHS = {"batched": exit_heads_batched, "one_by_one": exit_heads_one_by_one}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread: batch-1 inference is made of tiny ops, and with several threads on a busy machine
    each op's thread synchronisation can cost more than the op (50x slower paths here)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A cnn trained jointly for 2 epochs on digits, its logit cache (steps.cache_logits) and the test inputs
    in cache order."""
    root = tmp_path_factory.mktemp("inference")
    data, checkpoint, cache_path = root / "digits.npz", root / "joint.pt", root / "logits.npz"
    prepare_dataset("digits", {"split_seed": 0}, data)
    train_model(str(data), NETWORK, TRAINING, "joint", 0, str(checkpoint))
    cache_logits(str(checkpoint), str(data), str(cache_path))
    model, x = load_trained(str(checkpoint)), split_inputs(str(data))
    cache = load_cache(cache_path)
    assert len(x) == cache["test_logits"].shape[1]
    return model, x, cache


def swept(cache, criterion):
    logits, labels, task = cache["test_logits"], cache["test_labels"], cache["task"]
    scores = CRITERIA.get(criterion)(logits, task)
    frame = sweep(scores, task.performance(logits, labels), cache["head_flops"], cache["backbone_flops"])
    return scores, frame


def clear_thresholds(frame, eps: float, count: int) -> list[tuple[int, float]]:
    """Up to ``count`` evenly spread (row k, threshold) pairs, the threshold halfway between the sweep's
    thresholds k-1 and k, both finite and more than 4 ``eps`` apart: any threshold in (t[k-1], t[k]] gives row
    k, and halfway no score is within ``eps``."""
    thresholds = frame["threshold"].to_numpy()
    rows = [k for k in range(1, len(frame))
            if np.isfinite(thresholds[k]) and thresholds[k] - thresholds[k - 1] > 4 * eps]
    picks = np.unique(np.rint(np.linspace(0, len(rows) - 1, min(count, len(rows)))).astype(int)) if rows else []
    return [(rows[i], (thresholds[rows[i] - 1] + thresholds[rows[i]]) / 2) for i in picks]


class RowCounter:
    """Forward pre-hooks counting the rows (samples) each block and each head is run on."""

    def __init__(self, model):
        self.model = model
        self.blocks = [0] * len(model.blocks)
        self.heads = [0] * len(model.head_blocks)

    @staticmethod
    def rows(x) -> int:
        while isinstance(x, (list, tuple)):  # a hook's positional inputs; MSDNet's list of scales
            x = x[0]
        return x.shape[0]

    def __enter__(self):
        def count(table, index):
            def hook(module, inputs):
                table[index] += self.rows(inputs)
            return hook

        self.handles = [block.register_forward_pre_hook(count(self.blocks, i))
                        for i, block in enumerate(self.model.blocks)]
        self.handles += [self.model.heads[str(b)].register_forward_pre_hook(count(self.heads, k))
                         for k, b in enumerate(self.model.head_blocks)]
        return self

    def __exit__(self, *exc):
        for handle in self.handles:
            handle.remove()


def assert_ran_only_in_flight(counter: RowCounter, exit_head: np.ndarray) -> None:
    """Each block ran on exactly the samples whose exit head is at or after it, each head on those exiting
    there or later: no block and no head ran on a sample after it exited (nor skipped one in flight)."""
    exit_block = np.asarray(counter.model.head_blocks)[exit_head]
    expected_blocks = [int((exit_block >= b).sum()) for b in range(len(counter.blocks))]
    expected_heads = [int((exit_head >= k).sum()) for k in range(len(counter.heads))]
    assert counter.blocks == expected_blocks, "rows run per block differ from the samples still in flight"
    assert counter.heads == expected_heads, "rows run per head differ from the samples still in flight"


def run_checked(path, model, x, criterion, threshold, task, params=None):
    """Run a real-exiting path under the row counter and check the rows; returns its exit heads and logits."""
    with RowCounter(model) as counter:
        exit_head, logits = PATHS[path](model, x, criterion, threshold, task, params)
    assert exit_head.dtype == np.int64 and exit_head.shape == (len(x),)
    assert_ran_only_in_flight(counter, exit_head)
    return exit_head, logits


def assert_agrees_with_cache(exit_head, logits, cached_logits, scores, threshold, eps) -> np.ndarray:
    """Every sample exits where the cached scores say (within the rounding band ``eps`` of the threshold: between
    the exits at threshold -eps and +eps) with its cached logits at that head. Returns the ambiguous samples."""
    low, exact, high = (exit_heads(scores, t) for t in (threshold - eps, threshold, threshold + eps))
    ambiguous = low != high
    assert ((low <= exit_head) & (exit_head <= high)).all(), f"exit heads outside the cache's at {threshold}"
    mismatch = np.flatnonzero((exit_head != exact) & ~ambiguous)
    assert mismatch.size == 0, f"threshold {threshold}: samples {mismatch[:10]} exit at {exit_head[mismatch[:10]]}, " \
                               f"the cache says {exact[mismatch[:10]]}"
    np.testing.assert_allclose(logits, cached_logits[exit_head, np.arange(len(exit_head))], rtol=1e-5, atol=1e-5)
    return ambiguous


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("criterion", EPS)
def test_real_exits_agree_with_the_sweep_at_its_own_thresholds(trained, criterion, path):
    model, x, cache = trained
    scores, frame = swept(cache, criterion)
    logits, task = cache["test_logits"], cache["task"]
    n_heads, n = scores.shape
    picks = np.unique(np.rint(np.linspace(0, len(frame) - 1, min(len(frame), 8))).astype(int))
    exits_seen = set()
    for row in frame.iloc[picks].itertuples():
        exit_head, exit_logits = run_checked(path, model, x, criterion, row.threshold, task)
        ambiguous = assert_agrees_with_cache(exit_head, exit_logits, logits, scores, row.threshold, EPS[criterion])
        # the cache's exit heads are the sweep's row; the real ones differ at most by the rounding-band samples
        assert exit_heads(scores, row.threshold).mean() + 1 == pytest.approx(row.avg_exit_head, abs=1e-12)
        assert exit_head.mean() + 1 == pytest.approx(row.avg_exit_head, abs=ambiguous.sum() / n + 1e-12)
        exits_seen |= set(exit_head.tolist())
    # the agreement is not trivial: every head is some sample's exit at some threshold
    assert exits_seen == set(range(n_heads))


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("criterion", EPS)
def test_real_exits_agree_exactly_between_the_sweeps_thresholds(trained, criterion, path):
    """Any threshold in (t[k-1], t[k]] gives the sweep's row k; in the middle, away from every score, every
    sample must agree exactly and the average exit head must be row k's."""
    model, x, cache = trained
    scores, frame = swept(cache, criterion)
    logits, task = cache["test_logits"], cache["task"]
    picks = clear_thresholds(frame, EPS[criterion], 6)
    assert len(picks) >= 2
    for k, threshold in picks:
        exit_head, exit_logits = run_checked(path, model, x, criterion, threshold, task)
        ambiguous = assert_agrees_with_cache(exit_head, exit_logits, logits, scores, threshold, EPS[criterion])
        assert not ambiguous.any()
        np.testing.assert_array_equal(exit_head, exit_heads(scores, threshold))
        assert exit_head.mean() + 1 == pytest.approx(frame["avg_exit_head"].iloc[k], abs=1e-12)


def ensemble_confidence(logits, task):
    """A causal criterion that reads every earlier head: the max-softmax of the mean logits of heads 0..h."""
    mean = np.cumsum(logits, axis=0) / np.arange(1, len(logits) + 1, dtype=logits.dtype)[:, None, None]
    return CRITERIA.get("confidence")(mean, task)


@pytest.mark.parametrize("path", PATHS)
def test_a_criterion_sees_the_logits_of_every_earlier_head(trained, path):
    """A callable criterion gets [h+1, n, C]: this head's and every earlier head's logits of the samples in
    flight, in order, also after the batch has shrunk (registered criteria with integer thresholds cannot
    tell: patience 1 needs the previous head only)."""
    model, x, cache = trained
    logits, task = cache["test_logits"], cache["task"]
    scores = ensemble_confidence(logits, task)
    frame = sweep(scores, {}, cache["head_flops"], cache["backbone_flops"])
    picks = clear_thresholds(frame, 1e-6, 8)
    shrunk_then_went_on = False
    for k, threshold in picks:
        exit_head, exit_logits = run_checked(path, model, x, ensemble_confidence, threshold, task)
        assert not assert_agrees_with_cache(exit_head, exit_logits, logits, scores, threshold, 1e-6).any()
        assert exit_head.mean() + 1 == pytest.approx(frame["avg_exit_head"].iloc[k], abs=1e-12)
        shrunk_then_went_on |= bool((exit_head == 0).any() and (exit_head >= 2).any())
    assert shrunk_then_went_on


def test_the_row_counter_catches_blocks_run_on_exited_samples(trained):
    """The hook check has teeth: the full forward (every block on every sample) fails it when samples exit
    early, and so does a path that stops too early."""
    model, x, cache = trained
    scores = CRITERIA.get("confidence")(cache["test_logits"], cache["task"])
    threshold = float(np.median(scores[0]))
    exit_head = exit_heads(scores, threshold)
    assert (exit_head < len(model.head_blocks) - 1).any()
    with RowCounter(model) as counter, torch.no_grad():
        model(x)
    with pytest.raises(AssertionError, match="still in flight"):
        assert_ran_only_in_flight(counter, exit_head)
    with RowCounter(model) as counter:
        exit_heads_batched(model, x, "confidence", threshold, "single_label")
    with pytest.raises(AssertionError, match="still in flight"):
        assert_ran_only_in_flight(counter, np.zeros_like(exit_head))


def test_the_final_head_alone_is_the_backbone(trained):
    model, x, cache = trained
    final = cache["test_logits"][-1]
    np.testing.assert_allclose(backbone_logits(model, x), final, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(backbone_logits(model, x[:20], one_by_one=True), final[:20], rtol=1e-5, atol=1e-5)
    exit_head, logits = exit_heads_batched(model, x, "confidence", np.inf, "single_label")
    assert (exit_head == len(model.head_blocks) - 1).all()
    np.testing.assert_allclose(logits, final, rtol=1e-5, atol=1e-5)


# --- Other backbones and IC types, against their own forward (what the cache holds) ------------------------------

TINY_BERT = dict(hidden_size=32, num_hidden_layers=4, num_attention_heads=2, intermediate_size=64, vocab_size=100,
                 max_position_embeddings=64, type_vocab_size=2)


def tokens(n: int, length: int, seed: int = 0) -> torch.Tensor:
    """[n, 2, length]: random ids, attention masks padded from varying positions (some samples unpadded)."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, 100, (n, length), generator=generator)
    ends = torch.randint(2, length + 1, (n,), generator=generator)
    ends[::4] = length
    mask = (torch.arange(length)[None, :] < ends[:, None]).long()
    return torch.stack([ids * mask, mask], dim=1)


@pytest.fixture(scope="module")
def tiny_bert_dir(tmp_path_factory):
    from transformers import BertConfig, BertModel

    path = tmp_path_factory.mktemp("tiny_bert")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        BertModel(BertConfig(**TINY_BERT)).save_pretrained(path)
    return path


def other_model(kind, tiny_bert_dir):
    if kind == "bert":
        spec = ModelSpec("bert", {"model_dir": str(tiny_bert_dir)}, (2, 16), 3)
        return build_model(spec, seed=0).eval(), tokens(48, 16)
    if kind == "msdnet":
        spec = ModelSpec("msdnet", {"base": 1, "step": 1, "channels": 4, "growth_rate": 2}, (3, 16, 16), 5,
                         ic={"type": "msdnet", "hidden_channels": 8})
        return build_model(spec, seed=0).eval(), torch.randn(48, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    spec = ModelSpec("cnn", NETWORK["params"], (1, 8, 8), 10, ic={"type": "gpf", "state_dim": 8})
    return build_model(spec, seed=0).eval(), torch.randn(48, 1, 8, 8, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("kind", ["bert", "msdnet", "gpf"])
def test_other_backbones_and_merged_ics_exit_as_their_forward_says(kind, path, tiny_bert_dir):
    model, x = other_model(kind, tiny_bert_dir)
    if kind == "gpf":
        assert model.merge is not None
    with torch.no_grad():
        logits = torch.stack(model(x)).numpy()  # what predict caches: every head, the whole batch
    scores = CRITERIA.get("confidence")(logits, "single_label")
    frame = sweep(scores, {}, np.arange(1.0, len(scores) + 1), float(len(scores)))
    seen, mask_cut = set(), False
    picks = clear_thresholds(frame, 1e-6, 5)[1:-1]  # three from the middle of the range
    assert len(picks) == 3
    for k, threshold in picks:
        exit_head, exit_logits = run_checked(path, model, x, "confidence", threshold, "single_label")
        ambiguous = assert_agrees_with_cache(exit_head, exit_logits, logits, scores, threshold, 1e-6)
        assert not ambiguous.any()
        assert exit_head.mean() + 1 == pytest.approx(frame["avg_exit_head"].iloc[k], abs=1e-12)
        seen |= set(exit_head.tolist())
        if kind == "bert" and (exit_head == 0).any():
            # the batch shrank after head 0, so the attention mask was cut: padded samples went on with it
            padded = (x[:, 1] == 0).any(dim=1).numpy()
            mask_cut |= bool((exit_head[padded] > 0).any())
    assert len(seen) >= 2
    assert mask_cut or kind != "bert"


# --- Refusals ---------------------------------------------------------------------------------------------------


class OpaqueMerge(nn.Module):
    """A merge module that offers no per-exit logits."""

    def forward(self, outputs):
        return outputs, None


def test_a_merge_module_without_exit_logits_is_refused(trained):
    model, x, _ = trained
    spec = ModelSpec("cnn", NETWORK["params"], (1, 8, 8), 10)
    opaque = build_model(spec, seed=0)
    opaque.merge = OpaqueMerge()
    for path in PATHS.values():
        with pytest.raises(ValueError, match="merge module .*OpaqueMerge.* without an exit_logits"):
            path(opaque, x[:4], "confidence", 0.5, "single_label")


def test_a_criterion_must_fit_the_task_and_take_its_parameters(trained):
    model, x, _ = trained
    with pytest.raises(ValueError, match="regression_patience.*regression outputs, not single_label"):
        exit_heads_batched(model, x[:4], "regression_patience", 0.0, "single_label")
    with pytest.raises(TypeError, match="unknown parameter 'tolerance'"):
        exit_heads_one_by_one(model, x[:4], "confidence", 0.5, "single_label", {"tolerance": 0.1})
    # a registered criterion's parameters reach it
    exit_head, _ = exit_heads_batched(model, x, "rank_patience", 1, "single_label", {"agreement": "kendall"})
    assert exit_head.shape == (len(x),)
