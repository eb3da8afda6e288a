"""Every bad input eebench refuses, in one table (``TABLE``): a damaged or foreign file where a prepared
dataset, checkpoint, logit cache or metric file is expected, well-formed files that do not fit together, bad
configs, crafted CIFAR pickles, outputs that cannot be written and resume files in use (issue 24). A row says how
the bad input is made, which reader or command reads it (a ``Reads``), and what the one line it fails with must
say besides what it names (the file's path; a config's key path or file); ``test_a_bad_input_is_one_line_naming_it``
asserts that line, a command's exit status 2, and that nothing under the test's directory was written or changed
(the previous output of a failed write kept whole) and nothing was unpickled.

To add a bad input: a ``Bad`` row in its section (``rows()`` crosses a list of defects with every command that
reads that kind of file; a row whose input is a fault, not a file, injects it with ``fault``). To add a reader
or command: a ``Reads`` (a command's with ``good``, the input it accepts, so
``test_each_command_takes_its_good_input`` shows that the rows fail for their defect alone), then its rows.
"""
from __future__ import annotations

import contextlib
import copy
import errno
import fcntl
import functools
import io
import json
import os
import pickle
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

import eebench.io
from eebench.cli import main
from eebench.data import load_split, prepare_dataset, read_info
from eebench.exits.sweep import load_cache, run_sweep
from eebench.io import (
    LOGIT_CACHE, MODEL_CHECKPOINT, PLAIN_LOGITS, PREPARED_DATASET, SWEEP_CSV, OutputError, ResultFileError,
    ResultKeyError,
    read_checkpoint, read_csv, read_npz, save_npz, save_torch, write_csv, write_text,
)
from eebench.models import ModelSpec, backbone_state, build_model
from eebench.training import ResumeFile, World
from tests.data.vision_fixtures import write_cifar10

MODEL = {"backbone": "cnn", "params": {"widths": [8, 16], "strides": [1, 2]}}
TRAINING = {"max_epochs": 1, "batch_size": 512, "augment": False}
PLAN = {"sweeps": [{"name": "confidence", "criterion": "confidence", "params": {}}],
        "budgets": [{"criterion": "confidence", "rule": "last", "budgets": [0.5, 1.0]}]}
TRAINED_ON = "the prepared dataset the checkpoint was trained on"
UNPICKLED = []  # what a refused pickle would have run


def _record(*args):
    UNPICKLED.append(args)


class Payload:
    """An arbitrary Python object: unpickling it would call ``_record``."""

    def __reduce__(self):
        return _record, ("unpickled",)


class Reduce:
    """An object whose unpickling calls ``function(*args)``."""

    def __init__(self, function, *args):
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


class Plain:
    """An ordinary class: unpickling an instance imports it and builds it."""


# The files a row starts from ------------------------------------------------------------------------------------


