"""Untrusted pickles, failed writes and concurrent runs (issue 24, points 4-6): what loads and what recovers.

The bad inputs themselves (crafted CIFAR pickles, outputs that cannot be written, a resume file in use) are rows
of the one table of bad inputs, tests/test_bad_files.py's BAD_DATASETS_AND_IO. Here: the restricted unpickler
loads every genuine batch as pickle would; a training run that cannot write its model says what is left of it,
and a full disk during a ``--resume`` run keeps the last good checkpoint; a run's lock is one per resume file,
released when the run ends, however it ends.
"""
from __future__ import annotations

import json
import logging
import os
import pickle
import signal
import socket
import struct
import subprocess
import sys

import numpy as np
import pytest
import torch

from eebench.cli import main
from eebench.data.pickles import read_pickle
from eebench.io import read_checkpoint
from eebench.training import ResumeFile, ResumeInUse, World
from eebench.training.resume import RESUME_GLOBALS
from tests.test_bad_files import batch, dumped, full_disk, hold_lock


def same(a, b) -> bool:
    """Deep equality of unpickled batches, numpy arrays (and their dtypes) included."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return type(a) is type(b) and a.dtype == b.dtype and np.array_equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


@pytest.mark.parametrize("protocol", range(2, pickle.HIGHEST_PROTOCOL + 1))
def test_batches_pickled_by_any_numpy_and_protocol_load_as_pickle_would(tmp_path, protocol):
    content = batch({b"num_cases_per_batch": np.int64(4), b"mean": np.float32(0.5), b"ratio": 0.25,
                     b"name": "str, not bytes", b"nested": {b"shape": (4, 3072)},
                     b"strided": np.arange(12, dtype=np.int16).reshape(3, 4)[:, ::2],
                     b"fortran": np.asfortranarray(np.arange(6, dtype=np.float64).reshape(2, 3))})
    path = tmp_path / "data_batch_1"
    path.write_bytes(dumped(content, protocol))
    with open(path, "rb") as handle:
        expected = pickle.load(handle, encoding="bytes")
    assert same(read_pickle(path), expected)


def python2_batch(data: np.ndarray, labels: list[int]) -> bytes:
    """A batch as the official files are: pickled by Python 2's cPickle (protocol 2) with Python 2's numpy, so
    str is a byte string (SHORT_BINSTRING) and the array is ``numpy.core.multiarray._reconstruct`` of
    ``numpy.ndarray`` with the raw bytes in its state."""
    def string(value: bytes) -> bytes:
        return b"U" + bytes([len(value)]) + value if len(value) < 256 else b"T" + struct.pack("<i", len(value)) + value

    def integer(value: int) -> bytes:
        return b"K" + bytes([value]) if value < 256 else b"M" + struct.pack("<H", value)

    rows, width = data.shape
    minus_one = b"J" + struct.pack("<i", -1)
    dtype = (b"cnumpy\ndtype\n" + string(b"u1") + b"K\x00K\x01\x87R"  # dtype("u1", 0, 1), then its state:
             + b"(K\x03" + string(b"|") + b"NNN" + minus_one + minus_one + b"K\x00tb")  # (3, "|", ..., 0)
    array = (b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" + string(b"b") + b"\x87R"
             + b"(K\x01" + integer(rows) + integer(width) + b"\x86" + dtype + b"\x89" + string(data.tobytes())
             + b"tb")  # its state: (1, shape, dtype, not Fortran-ordered, the raw bytes)
    label_list = b"](" + b"".join(integer(label) for label in labels) + b"e"
    return (b"\x80\x02}(" + string(b"batch_label") + string(b"training batch 1 of 5") + string(b"labels")
            + label_list + string(b"data") + array + string(b"filenames") + b"](" + string(b"a.png")
            + string(b"b.png") + b"eu.")


def test_a_batch_in_the_official_python2_format_loads(tmp_path):
    data = np.arange(2 * 3072, dtype=np.uint64).reshape(2, 3072).astype(np.uint8)
    path = tmp_path / "data_batch_1"
    path.write_bytes(python2_batch(data, [6, 9]))
    got = read_pickle(path, (b"data", b"labels"))
    with open(path, "rb") as handle:
        assert same(got, pickle.load(handle, encoding="bytes"))
    assert got[b"labels"] == [6, 9] and got[b"batch_label"] == b"training batch 1 of 5"
    assert got[b"data"].dtype == np.uint8 and np.array_equal(got[b"data"], data)


# Training that cannot write --------------------------------------------------------------------------------------

MODEL = json.dumps({"backbone": "cnn", "params": {"widths": [8, 16], "strides": [1, 2]}})
# 17 batches an epoch (1078 digits), a checkpoint every 5: at batches 5, 10, 15, then at the epoch's end.
TRAINING = json.dumps({"batch_size": 64, "max_epochs": 2, "patience": 2, "lr": 0.01, "augment": False,
                       "checkpoint_every_batches": 5})


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "digits.npz"
    assert main(["prepare-data", "--dataset", "digits", "--params", '{"split_seed": 0}', "--out", str(path)]) == 0
    return path


def train(digits, out, *extra) -> int:
    return main(["train", "--data", str(digits), "--model", MODEL, "--training", TRAINING, "--regime", "joint",
                 "--seed", "0", "--threads", "1", "--out", str(out), *map(str, extra)])


def weights(path) -> dict:
    return read_checkpoint(path, "a model", keys=("state_dict",))["state_dict"]


def test_training_without_resume_that_cannot_write_its_model_says_the_run_is_lost(digits, tmp_path, monkeypatch,
                                                                                     capsys):
    out = tmp_path / "model.pt"
    full_disk(monkeypatch, out.name)
    assert train(digits, out) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"eebench train: error: {out}: cannot be written (No space left on device); the run is "
                          "lost: without --resume FILE nothing of it was kept")
    assert list(tmp_path.iterdir()) == []


def test_training_with_resume_that_cannot_write_its_model_keeps_the_checkpoint(digits, tmp_path, monkeypatch, capsys,
                                                                              caplog):
    caplog.set_level(logging.INFO)
    out, resume = tmp_path / "model.pt", tmp_path / "resume" / "run.pt"
    full_disk(monkeypatch, out.name)
    assert train(digits, out, "--resume", resume) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"{out}: cannot be written (No space left on device); its resume checkpoint {resume} is kept" in err
    state = read_checkpoint(resume, "a resume checkpoint", allowed_globals=RESUME_GLOBALS)
    assert (state["phase_index"], state["epoch"], state["batch"]) == (0, 3, 0)  # past the last epoch: all trained
    monkeypatch.undo()
    assert train(digits, out, "--resume", resume) == 0
    assert f"resuming from {resume}: phase 1, epoch 3, batch 0" in caplog.text
    assert out.exists() and sorted(p.name for p in resume.parent.iterdir()) == []


def test_a_full_disk_at_a_checkpoint_keeps_the_last_good_one_and_the_rerun_continues_from_it(digits, tmp_path,
                                                                                              monkeypatch, capsys,
                                                                                              caplog):
    caplog.set_level(logging.INFO)
    reference = tmp_path / "reference.pt"
    assert train(digits, reference) == 0
    out, resume = tmp_path / "model.pt", tmp_path / "resume" / "run.pt"
    full_disk(monkeypatch, resume.name, after=2)  # checkpoints at batches 5 and 10 are written, 15 is not
    assert train(digits, out, "--resume", resume) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == (f"eebench train: error: {resume}: cannot be written (No space left on device); the last good "
                   "checkpoint (phase 1, epoch 1, batch 10) is kept there: free space, then rerun the same command "
                   "to continue from it")
    state = read_checkpoint(resume, "a resume checkpoint", allowed_globals=RESUME_GLOBALS)
    assert (state["phase_index"], state["epoch"], state["batch"]) == (0, 1, 10)
    assert sorted(p.name for p in resume.parent.iterdir()) == ["run.pt"]  # no temporary file, no lock left
    assert not out.exists()
    monkeypatch.undo()
    assert train(digits, out, "--resume", resume) == 0
    assert f"resuming from {resume}: phase 1, epoch 1, batch 10" in caplog.text
    assert not resume.exists()
    got, want = weights(out), weights(reference)
    assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in want)


# One run per resume file -----------------------------------------------------------------------------------------


def test_a_resume_file_whose_run_ended_trains_and_leaves_neither_file(digits, tmp_path):
    """The lock file a finished run left behind (its lock released) does not block the next run, which removes it
    with its checkpoint once it has written its model (the refusal while a run holds it: tests/test_bad_files.py,
    train-resume/in-use-by-another-run)."""
    out, resume = tmp_path / "model.pt", tmp_path / "run.pt"
    os.close(hold_lock(resume))
    assert train(digits, out, "--resume", resume) == 0
    assert out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]


def test_the_lock_is_one_per_file_and_released_on_exit(tmp_path):
    first, other = ResumeFile(tmp_path / "a.pt", {}), ResumeFile(tmp_path / "b.pt", {})
    with first.held(World()), other.held(World()):  # two files: two runs
        owner = (tmp_path / "a.pt.lock").read_text().split()
        assert owner == [str(os.getpid()), socket.gethostname()]
        with pytest.raises(ResumeInUse, match=rf"^{tmp_path / 'a.pt'} is in use by another training run \(pid "
                                              rf"{os.getpid()} on "):
            with ResumeFile(tmp_path / "a.pt", {}).held(World()):
                pass
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(RuntimeError):
        with first.held(World()):
            raise RuntimeError("the run failed")
    with first.held(World()):  # released by the failure too
        pass


HOLDER = """
import os, sys, time
from eebench.training import ResumeFile, World
with ResumeFile(sys.argv[1], {}).held(World()):
    child = os.fork()  # as a DataLoader worker is forked
    if child == 0:
        time.sleep(120)
        os._exit(0)
    print(child, flush=True)
    time.sleep(120)
"""


def test_a_killed_run_never_blocks_the_next_even_while_its_forked_workers_live(tmp_path):
    resume = tmp_path / "run.pt"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(resume)], stdout=subprocess.PIPE, text=True)
    child = None
    try:
        child = int(holder.stdout.readline())
        with pytest.raises(ResumeInUse, match=rf"\(pid {holder.pid} on "):
            with ResumeFile(resume, {}).held(World()):
                pass
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
        os.kill(child, 0)  # the forked worker still lives
        with ResumeFile(resume, {}).held(World()):
            pass
    finally:
        holder.kill()
        holder.wait()
        if child is not None:
            try:
                os.kill(child, signal.SIGKILL)
            except ProcessLookupError:
                pass
