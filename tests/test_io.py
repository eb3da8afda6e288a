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


def test_readers_round_trip_what_the_writers_write(tmp_path):
    import pickle

    import pandas as pd
    import torch

    from eebench.io import ResultFileError, read_checkpoint, read_csv, read_npz, save_torch, write_csv

    save_npz(tmp_path / "a.npz", x=np.arange(3), info=np.array('{"name": "digits"}'))
    arrays = read_npz(tmp_path / "a.npz", "arrays", keys=("x",))
    assert arrays["x"].tolist() == [0, 1, 2] and str(arrays["info"]) == '{"name": "digits"}'

    # Shaped like a model checkpoint of `eebench train`: weights_only loading keeps every part, tuples included.
    layer = torch.nn.Linear(3, 2)
    saved = {"spec": {"backbone": "cnn", "input_shape": (1, 8, 8), "placement": [1, 2]},
             "state_dict": layer.state_dict(), "meta": {"seed": 0, "head": None},
             "training": {"lr": 0.01}, "history": [{"phase": "backbone", "epoch": 1, "val_scores": [0.5]}]}
    save_torch(tmp_path / "model.pt", saved)
    loaded = read_checkpoint(tmp_path / "model.pt", "a checkpoint", keys=("spec", "state_dict"))
    assert loaded["spec"] == saved["spec"] and isinstance(loaded["spec"]["input_shape"], tuple)
    assert all(torch.equal(loaded["state_dict"][k], v) for k, v in saved["state_dict"].items())
    assert loaded["history"] == saved["history"] and loaded["meta"] == saved["meta"]

    write_csv(tmp_path / "t.csv", pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}))
    assert read_csv(tmp_path / "t.csv", "a table", columns=("a",))["b"].tolist() == ["x", "y"]

    error = ResultFileError(tmp_path / "t.csv", "bad\nthing", "a table")
    assert str(error) == f"{tmp_path / 't.csv'}: bad thing (expected a table)"
    assert str(pickle.loads(pickle.dumps(error))) == str(error)
