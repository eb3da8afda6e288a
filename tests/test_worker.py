"""The local fork server (eebench.worker): a job handed to it prints, writes and exits as in its own process, its
training is bit-identical, signals reach it, and anything unusual runs the job in its own process instead."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from eebench import worker

EEBENCH = str(Path(sys.executable).parent / "eebench")
MODEL = json.dumps({"backbone": "cnn", "params": {"widths": [8, 16], "strides": [1, 2]}})
TRAINING = json.dumps({"batch_size": 64, "max_epochs": 2, "patience": 2})


def wait_for(condition, what, seconds=60.0):
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {seconds} s for {what}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A real server, as the Snakefile starts one; its socket is passed to each job explicitly (never left in
    this process's environment, where other tests' subprocesses would find it)."""
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    before = os.environ.get(worker.SOCKET_VARIABLE)
    started = worker.start(log=log)
    if before is None:
        os.environ.pop(worker.SOCKET_VARIABLE)
    else:
        os.environ[worker.SOCKET_VARIABLE] = before
    wait_for(lambda: os.path.exists(started.path), "the server to listen")
    started.log = log
    yield started
    started.stop()
    assert not os.path.exists(started.directory)


def job_environment(socket_path, **extra):
    environment = {key: value for key, value in os.environ.items()
                   if key not in (worker.SOCKET_VARIABLE, "SLURM_JOB_ID", "WORLD_SIZE")}
    return {**environment, "OMP_NUM_THREADS": "1", worker.SOCKET_VARIABLE: socket_path, **extra}