def cut_in_half(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def text_file(path, inputs=None):
    path.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:0123\nsize 42\n")
    return path


def write_npy(path, array=np.arange(3)):
    with open(path, "wb") as handle:
        np.save(handle, array)


def write_object_npz(path):
    with open(path, "wb") as handle:
        np.savez(handle, a=np.array([{"x": 1}], dtype=object))  # pickled inside the archive


def write_plain_npz(path):
    with open(path, "wb") as handle:
        np.savez(handle, a=np.arange(3))


def cache_arrays(heads=2, block=None):
    """A small valid logit cache: ``heads`` heads, 6 samples, 3 classes (one head stopping after ``block``: a
    static model's)."""
    rng = np.random.default_rng(heads if block is None else 10 + block)
    arrays = {
        "val_logits": rng.normal(size=(heads, 6, 3)), "test_logits": rng.normal(size=(heads, 6, 3)),
        "val_labels": rng.integers(0, 3, 6), "test_labels": rng.integers(0, 3, 6),
        "head_flops": np.arange(1.0, heads + 1), "backbone_flops": np.float64(heads),
        "task": np.array("single_label"),
        "meta": np.array(json.dumps({"dataset": "digits", "backbone": "cnn", "regime": "joint", "seed": 0})),
    }
    if block is not None:
        arrays |= {"head_blocks": np.array([block]), "head_flops": np.array([block + 1.0]),
                   "backbone_flops": np.float64(3.0),
                   "meta": np.array(json.dumps({"dataset": "digits", "backbone": "cnn", "regime": "static",
                                                "block": block}))}
    return arrays


def write_cache(path, **drop):
    """A small valid logit cache (2 heads, 6 samples, 3 classes) minus the keys in ``drop``."""
    save_npz(path, **{key: value for key, value in cache_arrays().items() if key not in drop})
    return path


def write_sweep(path):
    write_csv(path, pd.DataFrame({"criterion": ["confidence"] * 4, "split": ["val", "val", "test", "test"],
                                  "threshold": [0.1, 0.5, 0.1, 0.5], "flops_fraction": [0.5, 1.0, 0.5, 1.0]}))
    return path


def copy_of(source: Callable[[Any], Path]):
    """A row's ``make``: the file ``source(inputs)`` copied to the row's path."""
    return lambda path, inputs: path.write_bytes(source(inputs).read_bytes())


# What a row changes ---------------------------------------------------------------------------------------------


def at(index, value):
    """A change: the array with one entry set (its dtype widened to hold ``value``)."""
    def change(array):
        array = np.array(array, dtype=np.result_type(array, np.asarray(value)))
        array[index] = value
        return array
    return change


def cache_with(**changes):
    """A row's ``make``: the 2-head cache with ``changes`` (a key's new array, or a function of its array)."""
    def make(path, inputs):
        arrays = cache_arrays()
        for key, change in changes.items():
            arrays[key] = change(arrays[key]) if callable(change) else change
        save_npz(path, **arrays)
    return make


def sweep_with(change):
    """A row's ``make``: the good sweep CSV (``Inputs.sweep``) with ``change`` applied to its frame."""
    def make(path, inputs):
        write_csv(path, change(pd.read_csv(inputs.sweep)))
    return make


def cell(row, column, value):
    def change(frame):
        frame[column] = frame[column].astype(object)
        frame.loc[row, column] = value
        return frame
    return change


def checkpoint_with(change, source="model"):
    """A row's ``make``: the trained checkpoint (or the ``init`` backbone made from it) changed by ``change``,
    a function of its dict (a deep copy)."""
    def make(path, inputs):
        saved = copy.deepcopy(getattr(inputs.trained, source))
        save_torch(path, change(saved))
    return make


def weights_with(change):
    return lambda saved: {**saved, "state_dict": change(dict(saved["state_dict"]))}


def without(key):
    return lambda state: {k: v for k, v in state.items() if k != key}


def reshaped(key):
    """One more row than the model has."""
    return lambda state: {**state, key: torch.zeros(state[key].shape[0] + 1, *state[key].shape[1:])}


def prepared_as(dataset, params):
    """A row's ``make``: a prepared dataset (made once per module, copied)."""
    return lambda path, inputs: path.write_bytes(inputs.trained.prepared_as(dataset, params).read_bytes())


# Who reads the bad file ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reads:
    """A reader (``read``: it must raise) or a command (``argv``: it must exit 2, run in the test's directory) of
    one kind of file, or a writer of one: where the row's bad file is written (``file``, under the test's
    directory), and ``good``, how the file it accepts is made there. Both get the path and the row's ``Inputs``;
    ``trained``: they use ``Inputs.trained``."""

    name: str
    file: str
    read: Callable[[Path, Any], Any] | None = None
    argv: Callable[[Path, Any], Sequence[Any]] | None = None
    good: Callable[[Path, Any], Any] | None = None
    trained: bool = False


@dataclass(frozen=True)
class Bad:
    """One bad input: ``make`` writes it at ``reads.file``; the one line must begin with what it names (``names``,
    else the path) and hold ``expected`` (what the file should have been; an output: that it cannot be written) and
    ``message`` (where ``{parent}`` stands for the file's folder). ``fault``, given a monkeypatch and the path,
    injects what goes wrong that is no file (a full disk, a refused rename) for the read or write alone."""

    id: str
    reads: Reads
    make: Callable[[Path, Any], Any]
    message: str
    expected: str
    error: type = ResultFileError  # a reader's exception (a command exits 2 whatever it is)
    names: str | None = None  # what the line names in place of the path: a config's key path (or file, line)
    fault: Callable[[pytest.MonkeyPatch, Path], Any] | None = None
    skip: str | None = None  # why the row cannot be tried here


def rows(readers: Sequence[Reads], expected: str, defects: Sequence[tuple]) -> list[Bad]:
    """Every defect ``(id, make, message)`` under every reader: each reader of a file gets every check."""
    return [Bad(id, reads, make, message, expected) for reads in readers for id, make, message in defects]


def static_cache(block):
    return lambda path, inputs: save_npz(path, **cache_arrays(heads=1, block=block))


def train_argv(data, *extra):
    return ("train", "--data", data, "--model", json.dumps(MODEL), "--training", json.dumps(TRAINING), "--seed", 0,
            *extra)


# Readers
READ_NPZ = Reads("read_npz", "seed0.npz", read=lambda p, i: read_npz(p, LOGIT_CACHE, keys=("val_logits",
                                                                                            "test_logits", "meta")))
READ_CHECKPOINT = Reads("read_checkpoint", "model.pt",
                        read=lambda p, i: read_checkpoint(p, MODEL_CHECKPOINT, keys=("spec", "state_dict")))
READ_CSV = Reads("read_csv", "sweep.csv", read=lambda p, i: read_csv(p, SWEEP_CSV, columns=("split", "flops_fraction")))
READ_INFO = Reads("read_info", "digits.npz", read=lambda p, i: read_info(p))
LOAD_VAL = Reads("load_split-val", "digits.npz", read=lambda p, i: load_split(p, "val"))
LOAD_TRAIN = Reads("load_split-train", "digits.npz", read=lambda p, i: load_split(p, "train"))
LOAD_CACHE = Reads("load_cache", "seed0.npz", read=lambda p, i: load_cache(p))
LOAD_RESUME = Reads("ResumeFile.load", "resume/run.pt", read=lambda p, i: ResumeFile(p, {"seed": 1}).load(World()))

# Commands: a logit cache
SWEEP = Reads("sweep", "logits/seed0.npz", good=lambda p, i: save_npz(p, **cache_arrays()),
              argv=lambda p, i: ("sweep", "--logits", p, "--criterion", "confidence", "--out", i.out))
METRICS = Reads("metrics", "logits/seed0.npz", good=lambda p, i: save_npz(p, **cache_arrays()),
                argv=lambda p, i: ("metrics", "--logits", p, "--plan", json.dumps(PLAN), "--out", i.tmp / "metrics"))
BEE_STATIC = Reads("bee-static", "static/block0.npz", good=static_cache(0),
                   argv=lambda p, i: ("bee", "--sweep", i.sweep, "--static", p, *i.statics[1:], "--out", i.out))
# A network this package did not train: a plain file of per-head outputs, or a cache, made a cache (what the
# workflow's import job runs on each cache a config's `caches:` names).
IMPORT_LOGITS = Reads("import-logits", "mine/outputs.npz", good=lambda p, i: save_npz(p, **cache_arrays()),
                      argv=lambda p, i: ("import-logits", "--source", p, "--meta", '{"model": "mine"}', "--out", i.out))
# Commands: a sweep CSV
BUDGETS = Reads("budgets", "run/sweeps/confidence.csv", good=copy_of(lambda i: i.sweep),
                argv=lambda p, i: ("budgets", "--sweep", p, "--budgets", 0.5, 1.0, "--rule", "val", "--out", i.out))
BEE = Reads("bee", "run/sweeps/confidence.csv", good=copy_of(lambda i: i.sweep),
            argv=lambda p, i: ("bee", "--sweep", p, "--static", *i.statics, "--out", i.out))
def sweep_of_a_run(path, inputs):
    """The good sweep as the pipeline writes it: named by its run (a figure draws a line per model and regime)."""
    frame = pd.read_csv(inputs.sweep)
    run = {"model": "cnn", "dataset": "digits", "backbone": "cnn", "regime": "joint", "seed": 0}
    frame.assign(**{column: value for column, value in run.items() if column not in frame}).to_csv(path, index=False)


COST_CURVES = Reads("render-figure-cost_curves", "run/sweeps/confidence.csv", good=sweep_of_a_run,
                    argv=lambda p, i: ("render-figure", "--kind", "cost_curves", "--spec",
                                       '{"model": "cnn", "regimes": ["joint"], "criterion": "confidence", "rule": "best", "grid_points": 5}', "--inputs", p, "--out",
                                       i.tmp / "figure.pdf"))
BEE_RUN = Reads("bee-run", "run/sweeps/confidence.csv", good=copy_of(lambda i: i.sweep),
                argv=lambda p, i: ("bee-run", "--metrics", i.tmp / "run", "--criteria", "confidence", "--static",
                                   *i.statics, "--out", i.tmp / "bee"))
# Commands: a model checkpoint, with the prepared dataset it was trained on
CACHE_LOGITS = Reads("cache-logits", "model.pt", trained=True, good=copy_of(lambda i: i.trained.model_path),
                     argv=lambda p, i: ("cache-logits", "--checkpoint", p, "--data", i.prepared, "--out", i.out))
ANALYZE = Reads("analyze", "model.pt", trained=True, good=copy_of(lambda i: i.trained.model_path),
                argv=lambda p, i: ("analyze", "--analysis", "numerical_rank", "--params", '{"samples": 8}',
                                   "--checkpoint", p, "--data", i.prepared, "--out", i.out))
TRAIN_INIT = Reads("train-init", "backbone.pt", trained=True,
                   good=checkpoint_with(lambda saved: saved, "init"),
                   argv=lambda p, i: train_argv(i.prepared, "--regime", "mixed", "--init", p, "--out", i.out))
# Commands: a prepared dataset, with a checkpoint of a model trained on another
CACHE_LOGITS_DATA = Reads("cache-logits-data", "other/digits.npz", trained=True,
                          good=prepared_as("digits", {"split_seed": 0}),
                          argv=lambda p, i: ("cache-logits", "--checkpoint", i.trained.model_path, "--data", p,
                                             "--out", i.out))
CACHE_LOGITS_DATA_OLD = Reads(
    "cache-logits-data-old-checkpoint", "other/digits.npz", trained=True, good=prepared_as("digits", {"split_seed": 0}),
    argv=lambda p, i: ("cache-logits", "--checkpoint", i.trained.old_path, "--data", p, "--out", i.out))
TRAIN_DATA = Reads("train-data", "other/digits.npz", trained=True, good=prepared_as("digits", {"split_seed": 0}),
                   argv=lambda p, i: train_argv(p, "--regime", "joint", "--out", i.out))
# The analyses read a model on a dataset too: the same refusal of other data (each row's data only; the good
# input runs the analysis, kept small).
ANALYZE_DATA = Reads("analyze-data", "other/digits.npz", trained=True, good=prepared_as("digits", {"split_seed": 0}),
                     argv=lambda p, i: ("analyze", "--analysis", "numerical_rank", "--params", '{"samples": 8}',
                                        "--checkpoint", i.trained.model_path, "--data", p, "--out", i.out))
LANDSCAPE_DATA = Reads("landscape-data", "other/digits.npz", trained=True,
                       good=prepared_as("digits", {"split_seed": 0}),
                       argv=lambda p, i: ("landscape", "--params", '{"points": 2, "samples": 16}', "--checkpoint",
                                          i.trained.model_path, "--data", p, "--out", i.out))
CONNECT_MODES_DATA = Reads("connect-modes-data", "other/digits.npz", trained=True,
                           good=prepared_as("digits", {"split_seed": 0}),
                           argv=lambda p, i: ("connect-modes", "--params",
                                              '{"points": 2, "samples": 16, "iterations": 2, "batch_size": 16}',
                                              "--checkpoints", i.trained.model_path, i.trained.model_path,
                                              "--data", p, "--out", i.out))
TRAIN_INIT_DATA = Reads("train-init-data", "other/digits.npz", trained=True,
                        good=prepared_as("digits", {"split_seed": 0}),
                        argv=lambda p, i: train_argv(p, "--regime", "mixed", "--init", i.trained.init_path,
                                                     "--out", i.out))


def corrupt_a_member(path, inputs):
    """Same length, zip directory intact: only some of test_logits' numbers changed (caught by the CRC)."""
    write_cache(path)
    data = path.read_bytes()
    values = read_npz(path, LOGIT_CACHE)["test_logits"].tobytes()
    start = data.index(values) + len(values) // 2
    path.write_bytes(data[:start] + bytes(16) + data[start + 16:])


def prepared_copy(change=None):
    """A row's ``make``: the module's prepared digits, or its arrays changed by ``change``."""
    def make(path, inputs):
        if change is None:
            path.write_bytes(inputs.prepared.read_bytes())
            return
        with np.load(inputs.prepared) as npz:
            save_npz(path, **change({key: npz[key] for key in npz.files}))
    return make


def without_keys(test):
    return lambda arrays: {key: value for key, value in arrays.items() if not test(key)}


# Configs: `eebench check-config`, the checks the workflow runs when it loads (tests/test_check_config.py) ---------

BASE = {  # a small valid config; each row changes one thing
    "seeds": [0],
    "datasets": {"digits": {"split_seed": 0}},
    "training": {"max_epochs": 1},
    "models": {"cnn": {"dataset": "digits", "backbone": "cnn", "params": {"widths": [8, 8], "strides": [1, 2]}}},
    "tables": {"t": {"kind": "budgets", "model": "cnn", "criterion": "confidence", "regimes": ["joint"]}},
}


def edited(change, name="config.yaml"):
    """A config maker: writes a copy of BASE changed in place by ``change(config)`` into a directory (the working
    directory, as include: paths are relative to it) and returns its path."""

    def make(directory: Path) -> Path:
        config = copy.deepcopy(BASE)
        change(config)
        (directory / name).write_text(yaml.safe_dump(config, sort_keys=False))
        return directory / name

    return make


def text(content, name="config.yaml"):
    """A config maker: a file of exactly this text."""

    def make(directory: Path) -> Path:
        (directory / name).write_text(content)
        return directory / name

    return make


def suite(*parts):
    """A config maker: config.yaml including the files ``parts`` make (as part.yaml, part2.yaml, ...)."""

    def make(directory: Path) -> Path:
        names = [make_part(directory).name for make_part in parts]
        return text(yaml.safe_dump({"include": names}))(directory)

    return make


def config(maker):
    """A row's ``make``: the config ``maker`` writes in the row's folder, at the row's path (config.yaml)."""
    def make(path, inputs):
        written = maker(path.parent)
        assert written == path, written
        return path
    return make


CHECK_CONFIG = Reads("check-config", "config.yaml", good=config(edited(lambda c: None)),
                     argv=lambda p, i: ("check-config", "--config", p.relative_to(i.tmp)))


def own_caches(change=lambda config: None):
    """A config maker: BASE with ``mine``, a network evaluated from its own caches (2 heads, seed 0, and a static
    cache per head, written beside the config), shown by a budgets table ``m``; then ``change(config)``."""

    def make(directory: Path) -> Path:
        save_npz(directory / "mine0.npz", **cache_arrays())
        for block in range(2):
            save_npz(directory / f"static{block}.npz", **cache_arrays(heads=1, block=block))

        def add(config):
            config["models"]["mine"] = {"caches": {"seeds": {0: "mine0.npz"}, "static": ["static0.npz", "static1.npz"]}}
            config["tables"]["m"] = {"kind": "budgets", "model": "mine", "criterion": "confidence",
                                     "regimes": ["joint"]}
            change(config)

        return edited(add)(directory)

    return make


def caches_of(config):
    return config["models"]["mine"]["caches"]


def config_rows(defects: Sequence[tuple]) -> list[Bad]:
    """``eebench check-config`` of each bad config ``(id, config maker, message)``. The message begins with what
    the line names, the key path (or the file and line), and says itself what was expected."""
    return [Bad(id, CHECK_CONFIG, config(make), message, "", names=message.split(":")[0])
            for id, make, message in defects]


# Datasets and I/O: crafted pickles, outputs that cannot be written, resume files in use (tests/test_safe_io.py) --


def batch(extra: dict | None = None) -> dict:
    """The content of a CIFAR python batch (4 images), with ``extra`` keys added or replaced."""
    return {b"batch_label": b"training batch 1", b"labels": [0, 1, 2, 3], b"data": np.zeros((4, 3072), np.uint8),
            b"filenames": [b"a.png", b"b.png", b"c.png", b"d.png"], **(extra or {})}


def dumped(obj, protocol=pickle.DEFAULT_PROTOCOL) -> bytes:
    return pickle.dumps(obj, protocol=protocol)


def codec_pickle(codec: str) -> bytes:
    """``{b"data": _codecs.encode("x", codec)}`` at protocol 2, as bytes pickled by Python 3 look (latin1)."""
    return (b"\x80\x02}q\x00C\x04dataq\x01c_codecs\nencode\nq\x02X\x01\x00\x00\x00xq\x03X"
            + struct.pack("<I", len(codec)) + codec.encode() + b"q\x04\x86q\x05Rq\x06s.")


def cifar(pickled: Callable[[Path], bytes] | None = None):
    """A row's ``make``: CIFAR-10's python batches (tests/data/vision_fixtures.py) in the row's folder, the row's
    file replaced by ``pickled(marker)``: ``marker``, a file in the test's directory a payload would create."""
    def make(path, inputs):
        source = write_cifar10(inputs.tmp / "cifar-fixture") / "cifar-10-batches-py"
        for file in source.iterdir():
            file.rename(path.parent / file.name)
        source.rmdir()
        source.parent.rmdir()
        if pickled is not None:
            path.write_bytes(pickled(inputs.tmp / "marker"))
    return make


def cifar_params(path) -> dict:
    return {"root": str(path.parent.parent), "split_seed": 0, "val_fraction": 0.5}  # 20 training images


CIFAR_EXPECTED = "expected one of CIFAR's python batches, built of dicts, lists, bytes, str, numbers and numpy arrays"
PREPARE_CIFAR = Reads("prepare_dataset-cifar10", "cifar/cifar-10-batches-py/data_batch_1",
                      read=lambda p, i: prepare_dataset("cifar10", cifar_params(p), i.tmp / "cifar10.npz"))
PREPARE_DATA_CIFAR = Reads("prepare-data-cifar10", "cifar/cifar-10-batches-py/test_batch", good=cifar(),
                           argv=lambda p, i: ("prepare-data", "--dataset", "cifar10", "--params",
                                              json.dumps(cifar_params(p)), "--out", i.out))


def full_disk(monkeypatch, name: str, after: int = 0) -> None:
    """From the ``after``-th write of the output ``name`` on (counting from 0), open its temporary file on
    /dev/full: every write then fails with the kernel's ENOSPC (at write, flush or close: it is buffered)."""
    real_open, opened = open, []

    def fake_open(file, mode="r", *args, **kwargs):
        if Path(file).name.startswith(f".{name}."):
            opened.append(file)
            if len(opened) > after:
                return real_open("/dev/full", mode, *args, **kwargs)
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(eebench.io, "open", fake_open, raising=False)


class QuotaAtClose(io.FileIO):
    """A file whose close fails with EDQUOT, as a network file system reports a quota once the data leaves."""

    def close(self):
        if not self.closed:
            super().close()
            raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT))


