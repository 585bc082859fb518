"""Tensor: a NumPy array that remembers how it was computed.

A :class:`Tensor` holds ``data`` (a NumPy array), ``grad`` (an array of the
same shape once a backward pass reached it, else ``None``) and
``requires_grad``. Arithmetic on tensors goes through the ``Function``
classes in :mod:`tinybnn.autograd.ops`, which record a ``history`` on results
that need a gradient. ``loss.backward()`` then walks that graph in reverse
topological order (:mod:`tinybnn.autograd.graph`). A tensor is what that walk
calls a :class:`~tinybnn.autograd.graph.Variable`; the Functions make their
outputs of their inputs' class, so they need not import this module.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from . import ops
from .graph import backpropagate


class Tensor:
    """An array with an optional gradient and the history of its computation.

    ``Tensor(data, requires_grad=False, dtype=None)``. Operators and methods
    (``+ - * / @ **``, ``sum``, ``mean``, ``reshape``, ``tanh``, ...) apply
    :class:`~tinybnn.autograd.function.Function` subclasses and return new
    tensors. ``y.backward()`` adds ``dy/dx`` to ``x.grad`` for every leaf
    ``x`` that requires a gradient (the chain rule, walked once in reverse
    topological order); gradients are accumulated with ``+=``, so a tensor
    used twice gets both contributions:

    >>> import numpy as np
    >>> x = Tensor(np.array([1.0, 2.0, 3.0], dtype=np.float32), requires_grad=True)
    >>> y = ((x + x) * x).sum()          # y = sum_i 2 x_i^2
    >>> y.backward()
    >>> x.grad                           # dy/dx_i = 4 x_i
    array([ 4.,  8., 12.], dtype=float32)
    """

    __slots__ = ("data", "grad", "requires_grad", "history", "__weakref__")
    __array_priority__ = 100  # so that ndarray + Tensor calls Tensor.__radd__

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None):
        array = np.asarray(data, dtype=dtype)
        if requires_grad and not np.issubdtype(array.dtype, np.floating):
            raise TypeError(f"only floating-point tensors can require gradients, got {array.dtype}")
        self.data = array
        self.grad: np.ndarray | None = None
        self.requires_grad = requires_grad
        self.history = None

    # --- array-like attributes -------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def size(self) -> int:
        return self.data.size

    def item(self) -> float:
        return self.data.item()

    def detach(self) -> "Tensor":
        """The same data, cut from the graph."""
        return Tensor(self.data)

    def zero_grad(self) -> None:
        self.grad = None

    def new_tensor(self, data: Any, requires_grad: bool = False) -> "Tensor":
        """A plain Tensor holding ``data`` (whatever subclass ``self`` is): what Functions
        make of their results, and of constants among their inputs."""
        return Tensor(data, requires_grad=requires_grad)

    def __repr__(self) -> str:
        flag = ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor({np.array2string(self.data, threshold=20)}{flag})"

    def __len__(self) -> int:
        return len(self.data)

    # --- backward ----------------------------------------------------------
    def backward(self, grad: Any = None) -> None:
        """Accumulate d(self)/d(leaf) into the ``.grad`` of every leaf.

        For a scalar the seed gradient defaults to 1; otherwise pass ``grad``,
        an array of this tensor's shape (the vector of a vector-Jacobian product).
        """
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require grad")
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(f"backward() without a gradient needs a scalar, got shape {self.shape}")
            grad = np.ones_like(self.data)
        grad = np.asarray(grad, dtype=self.dtype)
        if grad.shape != self.shape:
            raise ValueError(f"gradient of shape {grad.shape} for a tensor of shape {self.shape}")
        backpropagate(self, grad)

    # --- operators ---------------------------------------------------------
    def __add__(self, other: Any) -> "Tensor":
        return ops.Add.apply(self, other)

    def __radd__(self, other: Any) -> "Tensor":
        return ops.Add.apply(other, self)

    def __sub__(self, other: Any) -> "Tensor":
        return ops.Sub.apply(self, other)

    def __rsub__(self, other: Any) -> "Tensor":
        return ops.Sub.apply(other, self)

    def __mul__(self, other: Any) -> "Tensor":
        return ops.Mul.apply(self, other)

    def __rmul__(self, other: Any) -> "Tensor":
        return ops.Mul.apply(other, self)

    def __truediv__(self, other: Any) -> "Tensor":
        return ops.Div.apply(self, other)

    def __rtruediv__(self, other: Any) -> "Tensor":
        return ops.Div.apply(other, self)

    def __neg__(self) -> "Tensor":
        return ops.Neg.apply(self)

    def __pow__(self, exponent: float) -> "Tensor":
        return ops.Pow.apply(self, exponent=exponent)

    def __matmul__(self, other: Any) -> "Tensor":
        return ops.MatMul.apply(self, other)

    def __rmatmul__(self, other: Any) -> "Tensor":
        return ops.MatMul.apply(other, self)

    # --- methods -----------------------------------------------------------
    def sum(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> "Tensor":
        return ops.Sum.apply(self, axis=axis, keepdims=keepdims)

    def mean(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> "Tensor":
        return ops.Mean.apply(self, axis=axis, keepdims=keepdims)

    def max(self, axis: int | None = None, keepdims: bool = False) -> "Tensor":
        return ops.Max.apply(self, axis=axis, keepdims=keepdims)

    def reshape(self, *shape: Any) -> "Tensor":
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return ops.Reshape.apply(self, shape=shape)

    def transpose(self, *axes: int) -> "Tensor":
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return ops.Transpose.apply(self, axes=axes or None)

    @property
    def T(self) -> "Tensor":
        return self.transpose()

    def flatten(self) -> "Tensor":
        """(N, ...) -> (N, prod(...)): keep the batch axis."""
        return ops.Reshape.apply(self, shape=(self.shape[0], int(np.prod(self.shape[1:]))))

    def abs(self) -> "Tensor":
        return ops.Abs.apply(self)

    def exp(self) -> "Tensor":
        return ops.Exp.apply(self)

    def log(self) -> "Tensor":
        return ops.Log.apply(self)

    def tanh(self) -> "Tensor":
        return ops.Tanh.apply(self)

    def relu(self) -> "Tensor":
        return ops.ReLU.apply(self)

    def sigmoid(self) -> "Tensor":
        return ops.Sigmoid.apply(self)


def tensor(data: Any, requires_grad: bool = False, dtype: Any = np.float32) -> Tensor:
    """Make a tensor, float32 by default (the dtype of training)."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)
