"""Atomic file output: every result is written to a temporary file in the target directory, then renamed.

A killed job therefore never leaves a partially written file under the final name.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Iterator

import numpy as np


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on error it is removed."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp creates 0600; give the result the permissions an ordinary open() would.
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o666 & ~umask)
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w") -> Iterator[IO[Any]]:
    with atomic_path(path) as tmp, open(tmp, mode) as handle:
        yield handle


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_open(path, "w") as handle:
        handle.write(text)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_csv(path: str | os.PathLike, frame) -> None:
    """Write a pandas DataFrame as CSV without its index."""
    with atomic_open(path, "w") as handle:
        frame.to_csv(handle, index=False)


def save_npz(path: str | os.PathLike, **arrays: Any) -> None:
    # np.savez appends ".npz" to names without it, so hand it an open file instead of a path.
    with atomic_open(path, "wb") as handle:
        np.savez(handle, **arrays)


def save_torch(path: str | os.PathLike, obj: Any) -> None:
    import torch

    with atomic_open(path, "wb") as handle:
        torch.save(obj, handle)
