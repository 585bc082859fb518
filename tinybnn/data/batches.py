"""Mini-batches with seeded shuffling from a Generator the caller owns.

The shuffle of an epoch is one ``rng.permutation(n)`` drawn when
:func:`iterate_batches` is called (not when the first batch is taken), so
the random state before an epoch is ``rng.bit_generator.state`` at the time
of the call: save it with a checkpoint, restore it into any Generator with
the same bit generator, and the next epoch's order is the same.
"""

from __future__ import annotations

import math
import operator
from typing import Iterator

import numpy as np

from tinybnn.errors import ArgumentError, ShapeError


def num_batches(n: int, batch_size: int, drop_last: bool = False) -> int:
    """How many batches :func:`iterate_batches` yields for ``n`` samples."""
    return n // batch_size if drop_last else math.ceil(n / batch_size)


def iterate_batches(
    images: np.ndarray,
    labels: np.ndarray,
    batch_size: int,
    *,
    shuffle: bool = True,
    rng: np.random.Generator | None = None,
    drop_last: bool = False,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(images[i], labels[i])`` batches covering every sample once (one epoch).

    With ``shuffle`` the order is ``rng.permutation(len(images))``, and
    ``rng`` (a :class:`numpy.random.Generator`) is required; batches are
    copies. Without it the order is the stored one and batches are views.
    The last batch may be smaller unless ``drop_last``. Arguments are checked
    and the permutation drawn at the call, before the first batch.
    """
    if len(images) != len(labels):
        raise ShapeError(f"iterate_batches: {len(images):,} images but {len(labels):,} labels")
    try:
        batch_size = operator.index(batch_size)
    except TypeError:
        raise ArgumentError(f"iterate_batches: batch_size must be an integer, got {batch_size!r}") from None
    if batch_size < 1:
        raise ArgumentError(f"iterate_batches: batch_size must be at least 1, got {batch_size}")
    n = len(images)
    order = None
    if shuffle:
        if not isinstance(rng, np.random.Generator):
            raise ArgumentError(
                f"iterate_batches: shuffle=True needs rng=np.random.default_rng(seed), got {type(rng).__name__}"
            )
        order = rng.permutation(n)
    stop = num_batches(n, batch_size, drop_last) * batch_size
    return _batches(images, labels, batch_size, order, min(stop, n))


def _batches(images, labels, batch_size, order, stop):
    for start in range(0, stop, batch_size):
        end = min(start + batch_size, stop)
        if order is None:
            yield images[start:end], labels[start:end]
        else:
            index = order[start:end]
            yield images[index], labels[index]