def quota_at_close(monkeypatch, name: str) -> None:
    real_open = open

    def fake_open(file, mode="r", *args, **kwargs):
        if not Path(file).name.startswith(f".{name}."):
            return real_open(file, mode, *args, **kwargs)
        buffered = io.BufferedWriter(QuotaAtClose(file, "w"))
        return buffered if "b" in mode else io.TextIOWrapper(buffered, encoding="utf-8")

    monkeypatch.setattr(eebench.io, "open", fake_open, raising=False)


def failing(error: OSError):
    def fail(*args, **kwargs):
        raise error
    return fail


def refused_rename(source, destination):
    """os.replace refused, as the OS says it: both files named."""
    raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(source), None, str(destination))


def denied(*paths) -> PermissionError:
    return PermissionError(errno.EACCES, os.strerror(errno.EACCES), *map(str, paths))


def previous_result(path, inputs=None):
    """A row's ``make`` for an output: the result a previous run left there (a failed write keeps it whole)."""
    path.write_bytes(b"the previous result")


def read_only_folder(path, inputs):
    """The previous result in a folder no one may write into (but root), writable again after the test."""
    previous_result(path)
    path.parent.chmod(0o555)
    inputs.later(path.parent.chmod, 0o755)


# The writers of every output (readers of nothing): each must raise OutputError, and the readings command, which
# writes with them, must exit 2.
WRITE_TEXT = Reads("write_text", "results/out.dat", read=lambda p, i: write_text(p, "new text\n" * 2000))
WRITE_CSV = Reads("write_csv", "results/out.dat", read=lambda p, i: write_csv(p, pd.DataFrame({"a": np.arange(5000)})))
SAVE_NPZ = Reads("save_npz", "results/out.dat", read=lambda p, i: save_npz(p, x=np.arange(5000)))
SAVE_TORCH = Reads("save_torch", "results/out.dat", read=lambda p, i: save_torch(p, {"w": torch.ones(5000)}))
READINGS = Reads("readings", "results/readings.md", good=previous_result,
                 argv=lambda p, i: ("readings", "--format", "markdown", "--out", p))
WRITERS = [WRITE_TEXT, WRITE_CSV, SAVE_NPZ, SAVE_TORCH, READINGS]


