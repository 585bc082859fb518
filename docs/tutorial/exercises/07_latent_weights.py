"""Exercises of chapter 7: Do latent weights exist?

Write each function below in place of its ``raise NotImplementedError``,
then check them (how to work on a copy: docs/tutorial/exercises/README.md):

    python -m pytest -q -m exercises tests/exercises/test_07_latent_weights.py
"""

import numpy as np


def bop_step(weight, momentum, grad, gamma, tau):
    """One Bop step (Helwegen et al., 2019) on binary weights ``weight`` (every value ±1).

    First the gradient average: ``m = momentum + gamma (grad - momentum)``;
    then flip every weight where ``weight * m > tau`` (``w -> -w``), keep the
    others. Return the new ``(weight, m)`` as new arrays (leave the inputs as
    they are).
    """
    raise NotImplementedError("exercise 7.1: one Bop step, the moving average and the flips")


def steps_to_flip(weight, grad, learning_rate, max_steps=10_000):
    """How many plain SGD steps ``w <- clip(w - learning_rate * grad, -1, 1)`` with a constant ``grad``
    it takes until sign(w) differs from sign(weight) (sign(0) = +1); None if it has not after ``max_steps``.

    ``weight``, ``grad`` and ``learning_rate`` are Python floats. This is the
    latent weight's magnitude seen as inertia: ``steps_to_flip(0.75, 0.5,
    0.125)`` is 13 (twelve steps bring w to exactly 0, which is still +1).
    """
    raise NotImplementedError("exercise 7.2: count the SGD steps until a latent weight flips")


def cancelled_share(inputs, grad_cancel=1.0):
    """The share of ``inputs`` whose straight-through gradient is cancelled, |x| > grad_cancel, as a float.

    An input exactly at the window's edge, |x| = grad_cancel, still passes its
    gradient.
    """
    raise NotImplementedError("exercise 7.3: the share of sign inputs outside the straight-through window")
