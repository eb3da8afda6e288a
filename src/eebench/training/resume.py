"""Preemption- and crash-safe training: the resume file, its fingerprint, and the signals that ask for it.

A run given a resume file writes a checkpoint there at every epoch end (and every
``TrainingConfig.checkpoint_every_batches`` batches), atomically, so a killed job (even SIGKILL) leaves the
last complete one. SIGTERM or SIGUSR1 (what SLURM sends before preempting, or with ``--signal``) only sets a
flag; the loop checks it after each batch, writes a checkpoint and raises ``Preempted``, which the CLI turns
into exit status ``EXIT_PREEMPTED``. Rerunning the same command continues bit-identically on the CPU.

The file must lie outside the job's declared outputs: Snakemake deletes a failed job's outputs.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import random
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from eebench.io import read_checkpoint, save_torch
from eebench.training.distributed import World

log = logging.getLogger(__name__)

FORMAT = 1  # bump when the checkpoint's layout changes: older files then no longer match
EXIT_PREEMPTED = 75  # EX_TEMPFAIL, sysexits' "temporary failure; retry": a failure to Snakemake and SLURM
PREEMPTION_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


RESUME_CHECKPOINT = ("a resume checkpoint written by `eebench train --resume`; delete it, or pass --restart "
                     "to discard it")
# Besides tensors and containers, the resume file holds numpy arrays: the MT19937 key of np.random's state
# (uint32) and EarlyStopping.best (float64). weights_only loading needs the classes that rebuild them, and only
# those (these five, for the two dtypes) are allowed.
RESUME_GLOBALS = (np.ndarray(0).__reduce__()[0], np.ndarray, np.dtype, type(np.dtype(np.uint32)),
                  type(np.dtype(np.float64)))


class Preempted(Exception):
    """Training stopped on SIGTERM/SIGUSR1 after writing its resume checkpoint."""


class ResumeMismatch(ValueError):
    """The resume file belongs to a different run; it is never overwritten silently."""


@dataclass
class PreemptionFlag:
    requested: bool = False


@contextlib.contextmanager
def preemption_signals(enabled: bool = True) -> Iterator[PreemptionFlag]:
    """While active, SIGTERM and SIGUSR1 set the yielded flag instead of ending the process: the loop then
    stops at the next batch boundary with a checkpoint. Disabled, the flag simply stays down."""
    flag = PreemptionFlag()
    if not enabled:
        yield flag
        return

    def request(signum: int, frame: Any) -> None:
        flag.requested = True

    previous = {sig: signal.signal(sig, request) for sig in PREEMPTION_SIGNALS}
    try:
        yield flag
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def normalize(fingerprint: dict[str, Any]) -> dict[str, Any]:
    """JSON round trip, so that tuples and lists (or numpy scalars) compare equal after a save and load."""
    return json.loads(json.dumps(fingerprint, sort_keys=True, default=str))


def rng_state() -> dict[str, Any]:
    """Every random stream training draws from: torch (model init, augmentation in the dataset), CUDA, numpy
    and Python's ``random``. Sample order does not need saving: it is a pure function of (seed, phase, epoch)."""
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


class ResumeFile:
    """The resume checkpoint of one run at ``path``, tagged with the run's ``fingerprint``.

    Contents: ``fingerprint`` (with the layout version ``format``); the position ``phase_index``, ``epoch``
    and ``batch`` (the next batch to train; the epoch's batch count means only validation is left);
    ``model``, ``optimizer``, ``scheduler``; ``early_stopping`` (per-head best scores, best weights, stale
    epochs); ``epoch_loss`` (the epoch's running loss sum and sample count); ``history`` (finished phases) and
    ``phase_history``; ``rng``: one ``rng_state()`` per rank. Only rank 0 writes; every rank reads.
    """

    def __init__(self, path: str | os.PathLike, fingerprint: dict[str, Any], restart: bool = False) -> None:
        self.path = Path(path)
        self.fingerprint = normalize({"format": FORMAT, **fingerprint})
        self.restart = restart

    def load(self, world: World) -> dict[str, Any] | None:
        """The checkpoint to continue from, or None to start afresh. With ``restart`` an existing file is
        discarded; otherwise a file from another run is an error naming it."""
        if self.restart:
            if world.rank == 0 and self.path.exists():
                log.warning("--restart: discarding the resume checkpoint %s", self.path)
                self.path.unlink()
            world.barrier()
            return None
        if not self.path.exists():
            return None
        state = read_checkpoint(self.path, RESUME_CHECKPOINT, allowed_globals=RESUME_GLOBALS)
        saved = state.get("fingerprint", {}) if isinstance(state, dict) else {}
        if saved != self.fingerprint:
            keys = sorted(k for k in set(saved) | set(self.fingerprint) if saved.get(k) != self.fingerprint.get(k))
            raise ResumeMismatch(
                f"{self.path}: resume checkpoint of a different run (differs in: {', '.join(keys)}); "
                "delete it, or pass --restart to discard it"
            )
        log.info("resuming from %s: phase %d, epoch %d, batch %d", self.path, state["phase_index"] + 1,
                 state["epoch"], state["batch"])
        return state

    def save(self, state: dict[str, Any], world: World) -> None:
        """Write ``state`` with the fingerprint and every rank's RNG states (a collective call)."""
        rng = world.gather(rng_state())
        if world.rank == 0:
            save_torch(self.path, {"fingerprint": self.fingerprint, **state, "rng": rng})
        world.barrier()  # no rank exits (e.g. on preemption) before the file is complete

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
