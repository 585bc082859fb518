"""Functions: the differentiable operations of the autograd engine.

Every operation is a subclass of :class:`Function` with two static methods,
written on plain NumPy arrays::

    class Mul(Function):
        @staticmethod
        def forward(ctx, a, b):          # z = a * b
            ctx.save_for_backward(a, b)
            return a * b

        @staticmethod
        def backward(ctx, grad):         # dL/da = g * b,  dL/db = g * a
            a, b = ctx.saved_values
            return grad * b, grad * a

``Function.apply(*tensors, **params)`` unwraps the tensors, calls ``forward``
and, when a gradient will be needed, records the :class:`Context` and the
inputs on the output so that :func:`tinybnn.autograd.graph.backpropagate` can
call ``backward`` later. Positional arguments are the differentiable inputs;
keyword arguments are constants (an axis, a stride, labels).

``backward`` returns one gradient per positional input (``None`` for an input
that gets none), each the shape of the *broadcast* result; reducing it back to
the input's shape happens in one place, :func:`~tinybnn.autograd.graph.unbroadcast`.

This module knows tensors only as the graph's
:class:`~tinybnn.autograd.graph.Variable` protocol: ``apply`` makes its
output, and wraps constant inputs, with ``new_tensor`` of a tensor input
(:meth:`Tensor.new_tensor <tinybnn.autograd.tensor.Tensor.new_tensor>`; Tensor's
operators call the Functions of :mod:`.ops`), so that the imports run one
way: graph <- function <- ops <- tensor.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any, Iterator

import numpy as np

from .backends import active_backend
from .graph import Variable

_state = threading.local()


def is_grad_enabled() -> bool:
    """True unless inside a :func:`no_grad` block."""
    return getattr(_state, "grad_enabled", True)


@contextlib.contextmanager
def no_grad() -> Iterator[None]:
    """Run the block without recording the graph (inference, optimizer steps)."""
    previous = is_grad_enabled()
    _state.grad_enabled = False
    try:
        yield
    finally:
        _state.grad_enabled = previous


class Context:
    """What a Function's forward leaves for its backward.

    ``save_for_backward`` keeps arrays only when a backward pass will happen,
    so inference under :func:`no_grad` holds on to nothing. Functions may also
    store constants as attributes (``ctx.stride = 2``). ``backend`` is the
    backend the forward pass ran on (:mod:`.backends`); the backward runs on it too.
    """

    def __init__(self, needs_grad: bool = True, needs_input_grad: tuple[bool, ...] = ()):
        self.backend = active_backend()
        self.needs_grad = needs_grad
        self.needs_input_grad = needs_input_grad
        self.saved_values: tuple[Any, ...] = ()

    def save_for_backward(self, *values: Any) -> None:
        if self.needs_grad:
            self.saved_values = values


class History:
    """How a tensor was made: the function, its context and its inputs."""

    __slots__ = ("function", "ctx", "inputs")

    def __init__(self, function: type[Function], ctx: Context, inputs: tuple[Variable, ...]):
        self.function = function
        self.ctx = ctx
        self.inputs = inputs


class Function:
    """Base class of differentiable operations (see the module docstring).

    A subclass computes ``z = f(a, b, ...)`` in ``forward(ctx, a, b, ..., **params)``
    on NumPy arrays, and in ``backward(ctx, g)``, given ``g = dL/dz``, returns
    the vector-Jacobian products ``dL/da = g dz/da``, ``dL/db = g dz/db``, ...
    (one per positional input, ``None`` for one that needs none), each of the
    broadcast result's shape. ``apply`` wraps both for tensors.
    """

    @staticmethod
    def forward(ctx: Context, *inputs: np.ndarray, **params: Any) -> np.ndarray:
        raise NotImplementedError

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> Any:
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs: Any, **params: Any) -> Any:
        """``forward`` on the inputs' arrays, as a new tensor (``new_tensor`` of an input) that
        remembers this call when a gradient will be needed; at least one input must be a tensor."""
        tensors = _as_tensors(cls.__name__, inputs)
        needs_input_grad = tuple(t.requires_grad for t in tensors)
        needs_grad = is_grad_enabled() and any(needs_input_grad)
        ctx = Context(needs_grad, needs_input_grad)
        data = cls.forward(ctx, *(t.data for t in tensors), **params)
        out = tensors[0].new_tensor(data, requires_grad=needs_grad)
        if needs_grad:
            out.history = History(cls, ctx, tensors)
        return out


def _is_tensor(value: Any) -> bool:
    """True for a graph :class:`~tinybnn.autograd.graph.Variable` (a tensor), False for an array or a number."""
    return hasattr(value, "history") and hasattr(value, "requires_grad")


def _as_tensors(name: str, values: tuple) -> tuple[Any, ...]:
    """Wrap arrays and Python numbers as tensors, made by the first tensor among ``values``;
    scalars take that tensor's dtype."""
    first = next((v for v in values if _is_tensor(v)), None)
    if first is None:
        raise TypeError(
            f"{name}.apply needs at least one tensor among its inputs, got "
            f"{', '.join(type(v).__name__ for v in values) or 'none'}"
        )
    dtype = first.data.dtype
    return tuple(v if _is_tensor(v) else first.new_tensor(_constant(v, dtype)) for v in values)


def _constant(value: Any, dtype: Any) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    if dtype is not None and np.issubdtype(dtype, np.floating):
        return np.asarray(value, dtype=dtype)
    return np.asarray(value)