def eebench(*args, env, cwd=None):
    return subprocess.run([EEBENCH, *map(str, args)], capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


def served_jobs(server):
    return [line for line in server.log.read_text().splitlines() if " runs eebench " in line]


def test_a_command_prints_and_exits_through_the_server_as_in_its_own_process(server, tmp_path):
    before = len(served_jobs(server))
    for args, status in ((["paper-numbers", "B Table 10"], 0), (["paper-numbers", "B Table 99"], 2)):
        own = eebench(*args, env=job_environment("off"))
        served = eebench(*args, env=job_environment(server.path), cwd=tmp_path)
        assert (served.returncode, served.stdout, served.stderr) == (status, own.stdout, own.stderr)
        assert (own.stdout if status == 0 else own.stderr).strip()
    assert len(served_jobs(server)) == before + 2


def test_a_served_job_has_its_working_directory_and_files(server, tmp_path):
    """A relative path resolves in the job's directory, and its stdout is the job's (a shell redirect)."""
    with open(tmp_path / "stdout.txt", "w") as stdout:
        status = subprocess.run([EEBENCH, "readings", "--format", "markdown", "--out", "readings.md"],
                                stdout=stdout, cwd=tmp_path, env=job_environment(server.path), timeout=300)
        listed = subprocess.run([EEBENCH, "paper-numbers", "--list"], stdout=stdout, cwd=tmp_path,
                                env=job_environment(server.path), timeout=300)
    assert status.returncode == 0 and listed.returncode == 0
    own = eebench("readings", "--format", "markdown", env=job_environment("off")).stdout
    assert (tmp_path / "readings.md").read_text() == own
    assert (tmp_path / "stdout.txt").read_text().startswith("table,values\n")
    assert any("paper-numbers --list" in line for line in served_jobs(server))


def test_training_through_the_server_is_bit_identical(server, tmp_path):
    data = tmp_path / "digits.npz"
    assert eebench("prepare-data", "--dataset", "digits", "--params", '{"split_seed": 0}', "--out", data,
                   env=job_environment("off")).returncode == 0
    results = {}
    for name, socket_path in (("own", "off"), ("served", server.path)):
        out = tmp_path / name
        done = eebench("train", "--data", data, "--model", MODEL, "--training", TRAINING, "--regime", "mixed",
                       "--seed", 0, "--threads", 1, "--out", out / "model.pt", "--logits", out / "logits.npz",
                       env=job_environment(socket_path))
        assert done.returncode == 0, done.stderr[-3000:]
        with np.load(out / "logits.npz") as npz:
            logits = {key: npz[key] for key in npz.files}
        results[name] = logits, torch.load(out / "model.pt", weights_only=True)["state_dict"]
    (own_logits, own_state), (served_logits, served_state) = results["own"], results["served"]
    assert own_logits.keys() == served_logits.keys()
    for key in own_logits:
        assert np.array_equal(own_logits[key], served_logits[key]), key
    assert own_state.keys() == served_state.keys()
    assert all(torch.equal(own_state[key], served_state[key]) for key in own_state)
    assert any("train --data" in line for line in served_jobs(server))


# Signals, with a server whose command writes its pid and sleeps ---------------------------------------------------

SLEEPING_SERVER = textwrap.dedent("""
    import os, sys, time
    from eebench import worker

    def sleep(argv):
        with open(argv[0] + ".tmp", "w") as file:
            file.write(str(os.getpid()))
        os.rename(argv[0] + ".tmp", argv[0])
        time.sleep(120)
        return 0

    worker.serve(sys.argv[1], run=sleep)
""")


@pytest.fixture
def sleeping_server(tmp_path):
    path = str(tmp_path / "socket")
    process = subprocess.Popen([sys.executable, "-c", SLEEPING_SERVER, path])
    wait_for(lambda: os.path.exists(path), "the server to listen")
    yield path
    process.terminate()
    process.wait(timeout=30)
    assert not os.path.exists(path)  # it removes its socket when it stops


def gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def start_sleeping_job(socket_path, pid_file):
    job = subprocess.Popen([EEBENCH, str(pid_file)], env=job_environment(socket_path))
    wait_for(pid_file.exists, "the command to start")
    child = int(pid_file.read_text())
    assert child != job.pid  # it runs in the server's fork, not in the job's process
    return job, child


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_the_job_reaches_the_command_and_its_status(sleeping_server, tmp_path, signum):
    job, child = start_sleeping_job(sleeping_server, tmp_path / "pid")
    job.send_signal(signum)
    # SIGTERM kills the sleeping command; SIGINT raises KeyboardInterrupt in it, reported as status 1.
    assert job.wait(timeout=30) == (128 + signal.SIGTERM if signum == signal.SIGTERM else 1)
    wait_for(lambda: gone(child), "the command to end")


def test_a_killed_job_takes_its_command_with_it(sleeping_server, tmp_path):
    job, child = start_sleeping_job(sleeping_server, tmp_path / "pid")
    job.kill()
    job.wait(timeout=30)
    wait_for(lambda: gone(child), "the command of a SIGKILLed job to end", seconds=30)


# When a job runs in its own process instead -----------------------------------------------------------------------


@pytest.mark.parametrize("environment", [
    {},
    {worker.SOCKET_VARIABLE: "off"},
    {worker.SOCKET_VARIABLE: "/nonexistent/socket"},
    {"SLURM_JOB_ID": "17"},  # a SLURM job runs in its allocation
    {"WORLD_SIZE": "2"},  # a torchrun worker is its own process
])
def test_no_server_to_hand_to_means_the_job_runs_itself(server, monkeypatch, environment):
    monkeypatch.delenv(worker.SOCKET_VARIABLE, raising=False)
    if environment.get("SLURM_JOB_ID") or environment.get("WORLD_SIZE"):
        environment = {worker.SOCKET_VARIABLE: server.path, **environment}
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    before = len(served_jobs(server))
    assert worker.delegate(["paper-numbers", "--list"]) is None
    assert len(served_jobs(server)) == before


def test_a_server_of_another_package_copy_refuses_and_the_job_runs_itself(server, monkeypatch):
    monkeypatch.setenv(worker.SOCKET_VARIABLE, server.path)
    monkeypatch.setattr(worker, "_identity", lambda: {"python": sys.executable, "package": "/elsewhere/eebench"})
    assert worker.delegate(["paper-numbers", "--list"]) is None
    wait_for(lambda: "refused a job" in server.log.read_text() and "/elsewhere/eebench" in server.log.read_text(),
             "the refusal in the server's log", seconds=10)


def test_start_does_nothing_when_the_environment_says_off(monkeypatch):
    monkeypatch.setenv(worker.SOCKET_VARIABLE, "off")
    assert worker.start() is None


def test_the_server_ends_with_its_snakemake_run(tmp_path):
    """Started by a process that then dies (a SIGKILLed Snakemake), it stops listening and removes its socket."""
    path = tmp_path / "socket"
    parent = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import os, subprocess, sys, time
        server = subprocess.Popen([sys.executable, "-m", "eebench.worker", "--socket", {str(path)!r}, "--run", "eebench.cli:run",
                                   "--parent", str(os.getpid())])
        print(server.pid, flush=True)
        while not os.path.exists({str(path)!r}):
            time.sleep(0.05)
    """)], stdout=subprocess.PIPE, text=True)
    server_pid = int(parent.stdout.readline())
    assert parent.wait(timeout=120) == 0
    wait_for(lambda: gone(server_pid) or open(f"/proc/{server_pid}/stat").read().split()[2] == "Z",
             "the orphaned server to exit", seconds=30)
    assert not path.exists()
