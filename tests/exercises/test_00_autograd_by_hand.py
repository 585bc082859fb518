"""Chapter 0's exercises (docs/tutorial/exercises/00_autograd_by_hand.py), against tinybnn's autograd."""

import numpy as np

from tinybnn.autograd import GradcheckError, Tensor, gradcheck
from tinybnn.autograd.quantize import det_sign


def test_numerical_gradient_of_a_known_function(exercise):
    x = np.array([[0.5, -1.0], [2.0, 0.1]])
    before = x.copy()
    got = np.asarray(exercise.numerical_gradient(lambda v: np.sum(v**3 + np.sin(v)), x))
    want = 3 * x**2 + np.cos(x)
    assert np.array_equal(x, before), "numerical_gradient must leave x as it was"
    assert got.shape == x.shape and np.allclose(got, want, atol=1e-6), f"expected {want.ravel()}, got {got.ravel()}"


def test_cube_forward_and_backward(exercise):
    x = Tensor(np.array([-1.5, -0.2, 0.0, 0.7, 2.0]), requires_grad=True)
    z = exercise.Cube.apply(x)
    assert np.allclose(z.data, x.data**3), f"Cube's forward of {x.data} should be {x.data**3}, got {z.data}"
    try:
        gradcheck(exercise.Cube.apply, [x])
    except GradcheckError as error:
        raise AssertionError(f"Cube's backward disagrees with central differences: {error}") from None


def test_binary_dense_gradients_match_the_engine(exercise):
    rng = np.random.default_rng(10)
    x = rng.uniform(-1.6, 1.6, size=(3, 5))
    w = rng.uniform(-1.6, 1.6, size=(4, 5))
    x[0, 0], w[1, 2] = 0.0, 1.0  # sign(0) = +1; the window's edge passes
    g = rng.normal(size=(3, 4))
    for cancel in (1.0, 0.5):
        tx, tw = Tensor(x.copy(), requires_grad=True), Tensor(w.copy(), requires_grad=True)
        (det_sign(tx, grad_cancel=cancel) @ det_sign(tw, grad_cancel=cancel).T).backward(g)
        dx, dw = exercise.binary_dense_gradients(x, w, g, grad_cancel=cancel)
        for name, got, want in (("dL/dx", dx, tx.grad), ("dL/dw", dw, tw.grad)):
            assert np.shape(got) == want.shape, (
                f"grad_cancel={cancel}: {name} has shape {np.shape(got)}, not {want.shape}"
            )
            assert np.allclose(got, want), (
                f"grad_cancel={cancel}: {name} row 0 should be {want[0]}, got {np.asarray(got)[0]}"
            )
