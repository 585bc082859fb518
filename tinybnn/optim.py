"""Optimizers (SGD, Adam) and learning-rate schedules.

After every step an optimizer applies each parameter's constraint
(:meth:`Parameter.apply_constraint`): this is how binary layers keep their
latent weights in [-1, 1].

SGD with momentum mu, weight decay lambda and learning rate eta
(PyTorch's formulation)::

    g = grad + lambda w
    v = mu v + g                         (v = g at the first step)
    w = w - eta (g + mu v)   if nesterov else   w - eta v

Adam (Kingma and Ba), step t from 1::

    g = grad + lambda w
    m = b1 m + (1 - b1) g,        v = b2 v + (1 - b2) g^2
    w = w - eta (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)

Adam updates float32 parameters in one Numba pass (``_adam_kernel``);
``adam_step_reference`` is the same step in NumPy, its tested twin (same bits).
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np
from numba import prange

from .errors import ArgumentError
from .layers import Parameter
from .layers.fused import twin_kernels


class Optimizer:
    """Holds the parameters, the learning rate and per-parameter state arrays."""

    def __init__(self, params: Iterable[Parameter], lr: float):
        self.params = list(params)
        if not self.params:
            raise ArgumentError("optimizer: no parameters to optimize (build the model first)")
        if not lr > 0:
            raise ArgumentError(f"optimizer: learning rate must be positive, got {lr}")
        self.lr = float(lr)
        self.step_count = 0

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        self.step_count += 1
        for index, p in enumerate(self.params):
            if p.grad is not None:
                if p.grad.shape != p.data.shape:  # the compiled steps index both arrays alike
                    raise ArgumentError(
                        f"optimizer: parameter {index} has shape {p.data.shape}, its gradient {p.grad.shape}"
                    )
                self.update(index, p)
                p.apply_constraint()

    def update(self, index: int, p: Parameter) -> None:
        raise NotImplementedError

    # --- state, for checkpoints ----------------------------------------------
    def state_arrays(self) -> dict[str, np.ndarray]:
        """Per-parameter state by name ("m.3" is the first moment of parameter 3)."""
        return {}

    def load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        expected = self.state_arrays()
        if set(arrays) != set(expected):
            raise ArgumentError(f"optimizer state has arrays {sorted(arrays)}, expected {sorted(expected)}")
        for name, target in expected.items():
            if arrays[name].shape != target.shape:
                raise ArgumentError(f"optimizer state {name}: shape {arrays[name].shape}, expected {target.shape}")
            target[...] = arrays[name]

    def hyperparameters(self) -> dict[str, Any]:
        return {"lr": self.lr, "step_count": self.step_count}


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, Nesterov and weight decay."""

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ):
        super().__init__(params, lr)
        if not 0.0 <= momentum < 1.0:
            raise ArgumentError(f"SGD: momentum must lie in [0, 1), got {momentum}")
        if nesterov and momentum == 0.0:
            raise ArgumentError("SGD: nesterov needs a momentum > 0")
        if weight_decay < 0:
            raise ArgumentError(f"SGD: weight_decay must be >= 0, got {weight_decay}")
        self.momentum = momentum
        self.nesterov = nesterov
        self.weight_decay = weight_decay
        self.velocity = [np.zeros_like(p.data) for p in self.params] if momentum else []

    def update(self, index: int, p: Parameter) -> None:
        g = p.grad + self.weight_decay * p.data if self.weight_decay else p.grad
        if not self.momentum:
            p.data -= self.lr * g
            return
        v = self.velocity[index]
        if self.step_count == 1:
            v[...] = g
        else:
            v *= self.momentum
            v += g
        p.data -= self.lr * (g + self.momentum * v if self.nesterov else v)

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {f"velocity.{i}": v for i, v in enumerate(self.velocity)}


