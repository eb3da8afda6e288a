"""Datasets: a registry of entries, ``prepare_dataset`` to fix the splits in one file, ``load_split`` to read
one split back as a torch Dataset. Importing this package registers every dataset."""
from eebench.data import small, vision  # noqa: F401  (registers the entries)
from eebench.data import text  # noqa: F401  (registers newsgroups20, stsb)
from eebench.data import coco  # noqa: F401  (registers coco)
from eebench.data.core import (
    DATASETS,
    SPLITS,
    DatasetInfo,
    DatasetMissingError,
    load_split,
    parameters,
    prepare_dataset,
    read_info,
)

__all__ = [
    "DATASETS",
    "SPLITS",
    "DatasetInfo",
    "DatasetMissingError",
    "load_split",
    "parameters",
    "prepare_dataset",
    "read_info",
]
