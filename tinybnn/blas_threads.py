"""Splitting a batch across threads of our own, each running OpenBLAS on one thread.

NumPy's matrix product hands one GEMM to OpenBLAS, which splits it across
its own threads. For a convolution in im2col form that forces a choice: the
patch matrix of a whole batch is large (41 MB for LeNet's second convolution
at batch 100) and falls out of the cache between the pass that builds it and
the GEMM that reads it, while a few images' patches at a time make GEMMs too
small for OpenBLAS to split well. Splitting the batch instead avoids both:
each of our threads takes its share of the images, builds their patch rows a
few at a time into its own scratch matrix, and multiplies them at once, with
OpenBLAS held to one thread so that the threads do not queue for its pool.
(On the 2-core Intel Xeon of this round, LeNet's second convolution forward
at batch 100 took 14.8 ms the first way and 8.8 ms this way.)

OpenBLAS's thread count is process-wide: :func:`one_blas_thread` sets it
to 1 for the duration of a split and restores it after the last split that
is still running ends. NumPy does not expose the setting, so it is found
with :mod:`ctypes` in the OpenBLAS library NumPy loaded (the library's own
``openblas_set_num_threads``, under the names NumPy's wheels give it). Where
that library cannot be found (another BLAS, another platform),
:func:`available` is False and callers keep OpenBLAS's own threading.
Inside a split, other threads of the program that call NumPy's matrix
product get one OpenBLAS thread too.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import os
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Callable, Iterator, Sequence, TypeVar

import numba
import numpy as np

T = TypeVar("T")

#: the names NumPy's wheels give OpenBLAS's thread-count functions (scipy-openblas, then older builds)
SYMBOL_PREFIXES = ("scipy_openblas_", "openblas_")
SYMBOL_SUFFIXES = ("64_", "")


def loaded_openblas_paths() -> list[str]:
    """Files of the OpenBLAS libraries this process has loaded (from /proc/self/maps where it
    exists), else those shipped inside NumPy's package."""
    paths: list[str] = []
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            for line in maps:
                path = line.split(maxsplit=5)[-1].strip()
                if "openblas" in os.path.basename(path).lower() and path not in paths:
                    paths.append(path)
    except OSError:
        pass
    if not paths:
        package = os.path.dirname(np.__file__)
        for pattern in ("../numpy.libs/*openblas*", ".dylibs/*openblas*"):
            paths += sorted(glob.glob(os.path.join(package, pattern)))
    return paths


class OpenBLASThreads:
    """OpenBLAS's own get and set of its thread count, bound through :mod:`ctypes`."""

    def __init__(self, get: Callable[[], int], set_: Callable[[int], None]) -> None:
        self.get, self.set = get, set_

    @classmethod
    def find(cls) -> OpenBLASThreads | None:
        """The controls of the first OpenBLAS library loaded that has them, or None."""
        for path in loaded_openblas_paths():
            try:
                library = ctypes.CDLL(path)
            except OSError:
                continue
            for prefix in SYMBOL_PREFIXES:
                for suffix in SYMBOL_SUFFIXES:
                    get = getattr(library, f"{prefix}get_num_threads{suffix}", None)
                    set_ = getattr(library, f"{prefix}set_num_threads{suffix}", None)
                    if get is not None and set_ is not None:
                        get.restype, get.argtypes = ctypes.c_int, []
                        set_.restype, set_.argtypes = None, [ctypes.c_int]
                        return cls(get, set_)
        return None


_controls: OpenBLASThreads | None = None
_searched = False
_lock = threading.Lock()
_splits_running = 0
_threads_before = 1
_executor: ThreadPoolExecutor | None = None
_executor_size = 0


def controls() -> OpenBLASThreads | None:
    """OpenBLAS's thread controls, looked up once."""
    global _controls, _searched
    with _lock:
        if not _searched:
            _controls, _searched = OpenBLASThreads.find(), True
        return _controls


def available() -> bool:
    """Whether batches can be split across our threads: OpenBLAS's thread count can be set."""
    return controls() is not None


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """OpenBLAS on one thread inside the block; its count before the first of the blocks
    running at the same time comes back when the last of them ends."""
    global _splits_running, _threads_before
    found = controls()
    if found is None:
        yield
        return
    with _lock:
        if _splits_running == 0:
            _threads_before = found.get()
            found.set(1)
        _splits_running += 1
    try:
        yield
    finally:
        with _lock:
            _splits_running -= 1
            if _splits_running == 0:
                found.set(_threads_before)


def _run_alone(work: Callable[[int, int, int], T], part: int, start: int, stop: int) -> T:
    numba.set_num_threads(1)  # per thread: this worker's Numba kernels run on it alone
    return work(part, start, stop)


def split_ranges(count: int, parts: int) -> list[tuple[int, int]]:
    """0..count cut into ``parts`` contiguous ranges whose lengths differ by at most one (none empty)."""
    parts = max(1, min(parts, count))
    return [(count * p // parts, count * (p + 1) // parts) for p in range(parts)]


def run_split(work: Callable[[int, int, int], T], ranges: Sequence[tuple[int, int]]) -> list[T]:
    """``[work(p, start, stop) for p, (start, stop) in enumerate(ranges)]``, each call on a thread
    of its own (Numba limited to that thread, OpenBLAS to one thread), results in order."""
    global _executor, _executor_size
    with _lock:
        if _executor is None or _executor_size < len(ranges):
            if _executor is not None:
                _executor.shutdown(wait=False)
            _executor, _executor_size = ThreadPoolExecutor(len(ranges), thread_name_prefix="tinybnn"), len(ranges)
        executor = _executor
    with one_blas_thread():
        futures = [executor.submit(_run_alone, work, p, start, stop) for p, (start, stop) in enumerate(ranges)]
        wait(futures)  # all of them, even when one fails: none may still run once OpenBLAS is restored
    return [future.result() for future in futures]


def threads_to_split(count: int) -> int:
    """How many threads :func:`run_split` should cut ``count`` items for: Numba's thread count
    (what the user chose for tinybnn's kernels), or 1 when splitting is not possible."""
    threads = numba.get_num_threads()
    return min(threads, count) if threads > 1 and available() else 1