def failed_writes(writers: Sequence[Reads], failures: Sequence[tuple]) -> list[Bad]:
    """Every failure ``(id, fault, cause)`` under every writer: the line is "<output>: cannot be written (<cause>",
    never naming the temporary file, and the previous result is kept."""
    return [Bad(id, reads, previous_result, cause, "cannot be written (", OutputError, fault=fault)
            for reads in writers for id, fault, cause in failures]


def hold_lock(resume: Path, owner: bytes = b"4242 othernode\n") -> int:
    """Lock ``resume``'s lock file from another open file (as another run would) and return the descriptor."""
    fd = os.open(f"{resume}.lock", os.O_RDWR | os.O_CREAT, 0o666)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.write(fd, owner)
    return fd


def in_use(path, inputs):
    """A row's ``make``: the live checkpoint of another training run, which holds its lock."""
    path.write_bytes(b"the live checkpoint of another run")
    inputs.later(os.close, hold_lock(path))


def lock_of_an_ended_run(path, inputs):
    """A good ``make``: no checkpoint, the lock file of a run that ended (released)."""
    os.close(hold_lock(path))


TRAIN_RESUME = Reads("train-resume", "resume/run.pt", good=lock_of_an_ended_run,
                     argv=lambda p, i: train_argv(i.prepared, "--regime", "joint", "--resume", p, "--out", i.out))
TRAIN_RESTART = Reads("train-restart", "resume/run.pt", good=lock_of_an_ended_run,
                      argv=lambda p, i: train_argv(i.prepared, "--regime", "joint", "--resume", p, "--restart",
                                                   "--out", i.out))

COMMANDS = [SWEEP, METRICS, BEE_STATIC, IMPORT_LOGITS,
            BUDGETS, BEE, BEE_RUN, COST_CURVES, CACHE_LOGITS, ANALYZE, ANALYZE_DATA, LANDSCAPE_DATA,
            CONNECT_MODES_DATA, TRAIN_INIT, CACHE_LOGITS_DATA,
            CACHE_LOGITS_DATA_OLD, TRAIN_DATA, TRAIN_INIT_DATA, CHECK_CONFIG, PREPARE_DATA_CIFAR, READINGS,
            TRAIN_RESUME, TRAIN_RESTART]


# The table ------------------------------------------------------------------------------------------------------

# Damaged or foreign files, by reader.
BAD_FILES = [
    *rows([READ_NPZ], LOGIT_CACHE, [
        ("truncated", lambda p, i: cut_in_half(write_cache(p)), "truncated"),
        ("empty", lambda p, i: p.write_bytes(b""), "empty file"),
        ("lfs-pointer", text_file, "text ('version https://git-lfs"),
        ("npy", lambda p, i: write_npy(p), "a single .npy array, not a .npz archive"),
        ("pickle", lambda p, i: p.write_bytes(pickle.dumps({"val_logits": np.zeros(3)})),
         "a Python pickle, not a .npz archive"),
        ("torch-checkpoint", lambda p, i: torch.save({"w": torch.ones(2)}, p),
         "a torch checkpoint, not a .npz archive"),
        ("object-arrays", lambda p, i: write_object_npz(p), "object arrays"),
        ("lacks-keys", lambda p, i: write_cache(p, test_logits=True, meta=True), "lacks key(s) test_logits, meta"),
        ("a-directory", lambda p, i: p.mkdir(), "cannot be read"),
        ("corrupted-member", corrupt_a_member, "truncated or corrupt .npz archive: Bad CRC-32"),
    ]),
    Bad("missing", READ_NPZ, lambda p, i: None, "no such file", LOGIT_CACHE, FileNotFoundError),
    *rows([READ_CHECKPOINT], MODEL_CHECKPOINT, [
        ("truncated", lambda p, i: cut_in_half(save_torch(p, {"spec": {}, "state_dict": {"w": torch.ones(1000)}})
                                               or p), "truncated or corrupt"),
        ("empty", lambda p, i: p.write_bytes(b""), "empty file"),
        ("lfs-pointer", text_file, "text ('version https://git-lfs"),
        ("npz", lambda p, i: write_plain_npz(p), "a .npz archive, not a torch checkpoint"),
        ("pickle", lambda p, i: p.write_bytes(pickle.dumps({"spec": {}, "state_dict": {}})), "a Python pickle"),
        ("arbitrary-object", lambda p, i: torch.save({"spec": {}, "state_dict": {}, "extra": Payload()}, p),
         "weights_only"),
        ("arbitrary-object-named", lambda p, i: torch.save({"state_dict": {}, "extra": Payload()}, p),
         "test_bad_files._record"),
        ("a-tensor", lambda p, i: torch.save(torch.ones(2), p), "holds a Tensor, not a dict"),
        ("lacks-spec", lambda p, i: torch.save({"state_dict": {}}, p), "lacks key(s) spec"),
    ]),
    Bad("missing", READ_CHECKPOINT, lambda p, i: None, "no such file", MODEL_CHECKPOINT, FileNotFoundError),
    *rows([READ_CSV], SWEEP_CSV, [
        ("truncated", lambda p, i: p.write_bytes(write_sweep(p).read_bytes()[:-9]),
         "truncated: its last line has"),
        ("empty", lambda p, i: p.write_bytes(b""), "empty file"),
        ("blank-lines", lambda p, i: p.write_bytes(b"\n\n"), "no header line"),
        ("binary", lambda p, i: p.write_bytes(bytes(range(256)) * 4), "binary data, not CSV text"),
        ("npz", lambda p, i: write_cache(p), "a .npz archive, not CSV text"),
        ("open-quote", lambda p, i: p.write_text('split,flops_fraction\n"val,0.5\n'), "malformed or truncated CSV"),
        ("lacks-columns", lambda p, i: p.write_text("criterion,threshold\nconfidence,0.5\n"),
         "lacks column(s) split, flops_fraction"),
    ]),
    Bad("missing", READ_CSV, lambda p, i: None, "no such file", SWEEP_CSV, FileNotFoundError),
    *rows([READ_INFO, LOAD_VAL], PREPARED_DATASET, [
        ("truncated", lambda p, i: cut_in_half(prepared_copy()(p, i) or p), "truncated"),
    ]),
    *rows([LOAD_TRAIN], PREPARED_DATASET, [
        ("lacks-info", prepared_copy(without_keys(lambda key: key == "info")), "lacks key(s) info"),
    ]),
    Bad("lacks-val", LOAD_VAL, prepared_copy(without_keys(lambda key: key.endswith("_val"))), "'x_val'",
        PREPARED_DATASET, ResultKeyError),
    *rows([READ_INFO], PREPARED_DATASET, [
        ("info-not-json", lambda p, i: save_npz(p, info=np.array("not json")),
         "its 'info' is not a dataset description"),
        ("info-incomplete", lambda p, i: save_npz(p, info=np.array('{"name": "digits"}')),
         "its 'info' is not a dataset description"),
        ("info-unregistered", lambda p, i: save_npz(p, info=np.array(
            '{"name": "mnist9", "num_classes": 10, "multilabel": false, "input_shape": [1]}')),
         "'mnist9', which is not"),
    ]),
    *rows([LOAD_CACHE], LOGIT_CACHE, [
        ("truncated", lambda p, i: cut_in_half(write_cache(p)), "truncated"),
        ("lfs-pointer", text_file, "text"),
        ("npy", lambda p, i: write_npy(p, np.zeros((2, 6, 3))), ".npy"),
    ]),
    *rows([LOAD_RESUME], "a resume checkpoint", [
        ("truncated", lambda p, i: cut_in_half(save_resume(p)), "--restart"),
    ]),
    *rows([SWEEP], LOGIT_CACHE, [
        ("truncated", lambda p, i: cut_in_half(write_cache(p)), "truncated"),
        ("lfs-pointer", text_file, "text"),
    ]),
    Bad("missing", SWEEP, lambda p, i: None, "no such file", LOGIT_CACHE),
    *rows([TRAIN_DATA], PREPARED_DATASET, [
        ("truncated", lambda p, i: cut_in_half(prepared_copy()(p, i) or p), "truncated"),
    ]),
    *rows([CACHE_LOGITS], MODEL_CHECKPOINT, [("lfs-pointer", text_file, "text")]),
    *rows([TRAIN_INIT], MODEL_CHECKPOINT, [
        ("arbitrary-object", lambda p, i: torch.save({"spec": {}, "state_dict": {}, "extra": Payload()}, p),
         "weights_only"),
    ]),
]

