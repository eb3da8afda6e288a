"""A real single-node SLURM cluster on this machine, for tests/slurm and by hand.

    python tests/slurm/cluster.py start     # install (apt) if needed, configure, start, wait for an idle node
    python tests/slurm/cluster.py status
    python tests/slurm/cluster.py stop      # stop exactly the daemons `start` started, by pid

Needs root (daemons, /etc/slurm, apt). What it does, in order:

- installs Debian's ``slurmctld slurmd slurm-client munge`` with apt-get when a binary is missing;
- writes a minimal ``/etc/slurm/slurm.conf`` and ``gres.conf`` for one node, ``localhost``: linuxproc
  process tracking and no task plugin (cgroups do not work in a sandbox), cons_tres selection, one GPU
  whose device file is /dev/null (GPU jobs are scheduled and then run on the CPU), no accounting storage
  (so the Snakemake plugin must poll with ``squeue``), MinJobAge 600 s (finished jobs stay visible to
  ``scontrol show job`` and ``squeue``). The files must be at the default path: the plugin's job step runs
  ``srun`` with every ``SLURM_*`` variable removed, so ``SLURM_CONF`` would not reach it. An existing
  slurm.conf that this module did not write is never touched (``start`` refuses);
- creates the munge key if there is none, starts ``munged`` as the munge user unless a munged answers
  already, then ``slurmctld`` and ``slurmd`` with their state, spool, logs and pid files in ``STATE_DIR``;
- records the pid of every daemon it started in ``STATE_DIR/pids.json``; ``stop`` cancels the cluster's
  jobs, terminates those pids (after checking each still runs the same program), waits for them to exit
  and removes the configuration files it wrote.
"""
from __future__ import annotations

import argparse
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

if not __package__:  # run as a script (python tests/slurm/cluster.py): tests.apt is found from the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests import apt  # noqa: E402

PACKAGES = ("slurmctld", "slurmd", "slurm-client", "munge")
BINARIES = ("slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scontrol", "munged", "munge")
CONF_DIR = Path("/etc/slurm")
MARKER = "# Written by eebench tests/slurm/cluster.py; removed by `cluster.py stop`."
STATE_DIR = Path(os.environ.get("EEBENCH_SLURM_STATE", "/tmp/eebench-slurm"))
MUNGE_KEY = Path("/etc/munge/munge.key")
MUNGE_PID = Path("/run/munge/munged.pid")
SBIN = ("/usr/sbin", "/sbin", "/usr/bin")
# One cluster per machine (fixed /etc/slurm, ports): test sessions take turns through this lock.
LOCK = Path("/tmp/eebench-slurm.lock")
PARTITION = "debug"


class ClusterError(RuntimeError):
    pass


def which(name: str) -> str | None:
    return shutil.which(name, path=os.pathsep.join([os.environ.get("PATH", ""), *SBIN]))


def missing_binaries() -> list[str]:
    return apt.missing(BINARIES, SBIN)


def unavailable_reason() -> str | None:
    """Why a cluster cannot be started here, or None. Meant for pytest.skip."""
    if os.name != "posix" or os.geteuid() != 0:
        return "a local SLURM cluster needs root (daemons, /etc/slurm, apt-get)"
    why = apt.cannot_install() if missing_binaries() else None
    if why:
        return f"SLURM is not installed ({', '.join(missing_binaries())} missing) and {why}"
    conf = CONF_DIR / "slurm.conf"
    if conf.exists() and MARKER not in conf.read_text(errors="replace"):
        return f"{conf} exists and was not written by tests/slurm/cluster.py; not touching a real cluster"
    return None


def install(log=print) -> None:
    """apt-get install the SLURM and munge packages if any binary is missing (tests/apt.py: apt-get update and
    retry on failure)."""
    try:
        apt.install(PACKAGES, missing_binaries, log)
    except apt.AptError as error:
        raise ClusterError(str(error)) from None


@contextmanager
def exclusive(timeout: float = 1800.0, log=print):
    """Hold ``LOCK`` for the life of a cluster; waits while another session (e.g. a parallel pytest) holds it."""
    fd = os.open(LOCK, os.O_CREAT | os.O_RDWR, 0o666)
    try:
        deadline, told = time.monotonic() + timeout, False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ClusterError(f"another session held {LOCK} for {timeout:.0f} s") from None
                if not told:
                    log(f"waiting for another session's SLURM cluster to stop ({LOCK}) ...")
                    told = True
                time.sleep(1)
        yield
    finally:
        os.close(fd)  # releases the lock


