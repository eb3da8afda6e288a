"""A killed workflow leaves nothing half-written, and --rerun-incomplete finishes the job."""
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .conftest import BIN, REPO, snakemake, write_config

TARGET = "paper/tables/regimes.tex"


def small_config(config: dict) -> dict:
    config["seeds"] = [0]
    config["training"].update(max_epochs=5, patience=5)
    return config


def assert_complete(path: Path) -> None:
    """Load a result file fully, as the next rule would."""
    if path.suffix == ".npz":
        with np.load(path) as archive:
            for key in archive.files:
                archive[key]
    elif path.suffix == ".pt":
        torch.load(path, map_location="cpu", weights_only=False)
    elif path.suffix == ".csv":
        pd.read_csv(path)


def test_sigkill_mid_run_then_rerun_incomplete(workdir):
    path, config = workdir
    write_config(path, small_config(config))
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    command = [str(BIN / "snakemake"), "--snakefile", str(REPO / "Snakefile"), "--directory", str(path),
               "--cores", "2", TARGET]
    run = subprocess.Popen(command, cwd=path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True)
    models = path / "results/models"
    deadline = time.monotonic() + 120
    # Kill once a model exists and training is still going on (the table needs 4 runs).
    while time.monotonic() < deadline and not list(models.glob("**/model.pt")):
        time.sleep(0.2)
    time.sleep(1.0)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    assert not (path / TARGET).exists()

    results = [p for p in (path / "results").rglob("*") if p.is_file() and "logs" not in p.parts
               and "benchmarks" not in p.parts]
    for result in results:
        if not result.name.startswith("."):  # hidden temporaries are never taken for outputs
            assert_complete(result)

    snakemake(path, "--unlock")
    snakemake(path, "--cores", "2", "--rerun-incomplete", TARGET)
    assert (path / TARGET).exists()
