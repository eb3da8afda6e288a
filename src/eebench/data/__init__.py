"""Datasets: a registry of entries, ``prepare_dataset`` to fix the splits in one file, ``load_split`` to read
one split back as a torch Dataset. The registry imports the modules that register the entries at its first
lookup (eebench.data.core.DATASETS)."""
from eebench.data.core import (
    DATASETS,
    SPLITS,
    DatasetInfo,
    DatasetMissingError,
    dataset_params_schema,
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
    "dataset_params_schema",
    "load_split",
    "parameters",
    "prepare_dataset",
    "read_info",
]
