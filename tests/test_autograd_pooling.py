"""Pooling: Numba kernels against the NumPy twins (exactly), and gradients."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinybnn.autograd import Tensor, avg_pool2d, gradcheck, max_pool2d
from tinybnn.autograd.pooling import max_pool_backward_reference, max_pool_reference
from tinybnn.errors import ShapeError

from .strategies import arrays_f64


@st.composite
def pool_geometry(draw):
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    shape = (
        draw(st.integers(1, 2)),
        draw(st.integers(1, 3)),
        draw(st.integers(kernel[0], 7)),
        draw(st.integers(kernel[1], 7)),
    )
    return shape, kernel, stride


def distinct_values(shape, data):
    """Values 1e-2 apart in a random order: no ties, so max is differentiable."""
    order = data.draw(st.permutations(range(int(np.prod(shape)))))
    return np.array(order, dtype=np.float64).reshape(shape) * 1e-2


@given(pool_geometry(), st.data())
def test_max_pool_kernel_equals_reference(geometry, data):
    shape, kernel, stride = geometry
    # small integers: many ties, so "first maximum" is exercised
    x = np.array(
        data.draw(st.lists(st.integers(-2, 2), min_size=int(np.prod(shape)), max_size=int(np.prod(shape)))),
        dtype=np.float32,
    ).reshape(shape)
    y = max_pool2d(Tensor(x, requires_grad=True), kernel, stride)
    expected, argmax = max_pool_reference(x, kernel, stride)
    assert np.array_equal(y.data, expected)
    g = data.draw(arrays_f64(y.shape)).astype(np.float32)
    y.backward(g)
    reference = max_pool_backward_reference(g, argmax, shape, kernel, stride)
    np.testing.assert_allclose(y.history.inputs[0].grad, reference, rtol=1e-6, atol=1e-6)


@given(pool_geometry(), st.booleans(), st.data())
def test_max_pool_without_gradient_equals_reference(geometry, channel_major, data):
    shape, kernel, stride = geometry
    x = data.draw(arrays_f64(shape)).astype(np.float32)
    if channel_major:
        x = np.ascontiguousarray(x.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    y = max_pool2d(Tensor(x), kernel, stride)  # no graph: the values-only kernels
    assert np.array_equal(y.data, max_pool_reference(x, kernel, stride)[0])


@given(pool_geometry(), st.data())
def test_max_pool_gradient(geometry, data):
    shape, kernel, stride = geometry
    x = Tensor(distinct_values(shape, data), requires_grad=True)
    gradcheck(lambda t: max_pool2d(t, kernel, stride), [x])


@given(pool_geometry(), st.data())
def test_avg_pool_value_and_gradient(geometry, data):
    shape, kernel, stride = geometry
    values = data.draw(arrays_f64(shape))
    y = avg_pool2d(Tensor(values), kernel, stride).data
    assert y[0, 0, 0, 0] == pytest.approx(values[0, 0, : kernel[0], : kernel[1]].mean())
    gradcheck(lambda t: avg_pool2d(t, kernel, stride), [Tensor(values, requires_grad=True)])


def test_lenet_pooling_by_hand():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    assert np.array_equal(max_pool2d(Tensor(x), 2).data, [[[[5, 7], [13, 15]]]])
    assert np.array_equal(avg_pool2d(Tensor(x), 2).data, [[[[2.5, 4.5], [10.5, 12.5]]]])


def test_pooling_refuses_a_kernel_larger_than_the_input():
    with pytest.raises(ShapeError, match="larger than the input"):
        max_pool2d(Tensor(np.zeros((1, 1, 2, 2))), 3)


@given(st.integers(1, 3), st.integers(1, 3), st.integers(2, 7), st.integers(2, 7), st.booleans(), st.data())
def test_the_2x2_kernels_equal_the_reference(n, c, h, w, channel_major, data):
    """LeNet's pooling (2x2, stride 2) has its own unrolled kernels; odd sizes leave a row or column out."""
    x = np.array(
        data.draw(st.lists(st.integers(-2, 2), min_size=n * c * h * w, max_size=n * c * h * w)), dtype=np.float32
    ).reshape(n, c, h, w)  # many ties: the first maximum must win
    if channel_major:
        x = np.ascontiguousarray(x.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    t = Tensor(x, requires_grad=True)
    y = max_pool2d(t, 2)
    expected, argmax = max_pool_reference(np.ascontiguousarray(x), (2, 2), (2, 2))
    assert np.array_equal(y.data, expected)
    g = data.draw(arrays_f64(y.shape)).astype(np.float32)
    y.backward(g)
    assert np.array_equal(t.grad, max_pool_backward_reference(g, argmax, x.shape, (2, 2), (2, 2)))
    from tinybnn.autograd import no_grad

    with no_grad():
        assert np.array_equal(max_pool2d(Tensor(x), 2).data, expected)
