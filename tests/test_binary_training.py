"""The XNOR-popcount training kernels against their obvious twins: bit for bit.

binary_conv2d(x, w) is conv2d(det_sign(x), det_sign(w)) with ±1 padding, and
binary_linear(x, w) is det_sign(x) @ det_sign(w).T; forward values are
integers and the backward passes run the same float GEMMs on the same ±1
values, so outputs and gradients must be exactly equal, not close.
"""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tinybnn.autograd import Tensor, conv2d
from tinybnn.autograd.binary import binary_conv2d, binary_linear
from tinybnn.autograd.quantize import det_sign

from .strategies import float_arrays


def leaves(*arrays):
    return [Tensor(a, requires_grad=True) for a in arrays]


@settings(max_examples=40)
@given(
    st.sampled_from([1, 2, 63, 64, 65, 100]),
    st.integers(1, 3),
    st.integers(1, 4),
    st.integers(0, 2),
    st.integers(1, 2),
    st.sampled_from([1.0, -1.0]),
    st.sampled_from([np.float32, np.float64]),
    st.data(),
)
def test_binary_conv2d_equals_the_composition(c, k, f, pad, stride, pad_value, dtype, data):
    n, h = data.draw(st.integers(1, 2)), data.draw(st.integers(max(1, k - 2 * pad), 6))
    x = data.draw(float_arrays((n, c, h, h), dtype, layout="C"))
    w = data.draw(float_arrays((f, c, k, k), dtype, layout="C")) * 0.8  # some |w| <= 1, some not
    fast_x, fast_w = leaves(x, w)
    slow_x, slow_w = leaves(x, w)
    fast = binary_conv2d(fast_x, fast_w, stride=stride, pad=pad, pad_value=pad_value)
    slow = conv2d(det_sign(slow_x), det_sign(slow_w), stride=stride, pad=pad, pad_value=pad_value)
    assert fast.dtype == slow.dtype and np.array_equal(fast.data, slow.data)
    g = data.draw(float_arrays(slow.shape, dtype, layout="C"))
    fast.backward(g)
    slow.backward(g)
    assert np.array_equal(fast_x.grad, slow_x.grad)
    assert np.array_equal(fast_w.grad, slow_w.grad)


@given(st.integers(1, 5), st.sampled_from([1, 63, 64, 65, 200]), st.integers(1, 7), st.data())
def test_binary_linear_equals_the_composition(n, d, h, data):
    x = data.draw(float_arrays((n, d), np.float32, layout="C")) * 0.7
    w = data.draw(float_arrays((h, d), np.float32, layout="C")) * 0.7
    fast_x, fast_w = leaves(x, w)
    slow_x, slow_w = leaves(x, w)
    fast = binary_linear(fast_x, fast_w)
    slow = det_sign(slow_x) @ det_sign(slow_w).T
    assert np.array_equal(fast.data, slow.data)
    g = data.draw(float_arrays(slow.shape, np.float32, layout="C"))
    fast.backward(g)
    slow.backward(g)
    assert np.array_equal(fast_x.grad, slow_x.grad)
    assert np.array_equal(fast_w.grad, slow_w.grad)


def test_straight_through_masks_by_hand():
    x = Tensor(np.array([[0.5, -2.0, 0.0]], np.float32), requires_grad=True)
    w = Tensor(np.array([[0.3, -1.5, 0.9]], np.float32), requires_grad=True)
    y = binary_linear(x, w)
    assert y.data.tolist() == [[1 + 1 + 1]]  # signs (+,-,+) . (+,-,+)
    y.backward(np.array([[2.0]], np.float32))
    assert x.grad.tolist() == [[2.0, 0.0, 2.0]]  # 2 sign(w), cut where |x| > 1
    assert w.grad.tolist() == [[2.0, 0.0, 2.0]]  # 2 sign(x), cut where |w| > 1
