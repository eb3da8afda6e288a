"""The NLP loaders (20 Newsgroups, STS-B) on tiny fixtures in the real on-disk layouts, tokenised with a tiny
BERT WordPiece tokenizer written by the test (never downloaded)."""
from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from eebench.data import DatasetInfo, DatasetMissingError, load_split, parameters, prepare_dataset, read_info
from eebench.data.text import clean_post

transformers = pytest.importorskip("transformers")

VOCAB = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",  # 0-4
    "the", "cat", "sat", "on", "mat", "a", "dog", "##s", ".", ",",  # 5-14
    "subject", ":", "from", "cafe", "space", "is", "big", "god", ">", "wrote",  # 15-24
    "-", "sig", "man", "woman", "plays", "guitar", "horse", "riding", "\"", "hello",  # 25-34
]  # fmt: skip
ID = {token: i for i, token in enumerate(VOCAB)}
PAD, CLS, SEP, UNK = ID["[PAD]"], ID["[CLS]"], ID["[SEP]"], ID["[UNK]"]
MODEL_MAX_LENGTH = 64


def ids(text: str) -> list[int]:
    """Hand tokenisation of whitespace-separated vocabulary tokens."""
    return [ID[token] for token in text.split()]


def arrays(path) -> dict[str, np.ndarray]:
    with np.load(path) as npz:
        return {key: npz[key] for key in npz.files}


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory) -> Path:
    """A BERT WordPiece tokenizer (lower-casing, accent-stripping) over VOCAB, saved with save_pretrained."""
    vocab = tmp_path_factory.mktemp("vocab")
    (vocab / "vocab.txt").write_text("".join(f"{token}\n" for token in VOCAB))
    tokenizer = transformers.BertTokenizerFast.from_pretrained(
        str(vocab), local_files_only=True, model_max_length=MODEL_MAX_LENGTH
    )
    out = tmp_path_factory.mktemp("tokenizer")
    tokenizer.save_pretrained(str(out))
    return out


@pytest.fixture(scope="module")
def tokenizer(tokenizer_dir):
    return transformers.AutoTokenizer.from_pretrained(str(tokenizer_dir), local_files_only=True)


def test_fixture_tokenizer_tokenises_as_written_by_hand(tokenizer):
    assert tokenizer("The CAT sat")["input_ids"] == [CLS, *ids("the cat sat"), SEP]
    assert tokenizer("dogs")["input_ids"] == [CLS, ID["dog"], ID["##s"], SEP]
    assert tokenizer("Café zebra")["input_ids"] == [CLS, ID["cafe"], UNK, SEP]


def own_output(tokenizer, first, second=None, max_length=16) -> tuple[list[int], list[int]]:
    args = (first,) if second is None else (first, second)
    encoded = tokenizer(*args, truncation=True, padding="max_length", max_length=max_length)
    return encoded["input_ids"], encoded["attention_mask"]


# 20 Newsgroups

GROUPS = ("alt.atheism", "comp.graphics", "sci.space")  # sorted: the class order
LONG_POST = "Subject: space\n\n" + "the big space is big . " * 10
SIGNED_POST = (
    "From: a@b.c\nSubject: god\n\n"
    "the man wrote:\n> the dog sat\nthe cat sat on the mat\n\n--\nsig\n"
)
TRAIN_POSTS = {  # group -> {file name: contents}; bydate names are numbers
    "alt.atheism": {"49960": "Subject: god\n\nthe god .\n", "51060": SIGNED_POST,
                    "51119": "Subject: god\n\na god\n", "51120": "god god\n"},
    "comp.graphics": {"37261": "Subject: cat\n\nthe cat sat on the mat\n", "37913": "a cat\n",
                      "37914": "the cat\n", "37915": "cats\n"},
    "sci.space": {"59497": LONG_POST, "59848": "space\n", "60154": "big space\n", "60155": "the space\n"},
}  # fmt: skip
TEST_POSTS = {
    "alt.atheism": {"53068": "god is big\n", "53069": "a god\n"},
    "comp.graphics": {"38758": "Subject: cat\n\ncat dogs\n", "38759": "the cat .\n"},
    "sci.space": {"61099": "space is big\n", "61100": "a space\n"},
}
LATIN1_POST = ("comp.graphics", "38760", b"Subject: caf\xe9\n\nthe caf\xe9 cat\n")  # not valid UTF-8


