"""Chapter 1's exercises (docs/tutorial/exercises/01_sign_and_ste.py), checked against tinybnn's det_sign."""

import numpy as np

from tinybnn.autograd import Tensor
from tinybnn.autograd.quantize import approx_sign, det_sign

EDGES = np.array([-1.5, -1.0, -0.5, -0.0, 0.0, 0.25, 1.0, 1.5], dtype=np.float32)


def tinybnn_gradients(function, x, grad_output):
    t = Tensor(x.copy(), requires_grad=True)
    function(t).backward(grad_output)
    return t.data, t.grad


def test_sign_of_zero_is_plus_one(exercise):
    got = exercise.sign(np.array([0.0, -0.0]))
    assert np.array_equal(got, [1.0, 1.0]), f"sign(0) and sign(-0.0) must be +1, got {got}"


def test_sign_gives_only_plus_and_minus_one(exercise):
    x = np.random.default_rng(1).normal(size=(3, 5)).astype(np.float32)
    got = exercise.sign(x)
    want = det_sign(Tensor(x)).data
    assert got.shape == x.shape and got.dtype == x.dtype, (
        f"expected shape {x.shape} {x.dtype}, got {got.shape} {got.dtype}"
    )
    assert np.array_equal(got, want), (
        f"sign({x.ravel()[:4]}...) should be {want.ravel()[:4]}..., got {got.ravel()[:4]}..."
    )


def test_ste_passes_the_gradient_inside_the_window(exercise):
    grad = np.arange(1, EDGES.size + 1, dtype=np.float32)
    for cancel in (1.0, 0.5):
        _, want = tinybnn_gradients(lambda t: det_sign(t, grad_cancel=cancel), EDGES, grad)
        got = exercise.ste_gradient(EDGES, grad, grad_cancel=cancel)
        assert np.array_equal(got, want), f"grad_cancel={cancel}: at x = {EDGES} expected {want}, got {got}"


def test_approx_sign_gradient_is_a_triangle(exercise):
    grad = np.full(EDGES.size, 3.0, dtype=np.float32)
    _, want = tinybnn_gradients(approx_sign, EDGES, grad)
    got = exercise.approx_sign_gradient(EDGES, grad)
    assert np.allclose(got, want), f"at x = {EDGES} with dL/dy = 3 expected {want}, got {got}"
