"""A truncated or foreign file where a data file, checkpoint, logit cache or metric file is expected fails with
one line naming the file and what was expected, and leaves every existing output untouched."""
import json
import pickle

import numpy as np
import pandas as pd
import pytest
import torch

from eebench.cli import main
from eebench.data import load_split, prepare_dataset, read_info
from eebench.exits.sweep import load_cache
from eebench.io import (
    LOGIT_CACHE, MODEL_CHECKPOINT, PREPARED_DATASET, SWEEP_CSV, ResultFileError, ResultKeyError, read_checkpoint,
    read_csv, read_npz, save_npz, save_torch, write_csv,
)
from eebench.training import ResumeFile, World

MODEL = json.dumps({"backbone": "cnn", "params": {"widths": [8, 16], "strides": [1, 2]}})
UNPICKLED = []  # what a refused pickle would have run


def _record(*args):
    UNPICKLED.append(args)


class Payload:
    """An arbitrary Python object: unpickling it would call ``_record``."""

    def __reduce__(self):
        return _record, ("unpickled",)


def check_one_line(error, path, expected):
    message = str(error.value)
    assert "\n" not in message
    assert str(path) in message and expected in message
    return message


def cut_in_half(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def text_file(path):
    path.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:0123\nsize 42\n")
    return path


def write_npy(path, array=np.arange(3)):
    with open(path, "wb") as handle:
        np.save(handle, array)


def write_object_npz(path):
    with open(path, "wb") as handle:
        np.savez(handle, a=np.array([{"x": 1}], dtype=object))  # pickled inside the archive


def write_plain_npz(path):
    with open(path, "wb") as handle:
        np.savez(handle, a=np.arange(3))


def write_cache(path, **drop):
    """A small valid logit cache (2 heads, 6 samples, 3 classes) minus the keys in ``drop``."""
    rng = np.random.default_rng(0)
    arrays = {
        "val_logits": rng.normal(size=(2, 6, 3)), "test_logits": rng.normal(size=(2, 6, 3)),
        "val_labels": rng.integers(0, 3, 6), "test_labels": rng.integers(0, 3, 6),
        "head_flops": np.array([1.0, 2.0]), "backbone_flops": np.float64(2.0), "task": np.array("single_label"),
        "meta": np.array(json.dumps({"dataset": "digits", "backbone": "cnn", "regime": "joint", "seed": 0})),
    }
    save_npz(path, **{key: value for key, value in arrays.items() if key not in drop})
    return path


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "digits.npz"
    prepare_dataset("digits", {"split_seed": 0}, path)
    return path


# read_npz


@pytest.mark.parametrize("make, problem", [
    (lambda p: cut_in_half(write_cache(p)), "truncated"),
    (lambda p: p.write_bytes(b""), "empty file"),
    (text_file, "text ('version https://git-lfs"),
    (write_npy, "a single .npy array, not a .npz archive"),
    (lambda p: p.write_bytes(pickle.dumps({"val_logits": np.zeros(3)})), "a Python pickle, not a .npz archive"),
    (lambda p: torch.save({"w": torch.ones(2)}, p), "a torch checkpoint, not a .npz archive"),
    (write_object_npz, "object arrays"),
    (lambda p: write_cache(p, test_logits=True, meta=True), "lacks key(s) test_logits, meta"),
    (lambda p: p.mkdir(), "cannot be read"),
])
def test_read_npz_names_the_file_and_what_is_wrong(tmp_path, make, problem):
    path = tmp_path / "seed0.npz"
    make(path)
    with pytest.raises(ResultFileError) as error:
        read_npz(path, LOGIT_CACHE, keys=("val_logits", "test_logits", "meta"))
    assert problem in check_one_line(error, path, LOGIT_CACHE)


def test_read_npz_detects_a_corrupted_member(tmp_path):
    path = write_cache(tmp_path / "c.npz")
    data = path.read_bytes()
    values = read_npz(path, LOGIT_CACHE)["test_logits"].tobytes()
    start = data.index(values) + len(values) // 2
    # Same length, zip directory intact: only some of test_logits' numbers changed (caught by the CRC).
    path.write_bytes(data[:start] + bytes(16) + data[start + 16 :])
    with pytest.raises(ResultFileError, match="truncated or corrupt .npz archive: Bad CRC-32") as error:
        read_npz(path, LOGIT_CACHE)
    check_one_line(error, path, LOGIT_CACHE)


def test_read_npz_missing_file_stays_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        read_npz(tmp_path / "nowhere.npz", LOGIT_CACHE)
    assert "no such file" in check_one_line(error, tmp_path / "nowhere.npz", LOGIT_CACHE)


def test_read_npz_returns_arrays_whose_absent_keys_name_the_file(tmp_path):
    path = write_cache(tmp_path / "c.npz")
    arrays = read_npz(path, LOGIT_CACHE, keys=("val_logits",))
    assert arrays["val_logits"].shape == (2, 6, 3) and str(arrays["task"]) == "single_label"
    with pytest.raises(ResultKeyError) as error:
        arrays["x_val"]
    assert isinstance(error.value, KeyError) and isinstance(error.value, ValueError)
    assert "'x_val'" in check_one_line(error, path, LOGIT_CACHE)
    assert str(error.value).startswith(str(path))  # not KeyError's quoted repr


# read_checkpoint


@pytest.mark.parametrize("make, problem", [
    (lambda p: cut_in_half(save_torch(p, {"spec": {}, "state_dict": {"w": torch.ones(1000)}}) or p),
     "truncated or corrupt"),
    (lambda p: p.write_bytes(b""), "empty file"),
    (text_file, "text ('version https://git-lfs"),
    (write_plain_npz, "a .npz archive, not a torch checkpoint"),
    (lambda p: p.write_bytes(pickle.dumps({"spec": {}, "state_dict": {}})), "a Python pickle"),
    (lambda p: torch.save({"spec": {}, "state_dict": {}, "extra": Payload()}, p), "weights_only"),
    (lambda p: torch.save(torch.ones(2), p), "holds a Tensor, not a dict"),
    (lambda p: torch.save({"state_dict": {}}, p), "lacks key(s) spec"),
])
def test_read_checkpoint_names_the_file_and_what_is_wrong(tmp_path, make, problem):
    path = tmp_path / "model.pt"
    make(path)
    with pytest.raises(ResultFileError) as error:
        read_checkpoint(path, MODEL_CHECKPOINT, keys=("spec", "state_dict"))
    assert problem in check_one_line(error, path, MODEL_CHECKPOINT)
    assert UNPICKLED == []


def test_read_checkpoint_refuses_arbitrary_objects_without_running_them(tmp_path):
    path = tmp_path / "colleague.pt"
    torch.save({"state_dict": {"w": torch.ones(2)}, "extra": Payload()}, path)
    with pytest.raises(ResultFileError) as error:
        read_checkpoint(path, MODEL_CHECKPOINT)
    assert "test_bad_files._record" in check_one_line(error, path, MODEL_CHECKPOINT)
    assert UNPICKLED == []


def test_read_checkpoint_missing_file_stays_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        read_checkpoint(tmp_path / "model.pt", MODEL_CHECKPOINT)
    check_one_line(error, tmp_path / "model.pt", MODEL_CHECKPOINT)


# read_csv


def write_sweep(path):
    write_csv(path, pd.DataFrame({"criterion": ["confidence"] * 4, "split": ["val", "val", "test", "test"],
                                  "threshold": [0.1, 0.5, 0.1, 0.5], "flops_fraction": [0.5, 1.0, 0.5, 1.0]}))
    return path


@pytest.mark.parametrize("make, problem", [
    (lambda p: p.write_bytes(write_sweep(p).read_bytes()[:-9]), "truncated: its last line has"),
    (lambda p: p.write_bytes(b""), "empty file"),
    (lambda p: p.write_bytes(b"\n\n"), "no header line"),
    (lambda p: p.write_bytes(bytes(range(256)) * 4), "binary data, not CSV text"),
    (lambda p: write_cache(p), "a .npz archive, not CSV text"),
    (lambda p: p.write_text('split,flops_fraction\n"val,0.5\n'), "malformed or truncated CSV"),
    (lambda p: p.write_text("criterion,threshold\nconfidence,0.5\n"), "lacks column(s) split, flops_fraction"),
])
def test_read_csv_names_the_file_and_what_is_wrong(tmp_path, make, problem):
    path = tmp_path / "sweep.csv"
    make(path)
    with pytest.raises(ResultFileError) as error:
        read_csv(path, SWEEP_CSV, columns=("split", "flops_fraction"))
    assert problem in check_one_line(error, path, SWEEP_CSV)


def test_read_csv_accepts_a_complete_last_line_without_line_end(tmp_path):
    path = tmp_path / "by_hand.csv"
    path.write_text("split,flops_fraction\nval,0.5\ntest,1.0")
    frame = read_csv(path, SWEEP_CSV, columns=("split", "flops_fraction"))
    assert frame["flops_fraction"].tolist() == [0.5, 1.0]


def test_read_csv_missing_file_stays_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        read_csv(tmp_path / "sweep.csv", SWEEP_CSV)
    check_one_line(error, tmp_path / "sweep.csv", SWEEP_CSV)


# The readers in use: prepared datasets, logit caches, resume checkpoints


@pytest.mark.parametrize("read", [read_info, lambda p: load_split(p, "val")])
def test_a_truncated_prepared_dataset_is_one_line(tmp_path, prepared, read):
    path = tmp_path / "digits.npz"
    path.write_bytes(prepared.read_bytes())
    cut_in_half(path)
    with pytest.raises(ResultFileError, match="truncated") as error:
        read(path)
    check_one_line(error, path, PREPARED_DATASET)


def test_a_prepared_dataset_lacking_info_or_a_split(tmp_path, prepared):
    with np.load(prepared) as npz:
        arrays = {key: npz[key] for key in npz.files}
    no_info = tmp_path / "no_info.npz"
    save_npz(no_info, **{k: v for k, v in arrays.items() if k != "info"})
    with pytest.raises(ResultFileError, match=r"lacks key\(s\) info") as error:
        load_split(no_info, "train")
    check_one_line(error, no_info, PREPARED_DATASET)

    no_val = tmp_path / "no_val.npz"
    save_npz(no_val, **{k: v for k, v in arrays.items() if not k.endswith("_val")})
    assert len(load_split(no_val, "train")[0]) == len(arrays["y_train"])
    with pytest.raises(ResultKeyError, match="'x_val'") as error:
        load_split(no_val, "val")
    check_one_line(error, no_val, PREPARED_DATASET)


@pytest.mark.parametrize("info, problem", [
    ("not json", "its 'info' is not a dataset description"),
    ('{"name": "digits"}', "its 'info' is not a dataset description"),
    ('{"name": "mnist9", "num_classes": 10, "multilabel": false, "input_shape": [1]}', "'mnist9', which is not"),
])
def test_a_prepared_dataset_with_a_foreign_info(tmp_path, info, problem):
    path = tmp_path / "d.npz"
    save_npz(path, info=np.array(info))
    with pytest.raises(ResultFileError) as error:
        read_info(path)
    assert problem in check_one_line(error, path, PREPARED_DATASET)


@pytest.mark.parametrize("make, problem", [
    (lambda p: cut_in_half(write_cache(p)), "truncated"),
    (text_file, "text"),
    (lambda p: write_npy(p, np.zeros((2, 6, 3))), ".npy"),
])
def test_load_cache_of_a_bad_file_is_one_line(tmp_path, make, problem):
    path = tmp_path / "seed0.npz"
    make(path)
    with pytest.raises(ResultFileError) as error:
        load_cache(path)
    assert problem in check_one_line(error, path, LOGIT_CACHE)


def test_load_cache_with_meta_that_is_not_json(tmp_path):
    path = write_cache(tmp_path / "c.npz", meta=True)
    with np.load(path) as npz:
        arrays = {key: npz[key] for key in npz.files}
    save_npz(path, **arrays, meta=np.array("{oops"))
    with pytest.raises(ResultFileError, match="'meta' is not JSON"):
        load_cache(path)


def test_the_resume_file_loads_with_weights_only_and_a_truncated_one_is_one_line(tmp_path):
    path = tmp_path / "resume" / "run.pt"
    state = {"phase_index": 0, "epoch": 2, "batch": 5, "model": {"w": torch.ones(3)},
             "early_stopping": {"best": np.array([0.25, -np.inf]), "stale_epochs": 1}}
    np.random.seed(7)
    ResumeFile(path, {"seed": 1}).save(state, World())
    loaded = ResumeFile(path, {"seed": 1}).load(World())
    assert loaded["early_stopping"]["best"].tolist() == [0.25, -np.inf]
    np.random.seed(7)
    expected = np.random.get_state()
    assert loaded["rng"][0]["numpy"][0] == expected[0]
    assert np.array_equal(loaded["rng"][0]["numpy"][1], expected[1])

    cut_in_half(path)
    with pytest.raises(ResultFileError) as error:
        ResumeFile(path, {"seed": 1}).load(World())
    assert "--restart" in check_one_line(error, path, "a resume checkpoint")


# Through the CLI: exit status 2, one line on stderr naming the file, existing outputs untouched


def run_cli(capsys, *argv):
    status = main([str(arg) for arg in argv])
    err = capsys.readouterr().err
    return status, [line for line in err.splitlines() if line.strip()]


def assert_one_line_error(capsys, old_output, bad_file, *expected, argv):
    """The command fails with status 2 and one stderr line naming ``bad_file`` and each ``expected`` text, and
    leaves the existing output untouched."""
    status, lines = run_cli(capsys, *argv)
    assert status == 2
    assert len(lines) == 1 and lines[0].startswith(f"eebench {argv[0]}: error: "), lines
    assert str(bad_file) in lines[0] and all(text in lines[0] for text in expected), lines[0]
    assert old_output.read_bytes() == b"known content\n"


@pytest.fixture
def old_output(tmp_path):
    out = tmp_path / "existing" / "out"
    out.parent.mkdir()
    out.write_bytes(b"known content\n")
    return out


@pytest.mark.parametrize("make", [lambda p: cut_in_half(write_cache(p)), text_file, lambda p: None])
def test_cli_sweep_of_a_bad_cache(tmp_path, capsys, old_output, make):
    logits = tmp_path / "results" / "logits" / "seed0.npz"
    logits.parent.mkdir(parents=True)
    make(logits)
    assert_one_line_error(capsys, old_output, logits, LOGIT_CACHE,
                          argv=("sweep", "--logits", logits, "--criterion", "confidence", "--out", old_output))


def test_cli_train_on_a_truncated_prepared_dataset(tmp_path, capsys, prepared, old_output):
    data = tmp_path / "digits.npz"
    data.write_bytes(prepared.read_bytes())
    cut_in_half(data)
    assert_one_line_error(capsys, old_output, data, PREPARED_DATASET,
                          argv=("train", "--data", data, "--model", MODEL, "--regime", "joint", "--seed", 0,
                                "--out", old_output))


def test_cli_cache_logits_of_a_text_checkpoint(tmp_path, capsys, prepared, old_output):
    checkpoint = text_file(tmp_path / "model.pt")
    assert_one_line_error(capsys, old_output, checkpoint, MODEL_CHECKPOINT,
                          argv=("cache-logits", "--checkpoint", checkpoint, "--data", prepared, "--out", old_output))


def test_cli_train_from_a_foreign_init_checkpoint(tmp_path, capsys, prepared, old_output):
    init = tmp_path / "backbone.pt"
    torch.save({"spec": {}, "state_dict": {}, "extra": Payload()}, init)
    assert_one_line_error(capsys, old_output, init, "weights_only",
                          argv=("train", "--data", prepared, "--model", MODEL, "--regime", "mixed", "--seed", 0,
                                "--init", init, "--out", old_output))
    assert UNPICKLED == []