# Well-formed files that do not fit together (issue 24, point 1), under every command that reads them.
BAD_CACHES = [  # the 2-head cache, 6 samples, 3 classes, with one thing wrong
    ("head-flops-equal", cache_with(head_flops=np.array([2.0, 2.0])),
     "its head_flops [2.0, 2.0] are not strictly increasing"),
    ("head-flops-decreasing", cache_with(head_flops=np.array([2.0, 1.0])), "are not strictly increasing"),
    ("head-flops-zero", cache_with(head_flops=np.array([0.0, 1.0])), "its FLOPs must be finite and positive"),
    ("head-flops-nan", cache_with(head_flops=np.array([np.nan, 1.0])), "its FLOPs must be finite and positive"),
    ("backbone-flops-negative", cache_with(backbone_flops=np.float64(-2.0)), "its FLOPs must be finite and positive"),
    ("label-equal-to-class-count", cache_with(test_labels=at(4, 3)),
     "its test_labels hold 3 (sample 4), not a class index in [0, 3)"),
    ("label-negative", cache_with(val_labels=at(0, -1)), "its val_labels hold -1 (sample 0)"),
    ("label-not-an-integer", cache_with(test_labels=at(2, 1.5)), "its test_labels hold 1.5 (sample 2)"),
    ("multi-hot-label-2", cache_with(task=np.array("multi_label"), val_labels=np.zeros((6, 3)),
                                     test_labels=at((1, 2), 2.0)(np.zeros((6, 3)))),
     "its test_labels hold 2.0 (sample 1, label 2); multi-hot labels are 0 or 1"),
    ("regression-target-nan", cache_with(task=np.array("regression"), val_logits=lambda a: a[..., :1],
                                         test_logits=lambda a: a[..., :1], val_labels=np.zeros(6),
                                         test_labels=at(2, np.nan)(np.zeros(6))), "its test_labels hold NaN"),
    ("regression-with-3-outputs", cache_with(task=np.array("regression")), "do not fit its task 'regression'"),
    ("val-and-test-class-counts-differ",
     cache_with(val_logits=lambda a: np.concatenate([a, a[..., :1]], axis=-1)),
     "its val logits have 4 classes, its test logits 3"),
    ("nan-logit", cache_with(test_logits=at((1, 3, 0), np.nan)),
     "its test_logits hold NaN (first at head 2, sample 3)"),
    ("inf-logit", cache_with(val_logits=at((0, 5, 2), -np.inf)), "its val_logits hold inf (first at head 1, sample 5)"),
    ("head-counts-differ", cache_with(head_flops=np.array([1.0, 2.0, 3.0])), "inconsistent val shapes"),
    ("labels-of-another-length", cache_with(test_labels=lambda a: a[:5]),
     "inconsistent test shapes: logits (2, 6, 3), labels (5,), head_flops (2,); a cache holds logits [heads, "
     "samples, classes], labels [samples] (class indices), head_flops [heads]"),
    ("logits-without-a-head-axis", cache_with(val_logits=lambda a: a[0]),
     "inconsistent val shapes: logits (6, 3), labels (6,), head_flops (2,)"),
    ("head-blocks-of-another-length", cache_with(head_blocks=np.array([0, 1, 2])),
     "its head_blocks [0, 1, 2] are not 2 increasing block indices (0-based), one per head"),
    ("meta-not-json", cache_with(meta=np.array("{oops")), "its 'meta' is not JSON"),
    ("task-unregistered", cache_with(task=np.array("ranking")), "its task 'ranking' is not registered"),
]
BAD_SWEEPS = [  # the good sweep CSV (3 heads, confidence, val then test rows) with one thing wrong
    ("flops-fraction-nan", sweep_with(cell(1, "flops_fraction", np.nan)),
     "its flops_fraction in row 2 is NaN (or empty), not a finite positive number"),
    ("flops-fraction-inf", sweep_with(cell(2, "flops_fraction", np.inf)), "its flops_fraction in row 3 is inf"),
    ("flops-fraction-zero", sweep_with(cell(0, "flops_fraction", 0.0)),
     "its flops_fraction in row 1 is 0, not a finite positive number"),
    ("accuracy-nan", sweep_with(cell(3, "accuracy", np.nan)),
     "its accuracy in row 4 is NaN (or empty), not a finite number"),
    ("f1-minus-inf", sweep_with(cell(0, "f1", -np.inf)), "its f1 in row 1 is -inf, not a finite number"),
    ("avg-exit-head-text", sweep_with(cell(1, "avg_exit_head", "two")), "its avg_exit_head in row 2 is 'two'"),
    ("threshold-nan", sweep_with(cell(0, "threshold", np.nan)),
     "its threshold in row 1 is NaN (or empty), not a number"),
    ("header-only", sweep_with(lambda frame: frame.iloc[:0]), "no rows, only a header line"),
    ("lacks-f1", sweep_with(lambda frame: frame.drop(columns="f1")), "lacks metric column(s) f1 (it has accuracy"),
    ("lacks-every-metric", sweep_with(lambda frame: frame.drop(columns=["accuracy", "f1"])),
     "lacks a metric column (a sweep has its task's metrics: accuracy, f1 | mse)"),
    ("metrics-of-two-tasks", sweep_with(lambda frame: frame.assign(mse=0.5)),
     "has metric columns of different tasks (accuracy, f1, mse)"),
    ("split-train", sweep_with(cell(0, "split", "train")), "its split column holds 'train'"),
]
BAD_WEIGHTS = [  # the trained checkpoint with weights that do not fit its spec
    ("weights-lack-a-key", checkpoint_with(weights_with(without("blocks.0.0.weight"))), "it lacks 'blocks.0.0.weight'"),
    ("weights-with-an-extra-key",
     checkpoint_with(weights_with(lambda state: {**state, "extra.weight": torch.ones(2)})),
     "it has 'extra.weight', which the model does not"),
    ("weights-of-another-shape", checkpoint_with(weights_with(reshaped("heads.1.1.bias"))),
     "its 'heads.1.1.bias' has shape (11,), the model's (10,)"),
    ("weights-not-tensors", checkpoint_with(weights_with(lambda state: {**state, "blocks.0.0.weight": 3})),
     "its 'blocks.0.0.weight' is not a tensor (int)"),
    ("state-dict-a-list", checkpoint_with(lambda saved: {**saved, "state_dict": [1, 2]}),
     "its weights do not fit the model: they are a list, not a dict of tensors"),
    ("spec-builds-nothing",
     checkpoint_with(lambda saved: {**saved, "spec": {**saved["spec"], "backbone": "nope"}}),
     "its spec builds no model"),
]
OTHER_DATA = [  # a prepared dataset other than the checkpoint's training data
    ("other-dataset", prepared_as("digits_composite", {"split_seed": 0, "train_samples": 4, "val_samples": 4,
                                                       "test_samples": 4}),
     "dataset 'digits_composite' here, 'digits' in training"),
    ("other-classes", prepared_as("digits", {"split_seed": 0, "classes": [0, 1, 2]}), "classes 3 here, 10 in training"),
    ("other-split-sizes", prepared_as("digits", {"split_seed": 0, "val_fraction": 0.3}),
     "array 'index_train' of shape [898] here, [1077] in training"),
    ("other-split-seed", prepared_as("digits", {"split_seed": 1}),
     "same dataset, classes and shapes, other arrays (SHA-256"),
]
def plain_outputs(**changes):
    """A row's ``make``: the 2-head cache's arrays as a plain .npz for import-logits, with ``changes`` (a key's
    new value, None to leave it out)."""
    def make(path, inputs):
        arrays = {**cache_arrays(), **changes}
        arrays = {key: value for key, value in arrays.items() if value is not None}
        save_npz(path, **arrays)
    return make


def plain_pt(**changes):
    """A row's ``make``: the 2-head cache's arrays as a torch .pt of per-head tensor lists (what a multi-exit
    forward returns), with ``changes``."""
    def make(path, inputs):
        arrays = cache_arrays()
        saved = {key: [torch.from_numpy(head) for head in arrays[key]] for key in ("val_logits", "test_logits")}
        saved |= {key: torch.from_numpy(arrays[key]) for key in ("val_labels", "test_labels", "head_flops")}
        save_torch(path, {**saved, **changes})
    return make


