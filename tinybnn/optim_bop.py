"""Bop, the optimizer of binary weights without latent weights, and parameter groups.

Helwegen et al., "Latent Weights Do Not Exist: Rethinking Binarized Neural
Network Optimization" (NeurIPS 2019) argue that the float "latent" weight
behind a binary weight is not a weight at all: only its sign is ever used,
and its magnitude acts as inertia against flipping. Bop keeps the inertia
explicitly, as an exponential moving average of the gradient, and flips a
binary weight w in {-1, +1} when that average pushes against it strongly
enough (the formulation of Larq's ``Bop``), at every step::

    m = m + gamma (g - m)          (gamma: adaptivity rate, default 1e-4)
    w = -w   where  w m > tau      (tau: threshold, default 1e-8)

A weight w = +1 whose gradient has averaged positive (the loss falls if w
falls) flips to -1, and vice versa; ``m`` starts at 0. The weights stay ±1
values throughout, so the Q-layers' sign and the converter see exactly the
weights Bop holds. Everything that is not a binary weight (the first and last
layers, BatchNorm's scale and shift) keeps a float optimizer: Larq's
``CaseOptimizer``, here :class:`ParameterGroups`.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np

from .errors import ArgumentError
from .layers import Module, Parameter, QConvolution, QFullyConnected
from .optim import Optimizer

DEFAULT_GAMMA = 1e-4
DEFAULT_TAU = 1e-8


def check_bop_settings(gamma: float, tau: float, where: str = "Bop") -> tuple[float, float]:
    """(gamma, tau) as floats, refused unless 0 < gamma <= 1 and 0 <= tau < inf."""
    if not 0 < gamma <= 1:  # NaN fails too
        raise ArgumentError(f"{where}: gamma must lie in (0, 1], got {gamma}")
    if not 0 <= tau < math.inf:
        raise ArgumentError(f"{where}: tau (the flip threshold) must be a finite number >= 0, got {tau}")
    return float(gamma), float(tau)


def sign_in_place(a: np.ndarray) -> None:
    """Replace every element of ``a`` by its sign, sign(0) = +1 (the binary convention)."""
    a[...] = np.where(a >= 0, 1.0, -1.0).astype(a.dtype, copy=False)


def bop_step_reference(w: np.ndarray, grad: np.ndarray, m: np.ndarray, gamma: float, tau: float) -> int:
    """One Bop step on ±1 weights ``w`` and their gradient average ``m``, in place; returns the flips."""
    m += gamma * (grad - m)
    flip = w * m > tau
    w[flip] = -w[flip]
    return int(np.count_nonzero(flip))


class Bop(Optimizer):
    """Bop over binary weights only: every parameter it is given becomes ±1 (its sign) at once.

    ``gamma`` (0 < gamma <= 1) is the adaptivity rate of the gradient average,
    ``tau`` (>= 0) the threshold a flip needs. Bop has no learning rate:
    ``lr`` is kept at 0 and a schedule setting it changes nothing.
    ``flips`` counts the weights the last step flipped.

    >>> import numpy as np
    >>> w = Parameter(np.array([0.3, -0.2, 0.0], dtype=np.float32))
    >>> bop = Bop([w], gamma=0.5, tau=0.1)
    >>> w.data                              # its sign, sign(0) = +1
    array([ 1., -1.,  1.], dtype=float32)
    >>> w.grad = np.array([1.0, 1.0, -0.1], dtype=np.float32)
    >>> bop.step(); bop.m[0], w.data        # m = 0.5 g; flip where w m > 0.1
    (array([ 0.5 ,  0.5 , -0.05], dtype=float32), array([-1., -1.,  1.], dtype=float32))
    """

    def __init__(self, params: Iterable[Parameter], gamma: float = DEFAULT_GAMMA, tau: float = DEFAULT_TAU):
        self.params = list(params)
        if not self.params:
            raise ArgumentError("Bop: no binary weights to optimize (a model without 1-bit Q-layers?)")
        self.gamma, self.tau = check_bop_settings(gamma, tau)
        self.lr = 0.0
        self.step_count = 0
        self.flips = 0
        for p in self.params:
            sign_in_place(p.data)
        self.m = [np.zeros_like(p.data) for p in self.params]

    def step(self) -> None:
        self.flips = 0
        super().step()

    def update(self, index: int, p: Parameter) -> None:
        assert p.grad is not None  # the optimizer steps only parameters that received a gradient
        self.flips += bop_step_reference(p.data, p.grad, self.m[index], self.gamma, self.tau)

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {f"m.{i}": m for i, m in enumerate(self.m)}

    def hyperparameters(self) -> dict[str, Any]:
        return {**super().hyperparameters(), "gamma": self.gamma, "tau": self.tau}


class ParameterGroups(Optimizer):
    """Several optimizers stepped together, each over its own parameters (Larq's ``CaseOptimizer``).

    Setting ``lr`` sets it on every member that has a learning rate (not Bop);
    ``step_count`` is shared. State arrays are named by member: ``"0.m.3"`` is
    array ``m.3`` of the first member.
    """

    def __init__(self, *optimizers: Optimizer):
        if not optimizers:
            raise ArgumentError("ParameterGroups: no optimizer given")
        seen: set[int] = set()
        for optimizer in optimizers:
            for p in optimizer.params:
                if id(p) in seen:
                    raise ArgumentError("ParameterGroups: a parameter belongs to two optimizers")
                seen.add(id(p))
        self.optimizers = list(optimizers)
        self.params = [p for optimizer in optimizers for p in optimizer.params]

    @property
    def lr(self) -> float:
        return max(optimizer.lr for optimizer in self.optimizers)

    @lr.setter
    def lr(self, value: float) -> None:
        for optimizer in self.optimizers:
            if not isinstance(optimizer, Bop):
                optimizer.lr = value

    @property
    def step_count(self) -> int:
        return self.optimizers[0].step_count

    @step_count.setter
    def step_count(self, value: int) -> None:
        for optimizer in self.optimizers:
            optimizer.step_count = value

    def zero_grad(self) -> None:
        for optimizer in self.optimizers:
            optimizer.zero_grad()

    def step(self) -> None:
        for optimizer in self.optimizers:
            optimizer.step()

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {
            f"{i}.{name}": array
            for i, optimizer in enumerate(self.optimizers)
            for name, array in optimizer.state_arrays().items()
        }

    def hyperparameters(self) -> dict[str, Any]:
        return {
            "lr": self.lr,
            "step_count": self.step_count,
            "groups": [optimizer.hyperparameters() for optimizer in self.optimizers],
        }


def binary_weights(model: Module) -> list[Parameter]:
    """The weights of ``model``'s Q-layers with ``weight_bit = 1``, the ones Bop trains."""
    return [
        module.weight
        for _, module in model.named_modules()
        if isinstance(module, (QConvolution, QFullyConnected)) and module.weight_bit == 1 and module.weight is not None
    ]


def bop_with(
    model: Module, other: type[Optimizer], gamma: float = DEFAULT_GAMMA, tau: float = DEFAULT_TAU, **settings: Any
) -> ParameterGroups:
    """Bop over ``model``'s binary weights, ``other(**settings)`` (Adam, say) over the rest."""
    binary = binary_weights(model)
    chosen = {id(p) for p in binary}
    rest = [p for p in model.parameters() if id(p) not in chosen]
    bop = Bop(binary, gamma=gamma, tau=tau)
    return ParameterGroups(bop, other(rest, **settings)) if rest else ParameterGroups(bop)