@pytest.fixture(scope="module")
def news_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("news")
    for split, posts in (("train", TRAIN_POSTS), ("test", TEST_POSTS)):
        for group, files in posts.items():
            folder = root / f"20news-bydate-{split}" / group
            folder.mkdir(parents=True)
            for name, text in files.items():
                (folder / name).write_bytes(text.encode("latin-1"))
    group, name, raw = LATIN1_POST
    (root / "20news-bydate-test" / group / name).write_bytes(raw)
    return root


def news_params(root, tokenizer_dir, **extra):
    return {"root": str(root), "model_dir": str(tokenizer_dir), "split_seed": 0, "val_fraction": 0.25,
            "max_length": 16, **extra}  # fmt: skip


def test_newsgroups20_parameters_and_defaults():
    params = parameters("newsgroups20")
    assert list(params) == ["root", "model_dir", "split_seed", "val_fraction", "max_length", "remove"]
    assert params["max_length"].default == 512 and params["val_fraction"].default == 0.1  # App. E.6
    assert tuple(params["remove"].default) == ()  # raw posts


def test_newsgroups20_splits_labels_and_tokens(news_root, tokenizer_dir, tokenizer, tmp_path):
    info = prepare_dataset("newsgroups20", news_params(news_root, tokenizer_dir), tmp_path / "n.npz")
    assert info == DatasetInfo("newsgroups20", 3, "single_label", (2, 16)) == read_info(tmp_path / "n.npz")
    n = arrays(tmp_path / "n.npz")
    assert n["classes"].tolist() == list(GROUPS)
    assert json.loads(str(n["params"]))["remove"] == []
    files = {split: [f.decode() for f in n[f"files_{split}"]] for split in ("train", "val", "test")}
    assert [len(files[s]) for s in ("train", "val", "test")] == [9, 3, 7]
    assert np.bincount(n["y_val"], minlength=3).tolist() == [1, 1, 1]  # stratified
    all_train = sorted(f"20news-bydate-train/{g}/{name}" for g, posts in TRAIN_POSTS.items() for name in posts)
    assert sorted(files["train"] + files["val"]) == all_train
    assert all(f.startswith("20news-bydate-test/") for f in files["test"])
    for split in files:  # every label is its post's group folder
        assert [GROUPS[label] for label in n[f"y_{split}"]] == [f.split("/")[1] for f in files[split]]
        assert n[f"x_{split}"].dtype == np.int32 and n[f"x_{split}"].shape == (len(files[split]), 2, 16)

    # Test = the bydate test split in folder order (groups sorted, posts sorted by name).
    assert files["test"] == [
        "20news-bydate-test/alt.atheism/53068", "20news-bydate-test/alt.atheism/53069",
        "20news-bydate-test/comp.graphics/38758", "20news-bydate-test/comp.graphics/38759",
        "20news-bydate-test/comp.graphics/38760",
        "20news-bydate-test/sci.space/61099", "20news-bydate-test/sci.space/61100",
    ]  # fmt: skip
    assert n["y_test"].tolist() == [0, 0, 1, 1, 1, 2, 2]
    test, _ = load_split(tmp_path / "n.npz", "test")
    assert isinstance(test, TensorDataset) and len(test) == 7
    x, y = test[2]  # "Subject: cat\n\ncat dogs\n"
    assert x.dtype == torch.int64 and x.shape == (2, 16) and y.dtype == torch.int64 and y.shape == () and y == 1
    expected = [CLS, *ids("subject : cat cat dog ##s"), SEP]
    assert x[0].tolist() == expected + [PAD] * 8
    assert x[1].tolist() == [1] * 8 + [0] * 8
    assert (x[0].tolist(), x[1].tolist()) == own_output(tokenizer, TEST_POSTS["comp.graphics"]["38758"])
    # Latin-1 bytes: \xe9 is é, which the tokenizer's accent stripping turns into "cafe".
    x, _ = test[4]
    assert x[0].tolist()[:8] == [CLS, *ids("subject : cafe the cafe cat"), SEP]
    assert x[0].tolist() == own_output(tokenizer, LATIN1_POST[2].decode("latin-1"))[0]


