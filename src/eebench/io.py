"""Result files in and out.

Writing is atomic: every result is written to a temporary file in the target directory, then renamed, so a
killed job never leaves a partially written file under the final name. A write that fails (a read-only folder, a
full disk, a quota) removes the temporary file, leaves any previous file at the name as it was, and raises
``OutputError``: one line naming the output (never the temporary file) and the cause.

Reading checks what it reads: ``read_npz``, ``read_checkpoint`` and ``read_csv`` turn a missing, empty,
truncated or foreign file (text where an archive is expected, a pickle, a .npy, a torch checkpoint where a
.npz is expected, a file lacking required keys or columns) into one line naming the file, what is wrong and
what was expected (``ResultFileError``, a ValueError; a missing file stays a FileNotFoundError). Nothing
from a file is unpickled: arrays load with ``allow_pickle=False``, checkpoints with ``weights_only=True``.
"""
from __future__ import annotations

import codecs
import contextlib
import csv
import io
import json
import os
import pickle
import re
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import IO, Any, Iterable, Iterator, Sequence

import numpy as np


class OutputError(OSError):
    """An output that could not be written: ``<path>: cannot be written (<cause>)[; <note>]`` on one line, naming
    the output, never its temporary file; ``note`` says what the failure means for the run. An OSError with the
    cause's errno, so ``except OSError`` still catches it."""

    def __init__(self, path: str | os.PathLike, cause: str, errno: int | None = None, note: str = "") -> None:
        super().__init__(errno, cause, str(path))
        self.path, self.cause, self.note = str(path), cause, note

    def __str__(self) -> str:
        return f"{self.path}: cannot be written ({self.cause})" + (f"; {self.note}" if self.note else "")

    def __reduce__(self):
        return type(self), (self.path, self.cause, self.errno, self.note)

    def with_note(self, note: str) -> OutputError:
        return OutputError(self.path, self.cause, self.errno, note)

    @classmethod
    def of(cls, path: str | os.PathLike, error: OSError, what: str = "") -> OutputError:
        """``error`` (e.g. ENOSPC: "No space left on device") as the failure to write ``path``; ``what``: the
        step that failed, where it is not writing the file itself."""
        cause = error.strerror or _first_line(error)
        return cls(path, f"{what}: {cause}" if what else cause, error.errno)


def _about(error: OSError, *paths: Path) -> bool:
    """Whether ``error`` is a failure to write one of ``paths``: it names one of them, or no file at all (a
    write to an open file: ENOSPC, EDQUOT, EIO, at write, flush, fsync or close)."""
    names = {str(path) for path in paths}
    named = [str(name) for name in (error.filename, error.filename2) if name is not None]
    return not named or any(name in names for name in named)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on error it is removed (and
    ``path``, if it existed, is left as it was). A failure to create, write or rename the file is an
    ``OutputError`` naming ``path``."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError.of(target, error, f"cannot create its folder {error.filename or target.parent}") from error
    try:
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as error:
        raise OutputError.of(target, error) from error
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        # mkstemp creates 0600; give the result the permissions an ordinary open() would.
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o666 & ~umask)
        yield tmp
        os.replace(tmp, target)
    except BaseException as error:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        if isinstance(error, OSError) and not isinstance(error, OutputError) and _about(error, tmp, target):
            raise OutputError.of(target, error) from error
        raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", sync: bool = False) -> Iterator[IO[Any]]:
    """``open(path, mode)`` through ``atomic_path``; ``sync``: flush the file to the disk (fsync) before the
    rename, so that even a crash of the machine leaves the old file or the complete new one, never a hollow
    one (and a file system that reports a full disk only then, e.g. NFS, fails here, not later)."""
    with atomic_path(path) as tmp, open(tmp, mode) as handle:
        yield handle
        if sync:
            handle.flush()
            os.fsync(handle.fileno())


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


