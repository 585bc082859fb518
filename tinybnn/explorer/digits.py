"""Real test digits for the explorer: the MNIST test set if it is at hand, else a few shipped ones.

:func:`load_test_digits` looks for the test images and labels of a dataset the
way training does (``--data DIR``, then ``$TINYBNN_DATA``, then the cache;
see :func:`tinybnn.data.locate_dataset`), without downloading. When they
are nowhere, and no ``--data`` was given, the first 20 digits of the MNIST
test set shipped in ``tinybnn/explorer/digits/`` (3 KB) stand in, with
their test-set indices 0..19.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data import locate_dataset, read_idx
from ..data.mnist import TEST_IMAGES, TEST_LABELS, find_files
from ..errors import ArgumentError, DataFileError

SHIPPED_DIGITS = Path(__file__).with_name("digits")


@dataclass(frozen=True)
class DigitSet:
    """Test images uint8 (N, 28, 28), their labels (N,), and where they came from."""

    images: np.ndarray
    labels: np.ndarray
    source: str

    def digit(self, index: int) -> tuple[np.ndarray, int]:
        """Test image ``index`` as float32 (28, 28) in [0, 1] (divided by 255, as training does) and its label."""
        if not 0 <= index < len(self.labels):
            raise ArgumentError(f"index must lie in 0..{len(self.labels) - 1} ({self.source}), got {index}")
        return np.divide(self.images[index], np.float32(255), dtype=np.float32), int(self.labels[index])


def read_test_files(folder: Path, source: str) -> DigitSet:
    files = find_files(folder)
    images, labels = read_idx(files[TEST_IMAGES]), read_idx(files[TEST_LABELS])
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28) or labels.shape != images.shape[:1]:
        raise DataFileError(
            f"{folder}: the test files do not hold uint8 28x28 images with one label each "
            f"(images {images.dtype} {images.shape}, labels {labels.shape})"
        )
    return DigitSet(images, labels.astype(np.int64), source)


def load_test_digits(dataset: str = "mnist", data_dir: str | Path | None = None) -> DigitSet:
    """The test set of ``dataset`` from ``data_dir`` / $TINYBNN_DATA / the cache, else the shipped digits.

    A ``data_dir`` that does not hold the dataset is an error (it was asked for)."""
    try:
        folder = locate_dataset(dataset, data_dir, download=False)
    except DataFileError:
        if data_dir is not None:
            raise
        return read_test_files(SHIPPED_DIGITS, "the first 20 MNIST test digits shipped with tinybnn")
    return read_test_files(folder, f"the {dataset} test set in {folder}")