BAD_PLAIN_OUTPUTS = [  # import-logits reads a plain file: what it cannot take from one
    ("truncated", lambda p, i: cut_in_half(write_cache(p)), "truncated"),
    ("lfs-pointer", text_file, "text ('version https://git-lfs"),
    ("meta-not-json", plain_outputs(meta=np.array("{oops")), "its 'meta' is not JSON"),
    ("lacks-head-flops", plain_outputs(head_flops=None),
     "lacks key(s) head_flops (it has: backbone_flops, meta, task, test_labels, test_logits, val_labels, val_logits); "
     "give the cost of exiting at each head (--head-flops)"),
    ("lacks-test-labels", plain_outputs(test_labels=None), "lacks key(s) test_labels"),
    ("pt-heads-of-different-sample-counts",
     plain_pt(test_logits=[torch.zeros(6, 3), torch.zeros(5, 3)]),
     "its 'test_logits' is a list of per-head arrays of different shapes [(6, 3), (5, 3)]"),
    ("pt-python-object", lambda p, i: torch.save({**cache_arrays(), "extra": Payload()}, p), "weights_only"),
]
BAD_CONTENTS = [
    *rows([SWEEP, METRICS, BEE_STATIC], LOGIT_CACHE, BAD_CACHES),
    # import-logits refuses what every reader refuses (eebench.logit_cache.check_cache), naming its source; a meta that is
    # not JSON is the plain file's defect
    *rows([IMPORT_LOGITS], LOGIT_CACHE, [row for row in BAD_CACHES if row[0] != "meta-not-json"]),
    *rows([IMPORT_LOGITS], PLAIN_LOGITS, BAD_PLAIN_OUTPUTS),
    *rows([BUDGETS, BEE, BEE_RUN, COST_CURVES], SWEEP_CSV, BAD_SWEEPS),
    *rows([CACHE_LOGITS, ANALYZE], MODEL_CHECKPOINT, BAD_WEIGHTS),
    *rows([CACHE_LOGITS], MODEL_CHECKPOINT, [
        ("data-identity-not-a-dict", checkpoint_with(lambda saved: {**saved, "data": "digits"}),
         "its 'data' is a str, not the identity of its training data"),
    ]),
    *rows([TRAIN_INIT], MODEL_CHECKPOINT, [
        ("backbone-weights-lack-a-key", checkpoint_with(weights_with(without("blocks.1.1.running_var")), "init"),
         "it lacks 'blocks.1.1.running_var'"),
        ("backbone-weights-of-another-shape", checkpoint_with(weights_with(reshaped("heads.1.1.bias")), "init"),
         "its 'heads.1.1.bias' has shape (11,), the model's (10,)"),
    ]),
    *rows([CACHE_LOGITS_DATA], TRAINED_ON, OTHER_DATA),
    *rows([TRAIN_INIT_DATA], TRAINED_ON, [row for row in OTHER_DATA if row[0] in ("other-split-sizes",
                                                                                  "other-split-seed")]),
    *rows([ANALYZE_DATA, LANDSCAPE_DATA, CONNECT_MODES_DATA], TRAINED_ON,
          [row for row in OTHER_DATA if row[0] in ("other-classes", "other-split-seed")]),
    *rows([CACHE_LOGITS_DATA_OLD], TRAINED_ON, [
        ("other-classes", prepared_as("digits", {"split_seed": 0, "classes": [0, 1, 2]}),
         "classes 3 here, 10 in the model"),
    ]),
]

# Bad configs, under `eebench check-config` (tests/test_check_config.py runs some of them through
# `snakemake -n` as well).
BAD_CONFIGS = config_rows([
    ("misspelt_top_level_key", edited(lambda c: c.update(seeeds=c.pop("seeds"))),
     "seeeds: unknown key; did you mean 'seeds'? (the top level takes: analysis, budgets,"),
    ("negative_budget", edited(lambda c: c.update(budgets=[0.25, -0.5, 1.0])),
     "budgets[1]: -0.5 is less than or equal to the minimum of 0"),
    ("negative_seed", edited(lambda c: c.update(seeds=[0, -1])), "seeds[1]: -1 is less than the minimum of 0"),
    ("repeated_seed", edited(lambda c: c.update(seeds=[0, 0])), "seeds: [0, 0] has non-unique elements"),
    ("seeds_not_a_list", edited(lambda c: c.update(seeds="0, 1")), "seeds: expected a list, got '0, 1' (a string)"),
    ("batch_size_a_string", edited(lambda c: c["training"].update(batch_size="64")),
     "training.batch_size: expected an integer, got '64' (a string)"),
    ("zero_learning_rate", edited(lambda c: c["training"].update(lr=0)),
     "training.lr: 0 is less than or equal to the minimum of 0"),
    ("misspelt_training_key", edited(lambda c: c["training"].update(max_epoch=1)),
     "training.max_epoch: unknown key; did you mean 'max_epochs'?"),
    ("misspelt_table_key", edited(lambda c: c["tables"]["t"].update(captoin="x")),
     "tables.t.captoin: unknown key; did you mean 'caption'?"),
    ("missing_models", edited(lambda c: c.pop("models")), "models: missing (a required key)"),
    ("unknown_regime", edited(lambda c: c["tables"]["t"].update(regimes=["joint", "jiont"])),
     "tables.t.regimes[1]: unknown value 'jiont'; choose one of: alternating, backbone, branchwise"),
    ("unknown_table_kind", edited(lambda c: c["tables"]["t"].update(kind="budget")),
     "tables.t.kind: unknown value 'budget'; choose one of: budgets, claims"),
    ("unknown_backbone", edited(lambda c: c["models"]["cnn"].update(backbone="resnet99")),
     "models.cnn.backbone: unknown value 'resnet99'; choose one of: bert, cnn"),
    ("placement_not_a_list", edited(lambda c: c["models"]["cnn"].update(placement="every")),
     "models.cnn.placement: 'every' matches none of the allowed forms: null; a list"),
    ("bad_model_name", edited(lambda c: c["models"].update({"a/b": {"base": "cnn"}})),
     "models: 'a/b' does not match"),
    ("unknown_model_in_table", edited(lambda c: c["tables"]["t"].update(model="cnnn")),
     "tables.t: model: 'cnnn' is not configured under 'models:' (configured: cnn)"),
    ("unknown_dataset_of_a_model", edited(lambda c: c["models"]["cnn"].update(dataset="mnist")),
     "models.cnn.dataset: 'mnist' is not configured under 'datasets:'"),
    ("unknown_criterion", edited(lambda c: c["tables"]["t"].update(criterion="confidance")),
     "tables.t: unknown criterion 'confidance'"),
    ("inheritance_cycle", edited(lambda c: c["models"].update(a={"base": "b"}, b={"base": "a"})),
     "models.b.base: inheritance cycle a -> b -> a"),
    ("absent_dataset_root",
     edited(lambda c: c["datasets"].update(cifar={"loader": "cifar10", "root": "no/such/dir", "split_seed": 0})),
     "datasets.cifar.root: directory no/such/dir does not exist"),
    ("yaml_syntax_error", text("seeds: [0]\ndatasets:\n  digits: {split_seed: 0\nmodels: {}\n"),
     "config.yaml, line 4, column 7: not valid YAML"),
    ("tab_indentation", text("seeds: [0]\ndatasets:\n\tdigits: {split_seed: 0}\n"),
     "config.yaml, line 3, column 1: not valid YAML: found character that cannot start any token (while scanning for "
     "the next token, line 3); a tab there: YAML indents with spaces"),
    ("empty_file", text(""), "config.yaml is empty"),
    ("only_comments", text("# to do\n"), "config.yaml is empty (nothing but comments)"),
    ("top_level_list", text("- seeds\n- models\n"), "config.yaml: the top level is a list, not a mapping of keys"),
    ("absent_include", text("include: [nowhere.yaml]\n"), "include: nowhere.yaml does not exist"),
    ("include_not_a_list", text("include: part.yaml\n"),
     "include: expected a list of config files, got 'part.yaml' (a string)"),
    ("included_file_misspelt_key", suite(edited(lambda c: c.update(seeeds=c.pop("seeds")), name="part.yaml")),
     "include: part.yaml: seeeds: unknown key; did you mean 'seeds'?"),
    ("included_file_yaml_error", suite(text("seeds: [0\n", name="part.yaml")),
     "part.yaml, line 2, column 1: not valid YAML"),
    ("included_file_empty", suite(text("", name="part.yaml")), "part.yaml is empty"),
    # A network evaluated from its own caches (README, "Evaluate your own model")
    ("own_cache_missing", own_caches(lambda c: caches_of(c)["seeds"].update({0: "nowhere.npz"})),
     "models.mine.caches.seeds.0: nowhere.npz does not exist"),
    ("own_cache_not_a_cache", own_caches(lambda c: caches_of(c)["seeds"].update({0: "config.yaml"})),
     "models.mine.caches.seeds.0: config.yaml: text ('seeds:"),
    ("own_static_cache_of_two_heads", own_caches(lambda c: caches_of(c).update(static=["static0.npz", "mine0.npz"])),
     "models.mine.caches.static (seed 0, head 2): mine0.npz holds 2 heads; a static model's cache holds one"),
    ("own_static_caches_one_short", own_caches(lambda c: caches_of(c).update(static=["static0.npz"])),
     "models.mine.caches.static: 1 static caches (seed 0) for a network of 2 heads"),
    ("own_caches_misspelt_key", own_caches(lambda c: caches_of(c).update(seed={0: "mine0.npz"})),
     "models.mine.caches.seed: unknown key; did you mean 'seeds'?"),
    ("own_caches_with_a_dataset_entry", own_caches(lambda c: c["models"]["mine"].update(dataset="digits")),
     "models.mine: an entry evaluated from its own caches (caches:) takes no 'dataset'"),
    ("base_is_own_caches", own_caches(lambda c: c["models"].update(cnn2={"base": "mine"})),
     "models.cnn2.base: 'mine' is evaluated from its own caches (caches:); a trained setting cannot start from it"),
    ("own_caches_lack_a_seed", own_caches(lambda c: c.update(seeds=[0, 1])),
     "tables.m: model 'mine' has no cache for seed 1 (models.mine.caches.seeds: 0)"),
    ("own_caches_of_another_regime", own_caches(lambda c: c["tables"]["m"].update(regimes=["joint", "mixed"])),
     "tables.m: model 'mine' has caches of regime 'joint' only (models.mine.caches.regime), not 'mixed'"),
    ("own_caches_hold_no_checkpoint",
     own_caches(lambda c: c["tables"].update(tt={"kind": "training_time", "model": "mine", "regimes": ["joint"]})),
     "tables.tt: model 'mine' is evaluated from its own caches (caches:), which hold no checkpoint or training "
     "record; a training_time table reads models"),
    ("own_caches_b_ee_without_static",
     own_caches(lambda c: (caches_of(c).pop("static"), c.update(figures={"f": {
         "kind": "bee", "models": ["mine"], "regime": "joint", "criterion": "confidence"}}))),
     "figures.f: model 'mine' has no static caches for seed 0 (models.mine.caches.static)"),
])