def test_newsgroups20_truncates_at_max_length(news_root, tokenizer_dir, tokenizer, tmp_path):
    prepare_dataset("newsgroups20", news_params(news_root, tokenizer_dir), tmp_path / "n.npz")
    n = arrays(tmp_path / "n.npz")
    where = {f.decode(): (split, i) for split in ("train", "val") for i, f in enumerate(n[f"files_{split}"])}
    split, i = where["20news-bydate-train/sci.space/59497"]  # LONG_POST: 3 + 50 tokens
    row = n[f"x_{split}"][i]
    assert row[0].tolist() == [CLS, *ids("subject : space the big space is big . the big space is big"), SEP]
    assert row[1].tolist() == [1] * 16
    assert row[0].tolist() == own_output(tokenizer, LONG_POST)[0]
    for split in ("train", "val", "test"):  # the mask marks exactly the non-padding tokens
        x = n[f"x_{split}"]
        assert np.array_equal(x[:, 1] == 1, x[:, 0] != PAD)
        assert set(np.unique(x[:, 1]).tolist()) <= {0, 1}


def test_newsgroups20_remove_headers_footers_quotes(news_root, tokenizer_dir, tmp_path):
    params = news_params(news_root, tokenizer_dir, remove=["headers", "footers", "quotes"])
    prepare_dataset("newsgroups20", params, tmp_path / "n.npz")
    n = arrays(tmp_path / "n.npz")
    assert json.loads(str(n["params"]))["remove"] == ["headers", "footers", "quotes"]
    where = {f.decode(): (split, i) for split in ("train", "val") for i, f in enumerate(n[f"files_{split}"])}
    split, i = where["20news-bydate-train/alt.atheism/51060"]  # SIGNED_POST
    # Header, the "-- sig" signature, the "wrote:" line and the "> " quote are gone.
    assert n[f"x_{split}"][i][0].tolist()[:9] == [CLS, *ids("the cat sat on the mat"), SEP, PAD]
    assert clean_post(SIGNED_POST, ["headers"]) == (
        "the man wrote:\n> the dog sat\nthe cat sat on the mat\n\n--\nsig\n"
    )
    assert clean_post(SIGNED_POST, ["footers"]) == (
        "From: a@b.c\nSubject: god\n\nthe man wrote:\n> the dog sat\nthe cat sat on the mat\n"
    )
    assert clean_post(SIGNED_POST, ["quotes"]) == (
        "From: a@b.c\nSubject: god\n\nthe cat sat on the mat\n\n--\nsig\n"
    )
    assert clean_post(SIGNED_POST, []) == SIGNED_POST


def test_clean_post_matches_scikit_learn():
    twenty = pytest.importorskip("sklearn.datasets._twenty_newsgroups")
    strip = {"headers": twenty.strip_newsgroup_header, "footers": twenty.strip_newsgroup_footer,
             "quotes": twenty.strip_newsgroup_quoting}  # fmt: skip
    posts = [SIGNED_POST, LONG_POST, "no blank line at all", "In article <1@x> y writes:\n| z\n\nbody\n-----\n"]
    for post in posts:
        for parts in (["headers"], ["footers"], ["quotes"], ["headers", "footers", "quotes"]):
            expected = post
            for part in ("headers", "footers", "quotes"):
                if part in parts:
                    expected = strip[part](expected)
            assert clean_post(post, parts) == expected, (post, parts)


