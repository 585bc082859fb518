"""Exercises of chapter 0: Autograd by hand.

Write each function below in place of its ``raise NotImplementedError``,
then check them (how to work on a copy: docs/tutorial/exercises/README.md):

    python -m pytest -q -m exercises tests/exercises/test_00_autograd_by_hand.py
"""

import numpy as np

from tinybnn.autograd import Function


def numerical_gradient(f, x, eps=1e-6):
    """The gradient of the scalar function ``f`` at the float64 array ``x``, by central differences.

    Element i of the result is ``(f(x + eps e_i) - f(x - eps e_i)) / (2 eps)``,
    where e_i is 1 at position i and 0 elsewhere; return an array of x's
    shape. Leave ``x`` as it was (work on copies, or put each element back).
    """
    raise NotImplementedError("exercise 0.1: central differences for every element of x")


class Cube(Function):
    """z = x ** 3, elementwise, as a tinybnn Function: ``Cube.apply(tensor)``.

    ``forward(ctx, x)`` gets a NumPy array, keeps what backward needs with
    ``ctx.save_for_backward(...)`` and returns ``x ** 3``; ``backward(ctx, grad)``
    gets dL/dz and returns dL/dx = grad * 3 x^2 (read the saved arrays back
    from ``ctx.saved_values``). Check it with ``tinybnn.autograd.gradcheck``.
    """

    @staticmethod
    def forward(ctx, x):
        raise NotImplementedError("exercise 0.2: Cube's forward")

    @staticmethod
    def backward(ctx, grad):
        raise NotImplementedError("exercise 0.2: Cube's backward")


def binary_dense_gradients(x, w, grad_output, grad_cancel=1.0):
    """The gradients of a binary dense layer ``y = sign(x) @ sign(w).T`` with the straight-through estimator.

    ``x`` is (N, K), ``w`` is (F, K), ``grad_output`` = dL/dy is (N, F);
    sign(0) = +1. Both signs pass their gradient where ``|value| <= grad_cancel``
    and cancel it elsewhere. Return ``(dL/dx, dL/dw)``, of the shapes of x and w,
    computed by hand with NumPy (no tinybnn).
    """
    raise NotImplementedError("exercise 0.3: the gradients of a binary dense layer, by hand")
