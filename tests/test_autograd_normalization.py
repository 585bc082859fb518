"""Batch normalization and softmax cross-entropy: values, running statistics, gradients."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinybnn.autograd import Tensor, batch_norm, gradcheck, softmax_cross_entropy
from tinybnn.errors import ShapeError

from .strategies import arrays_f64


@given(st.sampled_from([(5, 3), (3, 2, 3, 4), (2, 4, 1, 1)]), st.booleans(), st.data())
def test_batch_norm_gradients(shape, training, data):
    c = shape[1]
    x = Tensor(data.draw(arrays_f64(shape)) + np.linspace(0, 1, np.prod(shape)).reshape(shape), requires_grad=True)
    gamma = Tensor(data.draw(arrays_f64((c,))), requires_grad=True)
    beta = Tensor(data.draw(arrays_f64((c,))), requires_grad=True)
    running_mean, running_var = np.zeros(c), np.full(c, 1.5)
    gradcheck(
        lambda a, g, b: batch_norm(a, g, b, running_mean, running_var, training=training), [x, gamma, beta], atol=1e-5
    )


def test_batch_norm_training_normalizes_and_updates_running_statistics():
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, size=(64, 3, 4, 4))
    running_mean, running_var = np.zeros(3), np.ones(3)
    ones, zeros = Tensor(np.ones(3)), Tensor(np.zeros(3))
    y = batch_norm(Tensor(x), ones, zeros, running_mean, running_var, momentum=0.9, eps=1e-5).data
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-10)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), 1, atol=1e-4)
    np.testing.assert_allclose(running_mean, 0.1 * x.mean(axis=(0, 2, 3)))
    np.testing.assert_allclose(running_var, 0.9 + 0.1 * x.var(axis=(0, 2, 3)))


def test_batch_norm_evaluation_uses_running_statistics():
    x = np.array([[1.0, 2.0], [3.0, 6.0]])
    mean, var = np.array([1.0, 2.0]), np.array([4.0, 16.0])
    gamma, beta = Tensor(np.array([2.0, 1.0])), Tensor(np.array([0.5, 0.0]))
    y = batch_norm(Tensor(x), gamma, beta, mean, var, training=False, eps=0.0).data
    np.testing.assert_allclose(y, [[0.5, 0.0], [2.5, 1.0]])  # 2 (x - 1) / 2 + 0.5, (x - 2) / 4
    assert np.array_equal(mean, [1.0, 2.0])  # not updated


def test_batch_norm_refuses_channel_mismatch():
    with pytest.raises(ShapeError, match="3 channels"):
        batch_norm(Tensor(np.zeros((2, 3))), Tensor(np.ones(4)), Tensor(np.zeros(4)), np.zeros(4), np.ones(4))


@given(st.integers(1, 6), st.integers(2, 5), st.data())
def test_softmax_cross_entropy_value_and_gradient(n, k, data):
    logits = data.draw(arrays_f64((n, k), -5, 5))
    labels = np.array(data.draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)))
    expected = -np.mean([np.log(np.exp(row[y]) / np.exp(row).sum()) for row, y in zip(logits, labels)])
    assert softmax_cross_entropy(Tensor(logits), labels).item() == pytest.approx(expected, rel=1e-10)
    gradcheck(lambda z: softmax_cross_entropy(z, labels), [Tensor(logits, requires_grad=True)])


def test_softmax_cross_entropy_is_stable_for_huge_logits():
    logits = Tensor(np.array([[1000.0, 0.0], [-1000.0, 1000.0]]), requires_grad=True)
    loss = softmax_cross_entropy(logits, np.array([0, 1]))
    loss.backward()
    assert loss.item() == 0.0 and np.all(np.isfinite(logits.grad))


def test_softmax_cross_entropy_refuses_bad_labels():
    with pytest.raises(ShapeError, match="labels must lie in 0..2"):
        softmax_cross_entropy(Tensor(np.zeros((2, 3))), np.array([0, 3]))
    with pytest.raises(ShapeError, match=r"labels \(N,\)"):
        softmax_cross_entropy(Tensor(np.zeros((2, 3))), np.array([0, 1, 2]))


def test_batch_norm_refuses_an_empty_training_batch():
    with pytest.raises(ShapeError, match="at least one value per channel"):
        batch_norm(Tensor(np.zeros((0, 3))), Tensor(np.ones(3)), Tensor(np.zeros(3)), np.zeros(3), np.ones(3))


@given(st.sampled_from([(7, 5), (4, 3, 5, 6), (3, 4, 1, 1)]), st.booleans(), st.booleans(), st.data())
def test_batch_norm_kernels_equal_the_numpy_twins(shape, training, channel_major, data):
    from tinybnn.autograd.normalization import backward_reference, forward_reference

    from .strategies import float_arrays

    x = data.draw(float_arrays(shape, np.float32, layout="C")) * 3 + 1
    if channel_major and len(shape) == 4:
        x = np.ascontiguousarray(x.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    c = shape[1]
    gamma = data.draw(float_arrays((c,), np.float32, layout="C"))
    beta = data.draw(float_arrays((c,), np.float32, layout="C"))
    running = (np.linspace(-1, 1, c), np.linspace(0.5, 2, c))
    stats = (np.zeros(c), np.ones(c)) if training else tuple(r.copy() for r in running)
    x_t, gamma_t, beta_t = (Tensor(a, requires_grad=True) for a in (x, gamma, beta))
    y = batch_norm(x_t, gamma_t, beta_t, *stats, training=training, eps=1e-3)
    expected, xhat, inv_std, _, _ = forward_reference(
        x, gamma, beta, None if training else running[0], None if training else running[1], 1e-3
    )
    np.testing.assert_allclose(y.data, expected, rtol=1e-5, atol=1e-5)
    g = data.draw(float_arrays(shape, np.float32, layout="C"))
    y.backward(g)
    dx, dgamma, dbeta = backward_reference(g, xhat, gamma, inv_std, training)
    np.testing.assert_allclose(x_t.grad, dx, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(gamma_t.grad, dgamma, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(beta_t.grad, dbeta, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("offset", [0.0, 1e3, -3e4])
def test_fast_batch_statistics_hold_under_a_large_mean(offset):
    """The fast kernel's one-pass moments (shifted by each channel's first value) keep the variance of
    values far from 0, where E[x^2] - E[x]^2 unshifted would cancel it away in float32 terms."""
    from tinybnn.autograd.normalization import forward_fast

    rng = np.random.default_rng(4)
    x = (offset + 0.01 * rng.standard_normal((50, 3, 4, 4))).astype(np.float32)
    ones, zeros = np.ones(3, np.float32), np.zeros(3, np.float32)
    _, _, _, mean, var = forward_fast(x, ones, zeros, None, None, 1e-5)
    exact = x.astype(np.float64)
    np.testing.assert_allclose(mean, exact.mean(axis=(0, 2, 3)), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(var, exact.var(axis=(0, 2, 3)), rtol=1e-9)