# Prepared datasets and I/O (issue 24, points 4-6). Pickles in place of a CIFAR batch: none may run anything (the
# marker a payload would create is never there, ``_record`` is never called).
BAD_PICKLES = [
    ("reduce-payload-function", lambda marker: dumped(batch({b"data": Reduce(_record, "unpickled")})),
     f"refuses to unpickle {_record.__module__}._record: unpickling it could run code"),
    ("reduce-payload-os-mkdir", lambda marker: dumped(batch({b"data": Reduce(os.mkdir, str(marker))})),
     "refuses to unpickle posix.mkdir"),
    ("reduce-payload-exec", lambda marker: dumped(Reduce(exec, f"open({str(marker)!r}, 'w')")),
     "refuses to unpickle builtins.exec"),
    ("reduce-payload-protocol-0", lambda marker: dumped(batch({b"data": Reduce(os.mkdir, str(marker))}), protocol=0),
     "refuses to unpickle posix.mkdir"),
    ("class-instance", lambda marker: dumped(batch({b"data": Plain()})),
     f"refuses to unpickle {Plain.__module__}.Plain"),
    ("codec-other-than-latin1", lambda marker: codec_pickle("rot13"),
     "refuses to unpickle _codecs.encode with the codec 'rot13'"),
    ("truncated", lambda marker: dumped(batch())[:200], "truncated or corrupt python pickle"),
    ("text", lambda marker: b"version https://git-lfs.github.com/spec/v1\n", "truncated or corrupt python pickle"),
    ("empty", lambda marker: b"", "truncated or corrupt python pickle"),
    ("not-a-dict", lambda marker: dumped([1, 2, 3]), "holds a list, not a dict"),
    ("no-data-key", lambda marker: dumped({b"labels": [0]}), "lacks key(s) b'data'"),
]
# How an output cannot be written: (id, the fault, given a monkeypatch and the output's path; what the line says
# after "<output>: cannot be written ("). Tests run as root, so a read-only folder (chmod) would not fail a write:
# the failures are injected. A full disk is the kernel's own: the temporary file is opened on /dev/full.
WRITE_FAILURES = [
    ("full-disk", lambda mp, out: full_disk(mp, out.name), "No space left on device)"),
    ("quota-at-close", lambda mp, out: quota_at_close(mp, out.name), "Disk quota exceeded)"),
    ("read-only-folder", lambda mp, out: mp.setattr(tempfile, "mkstemp", failing(denied(out.parent))),
     "Permission denied)"),
    ("read-only-file-system", lambda mp, out: mp.setattr(tempfile, "mkstemp", failing(
        OSError(errno.EROFS, os.strerror(errno.EROFS), str(out.parent)))), "Read-only file system)"),
    ("folder-not-creatable", lambda mp, out: mp.setattr(Path, "mkdir", failing(denied(out.parent))),
     "cannot create its folder {parent}: Permission denied)"),
    ("rename-refused", lambda mp, out: mp.setattr(os, "replace", refused_rename), "Permission denied)"),
]
BAD_DATASETS_AND_IO = [
    *rows([PREPARE_CIFAR, PREPARE_DATA_CIFAR], CIFAR_EXPECTED,
          [(id, cifar(pickled), message) for id, pickled, message in BAD_PICKLES]),
    *failed_writes(WRITERS, WRITE_FAILURES),
    Bad("really-read-only-folder", WRITE_TEXT, read_only_folder, "Permission denied)", "cannot be written (",
        OutputError, skip="root writes into a read-only folder" if os.geteuid() == 0 else None),
    *rows([TRAIN_RESUME, TRAIN_RESTART], "a second run never continues from a live checkpoint", [
        ("in-use-by-another-run", in_use, "is in use by another training run (pid 4242 on othernode)"),
    ]),
]

TABLE = [*BAD_FILES, *BAD_CONTENTS, *BAD_CONFIGS, *BAD_DATASETS_AND_IO]


# The fixtures a row may use -------------------------------------------------------------------------------------


def save_resume(path):
    state = {"phase_index": 0, "epoch": 2, "batch": 5, "model": {"w": torch.ones(3)},
             "early_stopping": {"best": np.array([0.25, -np.inf]), "stale_epochs": 1}}
    ResumeFile(path, {"seed": 1}).save(state, World())
    return path


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "digits.npz"
    prepare_dataset("digits", {"split_seed": 0}, path)
    return path


class Trained:
    """A cnn trained one epoch on the module's digits: its checkpoint (``model``), the plain backbone made from it
    (``init``, what --init reads), the same checkpoint as written before data identities (``old``), and other
    prepared datasets (made once)."""

    def __init__(self, root: Path, prepared: Path) -> None:
        from eebench.steps import train_model

        self.root, self.prepared, self.datasets = root, prepared, {}
        self.model_path = root / "model.pt"
        train_model(str(prepared), MODEL, TRAINING, "joint", 0, str(self.model_path))
        self.model = read_checkpoint(self.model_path, MODEL_CHECKPOINT)
        plain = ModelSpec.from_dict(self.model["spec"]).plain()
        keys = set(backbone_state(build_model(plain)))
        self.init = {**self.model, "spec": plain.to_dict(), "history": [],
                     "state_dict": {k: v for k, v in self.model["state_dict"].items() if k in keys}}
        self.init_path = root / "backbone.pt"
        save_torch(self.init_path, self.init)
        self.old_path = root / "old.pt"
        save_torch(self.old_path, {k: v for k, v in self.model.items() if k != "data"})

    def prepared_as(self, dataset: str, params: dict) -> Path:
        """``dataset`` prepared with ``params``, once per module."""
        key = json.dumps([dataset, params], sort_keys=True)
        if key not in self.datasets:
            self.datasets[key] = self.root / f"prepared{len(self.datasets)}.npz"
            prepare_dataset(dataset, params, self.datasets[key])
        return self.datasets[key]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, prepared):
    return Trained(tmp_path_factory.mktemp("trained"), prepared)


class Inputs:
    """What a row may refer to, in the test's directory: ``out``, an existing output (every command's --out
    file), the good sweep CSV and static caches (made on first use), and the module's prepared digits and
    trained model; ``later``, what to undo after the test (a lock to release, a folder's mode)."""

    def __init__(self, tmp: Path, prepared: Path, trained: Trained, cleanup: contextlib.ExitStack) -> None:
        self.tmp, self.prepared, self.trained, self.later = tmp, prepared, trained, cleanup.callback
        self.out = tmp / "existing" / "out"
        self.out.parent.mkdir()
        self.out.write_bytes(b"known content\n")

    @functools.cached_property
    def statics(self) -> list[Path]:
        paths = [self.tmp / "static" / f"block{block}.npz" for block in range(3)]
        for block, path in enumerate(paths):
            path.parent.mkdir(exist_ok=True)
            if not path.exists():
                static_cache(block)(path, self)
        return paths

    @functools.cached_property
    def sweep(self) -> Path:
        cache, path = self.tmp / "good" / "ee.npz", self.tmp / "good" / "sweep.csv"
        cache.parent.mkdir()
        save_npz(cache, **cache_arrays(heads=3))
        run_sweep(cache, "confidence", path)
        return path


