"""Splitting a batch across our threads with OpenBLAS held to one thread (tinybnn.blas_threads)."""

import sys
import threading

import numba
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinybnn import blas_threads
from tinybnn.autograd import conv
from tinybnn.autograd.conv import ConvGeometry


@given(st.integers(0, 500), st.integers(1, 9))
def test_split_ranges_cover_the_items_in_order_and_evenly(count, parts):
    ranges = blas_threads.split_ranges(count, parts)
    assert ranges[0][0] == 0 and ranges[-1][1] == count
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
    lengths = [stop - start for start, stop in ranges]
    assert max(lengths) - min(lengths) <= 1
    assert len(ranges) == max(1, min(parts, count))
    assert count == 0 or min(lengths) > 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="NumPy's Linux wheels ship OpenBLAS")
def test_openblas_thread_controls_are_found_beside_numpy():
    found = blas_threads.controls()
    assert found is not None, blas_threads.loaded_openblas_paths()
    assert found.get() >= 1


needs_controls = pytest.mark.skipif(not blas_threads.available(), reason="this NumPy's BLAS is not OpenBLAS")


@needs_controls
def test_openblas_runs_one_thread_inside_and_its_count_comes_back_after():
    found = blas_threads.controls()
    before = found.get()
    found.set(2)
    try:
        with blas_threads.one_blas_thread():
            assert found.get() == 1
            with blas_threads.one_blas_thread():  # nested, as two splits running at once
                assert found.get() == 1
            assert found.get() == 1  # the outer block is still running
        assert found.get() == 2
    finally:
        found.set(before)


@needs_controls
def test_a_split_runs_each_share_alone_and_returns_in_order():
    seen = {}

    def work(share, start, stop):
        seen[share] = (numba.get_num_threads(), blas_threads.controls().get(), threading.get_ident())
        return list(range(start, stop))

    ranges = blas_threads.split_ranges(7, 3)
    assert blas_threads.run_split(work, ranges) == [[0, 1], [2, 3], [4, 5, 6]]
    assert [seen[p][:2] for p in range(3)] == [(1, 1)] * 3
    assert threading.get_ident() not in {seen[p][2] for p in range(3)}


@needs_controls
def test_a_failing_share_is_raised_after_every_share_ended_and_blas_is_restored():
    found = blas_threads.controls()
    before = found.get()
    finished = []

    def work(share, start, stop):
        if share == 0:
            raise ValueError("share 0 failed")
        threading.Event().wait(0.05)
        finished.append(share)

    with pytest.raises(ValueError, match="share 0 failed"):
        blas_threads.run_split(work, [(0, 1), (1, 2)])
    assert finished == [1]
    assert found.get() == before


@needs_controls
@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("chunk_bytes", [1, conv.CHUNK_BYTES])
def test_the_convolution_split_across_threads_agrees_with_the_reference(monkeypatch, threads, chunk_bytes):
    rng = np.random.default_rng(threads)
    x = rng.standard_normal((7, 3, 9, 8))
    w, b = rng.standard_normal((5, 3, 3, 2)), rng.standard_normal(5)
    geometry = ConvGeometry.of(x.shape, w.shape, (1, 2), (1, 0), 0.0)
    monkeypatch.setattr(conv, "CHUNK_BYTES", chunk_bytes)
    monkeypatch.setattr(blas_threads, "threads_to_split", lambda count: min(threads, count))
    results = []
    for _ in range(2):
        y, patches = conv.conv_forward_fast(x, w, b, geometry)
        grad = np.random.default_rng(0).standard_normal(y.shape)
        results.append((y.copy(), *conv.conv_backward_fast(grad, patches, w, geometry, (True, True, True))))
    y_ref, cols = conv.conv_forward_reference(x, w, b, geometry)
    want = (y_ref, *conv.conv_backward_reference(grad, cols, w, geometry, (True, True, True)))
    for got, expected in zip(results[0], want):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    for first, second in zip(*results):  # the shares are fixed, so timing cannot change a bit
        np.testing.assert_array_equal(first, second)
