"""Catalogued data sets (checksum-verified, mirror/cache/download) and leakage-free splits."""

from __future__ import annotations

from deepms.datasets.registry import (
    DataFile,
    Dataset,
    default_cache_dir,
    default_mirror,
    download_url,
    get_dataset,
    list_datasets,
    resolve,
    resolve_file,
    sha256_file,
    verify,
)
from deepms.datasets.splits import group_uniform, grouped_split

__all__ = [
    "DataFile",
    "Dataset",
    "default_cache_dir",
    "default_mirror",
    "download_url",
    "get_dataset",
    "group_uniform",
    "grouped_split",
    "list_datasets",
    "resolve",
    "resolve_file",
    "sha256_file",
    "verify",
]
