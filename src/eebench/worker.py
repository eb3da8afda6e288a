"""A local fork server for the ``eebench`` command line, so that a pipeline job pays no import time.

Why: every Snakemake job is a process start, and importing torch, numpy, pandas, scikit-learn and matplotlib costs
1.3-1.8 s on a 2-core laptop: more than the epochs of many miniature trainings, and the whole work of a metrics
or rendering job. Under local execution (``snakemake --cores N``) the Snakefile starts one server per Snakemake
run (:func:`start`), which imports them once. Each job's ``eebench`` process (:func:`delegate`, called by
``eebench.cli.main``) then connects, hands the server its arguments, working directory, environment and its
stdin/stdout/stderr (file descriptors, over a Unix socket), and the server forks a child that runs the command as
the process itself would have, in that directory, with that environment and those files, and sends back its exit
status. The job's process waits for it and forwards the signals it gets (Snakemake's cancel, SLURM-style
preemption) to the child; a child whose job process disappears (SIGKILL) kills itself the same way.

The results are identical: the child is a fork of a process that only imported modules and used no thread pool
(the server starts with every BLAS/OpenMP pool at one thread, as Snakemake starts a one-thread job), and it sets
torch's and the BLAS libraries' pools to the job's ``OMP_NUM_THREADS`` as a fresh process would read it; every
command seeds what it draws. ``tests/test_worker.py`` checks a training run's model and logits bit for bit.

Never under SLURM (``SLURM_JOB_ID`` set: the job's resources are its allocation's, so it runs in its own process)
nor in a torchrun worker,
never for another Python or another copy of the package than the server's, and never when the server cannot be
reached (not started yet, ``EEBENCH_WORKER=off``, ``--no-hooks``): the command then simply runs in its own process.
What the server cannot give a job: Snakemake's ``benchmark:`` files then measure the job's own small process, so
their wall time is the job's but their memory and CPU columns are not (``EEBENCH_WORKER=off`` to profile memory);
and code edited while a run is going on reaches that run's jobs only at the next Snakemake run.
"""
from __future__ import annotations

import argparse
import array
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import traceback
from pathlib import Path
from typing import Any, Callable

SOCKET_VARIABLE = "EEBENCH_WORKER"  # the server's socket; "off" (or "0", "no", "false") keeps every job in-process
OFF = ("off", "0", "no", "false")
# What a one-thread Snakemake job gets (snakemake/shell.py sets these to the job's threads): the server imports with
# them at one, so no library starts a thread pool before the fork.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "GOTO_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1)
# What the commands import lazily: imported once by the server, so a forked child finds them loaded.
PRELOADED = ("torch", "numpy", "pandas", "scipy.stats", "sklearn.metrics", "eebench.steps", "eebench.metrics",
             "eebench.exits.sweep", "eebench.analysis.layers", "eebench.analysis.checkpoint",
             "eebench.render.tables", "eebench.render.figures", "eebench.render.budget_tables",
             "eebench.render.curves", "eebench.render.analysis_figures", "eebench.render.paper", "eebench.readings",
             "eebench.config", "eebench.data")
_HEADER = struct.Struct("!I")
_MAX_REQUEST = 1 << 24


def _identity() -> dict[str, str]:
    """Which Python and which copy of the package: a job is served only by a server with the same."""
    import eebench

    return {"python": os.path.realpath(sys.executable), "package": os.path.realpath(os.path.dirname(eebench.__file__))}


def _send_message(sock: socket.socket, message: dict[str, Any], fds: tuple[int, ...] = ()) -> None:
    payload = json.dumps(message).encode()
    data = _HEADER.pack(len(payload)) + payload
    if fds:
        sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
    else:
        sock.sendall(data)


def _receive_exactly(sock: socket.socket, size: int, fds: list[int] | None = None) -> bytes:
    chunks, received = [], 0
    while received < size:
        if fds is not None and not fds:
            data, ancillary, _, _ = sock.recvmsg(size - received, socket.CMSG_SPACE(3 * array.array("i").itemsize))
            for level, kind, payload in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.extend(array.array("i", payload[:len(payload) - len(payload) % array.array("i").itemsize]))
        else:
            data = sock.recv(size - received)
        if not data:
            raise EOFError("the connection closed")
        chunks.append(data)
        received += len(data)
    return b"".join(chunks)


