"""Preemption- and crash-safe training: a run killed (SIGKILL) or preempted (SIGTERM) and rerun with the same
command ends with exactly the model of an uninterrupted run. Runs the real CLI in subprocesses."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from eebench.steps import train_model
from eebench.training import EXIT_PREEMPTED, ResumeFile, ResumeMismatch, World

BIN = Path(sys.executable).parent
MODEL = {"backbone": "cnn", "params": {"widths": [8, 16], "strides": [1, 2]}}
# Two phases (the phase boundary is crossed), augmentation on (the torch RNG state must be restored), 68
# batches per epoch with a checkpoint every 10, about 3 s of training on one thread.
TRAINING = {"batch_size": 16, "max_epochs": 6, "patience": 6, "restart_epochs": 3, "lr": 0.01,
            "checkpoint_every_batches": 10}


def eebench(*args, **popen):
    return subprocess.Popen([str(BIN / "eebench"), *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True, **popen)


def finish(process, timeout=120):
    try:
        out, err = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return process.returncode, err


def check(*args):
    code, err = finish(eebench(*args))
    assert code == 0, err[-3000:]


def train(data, out, resume, training=TRAINING):
    return eebench("train", "--data", data, "--model", json.dumps(MODEL), "--training", json.dumps(training),
                   "--regime", "mixed", "--seed", 3, "--threads", 1, "--out", out, "--resume", resume)


def cached_logits(data, model, out):
    check("cache-logits", "--checkpoint", model, "--data", data, "--out", out, "--threads", 1)
    with np.load(out) as npz:
        return npz["test_logits"], npz["val_logits"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "digits.npz"
    check("prepare-data", "--dataset", "digits", "--params", '{"split_seed": 0}', "--out", path)
    return path


@pytest.fixture(scope="module")
def uninterrupted(data, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("uninterrupted")
    code, err = finish(train(data, tmp / "model.pt", tmp / "resume" / "run.pt"))
    assert code == 0, err[-3000:]
    assert not (tmp / "resume" / "run.pt").exists(), "the resume file is removed after success"
    return cached_logits(data, tmp / "model.pt", tmp / "logits.npz")


def interrupt(data, tmp, sig):
    """Start the run, wait for its first checkpoint and a little more, then send ``sig``."""
    resume = tmp / "resume" / "run.pt"
    process = train(data, tmp / "model.pt", resume)
    try:
        deadline = time.monotonic() + 60
        while not resume.exists():
            assert process.poll() is None, process.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "no checkpoint within 60 s"
            time.sleep(0.02)
        time.sleep(1.0)
        assert process.poll() is None, "the run ended before it could be interrupted; lengthen it"
        os.kill(process.pid, sig)
    finally:
        code, err = finish(process)
    assert resume.exists()
    state = torch.load(resume, weights_only=False)
    print(f"{signal.Signals(sig).name}: checkpoint at phase {state['phase_index']} epoch {state['epoch']} "
          f"batch {state['batch']}")
    return code, err, resume


def resume_and_compare(data, tmp, resume, expected):
    code, err = finish(train(data, tmp / "model.pt", resume))
    assert code == 0, err[-3000:]
    assert "resuming from" in err
    assert not resume.exists()
    for got, want in zip(cached_logits(data, tmp / "model.pt", tmp / "logits.npz"), expected):
        assert np.array_equal(got, want)


def test_sigkill_then_rerun_equals_uninterrupted_run(data, uninterrupted, tmp_path):
    code, _, resume = interrupt(data, tmp_path, signal.SIGKILL)
    assert code == -signal.SIGKILL
    resume_and_compare(data, tmp_path, resume, uninterrupted)


def test_sigterm_checkpoints_exits_preempted_and_rerun_equals_uninterrupted_run(data, uninterrupted, tmp_path):
    code, err, resume = interrupt(data, tmp_path, signal.SIGTERM)
    assert code == EXIT_PREEMPTED, err[-3000:]
    assert "preempted" in err and str(resume) in err
    resume_and_compare(data, tmp_path, resume, uninterrupted)


def test_a_resume_file_of_another_run_is_an_error_naming_it(data, tmp_path):
    resume = tmp_path / "resume.pt"
    ResumeFile(resume, {"seed": 1}).save({"phase_index": 0, "epoch": 1, "batch": 0}, World())
    small = {"batch_size": 64, "max_epochs": 1}
    with pytest.raises(ResumeMismatch, match=str(resume)):
        train_model(str(data), MODEL, small, "joint", 0, str(tmp_path / "model.pt"), resume=str(resume))
    assert resume.exists() and not (tmp_path / "model.pt").exists()
    # --restart discards it, and the finished run removes its own.
    train_model(str(data), MODEL, small, "joint", 0, str(tmp_path / "model.pt"), resume=str(resume), restart=True)
    assert (tmp_path / "model.pt").exists() and not resume.exists()


def test_a_mismatch_names_the_differing_settings(tmp_path):
    resume = tmp_path / "resume.pt"
    ResumeFile(resume, {"seed": 1, "training": {"lr": 0.1}}).save({"phase_index": 0, "epoch": 1, "batch": 0}, World())
    with pytest.raises(ResumeMismatch, match=r"differs in: training\)"):
        ResumeFile(resume, {"seed": 1, "training": {"lr": 0.2}}).load(World())
    assert ResumeFile(resume, {"seed": 1, "training": {"lr": 0.1}}).load(World())["phase_index"] == 0
