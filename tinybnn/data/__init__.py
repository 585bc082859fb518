"""Data loading: IDX files, MNIST / Fashion-MNIST, downloads, mini-batches."""
from tinybnn.data.download import fetch, md5_of_file
from tinybnn.data.idx import DEFAULT_MAX_BYTES, IDX_TYPES, read_idx, write_idx

__all__ = [
    "DEFAULT_MAX_BYTES",
    "IDX_TYPES",
    "fetch",
    "md5_of_file",
    "read_idx",
    "write_idx",
]
