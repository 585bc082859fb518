"""Optimizers: steps against the written formulas; schedules; constraints."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinybnn.errors import ArgumentError
from tinybnn.layers import Parameter
from tinybnn.optim import SGD, Adam, ConstantLR, CosineLR, StepLR, make_schedule


def param(values, grad, clip=None):
    p = Parameter(np.array(values, dtype=np.float32), clip=clip)
    p.grad = np.array(grad, dtype=np.float32)
    return p


def test_sgd_plain_step():
    p = param([1.0, -2.0], [0.5, 0.25])
    SGD([p], lr=0.1).step()
    np.testing.assert_allclose(p.data, [1.0 - 0.05, -2.0 - 0.025], rtol=1e-6)


def test_sgd_momentum_weight_decay_two_steps():
    w0, g, lr, mu, wd = np.float32(1.0), np.float32(0.5), 0.1, 0.9, 0.01
    p = param([w0], [g])
    opt = SGD([p], lr=lr, momentum=mu, weight_decay=wd)
    opt.step()
    d1 = g + wd * w0
    w1 = w0 - lr * d1
    np.testing.assert_allclose(p.data, [w1], rtol=1e-6)
    opt.step()
    d2 = g + wd * w1
    v2 = mu * d1 + d2
    np.testing.assert_allclose(p.data, [w1 - lr * v2], rtol=1e-6)


def test_sgd_nesterov_step():
    p = param([1.0], [0.5])
    opt = SGD([p], lr=0.1, momentum=0.9, nesterov=True)
    opt.step()  # v = g; w -= lr (g + mu v)
    np.testing.assert_allclose(p.data, [1.0 - 0.1 * (0.5 + 0.9 * 0.5)], rtol=1e-6)


def test_adam_first_two_steps():
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
    p = param([1.0, -1.0], [0.2, -0.4])
    opt = Adam([p], lr=lr, betas=(b1, b2), eps=eps)
    opt.step()
    # after one step m_hat = g and v_hat = g^2, so the step is lr * sign(g) (up to eps)
    np.testing.assert_allclose(p.data, [1.0 - lr, -1.0 + lr], rtol=1e-5)
    g2 = np.array([0.1, 0.3])
    p.grad = g2.astype(np.float32)
    before = p.data.astype(np.float64)
    opt.step()
    g1 = np.array([0.2, -0.4])
    m = b1 * (1 - b1) * g1 + (1 - b1) * g2
    v = b2 * (1 - b2) * g1**2 + (1 - b2) * g2**2
    expected = before - lr * (m / (1 - b1**2)) / (np.sqrt(v / (1 - b2**2)) + eps)
    np.testing.assert_allclose(p.data, expected, rtol=1e-5)


def test_adam_weight_decay_adds_to_the_gradient():
    p, q = param([2.0], [0.0]), param([2.0], [0.02])
    Adam([p], lr=0.1, weight_decay=0.01).step()
    Adam([q], lr=0.1).step()
    assert p.data == pytest.approx(q.data)


def test_constraint_is_applied_after_every_step():
    p = param([0.95, -0.95], [-1.0, 1.0], clip=(-1.0, 1.0))
    SGD([p], lr=0.1).step()
    assert np.array_equal(p.data, [1.0, -1.0])


def test_parameters_without_gradients_are_left_alone():
    p, q = param([1.0], [1.0]), Parameter(np.array([5.0]))
    SGD([p, q], lr=0.5).step()
    assert q.data[0] == 5.0 and p.data[0] == 0.5


def test_zero_grad():
    p = param([1.0], [1.0])
    opt = Adam([p])
    opt.zero_grad()
    assert p.grad is None


def test_state_arrays_round_trip():
    p = param([1.0, 2.0], [0.1, 0.2])
    opt = Adam([p], lr=0.1)
    opt.step()
    saved = {k: v.copy() for k, v in opt.state_arrays().items()}
    fresh = Adam([param([1.0, 2.0], [0.0, 0.0])], lr=0.1)
    fresh.load_state_arrays(saved)
    for name, value in fresh.state_arrays().items():
        assert np.array_equal(value, saved[name])
    with pytest.raises(ArgumentError, match="optimizer state has arrays"):
        fresh.load_state_arrays({"m.0": saved["m.0"]})


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: SGD([], lr=0.1), "no parameters"),
        (lambda: SGD([param([1.0], [1.0])], lr=0), "learning rate must be positive"),
        (lambda: SGD([param([1.0], [1.0])], lr=0.1, nesterov=True), "nesterov needs a momentum"),
        (lambda: Adam([param([1.0], [1.0])], betas=(1.0, 0.9)), "betas must lie"),
    ],
)
def test_bad_optimizer_arguments(make, message):
    with pytest.raises(ArgumentError, match=message):
        make()


def test_schedules():
    assert ConstantLR(0.1).lr_at(50) == 0.1
    assert [StepLR(1.0, step=2, gamma=0.5).lr_at(e) for e in range(5)] == [1.0, 1.0, 0.5, 0.5, 0.25]
    cosine = CosineLR(1.0, epochs=4)
    assert cosine.lr_at(0) == 1.0
    assert cosine.lr_at(2) == pytest.approx(0.5)
    assert cosine.lr_at(3) == pytest.approx((1 + math.cos(math.pi * 3 / 4)) / 2)
    assert isinstance(make_schedule("cosine", 0.1, 10), CosineLR)
    with pytest.raises(ArgumentError, match="schedule must be"):
        make_schedule("linear", 0.1, 10)


@settings(deadline=None, max_examples=40)
@given(
    st.integers(1, 300),
    st.integers(0, 2**32 - 1),
    st.sampled_from((1e-3, 0.01, 0.1)),
    st.sampled_from(((0.9, 0.999), (0.5, 0.9), (0.0, 0.0))),
    st.sampled_from((1e-8, 1e-3)),
    st.sampled_from((0.0, 0.1)),
    st.booleans(),
    st.booleans(),
)
def test_adam_kernel_equals_the_numpy_twin(size, seed, lr, betas, eps, weight_decay, transposed, threads):
    """The Numba step gives the NumPy formula's bits, step after step, serial or over threads, for a
    contiguous gradient and for a transposed view (what a dense layer's weight gradient is)."""
    import tinybnn.optim as optim
    from tinybnn.optim import adam_step_reference

    rng = np.random.default_rng(seed)
    values = rng.standard_normal((3, size)).astype(np.float32)
    grads = rng.standard_normal((size, 3) if transposed else (3, size)).astype(np.float32)
    grads = grads.T if transposed else grads
    grads[rng.random(grads.shape) < 0.2] = 0  # zero gradients: v stays 0 where they start
    assert grads.flags.c_contiguous != transposed or size == 1
    p = param(values, grads)
    p.grad = grads  # as it is, not a contiguous copy
    opt = Adam([p], lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
    w, m, v = values.copy(), np.zeros_like(values), np.zeros_like(values)
    default = optim.ADAM_PARALLEL_MIN_SIZE
    optim.ADAM_PARALLEL_MIN_SIZE = 1 if threads else default
    try:
        for t in (1, 2, 3):
            opt.step()
            adam_step_reference(w, grads, m, v, lr, *betas, eps, t, weight_decay)
            np.testing.assert_array_equal(opt.m[0], m)
            np.testing.assert_array_equal(opt.v[0], v)
            np.testing.assert_array_equal(p.data, w)
    finally:
        optim.ADAM_PARALLEL_MIN_SIZE = default


@pytest.mark.parametrize("optimizer", [Adam, SGD])
def test_a_gradient_of_another_shape_is_refused_before_any_step(optimizer):
    """The compiled step indexes the gradient as the parameter: a shorter one would be read past its end."""
    p = param(np.zeros(10), np.ones(3))
    with pytest.raises(ArgumentError, match=r"parameter 0 has shape \(10,\), its gradient \(3,\)"):
        optimizer([p], lr=0.1).step()
    np.testing.assert_array_equal(p.data, np.zeros(10))