def test_newsgroups20_is_deterministic_in_the_seed(news_root, tokenizer_dir, tmp_path):
    for seed, file in ((0, "a"), (0, "b"), (1, "c")):
        params = news_params(news_root, tokenizer_dir, split_seed=seed)
        prepare_dataset("newsgroups20", params, tmp_path / file)
    a, b, c = (arrays(tmp_path / f) for f in "abc")
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["files_val"], c["files_val"])
    assert np.array_equal(a["x_test"], c["x_test"])


def test_newsgroups20_missing_root_names_the_path(news_root, tokenizer_dir, tmp_path):
    absent = tmp_path / "nowhere"
    with pytest.raises(DatasetMissingError, match="newsgroups20") as error:
        prepare_dataset("newsgroups20", news_params(absent, tokenizer_dir), tmp_path / "n.npz")
    assert str(absent / "20news-bydate-train") in str(error.value)
    assert isinstance(error.value, FileNotFoundError)
    partial = tmp_path / "partial"
    (partial / "20news-bydate-train" / "alt.atheism").mkdir(parents=True)
    with pytest.raises(DatasetMissingError, match=str(partial / "20news-bydate-test")):
        prepare_dataset("newsgroups20", news_params(partial, tokenizer_dir), tmp_path / "n.npz")
    (partial / "20news-bydate-test").mkdir()
    with pytest.raises(DatasetMissingError, match=str(partial / "20news-bydate-train" / "alt.atheism")):
        prepare_dataset("newsgroups20", news_params(partial, tokenizer_dir), tmp_path / "n.npz")
    assert not (tmp_path / "n.npz").exists()


@pytest.mark.parametrize("name", ["newsgroups20", "stsb"])
def test_missing_or_empty_model_dir_names_the_path_and_key(name, news_root, stsb_root, tmp_path):
    root = news_root if name == "newsgroups20" else stsb_root
    absent = tmp_path / "no_model"
    params = {"root": str(root), "model_dir": str(absent), "split_seed": 0}
    where = re.escape(str(absent))
    with pytest.raises(DatasetMissingError, match=rf"{name}.*model_dir {where} does not exist.*'model_dir'"):
        prepare_dataset(name, params, tmp_path / "x.npz")
    absent.mkdir()  # exists, but holds no tokenizer
    with pytest.raises(DatasetMissingError, match=rf"model_dir {where} holds no loadable tokenizer.*'model_dir'"):
        prepare_dataset(name, params, tmp_path / "x.npz")
    assert not (tmp_path / "x.npz").exists()


@pytest.mark.parametrize(
    "extra, match",
    [
        ({"remove": ["signatures"]}, "remove takes headers, footers, quotes; got 'signatures'"),
        ({"max_length": MODEL_MAX_LENGTH + 1}, "exceeds the tokenizer's model_max_length 64"),
        ({"max_length": 1}, "at least 2"),
        ({"val_fraction": 1.0}, "val_fraction"),
    ],
)
def test_newsgroups20_bad_values_raise(extra, match, news_root, tokenizer_dir, tmp_path):
    with pytest.raises(ValueError, match=match):
        prepare_dataset("newsgroups20", news_params(news_root, tokenizer_dir, **extra), tmp_path / "n.npz")


# STS-B

HEADER = ["index", "genre", "filename", "year", "old_index", "source1", "source2", "sentence1", "sentence2",
          "score"]  # fmt: skip
STRAY = '"A man plays a guitar.'  # an unbalanced quote opening the field, as in GLUE's files
TRAIN_PAIRS = [
    ("A man plays a guitar.", "A man plays a guitar.", "5.000"),
    ("A man plays a guitar.", "A woman plays a guitar.", "2.500"),
    (STRAY, "A man plays.", "3.800"),
    ("A cat sat on the mat.", "The cat sat.", "3.200"),
    ("A dog sat.", "A man is riding a horse.", "0.000"),
    ("The dog sat on the mat.", "A dog sat on a mat.", "4.750"),
    ("A woman is riding a horse.", "A man is riding a horse.", "2.000"),
    ("The cat.", "The dog.", "0.500"),
    ("Hello.", "Hello.", "5.000"),
    ("A man.", "A woman.", "1.000"),
]
DEV_PAIRS = [
    ("A man is riding a horse.", "A man is riding a horse.", "5.000"),
    ("A cat sat.", "A dog sat.", "1.250"),
    ("The woman plays the guitar.", "A woman plays a guitar.", "4.400"),
    ("Hello.", "The man.", "0.000"),
]


