"""Data-parallel training: the ranks' batches partition the single-process batches, and a 2-process run (gloo,
CPU, launched by the CLI's --nproc) ends with the single-process model up to floating-point reduction order."""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from eebench.training.loop import epoch_batches

BIN = Path(sys.executable).parent
MODEL = {"backbone": "cnn", "params": {"widths": [8, 16], "strides": [1, 2]}}
# Augmentation off: each rank draws from its own torch RNG, so augmented samples could not match a single
# process. One epoch per phase of "mixed": early stopping always keeps that epoch, so a score tie broken
# differently by rounding cannot pick a different epoch; two phases re-wrap the model in DDP once.
TRAINING = {"batch_size": 32, "max_epochs": 1, "patience": 1, "augment": False, "checkpoint_every_batches": 8}


def run(*args, timeout=180):
    """Run the CLI in its own process group and make sure nothing of it (torchrun workers) outlives the call."""
    process = subprocess.Popen([str(BIN / "eebench"), *map(str, args)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _, err = process.communicate(timeout=timeout)
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()
    assert process.returncode == 0, err[-4000:]


def test_the_ranks_batches_together_are_the_single_process_batches():
    single = epoch_batches(103, 8, seed=5, phase_index=1, epoch=2)
    assert sorted(i for b in single for i in b) == list(range(103))
    assert single == epoch_batches(103, 8, seed=5, phase_index=1, epoch=2)
    assert single != epoch_batches(103, 8, seed=5, phase_index=1, epoch=3)
    assert single != epoch_batches(103, 8, seed=5, phase_index=0, epoch=2)
    ranks = [epoch_batches(103, 8, 5, 1, 2, rank=r, world_size=4) for r in range(4)]
    assert all(len(r) == len(single) for r in ranks)
    for k, batch in enumerate(single):
        assert sorted(i for r in ranks for i in r[k]) == sorted(batch)
    # A last global batch smaller than the number of ranks (here 1 sample for 2 ranks) is dropped.
    assert len(epoch_batches(17, 8, 0, 0, 1, rank=0, world_size=2)) == 2
    with pytest.raises(ValueError, match="not divisible"):
        epoch_batches(100, 10, 0, 0, 1, world_size=4)


def test_two_processes_train_the_single_process_model(tmp_path):
    data = tmp_path / "digits.npz"
    run("prepare-data", "--dataset", "digits", "--params", '{"split_seed": 0}', "--out", data)
    logits = {}
    for nproc in (1, 2):
        out = tmp_path / f"nproc{nproc}"
        run("train", "--data", data, "--model", json.dumps(MODEL), "--training", json.dumps(TRAINING),
            "--regime", "mixed", "--seed", 0, "--threads", nproc, "--nproc", nproc, "--out", out / "model.pt",
            "--resume", out / "resume.pt")
        assert (out / "model.pt").exists() and not (out / "resume.pt").exists()
        run("cache-logits", "--checkpoint", out / "model.pt", "--data", data, "--out", out / "logits.npz",
            "--threads", 1)
        with np.load(out / "logits.npz") as npz:
            logits[nproc] = npz["test_logits"]
    single, parallel = logits[1], logits[2]
    # The runs differ only in summation order (gradients averaged over ranks, batch-norm statistics summed
    # over ranks), so they start apart by float32 rounding and drift through 68 AdamW steps. Observed with
    # these settings (seeds 0-2): max |difference| 3.9e-7 to 4.8e-7 on logits up to ~0.75, i.e. at most
    # ~3.5e-6 relative where |logit| > 0.1. (With lr 0.01 the drift reaches 4e-6 to 5e-5: training amplifies
    # it.) atol = 1e-5 leaves a 20x margin; a real error, such as per-rank batch-norm statistics or a wrongly
    # weighted loss, is orders of magnitude larger.
    assert np.allclose(parallel, single, rtol=0, atol=1e-5), np.abs(parallel - single).max()
