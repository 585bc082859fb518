"""Exercises of chapter 1: Sign and the straight-through estimator.

Write each function below in place of its ``raise NotImplementedError``,
then check them (how to work on a copy: docs/tutorial/exercises/README.md):

    python -m pytest -q -m exercises tests/exercises/test_01_sign_and_ste.py
"""

import numpy as np


def sign(x):
    """tinybnn's sign: +1.0 where ``x >= 0``, -1.0 elsewhere, so sign(0) = +1 (and sign(-0.0) = +1 too).

    ``x`` is a NumPy array; return a float array of the same shape and dtype,
    holding only +1.0 and -1.0 (never 0, which ``np.sign`` would give).

    >>> sign(np.array([-2.0, 0.0, 3.0]))
    array([-1.,  1.,  1.])
    """
    raise NotImplementedError("exercise 1.1: write sign(x) with sign(0) = +1")


def ste_gradient(x, grad_output, grad_cancel=1.0):
    """The straight-through estimator's backward pass: dL/dx, given x and dL/dy for y = sign(x).

    The gradient passes unchanged where ``|x| <= grad_cancel`` (the edges
    included) and is 0 where ``|x| > grad_cancel``. Return an array of x's
    shape and dtype.
    """
    raise NotImplementedError("exercise 1.2: write the straight-through estimator's backward pass")


def approx_sign_gradient(x, grad_output):
    """Bi-Real Net's ApproxSign backward pass: dL/dx = dL/dy * (2 - 2|x|) where |x| <= 1, else 0.

    (Liu et al., 2018, "Bi-Real Net", eq. 6: the derivative of the curve
    F(x) = 2x - x|x| inside [-1, 1], ±1 outside, which hugs sign more closely
    than clip(x, -1, 1).) Return an array of x's shape and dtype.
    """
    raise NotImplementedError("exercise 1.3: write approx_sign's backward pass")
