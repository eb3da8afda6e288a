"""Preemption- and crash-safe training: the resume file and its fingerprint.

A run given a resume file writes a checkpoint there at every epoch end (and every
``TrainingConfig.checkpoint_every_batches`` batches), atomically, so a killed job (even SIGKILL) leaves the
last complete one (eebench.training.checkpoints writes them). SIGTERM or SIGUSR1 (what SLURM sends before
preempting, or with ``--signal``) only sets a flag; the loop checks it after each batch, writes a checkpoint
and raises ``Preempted``, which the CLI turns into exit status ``EXIT_PREEMPTED`` (eebench.training.preemption).
Rerunning the same command continues bit-identically on the CPU.

The file must lie outside the job's declared outputs: Snakemake deletes a failed job's outputs.

A checkpoint that cannot be written (a full disk, a quota) stops the run with ``OutputError``; the previous
checkpoint stays at the path, whole (every write goes to a temporary file, synced, then renamed), and rerunning
continues from it. One run at a time per file: a run holds an exclusive lock on ``<file>.lock`` while it trains
(``ResumeFile.held``), and a second run on the same file refuses with ``ResumeInUse`` rather than continue from a
checkpoint that is still being written.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import random
import socket
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from eebench.io import OutputError, read_checkpoint, save_torch
from eebench.training.distributed import World

log = logging.getLogger(__name__)

FORMAT = 1  # bump when the checkpoint's layout changes: older files then no longer match


RESUME_CHECKPOINT = ("a resume checkpoint written by `eebench train --resume`; delete it, or pass --restart "
                     "to discard it")
# Besides tensors and containers, the resume file holds numpy arrays: the MT19937 key of np.random's state
# (uint32) and EarlyStopping.best (float64). weights_only loading needs the classes that rebuild them, and only
# those (these five, for the two dtypes) are allowed.
RESUME_GLOBALS = (np.ndarray(0).__reduce__()[0], np.ndarray, np.dtype, type(np.dtype(np.uint32)),
                  type(np.dtype(np.float64)))


class ResumeMismatch(ValueError):
    """The resume file belongs to a different run; it is never overwritten silently."""


class ResumeInUse(ValueError):
    """Another training run holds the resume file (its lock): a second run never continues from a live checkpoint."""


# The lock descriptors this process holds. A forked child (a DataLoader worker) closes its copies at once, so that
# only this process keeps the lock: once it dies, even by SIGKILL, the kernel releases it, whatever its children do.
_HELD_LOCKS: set[int] = set()


def _close_held_locks() -> None:
    for fd in _HELD_LOCKS:
        with contextlib.suppress(OSError):
            os.close(fd)
    _HELD_LOCKS.clear()


os.register_at_fork(after_in_child=_close_held_locks)


def _lock(path: Path, resume: Path) -> int | None:
    """An exclusive, non-blocking ``flock`` on ``path``, created if need be, with this process's pid and host
    written in it; None on a file system without locks (a warning). ResumeInUse names ``resume`` if another
    process holds it; OutputError if the file cannot be created."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError.of(path, error, f"cannot create its folder {error.filename or path.parent}") from error
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as error:
            raise OutputError.of(path, error) from error
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 256, 0).decode(errors="replace").split()
            os.close(fd)
            who = f"pid {holder[0]} on {holder[1]}" if len(holder) >= 2 else f"its lock {path} is held"
            raise ResumeInUse(f"{resume} is in use by another training run ({who}); wait for that run to end or "
                              "stop it, then rerun (a second run never continues from a live checkpoint)") from None
        except OSError as error:  # ENOLCK, EOPNOTSUPP...: e.g. a Lustre mount without -o flock
            os.close(fd)
            with contextlib.suppress(OSError):
                path.unlink()
            log.warning("%s: cannot lock (%s); a second run on %s would not be refused", path, error.strerror, resume)
            return None
        # The holder before us may have removed the file between our open and our lock: then our lock guards a
        # file no other run opens, so lock the file now at the path instead.
        try:
            current = os.stat(path)
        except FileNotFoundError:
            current = None
        if current is not None and os.path.samestat(os.fstat(fd), current):
            break
        os.close(fd)
    with contextlib.suppress(OSError):  # who holds it is for the message of a refused run only
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)
    _HELD_LOCKS.add(fd)
    return fd


def _unlock(path: Path, fd: int) -> None:
    """Remove the lock file, then release the lock (in this order, so that no run ever locks a removed file:
    ``_lock`` checks that the file it locked is still the one at the path)."""
    with contextlib.suppress(OSError):
        path.unlink()
    _HELD_LOCKS.discard(fd)
    os.close(fd)


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
        self.saved: str | None = None  # where the checkpoint at ``path`` stands, once loaded or written

    @property
    def lock_path(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")

    @contextlib.contextmanager
    def held(self, world: World) -> Iterator[ResumeFile]:
        """Hold the file for this run: rank 0 takes an exclusive lock on ``lock_path`` (``flock``, which the kernel
        releases when the process ends, even by SIGKILL, so a killed run never blocks its rerun), and every rank
        raises ResumeInUse together if another run holds it, before the file is read or touched. Only rank 0
        locks: the ranks of one run share the file (rank 0 writes, every rank reads). The lock file is removed
        on release."""
        fd, problem = None, None
        if world.rank == 0:
            try:
                fd = _lock(self.lock_path, self.path)
            except (ResumeInUse, OutputError) as error:
                problem = error
        problem = world.gather(problem)[0]  # rank 0's verdict, on every rank
        if problem is not None:
            raise problem
        try:
            yield self
        finally:
            if fd is not None:
                _unlock(self.lock_path, fd)

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
        self.saved = _position(state)
        log.info("resuming from %s: %s", self.path, self.saved)
        return state

    def save(self, state: dict[str, Any], world: World) -> None:
        """Write ``state`` with the fingerprint and every rank's RNG states (a collective call). If it cannot be
        written, every rank raises OutputError, and the previous checkpoint is still at the path."""
        rng = world.gather(rng_state())
        failed = None
        if world.rank == 0:
            try:
                save_torch(self.path, {"fingerprint": self.fingerprint, **state, "rng": rng})
            except OutputError as error:
                failed = error
        # Also the barrier: no rank exits (e.g. on preemption) before the file is complete, and all stop together.
        if world.sum([float(failed is not None)])[0] > 0:
            failed = failed or OutputError(self.path, "rank 0 could not write it")
            kept = (f"the last good checkpoint ({self.saved}) is kept there: free space, then rerun the same command "
                    "to continue from it" if self.saved is not None else
                    "no checkpoint of this run was written yet: free space, then rerun the same command")
            raise failed.with_note(kept) from failed
        self.saved = _position(state)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def _position(state: dict[str, Any]) -> str:
    """Where a checkpoint stands, in words (a checkpoint written by a test may lack the position)."""
    if not {"phase_index", "epoch", "batch"} <= set(state):
        return "position unknown"
    return f"phase {state['phase_index'] + 1}, epoch {state['epoch']}, batch {state['batch']}"
