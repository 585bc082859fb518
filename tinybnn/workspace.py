"""Scratch memory with an owner: arrays that a training step or a layer reuses, call after call.

A fresh array of tens of megabytes comes from the operating system as new
pages, and touching each 4 KB page the first time costs a page fault: for
LeNet's im2col matrices and feature maps that is milliseconds per batch.
Training and inference ask for arrays of the same shapes call after call, so
an owner that knows when its arrays are no longer needed can hand the same
memory out again.

A :class:`Workspace` is that owner's pool. Its rule is explicit, not
inferred: an array handed out by :meth:`Workspace.take` belongs to whoever
took it until the owner calls :meth:`Workspace.release` (or starts its next
:meth:`Workspace.use` block); before that, no other ``take`` returns it, so
the pool never gives away memory that is in use. After it, the same requests
in the same order get the same arrays back.

``with workspace.use(): ...`` makes the workspace the current one of this
thread: :func:`empty` (what the autograd ops call for their outputs and
scratch) then takes from it; outside any ``use`` block, :func:`empty` is a
plain ``np.empty``, so code that does not opt in never shares memory. A
training step is the natural owner: everything a step allocates (outputs,
saved tensors, gradients) is dead once the optimizer has stepped, and the
arrays stay valid until the next step begins, so the loss and the logits can
still be read after the block.

One workspace serves one thread at a time. A ``use`` block entered while the
workspace is already in use (by another thread, or nested) runs without it,
allocating fresh arrays, rather than sharing memory. Small arrays (under
64 KB) are never pooled: allocating them is cheap, and they are the ones
(statistics, per-channel vectors) most likely to be kept.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Iterator

import numpy as np

MIN_BYTES = 64 * 1024

_current = threading.local()


class Workspace:
    """A pool of scratch arrays owned by one training step, layer or model."""

    def __init__(self, name: str = "workspace") -> None:
        self.name = name
        self._arrays: dict[tuple[tuple[int, ...], str], list[np.ndarray]] = {}
        self._taken: dict[tuple[tuple[int, ...], str], int] = {}
        self._lock = threading.Lock()

    def take(self, shape: tuple[int, ...], dtype=np.float32) -> np.ndarray:
        """An uninitialized array of ``shape`` and ``dtype``, distinct from every array
        taken since the last :meth:`release`."""
        dtype = np.dtype(dtype)
        shape = tuple(int(n) for n in shape)
        key = (shape, dtype.str)
        arrays = self._arrays.setdefault(key, [])
        index = self._taken.get(key, 0)
        if index == len(arrays):
            arrays.append(np.empty(shape, dtype))
        self._taken[key] = index + 1
        return arrays[index]

    def release(self) -> None:
        """Every array taken so far is free again: the owner has finished with all of them."""
        self._taken.clear()

    def in_use(self) -> int:
        """How many arrays are taken and not yet released."""
        return sum(self._taken.values())

    @property
    def nbytes(self) -> int:
        """Bytes this workspace holds, taken or free."""
        return sum(a.nbytes for arrays in self._arrays.values() for a in arrays)

    @contextlib.contextmanager
    def use(self) -> Iterator[Workspace]:
        """Release the previous block's arrays and make this the current workspace of the thread.

        Arrays taken inside stay valid after the block, until the next ``use``
        or ``release``. If the workspace is already in use, the block runs with
        no current workspace (fresh arrays) instead of sharing memory."""
        if not self._lock.acquire(blocking=False):
            previous = getattr(_current, "workspace", None)
            _current.workspace = None
            try:
                yield self
            finally:
                _current.workspace = previous
            return
        previous = getattr(_current, "workspace", None)
        try:
            self.release()
            _current.workspace = self
            yield self
        finally:
            _current.workspace = previous
            self._lock.release()


def current() -> Workspace | None:
    """The workspace this thread is using, or None."""
    return getattr(_current, "workspace", None)


def empty(shape: tuple[int, ...], dtype=np.float32) -> np.ndarray:
    """Like ``np.empty(shape, dtype)``; taken from the thread's current workspace when one is
    in use and the array is at least :data:`MIN_BYTES`."""
    workspace = current()
    dtype = np.dtype(dtype)
    if workspace is None or dtype.itemsize * int(np.prod(shape, dtype=np.int64)) < MIN_BYTES:
        return np.empty(shape, dtype)
    return workspace.take(shape, dtype)