def lock_is_free() -> bool:
    fd = os.open(LOCK, os.O_CREAT | os.O_RDWR, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def machine_memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    raise ClusterError("no MemTotal in /proc/meminfo")


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_pair(preferred: int = 6817) -> tuple[int, int]:
    """Two consecutive free ports for slurmctld and slurmd, preferring SLURM's defaults."""
    for base in (preferred, *range(16817, 17817, 2)):
        if port_is_free(base) and port_is_free(base + 1):
            return base, base + 1
    raise ClusterError("no free port pair for slurmctld/slurmd")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is as good as gone.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def pid_runs(pid: int, program: str) -> bool:
    """True if ``pid`` is alive and its command line names ``program`` (guards against a recycled pid)."""
    if not pid_alive(pid):
        return False
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
    except OSError:
        return False
    return Path(argv0).name == program


def read_pid(path: Path, timeout: float = 15.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            text = path.read_text().strip()
            if text:
                return int(text)
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    raise ClusterError(f"no pid file {path} after {timeout:.0f} s")


@dataclass
class Cluster:
    """One node, ``localhost``, in partition ``debug``. ``cpus`` / ``memory_mb`` default to the machine's
    (memory minus 1 GB). ``oversized=True`` lets the node claim more than the hardware has
    (``SlurmdParameters=config_overrides``), so that paper-scale requests (8 CPUs, 32 GB) can be scheduled
    on a small machine; nothing enforces the limits here (no cgroups), jobs just share the real cores."""

    state_dir: Path = STATE_DIR
    cpus: int | None = None
    memory_mb: int | None = None
    gpus: int = 1
    oversized: bool = False
    min_job_age: int = 600
    extra_partitions: tuple[str, ...] = ()  # more partitions on the same node, besides the default `debug`

    def __post_init__(self) -> None:
        self.state_dir = Path(self.state_dir)
        self.cpus = self.cpus or os.cpu_count() or 1
        self.memory_mb = self.memory_mb or max(machine_memory_mb() - 1024, 500)
        self.pid_file = self.state_dir / "pids.json"

    # --- configuration -------------------------------------------------------------------------------

    def slurm_conf(self, ctld_port: int, slurmd_port: int) -> str:
        s = self.state_dir
        lines = [
            MARKER,
            f"# State, logs and pid files: {s}",
            "ClusterName=eebench",
            "SlurmctldHost=localhost",
            f"SlurmctldPort={ctld_port}",
            f"SlurmdPort={slurmd_port}",
            "SlurmUser=root",
            "AuthType=auth/munge",
            f"StateSaveLocation={s}/ctld",
            f"SlurmdSpoolDir={s}/spool",
            f"SlurmctldPidFile={s}/slurmctld.pid",
            f"SlurmdPidFile={s}/slurmd.pid",
            f"SlurmctldLogFile={s}/slurmctld.log",
            f"SlurmdLogFile={s}/slurmd.log",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core_Memory",
            "DefMemPerCPU=500",
            "GresTypes=gpu",
            "MpiDefault=none",
            "AccountingStorageType=accounting_storage/none",
            "JobAcctGatherType=jobacct_gather/none",
            "JobCompType=jobcomp/none",
            "SchedulerType=sched/backfill",
            "ReturnToService=2",
            f"MinJobAge={self.min_job_age}",
            "KillWait=5",
            "InactiveLimit=0",
            "MailProg=/bin/true",
        ]
        if self.oversized:
            lines.append("SlurmdParameters=config_overrides")
        lines += [
            f"NodeName=localhost CPUs={self.cpus} RealMemory={self.memory_mb} Gres=gpu:{self.gpus} State=UNKNOWN",
            f"PartitionName={PARTITION} Nodes=localhost Default=YES MaxTime=INFINITE State=UP",
            *(f"PartitionName={name} Nodes=localhost MaxTime=INFINITE State=UP" for name in self.extra_partitions),
        ]
        return "\n".join(lines) + "\n"

    def gres_conf(self) -> str:
        # /dev/null as the "GPU" device: the request is scheduled and the job runs on the CPU.
        return f"{MARKER}\nNodeName=localhost Name=gpu Count={self.gpus} File=/dev/null\n"

    # --- pids -----------------------------------------------------------------------------------------

    def started(self) -> dict[str, int]:
        try:
            return json.loads(self.pid_file.read_text())
        except (OSError, ValueError):
            return {}

    def _record(self, name: str, pid: int) -> None:
        pids = self.started()
        pids[name] = pid
        self.pid_file.write_text(json.dumps(pids))

    def running(self) -> bool:
        pids = self.started()
        return bool(pids) and all(pid_runs(pid, name) for name, pid in pids.items())

    # --- start / stop ---------------------------------------------------------------------------------

    def start(self, timeout: float = 60.0, log=print) -> "Cluster":
        reason = unavailable_reason()
        if reason:
            raise ClusterError(reason)
        install(log)
        if any(pid_runs(pid, name) for name, pid in self.started().items()):
            raise ClusterError(f"a cluster from {self.state_dir} is still running; run `cluster.py stop` first")
        for name in ("slurmctld", "slurmd"):
            if _processes_named(name):
                raise ClusterError(f"a {name} is already running; not starting another. {_who_runs_it()}")
        if self.state_dir.exists():
            shutil.rmtree(self.state_dir)
        for sub in ("ctld", "spool"):
            (self.state_dir / sub).mkdir(parents=True)
        ctld_port, slurmd_port = free_port_pair()
        CONF_DIR.mkdir(parents=True, exist_ok=True)
        (CONF_DIR / "slurm.conf").write_text(self.slurm_conf(ctld_port, slurmd_port))
        (CONF_DIR / "gres.conf").write_text(self.gres_conf())
        try:
            self._start_munge()
            conf = str(CONF_DIR / "slurm.conf")
            self._daemon("slurmctld", [which("slurmctld"), "-c", "-f", conf], self.state_dir / "slurmctld.pid")
            self._daemon("slurmd", [which("slurmd"), "-N", "localhost", "-f", conf], self.state_dir / "slurmd.pid")
            self.wait_idle(timeout)
        except BaseException:
            logs = self.log_tail()
            self.stop(log=lambda *_: None)
            raise ClusterError(f"the cluster did not come up\n{logs}") from None
        log(f"SLURM is up: node localhost idle (CPUs={self.cpus}, RealMemory={self.memory_mb}, gpu:{self.gpus}), "
            f"partition {PARTITION}, ports {ctld_port}/{slurmd_port}, state in {self.state_dir}")
        return self

    def _start_munge(self) -> None:
        if _munge_works():
            return  # someone else's munged answers; use it, never stop it
        if not MUNGE_KEY.exists():
            MUNGE_KEY.parent.mkdir(parents=True, exist_ok=True)
            mungekey = which("mungekey")
            if mungekey:
                subprocess.run([mungekey, "--create", "--keyfile", str(MUNGE_KEY)], check=True, capture_output=True)
            else:
                MUNGE_KEY.write_bytes(os.urandom(1024))
            shutil.chown(MUNGE_KEY, "munge", "munge")
            MUNGE_KEY.chmod(0o400)
        for directory in (Path("/run/munge"), Path("/var/log/munge"), Path("/var/lib/munge")):
            directory.mkdir(parents=True, exist_ok=True)
            shutil.chown(directory, "munge", "munge")
        MUNGE_PID.unlink(missing_ok=True)
        subprocess.run(["runuser", "-u", "munge", "--", which("munged")], check=True, capture_output=True)
        self._record("munged", read_pid(MUNGE_PID))
        deadline = time.monotonic() + 10
        while not _munge_works():
            if time.monotonic() > deadline:
                raise ClusterError("munged started but does not answer")
            time.sleep(0.2)

    def _daemon(self, name: str, argv: list[str], pid_file: Path) -> None:
        result = subprocess.run(argv, capture_output=True, text=True)  # both daemonise
        if result.returncode != 0:
            raise ClusterError(f"{' '.join(argv)} failed: {result.stderr}")
        self._record(name, read_pid(pid_file))

    def wait_idle(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            result = subprocess.run([which("sinfo"), "-h", "-N", "-o", "%T"], capture_output=True, text=True)
            state = result.stdout.strip()
            if result.returncode == 0 and set(state.split()) == {"idle"}:  # one line per partition
                return
            time.sleep(0.5)
        raise ClusterError(f"node not idle after {timeout:.0f} s (sinfo says {state!r})")

    def stop(self, log=print) -> None:
        pids = self.started()
        if pids.get("slurmctld") and pid_runs(pids["slurmctld"], "slurmctld"):
            # Cancel this cluster's jobs so that no job step outlives its slurmd.
            subprocess.run([which("scancel"), "--full", "--user", "root"], capture_output=True, timeout=30)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                result = subprocess.run([which("squeue"), "-h", "-t", "RUNNING,COMPLETING", "-o", "%i"],
                                        capture_output=True, text=True)
                if result.returncode != 0 or not result.stdout.strip():
                    break
                time.sleep(0.5)
        for name in ("slurmd", "slurmctld", "munged"):
            pid = pids.get(name)
            if pid is None:
                continue
            if pid_runs(pid, name):
                _terminate(pid)
                log(f"stopped {name} (pid {pid})")
            pids.pop(name)
            self.pid_file.write_text(json.dumps(pids))
        conf = CONF_DIR / "slurm.conf"
        if conf.exists() and f"# State, logs and pid files: {self.state_dir}\n" in conf.read_text(errors="replace"):
            for name in ("slurm.conf", "gres.conf"):  # ours: written by this cluster's start()
                (CONF_DIR / name).unlink(missing_ok=True)

    def log_tail(self, lines: int = 30) -> str:
        out = []
        for name in ("slurmctld.log", "slurmd.log"):
            path = self.state_dir / name
            if path.exists():
                out.append(f"--- {path}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:]))
        return "\n".join(out)


def _who_runs_it() -> str:
    """A hint naming the state directory of a running cluster that this module configured, if it did."""
    conf = CONF_DIR / "slurm.conf"
    text = conf.read_text(errors="replace") if conf.exists() else ""
    if MARKER not in text:
        return "It was not configured by tests/slurm/cluster.py."
    state = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("# State,")), "?")
    return (f"It was started by tests/slurm/cluster.py (by hand, or by a test session that died): stop it with "
            f"`python tests/slurm/cluster.py stop --state-dir {state}`.")


def _munge_works() -> bool:
    munge, unmunge = which("munge"), which("unmunge")
    if not (munge and unmunge):
        return False
    cred = subprocess.run([munge, "-n"], capture_output=True)
    if cred.returncode != 0:
        return False
    return subprocess.run([unmunge], input=cred.stdout, capture_output=True).returncode == 0


def _processes_named(name: str) -> list[int]:
    """Pids whose program is ``name`` (only to refuse starting a second cluster; never used to kill)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and pid_runs(int(entry.name), name):
            found.append(int(entry.name))
    return found


def _terminate(pid: int, timeout: float = 20.0) -> None:
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            deadline += 5
        time.sleep(0.1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["start", "stop", "status"])
    parser.add_argument("--state-dir", type=Path, default=STATE_DIR, help=f"default {STATE_DIR}")
    parser.add_argument("--cpus", type=int, help="CPUs of the node (default: this machine's)")
    parser.add_argument("--memory-mb", type=int, help="RealMemory of the node (default: machine's minus 1 GB)")
    parser.add_argument("--oversized", action="store_true",
                        help="allow --cpus/--memory-mb above the hardware (SlurmdParameters=config_overrides)")
    parser.add_argument("--partition", action="append", default=[], help="an extra partition on the node (repeatable)")
    args = parser.parse_args(argv)
    cluster = Cluster(args.state_dir, cpus=args.cpus, memory_mb=args.memory_mb, oversized=args.oversized,
                      extra_partitions=tuple(args.partition))
    try:
        if args.action == "start":
            if not lock_is_free():
                raise ClusterError(f"a test session is running a cluster ({LOCK} is held)")
            cluster.start()
        elif args.action == "stop":
            cluster.stop()
        else:
            pids = cluster.started()
            print(json.dumps(pids) if pids else "not started", "running" if cluster.running() else "")
            if cluster.running():
                print(subprocess.run([which("sinfo")], capture_output=True, text=True).stdout, end="")
    except ClusterError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
