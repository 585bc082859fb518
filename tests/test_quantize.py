"""Quantizers: values against the written formulas (zeros always present, so
sign(0) = +1 is exercised) and straight-through gradients against their
formulas, not finite differences (sign has no useful derivative)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinybnn.autograd import Tensor, gradcheck
from tinybnn.autograd.quantize import approx_sign, det_sign, quantize_activation, quantize_weight, sign
from tinybnn.errors import ArgumentError

from .strategies import arrays_f64, shapes, with_zeros


def leaf(values, dtype=np.float64):
    return Tensor(np.array(values, dtype=dtype), requires_grad=True)


def test_sign_of_zero_is_plus_one():
    assert np.array_equal(sign(np.array([-2.0, -0.0, 0.0, 1e-30, 3.0])), [-1, 1, 1, 1, 1])


@given(arrays_f64(shapes(), -3, 3), st.sampled_from([0.5, 1.0, 2.0]), st.data())
def test_det_sign_forward_and_straight_through_gradient(values, grad_cancel, data):
    x_values = with_zeros(values, data)
    x = leaf(x_values)
    g = data.draw(arrays_f64(values.shape))
    y = det_sign(x, grad_cancel)
    assert np.array_equal(y.data, np.where(x_values >= 0, 1.0, -1.0))
    y.backward(g)
    assert np.array_equal(x.grad, np.where(np.abs(x_values) <= grad_cancel, g, 0.0))


@given(arrays_f64(shapes(), -2, 2), st.data())
def test_approx_sign_gradient_is_bireal(values, data):
    x_values = with_zeros(values, data)
    x = leaf(x_values)
    g = data.draw(arrays_f64(values.shape))
    y = approx_sign(x)
    assert np.array_equal(y.data, np.where(x_values >= 0, 1.0, -1.0))
    y.backward(g)
    expected = g * np.where(np.abs(x_values) <= 1, 2 - 2 * np.abs(x_values), 0.0)
    np.testing.assert_allclose(x.grad, expected, rtol=1e-12, atol=1e-15)


def test_approx_sign_gradient_at_the_edges():
    x = leaf([-1.0, 0.0, 0.5, 1.0, 1.5])
    approx_sign(x).sum().backward()
    assert np.array_equal(x.grad, [0.0, 2.0, 1.0, 0.0, 0.0])


@given(st.integers(2, 8), arrays_f64(shapes(), -0.5, 1.5), st.data())
def test_dorefa_activations_lie_on_the_grid(bits, values, data):
    x_values = with_zeros(values, data)
    x = leaf(x_values)
    y = quantize_activation(x, bits)
    levels = 2**bits - 1
    scaled = y.data * levels
    assert np.allclose(scaled, np.round(scaled), atol=1e-9)
    assert y.data.min() >= 0 and y.data.max() <= 1
    np.testing.assert_allclose(y.data, np.round(np.clip(x_values, 0, 1) * levels) / levels)
    g = data.draw(arrays_f64(values.shape))
    y.backward(g)
    assert np.array_equal(x.grad, np.where((x_values >= 0) & (x_values <= 1), g, 0.0))


@given(st.integers(2, 8), arrays_f64(shapes(min_dims=2), -3, 3), st.data())
def test_dorefa_weights_lie_on_the_grid_and_follow_the_formula(bits, values, data):
    w_values = with_zeros(values, data)
    w = leaf(w_values)
    q = quantize_weight(w, bits)
    levels = 2**bits - 1
    t = np.tanh(w_values)
    largest = np.abs(t).max()
    degenerate = largest <= np.finfo(np.float64).tiny
    x = np.full_like(t, 0.5) if degenerate else t / (2 * largest) + 0.5
    expected = 2 * np.round(x * levels) / levels - 1
    np.testing.assert_allclose(q.data, expected, atol=1e-12)
    grid = (q.data + 1) / 2 * levels  # integers 0..levels
    assert np.allclose(grid, np.round(grid), atol=1e-9) and q.data.min() >= -1 and q.data.max() <= 1
    g = data.draw(arrays_f64(values.shape))
    q.backward(g)
    if not degenerate:
        np.testing.assert_allclose(w.grad, g * (1 - t * t) / largest, rtol=1e-10, atol=1e-12)


def test_32_bits_is_identity_and_one_bit_is_sign():
    x = leaf([-0.7, 0.0, 0.3, 1.4])
    assert quantize_activation(x, 32) is x and quantize_weight(x, 32) is x
    a, w = quantize_activation(x, 1), quantize_weight(x, 1)
    assert np.array_equal(a.data, [-1, 1, 1, 1]) and np.array_equal(w.data, [-1, 1, 1, 1])


@pytest.mark.parametrize("bits", [0, 33, -1, 1.5, True, "2"])
def test_bits_outside_1_to_32_are_refused(bits):
    with pytest.raises(ArgumentError, match="act_bit must be an integer from 1 to 32"):
        quantize_activation(leaf([1.0]), bits)
    with pytest.raises(ArgumentError, match="weight_bit must be an integer from 1 to 32"):
        quantize_weight(leaf([1.0]), bits)


def test_abs_gradient():
    x = Tensor(np.array([-2.0, -0.5, 0.7, 3.0]), requires_grad=True)
    gradcheck(lambda t: t.abs(), [x])