@pytest.fixture
def inputs(tmp_path, prepared, request, monkeypatch):
    # The trained model only where a row's reader uses it: the rest of the table needs no training.
    params = request.node.callspec.params
    reads = params["case"].reads if "case" in params else params["reads"]
    monkeypatch.chdir(tmp_path)  # commands run in the test's directory (a config's include: paths are relative)
    with contextlib.ExitStack() as cleanup:
        yield Inputs(tmp_path, prepared, request.getfixturevalue("trained") if reads.trained else None, cleanup)


def snapshot(root: Path) -> dict[str, tuple[bytes, int] | None]:
    """Every file (its bytes and modification time) and directory (None) under ``root``."""
    return {str(path.relative_to(root)): None if path.is_dir() else (path.read_bytes(), path.stat().st_mtime_ns)
            for path in root.rglob("*")}


def run_cli(capsys, argv):
    status = main([str(arg) for arg in argv])
    err = capsys.readouterr().err
    return status, [line for line in err.splitlines() if line.strip()]


# The tests ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", TABLE, ids=[f"{case.reads.name}/{case.id}" for case in TABLE])
def test_a_bad_input_is_one_line_naming_it(case, inputs, tmp_path, capsys, monkeypatch):
    """The reader (or writer) raises, or the command exits 2 with one line on stderr; that line begins with what
    it names (the bad file; a config's key path), says what it should have been and what is wrong, and never
    names a temporary file; nothing is written, no existing output changes, nothing is unpickled."""
    if case.skip:
        pytest.skip(case.skip)
    path = tmp_path / case.reads.file
    path.parent.mkdir(parents=True, exist_ok=True)
    case.make(path, inputs)
    argv = case.reads.argv(path, inputs) if case.reads.argv else None  # its other inputs made before the snapshot
    before = snapshot(tmp_path)
    with monkeypatch.context() as patch:  # the fault for this read or write alone
        if case.fault is not None:
            case.fault(patch, path)
        if argv is not None:
            status, lines = run_cli(capsys, argv)
        else:
            with pytest.raises(case.error) as error:
                case.reads.read(path, inputs)
    if argv is not None:
        assert status == 2, lines
        prefix = f"eebench {argv[0]}: error: "
        assert len(lines) == 1 and lines[0].startswith(prefix), lines
        line = lines[0][len(prefix):]
    else:
        line = str(error.value)
        assert "\n" not in line
        if isinstance(error.value, OutputError):  # a failed write is still an OSError, with the cause's errno
            assert error.value.errno is not None, repr(error.value)
    message = case.message.replace("{parent}", str(path.parent))
    assert line.startswith(case.names or str(path)) and case.expected in line and message in line, line
    assert f".{path.name}." not in line  # the output, never its temporary file
    assert snapshot(tmp_path) == before
    assert UNPICKLED == []


# The number of bad inputs tried: the table only grows (lower this only with a row that was a duplicate).
BAD_INPUTS_COUNT = 304


def test_the_table_tries_every_check_under_every_command_that_reads_it():
    """The count the table is meant to make visible: it grows with each new check and each new reader."""
    assert len({(case.reads.name, case.id) for case in TABLE}) == len(TABLE)  # ids are unique
    assert len(TABLE) >= BAD_INPUTS_COUNT, len(TABLE)
    by_reader = {reads.name: sum(case.reads is reads for case in TABLE) for reads in [*COMMANDS, *WRITERS,
                                                                                      PREPARE_CIFAR]}
    assert all(by_reader[reads.name] >= len(BAD_CACHES) for reads in (SWEEP, METRICS, BEE_STATIC, IMPORT_LOGITS))
    assert all(by_reader[reads.name] >= len(BAD_SWEEPS) for reads in (BUDGETS, BEE, BEE_RUN))
    assert all(by_reader[reads.name] >= len(BAD_PICKLES) for reads in (PREPARE_CIFAR, PREPARE_DATA_CIFAR))
    assert all(by_reader[reads.name] >= len(WRITE_FAILURES) for reads in WRITERS)
    assert by_reader[CHECK_CONFIG.name] == len(BAD_CONFIGS) >= 30
    assert all(by_reader[reads.name] > 0 for reads in COMMANDS)  # every command is tried with a bad input


@pytest.mark.parametrize("reads", COMMANDS, ids=[reads.name for reads in COMMANDS])
def test_each_command_takes_its_good_input(reads, inputs, tmp_path, capsys):
    """Each command accepts the file its rows spoil (so each row fails for its defect alone)."""
    path = tmp_path / reads.file
    path.parent.mkdir(parents=True, exist_ok=True)
    reads.good(path, inputs)
    status, lines = run_cli(capsys, reads.argv(path, inputs))
    assert status == 0, lines


# What the table cannot say ---------------------------------------------------------------------------------------


def test_read_npz_returns_arrays_whose_absent_keys_name_the_file(tmp_path):
    path = write_cache(tmp_path / "c.npz")
    arrays = read_npz(path, LOGIT_CACHE, keys=("val_logits",))
    assert arrays["val_logits"].shape == (2, 6, 3) and str(arrays["task"]) == "single_label"
    with pytest.raises(ResultKeyError) as error:
        arrays["x_val"]
    assert isinstance(error.value, KeyError) and isinstance(error.value, ValueError)
    message = str(error.value)
    assert "\n" not in message and str(path) in message and LOGIT_CACHE in message and "'x_val'" in message
    assert message.startswith(str(path))  # not KeyError's quoted repr


def test_read_csv_accepts_a_complete_last_line_without_line_end(tmp_path):
    path = tmp_path / "by_hand.csv"
    path.write_text("split,flops_fraction\nval,0.5\ntest,1.0")
    frame = read_csv(path, SWEEP_CSV, columns=("split", "flops_fraction"))
    assert frame["flops_fraction"].tolist() == [0.5, 1.0]


def test_a_prepared_dataset_without_val_still_loads_train(tmp_path, prepared):
    path = tmp_path / "no_val.npz"
    with np.load(prepared) as npz:
        arrays = {key: npz[key] for key in npz.files if not key.endswith("_val")}
    save_npz(path, **arrays)
    assert len(load_split(path, "train")[0]) == len(arrays["y_train"])


def test_the_resume_file_loads_with_weights_only(tmp_path):
    path = tmp_path / "resume" / "run.pt"
    state = {"phase_index": 0, "epoch": 2, "batch": 5, "model": {"w": torch.ones(3)},
             "early_stopping": {"best": np.array([0.25, -np.inf]), "stale_epochs": 1}}
    np.random.seed(7)
    ResumeFile(path, {"seed": 1}).save(state, World())
    loaded = ResumeFile(path, {"seed": 1}).load(World())
    assert loaded["early_stopping"]["best"].tolist() == [0.25, -np.inf]
    np.random.seed(7)
    expected = np.random.get_state()
    assert loaded["rng"][0]["numpy"][0] == expected[0]
    assert np.array_equal(loaded["rng"][0]["numpy"][1], expected[1])


def test_training_records_its_data_and_an_identical_re_preparation_is_the_same_data(trained, tmp_path):
    """The checkpoint records the identity of its data; preparing the same dataset again (another file, other zip
    timestamps) gives the same identity, so cache-logits takes it."""
    from eebench.steps import data_identity

    recorded = trained.model["data"]
    assert recorded["dataset"] == "digits" and recorded["num_classes"] == 10 and recorded["input_shape"] == [1, 8, 8]
    assert recorded["arrays"]["x_test"][1:] == [1, 8, 8] and len(recorded["sha256"]) == 64
    again = tmp_path / "again.npz"
    prepare_dataset("digits", {"split_seed": 0}, again)
    assert data_identity(again) == recorded
    assert data_identity(trained.prepared_as("digits", {"split_seed": 1}))["sha256"] != recorded["sha256"]


def test_an_old_checkpoint_without_data_identity_is_cached_with_a_warning(trained, tmp_path, caplog):
    from eebench.steps import cache_logits

    with caplog.at_level("WARNING", logger="eebench.steps"):
        cache_logits(str(trained.old_path), str(trained.prepared), str(tmp_path / "c.npz"))
    assert "records no identity of its training data" in caplog.text and str(trained.old_path) in caplog.text
    assert load_cache(tmp_path / "c.npz")["val_logits"].shape[0] == 2