def _receive_message(sock: socket.socket, fds: list[int] | None = None) -> dict[str, Any]:
    (size,) = _HEADER.unpack(_receive_exactly(sock, _HEADER.size, fds))
    if size > _MAX_REQUEST:
        raise ValueError(f"a message of {size} bytes")
    return json.loads(_receive_exactly(sock, size))


# The job's side ---------------------------------------------------------------------------------------------------


def delegate(argv: list[str]) -> int | None:
    """Run ``eebench *argv`` in the server's fork and return its exit status; None where no server takes it (the
    caller then runs the command itself)."""
    path = os.environ.get(SOCKET_VARIABLE, "")
    if not path or path.lower() in OFF or os.environ.get("SLURM_JOB_ID") or os.environ.get("WORLD_SIZE"):
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(5.0)
        sock.connect(path)
        # No timeout once the request is sent: a slow reply must not make the job run twice.
        sock.settimeout(None)
        _send_message(sock, {"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ), **_identity()}, (0, 1, 2))
        reply = _receive_message(sock)
    except (OSError, EOFError, ValueError):
        sock.close()
        return None  # no server (yet), or it went away before taking the job: nothing ran
    if "pid" not in reply:
        sock.close()
        return None  # refused (another Python or package): run here
    child = int(reply["pid"])

    forwarded = []

    def forward(signum, _frame):
        forwarded.append(signum)
        try:
            os.kill(child, signum)
        except ProcessLookupError:
            pass

    previous = {signum: signal.signal(signum, forward) for signum in FORWARDED_SIGNALS}
    try:
        while True:
            try:
                return int(_receive_message(sock)["exit"])
            except InterruptedError:
                continue
            except (OSError, EOFError, ValueError, KeyError):
                if forwarded:  # it ended by the signal this process was sent: exit as the shell reports that
                    return 128 + forwarded[-1]
                print(f"eebench: the command's process (pid {child}) ended without an exit status "
                      "(killed by a signal?)", file=sys.stderr)
                return 1
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        sock.close()


# The server's side ------------------------------------------------------------------------------------------------


def _run_child(conn: socket.socket, request: dict[str, Any], fds: list[int],
               run: Callable[[list[str]], int]) -> None:
    """In the forked child: become the job's process, run the command, report its status, exit."""
    status = 1
    try:
        _send_message(conn, {"pid": os.getpid()})  # first: from here on the job is this process's, ran or not
        for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for target, fd in zip((0, 1, 2), fds):
            os.dup2(fd, target)
        for fd in fds:
            if fd > 2:
                os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = ["eebench", *request["argv"]]
        _apply_thread_limits()
        threading.Thread(target=_die_with_job, args=(conn,), daemon=True).start()
        status = run(list(request["argv"]))
    except SystemExit as exit_:
        status = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        if not isinstance(exit_.code, (int, type(None))):
            print(exit_.code, file=sys.stderr)
    except BaseException:  # the child must report and exit whatever happened, as an uncaught error would
        traceback.print_exc()
        status = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        try:
            _send_message(conn, {"exit": int(status)})
        except OSError:
            pass
        os._exit(int(status) & 0xFF)


def _apply_thread_limits() -> None:
    """The job's thread pools as a fresh process would size them from its environment (the server imported with
    every pool at one thread)."""
    threads = os.environ.get("OMP_NUM_THREADS", "")
    if not threads.isdigit() or int(threads) < 1:
        return
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(int(threads))
    if int(threads) > 1:
        threadpool_limits(int(threads))


def _die_with_job(conn: socket.socket) -> None:
    """The job's process sends nothing after the request: end of file means it is gone (killed), and so is this."""
    try:
        while conn.recv(1):
            pass
    except OSError:
        pass
    os.kill(os.getpid(), signal.SIGKILL)


def serve(path: str, parent: int | None = None, run: Callable[[list[str]], int] | str = "eebench.cli:run") -> None:
    """Listen on ``path`` and fork a child per job, which runs ``run(argv)``, until SIGTERM, or until the process
    ``parent`` (the Snakemake run) is gone. ``run`` named as ``"module:function"`` (the command line's, as its
    starter names it: this module knows no command) is imported with what the commands use, before any job; a
    callable (a test's stand-in) is used as it is."""
    if isinstance(run, str):
        import importlib

        module, _, function = run.partition(":")
        run = getattr(importlib.import_module(module), function)
        for module in PRELOADED:
            importlib.import_module(module)
        import matplotlib

        matplotlib.use("Agg")
    identity = _identity()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel; their jobs wait on them
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's ^C is Snakemake's to act on, and it stops us
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    try:
        while not stopping and (parent is None or _alive(parent)):
            try:
                ready, _, _ = select.select([listener], [], [], 1.0)
            except InterruptedError:
                continue
            if not ready:
                continue
            conn, _ = listener.accept()
            fds: list[int] = []
            try:
                conn.settimeout(5.0)
                request = _receive_message(conn, fds)
                if len(fds) != 3 or any(request.get(key) != value for key, value in identity.items()):
                    _send_message(conn, {"refused": "another Python or another copy of eebench"})
                    print(f"eebench worker: refused a job of {request.get('python')} with {request.get('package')}",
                          flush=True)
                    continue
                conn.settimeout(None)
                sys.stdout.flush()
                sys.stderr.flush()
                child = os.fork()
                if child == 0:
                    listener.close()
                    _run_child(conn, request, fds, run)
                print(f"eebench worker: pid {child} runs eebench {' '.join(request['argv'])}", flush=True)
            except (OSError, EOFError, ValueError) as error:
                print(f"eebench worker: a request failed: {error}", file=sys.stderr, flush=True)
            finally:
                conn.close()
                for fd in fds:
                    os.close(fd)
    finally:
        listener.close()
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def _alive(parent: int) -> bool:
    return os.getppid() == parent  # once the parent is gone, the process is re-parented (to init or a subreaper)


# Starting and stopping it from a Snakemake run ---------------------------------------------------------------------


class Server:
    """A started server: its process and socket (``stop`` ends it; jobs already running finish)."""

    def __init__(self, process: subprocess.Popen, directory: str, path: str) -> None:
        self.process, self.directory, self.path = process, directory, path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        for leftover in Path(self.directory).glob("*"):
            leftover.unlink(missing_ok=True)
        Path(self.directory).rmdir()


def start(log: str | os.PathLike | None = None, run: str = "eebench.cli:run") -> Server | None:
    """Start a server for this process's jobs, running ``run`` ("module:function") for each, and point them at it (``EEBENCH_WORKER`` in os.environ, which
    Snakemake's shell jobs inherit). It imports in the background: jobs that start before it listens run in their
    own process. None where the environment says off."""
    if os.environ.get(SOCKET_VARIABLE, "").lower() in OFF:
        return None
    directory = tempfile.mkdtemp(prefix="eebench-worker-")  # short: a socket's path has at most 107 bytes
    path = os.path.join(directory, "socket")
    environment = {**os.environ, **{name: "1" for name in THREAD_VARIABLES}}
    environment.pop(SOCKET_VARIABLE, None)
    output = open(log, "ab") if log else subprocess.DEVNULL
    try:
        process = subprocess.Popen([sys.executable, "-m", "eebench.worker", "--socket", path,
                                    "--parent", str(os.getpid()), "--run", run], env=environment, stdin=subprocess.DEVNULL,
                                   stdout=output, stderr=output)
    finally:
        if log:
            output.close()
    os.environ[SOCKET_VARIABLE] = path
    return Server(process, directory, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eebench.worker", description=__doc__.split("\n\n")[0])
    parser.add_argument("--socket", required=True, help="the Unix socket to listen on")
    parser.add_argument("--parent", type=int, default=None, help="exit once this process is gone")
    parser.add_argument("--run", default="eebench.cli:run", help="module:function that runs a job's argv")
    args = parser.parse_args(argv)
    serve(args.socket, args.parent, args.run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
