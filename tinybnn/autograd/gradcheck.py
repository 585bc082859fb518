"""Numerical gradient checks by central differences, in float64.

For a function f of tensors x_1..x_k with a tensor output, gradcheck reduces
the output to a scalar with fixed random weights r (so every output element
matters), L = sum(r * f(x)), and compares the gradient from ``backward`` with

    dL/dx[i] ~ (L(x + eps e_i) - L(x - eps e_i)) / (2 eps)

element by element: |analytic - numeric| <= atol + rtol * |numeric|.
Central differences have error O(eps^2); with eps = 1e-6 in float64 the
default tolerances leave room for rounding but not for a wrong formula.
Inputs must be float64 tensors that require a gradient; functions with kinks
(relu, max, hardtanh) must be checked on inputs kept away from them.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from .tensor import Tensor


class GradcheckError(AssertionError):
    """The analytic and numerical gradients disagree."""


def gradcheck(
    fn: Callable[..., Tensor],
    inputs: Sequence[Tensor],
    eps: float = 1e-6,
    atol: float = 1e-6,
    rtol: float = 1e-4,
    seed: int = 0,
) -> bool:
    """Check ``backward`` of ``fn(*inputs)`` against central differences.

    Returns True, or raises :class:`GradcheckError` naming the input, the
    element and both values.
    """
    for i, x in enumerate(inputs):
        if x.dtype != np.float64:
            raise TypeError(f"gradcheck needs float64 inputs, input {i} is {x.dtype}")
    checked = [x for x in inputs if x.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires a gradient")

    out = fn(*inputs)
    weights = np.random.default_rng(seed).standard_normal(out.shape)

    def objective() -> float:
        return float(np.sum(fn(*inputs).data * weights))

    for x in checked:
        x.grad = None
    (out * Tensor(weights)).sum().backward()

    for index, x in enumerate(inputs):
        if not x.requires_grad:
            continue
        analytic = x.grad if x.grad is not None else np.zeros_like(x.data)
        numeric = np.zeros_like(x.data)
        flat = x.data.reshape(-1)  # a view: perturbing it perturbs x
        for i in range(flat.size):
            original = flat[i]
            flat[i] = original + eps
            plus = objective()
            flat[i] = original - eps
            minus = objective()
            flat[i] = original
            numeric.reshape(-1)[i] = (plus - minus) / (2 * eps)
        bad = np.abs(analytic - numeric) > atol + rtol * np.abs(numeric)
        if bad.any():
            where = np.unravel_index(np.argmax(bad), x.shape)
            raise GradcheckError(
                f"gradient of input {index} (shape {x.shape}) differs at {where}: "
                f"analytic {analytic[where]:.8g}, numerical {numeric[where]:.8g}; "
                f"{int(bad.sum())} of {bad.size} elements out of tolerance "
                f"(atol={atol}, rtol={rtol})"
            )
    return True
