"""Time one target of the default config run locally (``--cores 2``) and through workflow/profiles/slurm on a
real one-node SLURM cluster on this machine, and print the SLURM overhead per submitted job.

    sudo python benchmarks/slurm_overhead.py                      # paper/tables/regimes.tex, 1 seed, 3 epochs
    python benchmarks/slurm_overhead.py --fast-polling            # poll every 2 s at first, as tests/slurm does
    python benchmarks/slurm_overhead.py --seeds 0 1 2 --max-epochs 40 --target paper/figures/bee.pdf

The cluster is started with tests/slurm/cluster.py (root; apt-get installs SLURM when missing) and stopped
afterwards; if one started by hand (``python tests/slurm/cluster.py start``) is running, it is used as is.
Both runs start from an empty working directory holding the same shrunk copy of config.yaml.

per-job overhead = (t_slurm - t_local) / number of sbatch jobs. It lumps together what SLURM adds per job:
sbatch and scheduling, a Snakemake started inside each job (it re-reads the workflow), and above all the
plugin's status polling. The plugin waits ``--slurm-init-seconds-before-status-checks`` (40 s by default)
after a check that saw a job finish, and 10 s more after each check that saw none, so on jobs of seconds it
dominates; on the hours-long jobs of a paper-scale config it is negligible.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SUBMITTED = re.compile(r"Job (\d+) has been submitted with SLURM jobid (\d+)")
FAST_POLLING = ["--slurm-init-seconds-before-status-checks", "2", "--seconds-between-status-checks", "2"]


def load_cluster_module():
    spec = importlib.util.spec_from_file_location("eebench_slurm_cluster", REPO / "tests/slurm/cluster.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses looks the module up
    spec.loader.exec_module(module)
    return module


def workdir(root: Path, name: str, seeds: list[int], max_epochs: int) -> Path:
    path = root / name
    path.mkdir()
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["seeds"] = seeds
    config["training"]["max_epochs"] = max_epochs
    (path / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def run(path: Path, *args: str) -> tuple[float, str]:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    command = [str(BIN / "snakemake"), "--snakefile", str(REPO / "Snakefile"), "--directory", str(path), *args]
    start = time.monotonic()
    result = subprocess.run(command, cwd=path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seconds = time.monotonic() - start
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed after {seconds:.0f} s:\n{result.stdout[-5000:]}")
    return seconds, result.stdout


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", default="paper/tables/regimes.tex")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--max-epochs", type=int, default=3)
    parser.add_argument("--cores", default="2", help="cores of the local run (default 2)")
    parser.add_argument("--fast-polling", action="store_true", help=f"add {' '.join(FAST_POLLING)} to the SLURM run")
    parser.add_argument("--keep", action="store_true", help="keep the working directories")
    args = parser.parse_args()

    cluster_module = load_cluster_module()
    cluster = cluster_module.Cluster()
    own_cluster = not cluster.running()
    tmp = Path(tempfile.mkdtemp(prefix="slurm-overhead-"))
    try:
        local_dir = workdir(tmp, "local", args.seeds, args.max_epochs)
        slurm_dir = workdir(tmp, "slurm", args.seeds, args.max_epochs)
        print(f"load average before: {load_average()}")
        t_local, _ = run(local_dir, args.target, "--cores", args.cores)
        print(f"local (--cores {args.cores}): {t_local:.1f} s")
        profile = ["--profile", str(REPO / "workflow/profiles/slurm")]
        slurm_args = [args.target, *profile, *(FAST_POLLING if args.fast_polling else [])]
        if own_cluster:
            reason = cluster_module.unavailable_reason()
            if reason:
                sys.exit(f"cannot start a SLURM cluster: {reason}")
            with cluster_module.exclusive():  # tests/slurm sessions use the same machine-wide cluster slot
                cluster = cluster_module.Cluster(Path(tmp) / "cluster")
                try:
                    cluster.start()
                    t_slurm, output = run(slurm_dir, *slurm_args)
                finally:
                    cluster.stop()
        else:
            t_slurm, output = run(slurm_dir, *slurm_args)
        jobs = SUBMITTED.findall(output)
        print(f"load average after: {load_average()}")
        polling = "first check after 2 s" if args.fast_polling else "the plugin's default status polling"
        print(f"\n{args.target}, seeds {args.seeds}, max_epochs {args.max_epochs}")
        rows = [(f"local (--cores {args.cores})", f"{t_local:7.1f} s"),
                ("SLURM profile", f"{t_slurm:7.1f} s   ({polling})"),
                ("sbatch jobs", f"{len(jobs):7d}")]
        if jobs:
            rows.append(("overhead per sbatch job", f"{(t_slurm - t_local) / len(jobs):7.1f} s"))
        for label, value in rows:
            print(f"  {label + ':':<26}{value}")
    finally:
        if not args.keep:
            subprocess.run(["rm", "-rf", str(tmp)])
        else:
            print(f"working directories kept in {tmp}")


if __name__ == "__main__":
    main()
