import os

import numpy as np
import pytest

from eebench.io import atomic_open, save_npz, write_text


def test_write_is_atomic_and_leaves_no_temp_files(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    write_text(target, "hello")
    assert target.read_text() == "hello"
    assert [p.name for p in target.parent.iterdir()] == ["out.txt"]


def test_failed_write_keeps_the_old_file_and_no_partial_one(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_open(target) as handle:
            handle.write("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_save_npz_keeps_the_exact_name(tmp_path):
    target = tmp_path / "cache.npz.part"
    save_npz(target, x=np.arange(3))
    assert np.load(target)["x"].tolist() == [0, 1, 2]


def test_result_gets_ordinary_file_permissions(tmp_path):
    target = tmp_path / "out.txt"
    write_text(target, "x")
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask
