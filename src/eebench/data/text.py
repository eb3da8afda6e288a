"""Paper-scale NLP datasets (paper B §4.1, Table 2): 20 Newsgroups classification and STS-B regression, read
from their official on-disk layouts under ``root`` and tokenised at prepare time with the tokenizer saved in
``model_dir`` (the BERT checkpoint's directory). Nothing is downloaded: missing data files or a missing
``model_dir`` raise ``DatasetMissingError`` naming what is expected where.

Every sample's input is an int64 tensor [2, T]: row 0 the token ids, row 1 the attention mask (1 = token,
0 = padding), padded and truncated to ``max_length`` = T. The prepared file stores them as ``x_<split>``
int32 [N, 2, T] (half the size of int64; converted at load), so for the real 20 Newsgroups (18,846 documents
at T = 512) the file holds 18,846 x 2 x 512 x 4 bytes = 77 MB, and STS-B (7,249 pairs at T = 128) 7.4 MB.

Sentence pairs (STS-B) carry BERT's segment (token type) ids as a third row, [3, T], so that a pre-trained
BERT sees its sentence-B embedding.
"""
from __future__ import annotations

import csv
import re
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

from eebench.data.core import (
    DATASETS,
    DatasetEntry,
    DatasetInfo,
    DatasetMissingError,
    Fraction,
    SplitSeed,
    check_fraction,
    missing,
    stratified_split,
)
from eebench.declare import Param

TOKENIZE_CHUNK = 1024  # texts per tokenizer call: bounds the tokenizer's temporary int64 arrays


# Tokenising


def load_tokenizer(dataset: str, model_dir: str) -> Any:
    """The tokenizer saved in ``model_dir`` (``save_pretrained`` layout), read from disk only."""
    path = Path(model_dir).resolve()
    expected = (
        "a Hugging Face tokenizer directory (tokenizer_config.json with tokenizer.json or vocab.txt, as written "
        "by save_pretrained; e.g. the bert-base-uncased checkpoint); set the dataset parameter 'model_dir'"
    )
    if not path.is_dir():
        raise DatasetMissingError(f"dataset {dataset!r}: model_dir {path} does not exist; expected {expected}")
    from transformers import AutoTokenizer  # imported here: transformers costs seconds at every job start

    try:
        return AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError, KeyError) as error:
        first = next((line.strip() for line in str(error).splitlines() if line.strip()), type(error).__name__)
        raise DatasetMissingError(
            f"dataset {dataset!r}: model_dir {path} holds no loadable tokenizer ({first}); expected {expected}"
        ) from error


def check_max_length(dataset: str, max_length: int, tokenizer: Any, minimum: int) -> None:
    if max_length < minimum:
        raise ValueError(f"dataset {dataset!r}: max_length must be at least {minimum}, got {max_length!r}")
    limit = getattr(tokenizer, "model_max_length", None)
    # Tokenizers without a limit report a huge sentinel (transformers' VERY_LARGE_INTEGER).
    if isinstance(limit, int) and limit < 10**6 and max_length > limit:
        raise ValueError(
            f"dataset {dataset!r}: max_length {max_length} exceeds the tokenizer's model_max_length {limit} "
            "(the model has no position embeddings beyond it)"
        )


def tokenize(
    tokenizer: Any, first: Sequence[str], second: Sequence[str] | None, max_length: int
) -> np.ndarray:
    """Token ids and attention masks [N, 2, max_length] (int32) of single texts, or of pairs when ``second``
    is given (``tokenizer(first, second)``: [CLS] a [SEP] b [SEP], truncating the longer text first), then
    with the segment (token type) ids as a third row, [N, 3, max_length]: BERT's sentence-B embedding is
    part of what a pre-trained model expects on a pair."""
    rows = 2 if second is None else 3
    out = np.zeros((len(first), rows, max_length), dtype=np.int32)
    for start in range(0, len(first), TOKENIZE_CHUNK):
        stop = start + TOKENIZE_CHUNK
        args = [list(first[start:stop])]
        if second is not None:
            args.append(list(second[start:stop]))
        encoded = tokenizer(
            *args, truncation=True, padding="max_length", max_length=max_length, return_tensors="np",
            return_attention_mask=True, return_token_type_ids=second is not None,
        )  # fmt: skip
        out[start:stop, 0] = encoded["input_ids"]
        out[start:stop, 1] = encoded["attention_mask"]
        if second is not None:
            out[start:stop, 2] = encoded["token_type_ids"]
    return out


def token_dataset(prepared: Mapping[str, np.ndarray], split: str) -> TensorDataset:
    x = torch.from_numpy(prepared[f"x_{split}"].astype(np.int64))
    return TensorDataset(x, torch.from_numpy(prepared[f"y_{split}"]))


# 20 Newsgroups

NewsgroupsPart = Literal["headers", "footers", "quotes"]
NEWSGROUPS_PARTS: tuple[str, ...] = typing.get_args(NewsgroupsPart)
# scikit-learn's heuristics (sklearn.datasets.fetch_20newsgroups(remove=...)), reproduced so that the option
# means exactly what it means there without importing scikit-learn's private module.
_QUOTE_RE = re.compile(r"(writes in|writes:|wrote:|says:|said:|^In article|^Quoted from|^\||^>)")


def strip_header(text: str) -> str:
    """Everything after the first blank line."""
    return text.partition("\n\n")[2]


def strip_footer(text: str) -> str:
    """Drop a signature: everything from the last blank or all-hyphen line on (trailing blank lines aside)."""
    lines = text.strip().split("\n")
    for line_num in range(len(lines) - 1, -1, -1):
        if lines[line_num].strip().strip("-") == "":
            break
    return "\n".join(lines[:line_num]) if line_num > 0 else text


def strip_quotes(text: str) -> str:
    """Drop lines quoting another post ('>' or '|') and lines introducing a quote ('... writes:')."""
    return "\n".join(line for line in text.split("\n") if not _QUOTE_RE.search(line))


def clean_post(text: str, remove: Sequence[str]) -> str:
    """``text`` without the parts named in ``remove``, in scikit-learn's order (headers, footers, quotes)."""
    if "headers" in remove:
        text = strip_header(text)
    if "footers" in remove:
        text = strip_footer(text)
    if "quotes" in remove:
        text = strip_quotes(text)
    return text


def list_posts(folder: Path) -> tuple[list[str], list[list[str]]]:
    """The group folders of one bydate split (sorted) and each one's post files (sorted by name, as
    scikit-learn's ``load_files`` lists them; hidden files such as .DS_Store skipped)."""
    groups = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    files = []
    for group in groups:
        posts = sorted(p.name for p in (folder / group).iterdir() if p.is_file() and not p.name.startswith("."))
        if not posts:
            raise missing("newsgroups20", folder / group, "the group's posts, one numbered file each")
        files.append(posts)
    return groups, files


def read_post(path: Path) -> str:
    # Latin-1: the corpus is not UTF-8 clean (posts carry raw 8-bit bytes in several encodings), and latin-1
    # maps every byte to one character, so nothing fails or is dropped. scikit-learn's fetch_20newsgroups reads
    # it the same way (load_files(..., encoding="latin1")); bytes are decoded as read, with no newline
    # translation, also as there.
    return path.read_bytes().decode("latin-1")


@DATASETS.register("newsgroups20")
class Newsgroups20(DatasetEntry):
    """20 Newsgroups in the 20news-bydate layout (root/20news-bydate-{train,test}/<group>/<post>, posts read as
    latin-1); single-label, 20 classes (group folders, sorted); token inputs (2, max_length) from the tokenizer
    in model_dir; val = a stratified part of bydate train, test = bydate test (paper B App. E.6).

    The bydate train and test splits hold 11,314 and 7,532 posts.

    Paper B does not say how the posts were cleaned, so by default the text is the raw post as distributed
    (the bydate release already drops the Newsgroups:, Path:, Xref:, Date: and Followup-To: headers; From:,
    Subject:, Organization: and Lines: remain). ``remove`` optionally strips any of headers, footers and quotes
    with scikit-learn's heuristics. Posts longer than ``max_length`` tokens (App. E.6: 512) are truncated."""

    def prepare(
        self,
        *,
        root: Annotated[str, Param("Directory holding 20news-bydate-train/ and 20news-bydate-test/.")],
        model_dir: Annotated[str, Param(
            "The BERT checkpoint directory whose tokenizer (save_pretrained layout) tokenises the posts; read "
            "from disk only, never downloaded."
        )],
        split_seed: SplitSeed,
        val_fraction: Fraction = 0.1,
        max_length: Annotated[int, Param(
            "Tokens per post, [CLS] and [SEP] included; longer posts are truncated, shorter padded (paper B "
            "App. E.6: 512).", ge=2,
        )] = 512,
        remove: Annotated[Sequence[NewsgroupsPart], Param(
            "Parts of each post to strip with scikit-learn's fetch_20newsgroups heuristics; paper B does not say, "
            "so the default keeps the raw post.", json_schema_extra={"uniqueItems": True},
        )] = (),
    ) -> tuple[DatasetInfo, dict[str, np.ndarray]]:
        name = "newsgroups20"
        check_fraction(name, "val_fraction", val_fraction)
        remove = [str(part) for part in remove]
        unknown = sorted(set(remove) - set(NEWSGROUPS_PARTS))
        if unknown:
            raise ValueError(f"dataset {name!r}: remove takes {', '.join(NEWSGROUPS_PARTS)}; got "
                             f"{', '.join(map(repr, unknown))}")
        base = Path(root).resolve()
        folders = {split: base / f"20news-bydate-{split}" for split in ("train", "test")}
        for split, folder in folders.items():
            if not folder.is_dir():
                raise missing(
                    name, folder,
                    f"the 20 Newsgroups bydate {split} split, one folder per group holding its numbered posts "
                    "(20news-bydate-{train,test}/<group>/<post>, from 20news-bydate.tar.gz)",
                )  # fmt: skip
        tokenizer = load_tokenizer(name, model_dir)
        check_max_length(name, max_length, tokenizer, 2)

        classes: list[str] = []
        listed: dict[str, tuple[list[str], np.ndarray]] = {}
        for split, folder in folders.items():
            groups, files = list_posts(folder)
            if not groups:
                raise missing(name, folder / "<group>", "one folder per newsgroup holding its posts")
            if classes and groups != classes:
                raise ValueError(
                    f"dataset {name!r}: the group folders of {folders['test']} differ from those of "
                    f"{folders['train']}"
                )
            classes = groups
            paths = [f"{folder.name}/{group}/{post}" for group, posts in zip(groups, files) for post in posts]
            labels = np.repeat(np.arange(len(groups), dtype=np.int64), [len(posts) for posts in files])
            listed[split] = paths, labels

        train_paths, train_labels = listed["train"]
        kept, held = stratified_split(train_labels, val_fraction, split_seed)
        chosen = {
            "train": ([train_paths[i] for i in kept], train_labels[kept]),
            "val": ([train_paths[i] for i in held], train_labels[held]),
            "test": listed["test"],
        }
        arrays: dict[str, np.ndarray] = {
            "root": np.array(str(base)),
            "model_dir": np.array(str(Path(model_dir).resolve())),
            "classes": np.array(classes),
        }
        for split, (paths, labels) in chosen.items():
            texts = [clean_post(read_post(base / path), remove) for path in paths]
            arrays[f"x_{split}"] = tokenize(tokenizer, texts, None, max_length)
            arrays[f"y_{split}"] = labels
            arrays[f"files_{split}"] = np.array([p.encode() for p in paths], dtype=np.bytes_)
        return DatasetInfo(name, len(classes), self.task, (2, max_length)), arrays

    def load(self, prepared: Mapping[str, np.ndarray], split: str, augment: bool) -> Dataset:
        return token_dataset(prepared, split)  # no text augmentation: ``augment`` changes nothing


# STS-B

STSB_COLUMNS = ("sentence1", "sentence2", "score")


def read_stsb(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    """Sentence pairs and scores of one GLUE STS-B file (tab-separated, header row, columns by name).

    ``csv.QUOTE_NONE``: the sentences contain unbalanced double quotes, which the default dialect would read
    as the start of a quoted field and run into the following lines."""
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        if header is None or not set(STSB_COLUMNS) <= set(header):
            raise ValueError(
                f"dataset 'stsb': {path} has header {header!r}; expected GLUE's STS-B columns, among them "
                f"{', '.join(STSB_COLUMNS)}"
            )
        column = {key: header.index(key) for key in STSB_COLUMNS}
        first, second, scores = [], [], []
        for row in reader:
            if not row:
                continue
            if len(row) != len(header):
                raise ValueError(
                    f"dataset 'stsb': {path} line {reader.line_num} has {len(row)} tab-separated fields; "
                    f"the header has {len(header)}"
                )
            try:
                score = float(row[column["score"]])
            except ValueError:
                score = float("nan")
            if not 0.0 <= score <= 5.0:
                raise ValueError(
                    f"dataset 'stsb': {path} line {reader.line_num}: score {row[column['score']]!r} is not a "
                    "number in [0, 5]"
                )
            first.append(row[column["sentence1"]])
            second.append(row[column["sentence2"]])
            scores.append(score)
    return first, second, np.asarray(scores, dtype=np.float32)


def random_split(n: int, held_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (kept, held out), each sorted: scikit-learn's shuffled split, unstratified (real targets)."""
    from sklearn.model_selection import train_test_split

    kept, held = train_test_split(np.arange(n), test_size=held_fraction, random_state=seed)
    return np.sort(kept), np.sort(held)


@DATASETS.register("stsb")
class Stsb(DatasetEntry):
    """GLUE STS-B (root/STS-B/{train,dev}.tsv); regression, one target (the 0-5 similarity score); sentence-pair
    token inputs (3, max_length: ids, mask, segment ids) from the tokenizer in model_dir; test = the official dev
    set (GLUE's test labels are not public), val = a random part of train.tsv (paper B App. E.7).

    The target is float32; dev.tsv holds 1,500 pairs, train.tsv 5,749; test.tsv (unlabelled) is not read. Pairs
    are truncated, longer sentence first, to ``max_length`` (App. E.7: 128)."""

    FILES = ("train.tsv", "dev.tsv")
    task = "regression"

    def prepare(
        self,
        *,
        root: Annotated[str, Param("Directory holding STS-B/ (GLUE layout).")],
        model_dir: Annotated[str, Param(
            "The BERT checkpoint directory whose tokenizer (save_pretrained layout) tokenises the pairs; read "
            "from disk only, never downloaded."
        )],
        split_seed: SplitSeed,
        val_fraction: Fraction = 0.1,
        max_length: Annotated[int, Param(
            "Tokens per sentence pair, [CLS] and both [SEP] included; the longer sentence is truncated first "
            "(paper B App. E.7: 128).", ge=3,
        )] = 128,
    ) -> tuple[DatasetInfo, dict[str, np.ndarray]]:
        name = "stsb"
        check_fraction(name, "val_fraction", val_fraction)
        base = Path(root).resolve()
        folder = base / "STS-B"
        for file in self.FILES:
            if not (folder / file).is_file():
                raise missing(
                    name, folder / file,
                    "GLUE's STS-B files (STS-B/{train,dev}.tsv: tab-separated with a header row, columns "
                    "sentence1, sentence2 and score)",
                )  # fmt: skip
        tokenizer = load_tokenizer(name, model_dir)
        check_max_length(name, max_length, tokenizer, 3)

        train_first, train_second, train_scores = read_stsb(folder / "train.tsv")
        kept, held = random_split(len(train_scores), val_fraction, split_seed)
        dev_first, dev_second, dev_scores = read_stsb(folder / "dev.tsv")
        chosen = {
            "train": ("train.tsv", kept, train_first, train_second, train_scores),
            "val": ("train.tsv", held, train_first, train_second, train_scores),
            "test": ("dev.tsv", np.arange(len(dev_scores)), dev_first, dev_second, dev_scores),
        }
        arrays: dict[str, np.ndarray] = {
            "root": np.array(str(base)),
            "model_dir": np.array(str(Path(model_dir).resolve())),
        }
        for split, (source, index, first, second, scores) in chosen.items():
            arrays[f"x_{split}"] = tokenize(
                tokenizer, [first[i] for i in index], [second[i] for i in index], max_length
            )
            arrays[f"y_{split}"] = scores[index]
            # Which official file each split reads, and its rows there (0 = the first row after the header).
            arrays[f"source_{split}"] = np.array(source)
            arrays[f"index_{split}"] = index.astype(np.int64)
        return DatasetInfo(name, 1, self.task, (3, max_length)), arrays

    def load(self, prepared: Mapping[str, np.ndarray], split: str, augment: bool) -> Dataset:
        return token_dataset(prepared, split)  # no text augmentation: ``augment`` changes nothing
