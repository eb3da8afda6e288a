"""Installing what a test fixture needs with Debian's apt-get: the one helper of tests/latex.py (LaTeX) and
tests/slurm/cluster.py (SLURM and munge).

``apt-get install -y --no-install-recommends`` the packages when something is missing; on failure (a fresh
machine's package lists are often absent or stale) ``apt-get update`` and once more. Needs root and apt-get:
:func:`cannot_install` says why not, for the fixture's skip reason; a failed install raises :class:`AptError`,
whose message is one line.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from typing import Callable, Iterable, Sequence


class AptError(RuntimeError):
    """apt-get could not install the packages; the message is one line."""


def missing(binaries: Iterable[str], search: Sequence[str] = ()) -> list[str]:
    """The binaries found neither on PATH nor in ``search`` (more directories, e.g. /usr/sbin for daemons)."""
    path = os.pathsep.join([os.environ.get("PATH", ""), *search])
    return [name for name in binaries if shutil.which(name, path=path) is None]


def cannot_install() -> str | None:
    """Why apt-get cannot install packages here (the end of a skip reason), or None."""
    if os.name != "posix" or os.geteuid() != 0:
        return "installing it needs root (apt-get)"
    if shutil.which("apt-get") is None:
        return "there is no apt-get"
    return None


def install(packages: Sequence[str], still_missing: Callable[[], list[str]], log: Callable[[str], object] = print
            ) -> None:
    """apt-get install ``packages`` if ``still_missing()`` names anything (apt-get update and retry on failure).
    Raises AptError if apt-get fails or something is still missing afterwards."""
    if not still_missing():
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages]
    log(f"installing {' '.join(packages)} ...")
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, text=True)
        result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise AptError(f"apt-get install {' '.join(packages)} failed (exit {result.returncode}): "
                       f"{_last_error(result.stderr + result.stdout)}")
    absent = still_missing()
    if absent:
        raise AptError(f"apt-get installed {' '.join(packages)}, but {', '.join(absent)} still missing")


def _last_error(output: str) -> str:
    """apt-get's last "E: ..." line (its reason), else its last non-empty line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("E:")]
    return (errors or lines or ["no output"])[-1]
