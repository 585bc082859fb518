"""Data loading: IDX files, MNIST / Fashion-MNIST, downloads, mini-batches.

- :mod:`.idx`: :func:`read_idx` / :func:`write_idx` (raw or gzip IDX, fully validated);
- :mod:`.download`: :func:`fetch` (md5-checked, atomic download);
- :mod:`.mnist`: :func:`load_dataset` (search order, download, checks) and :class:`Dataset`;
- :mod:`.batches`: :func:`iterate_batches` (seeded shuffling with a caller-owned Generator).
"""

from tinybnn.data.batches import iterate_batches, num_batches
from tinybnn.data.download import DownloadError, fetch, md5_of_file
from tinybnn.data.idx import DEFAULT_MAX_BYTES, IDX_TYPES, read_idx, write_idx
from tinybnn.data.mnist import (
    DATASETS,
    FILES,
    Dataset,
    DatasetSpec,
    default_cache_dir,
    find_files,
    get_spec,
    load_dataset,
    load_folder,
    locate_dataset,
    to_float_nchw,
)

__all__ = [
    "DATASETS",
    "DEFAULT_MAX_BYTES",
    "FILES",
    "IDX_TYPES",
    "Dataset",
    "DatasetSpec",
    "DownloadError",
    "default_cache_dir",
    "fetch",
    "find_files",
    "get_spec",
    "iterate_batches",
    "load_dataset",
    "load_folder",
    "locate_dataset",
    "md5_of_file",
    "num_batches",
    "read_idx",
    "to_float_nchw",
    "write_idx",
]