class Adam(Optimizer):
    """Adam with bias correction and optional (L2) weight decay."""

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ):
        super().__init__(params, lr)
        b1, b2 = betas
        if not (0.0 <= b1 < 1.0 and 0.0 <= b2 < 1.0):
            raise ArgumentError(f"Adam: betas must lie in [0, 1), got {betas}")
        if weight_decay < 0:
            raise ArgumentError(f"Adam: weight_decay must be >= 0, got {weight_decay}")
        self.betas = (float(b1), float(b2))
        self.eps = eps
        self.weight_decay = weight_decay
        self.m = [np.zeros_like(p.data) for p in self.params]
        self.v = [np.zeros_like(p.data) for p in self.params]

    def update(self, index: int, p: Parameter) -> None:
        b1, b2 = self.betas
        t = self.step_count
        w, grad, m, v = arrays = (p.data, p.grad, self.m[index], self.v[index])
        constants = (self.lr / (1 - b1**t), b1, b2, self.eps, 1 - b2**t, self.weight_decay)
        if not all(a.dtype == np.float32 for a in arrays) or not all(a.flags.c_contiguous for a in (w, m, v)):
            adam_step_reference(*arrays, self.lr, b1, b2, self.eps, t, self.weight_decay)
        else:  # a transposed gradient (a dense layer's weight) is copied: 1000x1024 took 1.6 ms so, 8.6 in NumPy
            flat = (w.reshape(-1), np.ascontiguousarray(grad).reshape(-1), m.reshape(-1), v.reshape(-1))
            _ADAM_FLAT[w.size < ADAM_PARALLEL_MIN_SIZE](*flat, *constants)

    def state_arrays(self) -> dict[str, np.ndarray]:
        state = {f"m.{i}": m for i, m in enumerate(self.m)}
        state.update((f"v.{i}", v) for i, v in enumerate(self.v))
        return state


def adam_step_reference(
    w: np.ndarray,
    grad: np.ndarray,
    m: np.ndarray,
    v: np.ndarray,
    lr: float,
    b1: float,
    b2: float,
    eps: float,
    t: int,
    weight_decay: float,
) -> None:
    """One Adam step on ``w`` in place, with NumPy, exactly as the module docstring writes it."""
    g = grad + weight_decay * w if weight_decay else grad
    m *= b1
    m += (1 - b1) * g
    v *= b2
    v += (1 - b2) * (g * g)
    step_size = lr / (1 - b1**t)
    denom = np.sqrt(v / (1 - b2**t)) + eps
    w -= (step_size * m / denom).astype(w.dtype, copy=False)


def _adam_flat(w, grad, m, v, step_size, b1, b2, eps, bias2, weight_decay):  # pragma: no cover
    """:func:`adam_step_reference` in one pass over flat float32 arrays, no temporaries.

    Every operation is NumPy's float32 one in the same order (the constants rounded to float32 as
    NumPy rounds a Python float against a float32 array, no fused multiply-adds), so the step
    gives the reference's bits."""
    s, c1, c2, e = np.float32(step_size), np.float32(b1), np.float32(b2), np.float32(eps)
    d1, d2, correction, decay = np.float32(1 - b1), np.float32(1 - b2), np.float32(bias2), np.float32(weight_decay)
    for i in prange(w.size):
        g = grad[i] + decay * w[i] if weight_decay else grad[i]
        mi = c1 * m[i] + d1 * g
        vi = c2 * v[i] + d2 * (g * g)
        m[i] = mi
        v[i] = vi
        w[i] -= s * mi / (np.sqrt(vi / correction) + e)


#: below this many values a step runs on one thread: waking the pool costs more than it saves
ADAM_PARALLEL_MIN_SIZE = 1 << 16
_ADAM_FLAT = twin_kernels(_adam_flat)  # (parallel, serial)


OPTIMIZERS = {"sgd": SGD, "adam": Adam}


# --- learning-rate schedules ----------------------------------------------------
class ConstantLR:
    """lr(epoch) = base."""

    def __init__(self, base: float):
        self.base = base

    def lr_at(self, epoch: int) -> float:
        return self.base


class StepLR:
    """lr(epoch) = base * gamma ** (epoch // step), epochs counted from 0."""

    def __init__(self, base: float, step: int, gamma: float = 0.1):
        if step < 1:
            raise ArgumentError(f"StepLR: step must be >= 1, got {step}")
        self.base, self.step, self.gamma = base, step, gamma

    def lr_at(self, epoch: int) -> float:
        return self.base * self.gamma ** (epoch // self.step)


class CosineLR:
    """lr(epoch) = final + (base - final) (1 + cos(pi epoch / epochs)) / 2, epochs counted from 0."""

    def __init__(self, base: float, epochs: int, final: float = 0.0):
        if epochs < 1:
            raise ArgumentError(f"CosineLR: epochs must be >= 1, got {epochs}")
        self.base, self.epochs, self.final = base, epochs, final

    def lr_at(self, epoch: int) -> float:
        return self.final + (self.base - self.final) * (1 + math.cos(math.pi * epoch / self.epochs)) / 2


def make_schedule(name: str, base: float, epochs: int) -> ConstantLR | StepLR | CosineLR:
    """The schedule the command line calls ``name``: "constant", "cosine" or "step" (x0.1 every third)."""
    if name == "constant":
        return ConstantLR(base)
    if name == "cosine":
        return CosineLR(base, epochs)
    if name == "step":
        return StepLR(base, step=max(1, epochs // 3))
    raise ArgumentError(f"schedule must be 'constant', 'cosine' or 'step', got {name!r}")