def stsb_rows(pairs, with_score=True) -> str:
    header = HEADER if with_score else HEADER[:-1]
    lines = ["\t".join(header)]
    for i, (first, second, score) in enumerate(pairs):
        row = [str(i), "main-captions", "MSRvid", "2012test", f"{i:04d}", "none", "none", first, second]
        lines.append("\t".join(row + ([score] if with_score else [])))
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def stsb_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("glue")
    folder = root / "STS-B"
    folder.mkdir()
    (folder / "train.tsv").write_text(stsb_rows(TRAIN_PAIRS), encoding="utf-8")
    (folder / "dev.tsv").write_text(stsb_rows(DEV_PAIRS), encoding="utf-8")
    (folder / "test.tsv").write_text(stsb_rows(DEV_PAIRS[:2], with_score=False), encoding="utf-8")  # unused
    return root


def stsb_params(root, tokenizer_dir, **extra):
    return {"root": str(root), "model_dir": str(tokenizer_dir), "split_seed": 0, "val_fraction": 0.2,
            "max_length": 16, **extra}  # fmt: skip


def test_stsb_parameters_and_defaults():
    params = parameters("stsb")
    assert list(params) == ["root", "model_dir", "split_seed", "val_fraction", "max_length"]
    assert params["max_length"].default == 128 and params["val_fraction"].default == 0.1  # App. E.7


def test_stsb_fixture_has_a_stray_quote_the_default_csv_dialect_misreads(stsb_root):
    text = (stsb_root / "STS-B" / "train.tsv").read_text()
    default = list(csv.reader(io.StringIO(text), delimiter="\t"))
    assert len(default) < 1 + len(TRAIN_PAIRS)  # the quote swallows the following lines


def test_stsb_splits_scores_and_pair_tokens(stsb_root, tokenizer_dir, tokenizer, tmp_path):
    info = prepare_dataset("stsb", stsb_params(stsb_root, tokenizer_dir), tmp_path / "s.npz")
    assert info == DatasetInfo("stsb", 1, "regression", (3, 16)) == read_info(tmp_path / "s.npz")
    s = arrays(tmp_path / "s.npz")
    assert [len(s[f"index_{split}"]) for split in ("train", "val", "test")] == [8, 2, 4]
    assert sorted(np.concatenate([s["index_train"], s["index_val"]]).tolist()) == list(range(10))
    assert str(s["source_train"]) == str(s["source_val"]) == "train.tsv" and str(s["source_test"]) == "dev.tsv"
    assert s["index_test"].tolist() == [0, 1, 2, 3]  # test = the official dev set, in file order
    for split, pairs in (("train", TRAIN_PAIRS), ("val", TRAIN_PAIRS), ("test", DEV_PAIRS)):
        assert s[f"y_{split}"].dtype == np.float32 and s[f"y_{split}"].shape == (len(s[f"index_{split}"]),)
        assert s[f"y_{split}"].tolist() == pytest.approx([float(pairs[i][2]) for i in s[f"index_{split}"]])
        dataset, _ = load_split(tmp_path / "s.npz", split, augment=split == "train")
        assert isinstance(dataset, TensorDataset) and len(dataset) == len(s[f"index_{split}"])
        for k, i in enumerate(s[f"index_{split}"]):
            x, y = dataset[k]
            assert x.dtype == torch.int64 and x.shape == (3, 16)
            assert y.dtype == torch.float32 and y.shape == () and y.item() == pytest.approx(float(pairs[i][2]))
            assert (x[0].tolist(), x[1].tolist()) == own_output(tokenizer, pairs[i][0], pairs[i][1])

    test, _ = load_split(tmp_path / "s.npz", "test")
    x, y = test[2]  # "The woman plays the guitar." / "A woman plays a guitar.", 4.4
    expected = [CLS, *ids("the woman plays the guitar ."), SEP, *ids("a woman plays a guitar ."), SEP]
    assert x[0].tolist() == expected + [PAD] * 1 and x[1].tolist() == [1] * 15 + [0]
    assert y.item() == pytest.approx(4.4)


