"""CIFAR's python batches, read with an unpickler that builds only dicts, lists, bytes, str, numbers and numpy
arrays (``read_pickle``): a pickle names the functions it calls, so a crafted file could run anything on load."""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

from eebench.io import ResultFileError

# CIFAR's python batches are dicts of lists, bytes, str, numbers and numpy arrays. The first five need no global;
# numpy arrays need the functions and classes that rebuild them, as pickled by the official files (Python 2's
# numpy, protocol 2) or by any numpy since (protocols 2-5): these, looked up here rather than imported by name.
_RECONSTRUCT = np.ndarray(0).__reduce__()[0]  # numpy(._)core.multiarray._reconstruct
_SCALAR = np.float64(0).__reduce__()[0]  # numpy(._)core.multiarray.scalar: a numpy number
_FROMBUFFER = np.zeros(1).__reduce_ex__(5)[0]  # numpy(._)core.numeric._frombuffer: an array at protocol 5


class _Refused(pickle.UnpicklingError):
    """A global outside ``PICKLE_GLOBALS``: its dotted name."""


def _latin1(text: str, encoding: str) -> bytes:
    """What a bytes object pickled by Python 3 at protocol 2 calls (``_codecs.encode(text, "latin1")``), and
    nothing else of ``codecs.encode``, whose codecs are looked up by name."""
    if encoding != "latin1":
        raise _Refused(f"_codecs.encode with the codec {encoding!r}")
    return text.encode("latin1")


PICKLE_GLOBALS: dict[tuple[str, str], Any] = {
    **{(f"{core}.multiarray", "_reconstruct"): _RECONSTRUCT for core in ("numpy.core", "numpy._core")},
    **{(f"{core}.multiarray", "scalar"): _SCALAR for core in ("numpy.core", "numpy._core")},
    **{(f"{core}.numeric", "_frombuffer"): _FROMBUFFER for core in ("numpy.core", "numpy._core")},
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1,
}
CIFAR_PICKLE = ("one of CIFAR's python batches, built of dicts, lists, bytes, str, numbers and numpy arrays "
                "only")


class _CifarUnpickler(pickle.Unpickler):
    """Builds only what ``PICKLE_GLOBALS`` lists: any other global (a class, ``os.system``, ``eval``...) stops
    the load before anything is called."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return PICKLE_GLOBALS[module, name]
        except KeyError:
            raise _Refused(f"{module}.{name}") from None


def read_pickle(path: Path, keys: tuple[bytes, ...] = ()) -> dict[bytes, Any]:
    """The dict of a CIFAR python batch (``encoding="bytes"``: Python 2's str become bytes), read with an
    unpickler that builds only dicts, lists, bytes, str, numbers and numpy arrays; ``keys`` must be among its
    keys. Anything else (a crafted or foreign pickle, a truncated file) is a ResultFileError naming ``path``,
    and nothing in the file is run."""
    try:
        with open(path, "rb") as handle:
            content = _CifarUnpickler(handle, encoding="bytes").load()
    except _Refused as refused:
        raise ResultFileError(path, f"refuses to unpickle {refused}: unpickling it could run code",
                              CIFAR_PICKLE) from None
    except FileNotFoundError:
        raise
    except OSError as error:
        raise ResultFileError(path, f"cannot be read ({error.strerror or error})", CIFAR_PICKLE) from None
    except Exception as error:  # whatever a corrupt pickle raises, the file is not a batch
        detail = next((line.strip() for line in str(error).splitlines() if line.strip()), type(error).__name__)
        raise ResultFileError(path, f"truncated or corrupt python pickle: {detail}", CIFAR_PICKLE) from None
    if not isinstance(content, dict):
        raise ResultFileError(path, f"holds a {type(content).__name__}, not a dict", CIFAR_PICKLE)
    missing_keys = [key for key in keys if key not in content]
    if missing_keys:
        have = ", ".join(map(repr, content)) or "none"
        raise ResultFileError(path, f"lacks key(s) {', '.join(map(repr, missing_keys))} (it has: {have})",
                              CIFAR_PICKLE)
    return content
