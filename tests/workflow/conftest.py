import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.fixtures import job_counts  # noqa: F401  (re-exported for the tests here)

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent  # the venv running pytest also holds snakemake and eebench


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run the repository's Snakefile with ``workdir`` as working directory (config.yaml read from there)."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    command = [str(BIN / "snakemake"), "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir), *args]
    result = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return result


@pytest.fixture
def workdir(tmp_path: Path):
    """A fresh working directory holding a copy of the default config; yields (path, config dict)."""
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    yield tmp_path, config


def write_config(workdir: Path, config: dict) -> None:
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def copy_default_config(workdir: Path) -> None:
    shutil.copy(REPO / "config.yaml", workdir / "config.yaml")