def test_stsb_reads_stray_quotes_verbatim(stsb_root, tokenizer_dir, tokenizer, tmp_path):
    prepare_dataset("stsb", stsb_params(stsb_root, tokenizer_dir, val_fraction=0.5), tmp_path / "s.npz")
    s = arrays(tmp_path / "s.npz")
    split = "train" if 2 in s["index_train"] else "val"
    k = s[f"index_{split}"].tolist().index(2)
    row = s[f"x_{split}"][k]
    pair = [CLS, ID['"'], *ids("a man plays a guitar ."), SEP, *ids("a man plays ."), SEP]  # 14 tokens
    assert row[0].tolist() == pair + [PAD] * 2 and row[1].tolist() == [1] * 14 + [0] * 2
    assert row[0].tolist() == own_output(tokenizer, STRAY, "A man plays.")[0]
    assert s[f"y_{split}"][k].tolist() == pytest.approx(3.8)


def test_stsb_truncates_pairs_and_stores_the_tokenizers_segment_ids(stsb_root, tokenizer_dir, tokenizer, tmp_path):
    prepare_dataset("stsb", stsb_params(stsb_root, tokenizer_dir, max_length=8), tmp_path / "s.npz")
    s = arrays(tmp_path / "s.npz")
    x = torch.from_numpy(s["x_test"].astype(np.int64))
    # "A man is riding a horse." twice = 7 + 7 tokens, 5 places: longest first, the tie's odd place to the second.
    assert x[0, 0].tolist() == [CLS, *ids("a man"), SEP, *ids("a man is"), SEP]
    for k, (first, second, _) in enumerate(DEV_PAIRS):
        encoded = tokenizer(first, second, truncation=True, padding="max_length", max_length=8)
        assert x[k, 0].tolist() == encoded["input_ids"] and x[k, 1].tolist() == encoded["attention_mask"]
        assert x[k, 2].tolist() == encoded["token_type_ids"] and 1 in encoded["token_type_ids"]
        assert (x[k, 0] == SEP).sum() == 2


def test_stsb_is_deterministic_in_the_seed(stsb_root, tokenizer_dir, tmp_path):
    for seed, file in ((0, "a"), (0, "b"), (3, "c")):
        prepare_dataset("stsb", stsb_params(stsb_root, tokenizer_dir, split_seed=seed), tmp_path / file)
    a, b, c = (arrays(tmp_path / f) for f in "abc")
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["index_val"], c["index_val"])


def test_stsb_missing_files_name_the_path(stsb_root, tokenizer_dir, tmp_path):
    absent = tmp_path / "nowhere"
    with pytest.raises(DatasetMissingError, match="stsb") as error:
        prepare_dataset("stsb", stsb_params(absent, tokenizer_dir), tmp_path / "s.npz")
    assert str(absent / "STS-B" / "train.tsv") in str(error.value)
    partial = tmp_path / "partial"
    (partial / "STS-B").mkdir(parents=True)
    (partial / "STS-B" / "train.tsv").write_text(stsb_rows(TRAIN_PAIRS))
    with pytest.raises(DatasetMissingError, match=str(partial / "STS-B" / "dev.tsv")):
        prepare_dataset("stsb", stsb_params(partial, tokenizer_dir), tmp_path / "s.npz")
    assert not (tmp_path / "s.npz").exists()