class _WriteErrors:
    """A file that remembers the first OSError of a write (e.g. ENOSPC): ``torch.save``'s zip writer turns it
    into a RuntimeError of its own ("unexpected pos 704 vs 598"), which says nothing of the cause."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle, self.error = handle, None

    def write(self, data) -> int:
        try:
            return self.handle.write(data)
        except OSError as error:
            self.error = self.error or error
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self.handle, name)


def save_torch(path: str | os.PathLike, obj: Any) -> None:
    """``torch.save`` through ``atomic_open``, synced: models and resume checkpoints survive a crash."""
    import torch

    with atomic_open(path, "wb", sync=True) as handle:
        recorder = _WriteErrors(handle)
        try:
            torch.save(obj, recorder)
        except Exception as error:
            if recorder.error is None:
                raise
            raise recorder.error from error


# What each result file is, as ``expected`` texts: one wording per kind of file, wherever it is read.
PREPARED_DATASET = "a prepared dataset written by `eebench prepare-data`"
LOGIT_CACHE = ("a logit cache written by `eebench train --logits`, `eebench cache-logits`, `eebench import-logits` "
               "or eebench.logit_cache.write_cache")
# What `eebench import-logits` reads: a plain file of per-head arrays (README, "The logit cache").
PLAIN_LOGITS = ("per-head logits, labels and FLOPs for `eebench import-logits`: a .npz or torch .pt holding "
                "val_logits, test_logits [H, N, C], val_labels, test_labels and head_flops [H]")
MODEL_CHECKPOINT = "a model checkpoint written by `eebench train`"
SWEEP_CSV = "a sweep CSV written by `eebench sweep`"
BUDGETS_CSV = "a budget table written by `eebench budgets`"
BEE_CSV = "a B_EE table written by `eebench bee`"
RENDERED_CSV = "the numbers of a table or figure written by `eebench render-table` / `render-figure`"

_HEAD_BYTES = 512
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a local file header; an empty archive's end record
_NPY_MAGIC = b"\x93NUMPY"
_TORCH_LEGACY_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"  # torch.save's pre-zip format


class ResultFileError(ValueError):
    """A file is not what a step expected: ``<path>: <what is wrong> (expected <what>)``, on one line."""

    def __init__(self, path: str | os.PathLike, problem: str, expected: str) -> None:
        self.path, self.problem, self.expected = str(path), _one_line(problem), expected
        super().__init__(f"{self.path}: {self.problem} (expected {expected})")

    def __str__(self) -> str:  # KeyError's quoting must not reach the subclass below
        return self.args[0]

    def __reduce__(self):
        return type(self), (self.path, self.problem, self.expected)


class ResultKeyError(ResultFileError, KeyError):
    """A key a file lacks, looked up after reading (see ``FileArrays``): also a KeyError, for ``except
    KeyError`` callers."""


class FileArrays(dict):
    """The arrays of one .npz by name; looking up a key the file lacks raises ``ResultKeyError`` naming the
    file, so code handed the arrays (e.g. a dataset's ``load``) fails as clearly as ``read_npz`` itself."""

    def __init__(self, arrays: dict[str, np.ndarray], path: str | os.PathLike, expected: str) -> None:
        super().__init__(arrays)
        self.path, self.expected = path, expected

    def __missing__(self, key: str) -> np.ndarray:
        raise ResultKeyError(self.path, f"lacks key {key!r} (it has: {', '.join(sorted(self)) or 'none'})",
                             self.expected)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _first_line(error: BaseException) -> str:
    """An exception's first non-empty line (library messages often run over several)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


@contextlib.contextmanager
def _opened(path: str | os.PathLike, expected: str) -> Iterator[tuple[IO[bytes], bytes]]:
    """The file opened for reading, and its first bytes (the handle is rewound). A missing file is a
    FileNotFoundError naming the file and what was expected; any other failure to open it a ResultFileError."""
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file (expected {expected})") from None
    except OSError as error:
        raise ResultFileError(path, f"cannot be read ({error.strerror or _first_line(error)})", expected) from None
    with handle:
        head = handle.read(_HEAD_BYTES)
        handle.seek(0)
        yield handle, head


def _zip_kind(names: Iterable[str]) -> str:
    names = list(names)
    if any(name == "data.pkl" or name.endswith("/data.pkl") for name in names):
        return "a torch checkpoint"
    if all(name.endswith(".npy") for name in names):  # np.savez() of nothing: an empty .npz
        return "a .npz archive"
    return "a zip archive"


def _looks_like(head: bytes, handle: IO[bytes] | None = None) -> str:
    """What a file's first bytes say it is, as a short noun phrase: "an empty file", "text ('...')"..."""
    if not head:
        return "an empty file"
    if head.startswith(_ZIP_MAGIC):
        if handle is not None:
            try:
                with zipfile.ZipFile(handle) as archive:
                    return _zip_kind(archive.namelist())
            except (zipfile.BadZipFile, OSError, EOFError, ValueError):
                return "a truncated or corrupt zip archive"
            finally:
                handle.seek(0)
        return "a zip archive"
    if head.startswith(_NPY_MAGIC):
        return "a single .npy array"
    if head.startswith(_TORCH_LEGACY_MAGIC):
        return "a torch checkpoint (legacy format)"
    if head[:1] == b"\x80":  # pickle protocol 2 and later
        return "a Python pickle"
    if head.startswith(b"\x1f\x8b"):
        return "a gzip file"
    if b"\x00" not in head:
        try:
            text = codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        except UnicodeDecodeError:
            pass
        else:
            first = text.lstrip().split("\n", 1)[0].strip()
            return f"text ({first[:40]!r}{'...' if len(first) > 40 else ''})"
    return "binary data"


def _not(kind: str, what: str) -> str:
    """The problem of a file that ``_looks_like`` ``kind`` where ``what`` was expected."""
    if kind == "an empty file":
        return "empty file"
    if kind == "a truncated or corrupt zip archive":
        return "truncated or corrupt: not a complete zip archive"
    return f"{kind}, not {what}"


def _require(path, what: str, required: Sequence[str], present: list, expected: str) -> None:
    missing = [name for name in required if name not in present]
    if missing:
        have = ", ".join(map(str, present)) or "none"
        raise ResultFileError(path, f"lacks {what}(s) {', '.join(missing)} (it has: {have})", expected)


def read_npz(path: str | os.PathLike, expected: str, keys: Sequence[str] = ()) -> FileArrays:
    """Every array of the .npz at ``path``, read now (``allow_pickle=False``), by name; ``keys`` must be among
    them. Raises FileNotFoundError or ResultFileError naming ``path`` and ``expected``."""
    with _opened(path, expected) as (handle, head):
        kind = _looks_like(head, handle)
        if kind != "a .npz archive":
            raise ResultFileError(path, _not(kind, "a .npz archive"), expected)
        try:
            with np.load(handle, allow_pickle=False) as npz:
                arrays = {key: npz[key] for key in npz.files}
        except ValueError as error:
            if "allow_pickle" in str(error):
                raise ResultFileError(path, "holds object arrays (pickled Python objects), which are never "
                                            "loaded", expected) from None
            raise ResultFileError(path, f"truncated or corrupt .npz archive: {_first_line(error)}",
                                  expected) from None
        except (zipfile.BadZipFile, EOFError, zlib.error, OSError, KeyError) as error:
            raise ResultFileError(path, f"truncated or corrupt .npz archive: {_first_line(error)}", expected) from None
    _require(path, "key", keys, sorted(arrays), expected)
    return FileArrays(arrays, path, expected)


def file_kind(path: str | os.PathLike, expected: str) -> str:
    """What the file at ``path`` is, by its first bytes, as a noun phrase: "a .npz archive", "a torch checkpoint",
    "text ('...')", "an empty file"... (a reader picks how to read it). FileNotFoundError or ResultFileError naming
    ``path`` and ``expected`` where it cannot be opened."""
    with _opened(path, expected) as (handle, head):
        return _looks_like(head, handle)


def read_npz_members(path: str | os.PathLike, expected: str, keys: Sequence[str],
                     read: Sequence[str]) -> dict[str, np.ndarray]:
    """The members ``read`` of the .npz at ``path``, which must hold ``keys``; no other member is decompressed
    (a check of a large file's small parts). Raises FileNotFoundError or ResultFileError naming ``path``."""
    with _opened(path, expected) as (handle, head):
        kind = _looks_like(head, handle)
        if kind != "a .npz archive":
            raise ResultFileError(path, _not(kind, "a .npz archive"), expected)
        try:
            with np.load(handle, allow_pickle=False) as npz:
                _require(path, "key", keys, sorted(npz.files), expected)
                return {key: npz[key] for key in read}
        except ResultFileError:
            raise
        except (ValueError, zipfile.BadZipFile, EOFError, zlib.error, OSError, KeyError) as error:
            raise ResultFileError(path, f"truncated or corrupt .npz archive: {_first_line(error)}", expected) from None


def read_checkpoint(
    path: str | os.PathLike, expected: str, keys: Sequence[str] = (), allowed_globals: Sequence[Any] = ()
) -> dict[str, Any]:
    """The dict saved by ``torch.save`` at ``path``, loaded on the CPU with ``weights_only=True`` (tensors,
    containers and primitives only; ``allowed_globals`` adds classes or functions, for this call alone);
    ``keys`` must be among its keys. Raises FileNotFoundError or ResultFileError naming ``path``."""
    import torch

    with _opened(path, expected) as (handle, head):
        kind = _looks_like(head, handle)
        if kind not in ("a torch checkpoint", "a torch checkpoint (legacy format)"):
            problem = _not(kind, "a torch checkpoint")
            if kind == "a Python pickle":
                problem += "; plain pickles are never loaded"
            raise ResultFileError(path, problem, expected)
        try:
            with torch.serialization.safe_globals(list(allowed_globals)):
                state = torch.load(handle, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as error:
            refused = re.search(r"Unsupported global: GLOBAL (\S+)", str(error))
            if refused:
                problem = (f"holds Python objects ({refused.group(1)}) that weights_only loading refuses; "
                           "only tensors, containers and primitives are loaded from a checkpoint")
            else:  # torch's first lines suggest weights_only=False; the unpickler's own words are after these
                detail = re.search(r"WeightsUnpickler error:\s*(\S[^\n]*)", str(error))
                detail = detail.group(1) if detail else "unpickling failed"
                problem = f"truncated or corrupt torch checkpoint: {detail}"
            raise ResultFileError(path, problem, expected) from None
        except (RuntimeError, OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile) as error:
            raise ResultFileError(path, f"truncated or corrupt torch checkpoint: {_first_line(error)}",
                                  expected) from None
    if not isinstance(state, dict):
        raise ResultFileError(path, f"holds a {type(state).__name__}, not a dict", expected)
    _require(path, "key", keys, list(state), expected)
    return state


def read_csv(path: str | os.PathLike, expected: str, columns: Sequence[str] = ()):
    """The CSV at ``path`` as a pandas DataFrame; ``columns`` must be among its columns. An empty, binary,
    malformed or truncated file (its last line cut short) raises ResultFileError naming ``path``."""
    import pandas as pd

    with _opened(path, expected) as (handle, head):
        kind = _looks_like(head, handle)
        if not kind.startswith("text"):
            raise ResultFileError(path, _not(kind, "CSV text"), expected)
        data = handle.read()
    try:
        text = data.decode("utf-8")
        frame = pd.read_csv(io.StringIO(text))
    except pd.errors.EmptyDataError:
        raise ResultFileError(path, "no header line (blank lines only)", expected) from None
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise ResultFileError(path, f"malformed or truncated CSV: {_first_line(error)}", expected) from None
    if not text.endswith(("\n", "\r")):
        # pandas pads a short last line with NaN; a line cut short (no newline, too few fields) is truncation.
        try:
            rows = [row for row in csv.reader(io.StringIO(text)) if row]
        except csv.Error as error:
            raise ResultFileError(path, f"malformed or truncated CSV: {_first_line(error)}", expected) from None
        if len(rows) > 1 and len(rows[-1]) < len(rows[0]):
            raise ResultFileError(path, f"truncated: its last line has {len(rows[-1])} of {len(rows[0])} fields "
                                        "and no line end", expected)
    _require(path, "column", columns, list(frame.columns), expected)
    return frame


def state_dict_mismatch(model, state: Any, keys: Iterable[str] | None = None) -> str | None:
    """How the state dict ``state`` does not fit ``model``, or None: it must hold every entry of the model's own
    state dict (or of ``keys``, a part of it), no other, each a tensor of the model's shape. Said in a few words:
    the first mismatch in the model's order (then keys the model lacks) and how many more there are, instead of
    torch's RuntimeError listing every mismatch over many lines."""
    import torch

    if not isinstance(state, dict):
        return f"they are a {type(state).__name__}, not a dict of tensors"
    own = model.state_dict()
    part = None if keys is None else set(keys)
    wanted = [key for key in own if part is None or key in part]
    problems = []
    for key in wanted:
        if key not in state:
            problems.append(f"it lacks {key!r}")
        elif not isinstance(state[key], torch.Tensor):
            problems.append(f"its {key!r} is not a tensor ({type(state[key]).__name__})")
        elif tuple(state[key].shape) != tuple(own[key].shape):
            problems.append(f"its {key!r} has shape {tuple(state[key].shape)}, the model's {tuple(own[key].shape)}")
    wanted_set = set(wanted)
    problems += [f"it has {key!r}, which the model does not" for key in state if key not in wanted_set]
    if not problems:
        return None
    return problems[0] + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")


def load_state_dict(model, state: Any, path: str | os.PathLike, expected: str,
                    keys: Iterable[str] | None = None) -> None:
    """Load ``state``, a state dict read from ``path``, into ``model`` (``keys``: a part of the model's entries,
    the rest keep their values). Weights that do not fit (:func:`state_dict_mismatch`) raise ResultFileError
    naming ``path`` and the first mismatch."""
    problem = state_dict_mismatch(model, state, keys)
    if problem:
        raise ResultFileError(path, f"its weights do not fit the model: {problem}", expected)
    model.load_state_dict(state, strict=keys is None)