@pytest.mark.parametrize(
    "train, match",
    [
        (stsb_rows(TRAIN_PAIRS[:4] + [("a", "b", "6.5")] + TRAIN_PAIRS[4:]), r"line 6: score '6.5'"),
        (stsb_rows(TRAIN_PAIRS[:4] + [("a", "b", "n/a")]), r"line 6: score 'n/a'"),
        (stsb_rows(TRAIN_PAIRS).replace("A dog sat.\t", "A dog\tsat.\t"), r"line 6 has 11 tab-separated fields"),
        (stsb_rows(TRAIN_PAIRS, with_score=False), "expected GLUE's STS-B columns"),
    ],
)
def test_stsb_malformed_rows_name_file_and_line(train, match, tokenizer_dir, tmp_path):
    folder = tmp_path / "glue" / "STS-B"
    folder.mkdir(parents=True)
    (folder / "train.tsv").write_text(train)
    (folder / "dev.tsv").write_text(stsb_rows(DEV_PAIRS))
    with pytest.raises(ValueError, match=match) as error:
        prepare_dataset("stsb", stsb_params(tmp_path / "glue", tokenizer_dir), tmp_path / "s.npz")
    assert str(folder / "train.tsv") in str(error.value)


def test_sts_b_regression_end_to_end_with_a_tiny_bert(stsb_root, tokenizer_dir, tmp_path):
    """STS-B through the pipeline's steps: a tiny BERT (the tokenizer's vocabulary, saved beside it as a real
    model directory is) trains on the MSE, its cache holds one output per head and float scores, and the
    regression criterion's sweep and budgets report the MSE, where lower is better."""
    import pandas as pd

    from eebench.exits.sweep import load_cache, run_sweep
    from eebench.io import MODEL_CHECKPOINT, read_checkpoint
    from eebench.metrics import run_budgets
    from eebench.steps import cache_logits, train_model

    model_dir = tmp_path / "bert"
    transformers.AutoTokenizer.from_pretrained(str(tokenizer_dir), local_files_only=True).save_pretrained(model_dir)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        config = transformers.BertConfig(vocab_size=len(VOCAB), hidden_size=16, num_hidden_layers=2,
                                         num_attention_heads=2, intermediate_size=32, max_position_embeddings=32)
        transformers.BertModel(config).save_pretrained(model_dir)
    prepare_dataset("stsb", stsb_params(stsb_root, model_dir), tmp_path / "s.npz")
    model = {"backbone": "bert", "params": {"model_dir": str(model_dir)}}
    training = {"max_epochs": 2, "patience": 2, "batch_size": 4, "lr": 1e-3, "augment": False}
    train_model(str(tmp_path / "s.npz"), model, training, "joint", 0, str(tmp_path / "m.pt"))
    history = read_checkpoint(tmp_path / "m.pt", MODEL_CHECKPOINT, keys=("history",))["history"]
    assert len(history) == 2 and all(score < 0 for h in history for score in h["val_scores"])  # minus the MSE

    cache_logits(str(tmp_path / "m.pt"), str(tmp_path / "s.npz"), str(tmp_path / "c.npz"))
    cache = load_cache(tmp_path / "c.npz")
    scores = arrays(tmp_path / "s.npz")["y_test"]
    assert cache["task"].name == "regression" and cache["test_logits"].shape == (2, len(scores), 1)
    np.testing.assert_array_equal(cache["test_labels"], scores)

    run_sweep(tmp_path / "c.npz", "regression_patience", tmp_path / "sweep.csv")
    budgets = run_budgets(tmp_path / "sweep.csv", [0.5, 1.0], tmp_path / "b.csv", rule="last")
    final_mse = float(((cache["test_logits"][-1, :, 0] - scores) ** 2).mean())
    assert budgets["mse"].iloc[-1] == pytest.approx(final_mse, rel=1e-6)  # unlimited, rule last: the final head
    assert "accuracy" not in pd.read_csv(tmp_path / "b.csv").columns
