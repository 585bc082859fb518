"""Reverse-mode differentiation over the graph that Functions record.

``topological_sort`` orders the tensors so that each comes before the inputs
it was computed from; ``backpropagate`` walks that order once, calling each
Function's ``backward`` and summing the gradients that reach a tensor along
different paths (so ``(x + x) * x`` gets ``4x + ... `` right, not half of it).
Leaves (tensors with no history that require a gradient) accumulate into
``.grad`` with ``+=`` across backward calls, as in PyTorch. Reducing a
gradient back to the shape of an input that was broadcast happens here too,
in one place (:func:`unbroadcast`).

The walk is written against the :class:`Variable` protocol, the little it
needs of a tensor (its data, gradient, flag and history), so this module
imports nothing else of the engine but the backend switch (:mod:`.backends`):
:mod:`.function` and :mod:`.tensor` build on it, not the other way round.
Each backward runs on the backend its forward ran on (``ctx.backend``).
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence

import numpy as np

from .backends import active_backend, backend


class Backward(Protocol):
    """What the walk calls on a recorded Function: ``backward(ctx, g)``, one gradient per input."""

    __name__: str

    def backward(self, ctx: Any, grad: np.ndarray) -> Any: ...


class Recorded(Protocol):
    """How a variable was made: the function, the context its forward filled, its inputs."""

    function: Backward
    ctx: Any
    inputs: Sequence[Variable]


class Variable(Protocol):
    """A node of the graph: an array, its gradient once computed, and its history (None for a leaf)."""

    data: np.ndarray
    grad: np.ndarray | None
    requires_grad: bool
    history: Recorded | None

    @property
    def shape(self) -> tuple[int, ...]: ...

    def new_tensor(self, data: Any, requires_grad: bool = False) -> Variable:
        """A new variable holding ``data``, with no history: how Functions make their outputs."""
        ...


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` over the axes that broadcasting added or stretched.

    If ``x`` of shape ``shape`` was broadcast to ``grad.shape`` in the forward
    pass, each element of ``x`` was used once per copy, so its gradient is the
    sum of the gradients of its copies.
    """
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad


def topological_sort(root: Variable) -> list[Variable]:
    """Tensors reachable from ``root`` through histories, ``root`` first.

    Iterative depth-first search, so deep graphs do not hit Python's
    recursion limit.
    """
    order: list[Variable] = []
    visited: set[int] = set()
    stack: list[tuple[Variable, bool]] = [(root, False)]
    while stack:
        node, inputs_done = stack.pop()
        if inputs_done:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        if node.history is not None:
            for parent in node.history.inputs:
                if parent.requires_grad and id(parent) not in visited:
                    stack.append((parent, False))
    order.reverse()
    return order


def backpropagate(root: Variable, grad: np.ndarray) -> None:
    """Send ``grad`` (dL/droot) back to every leaf that requires a gradient."""
    pending: dict[int, np.ndarray] = {id(root): grad}
    for node in topological_sort(root):
        node_grad = pending.pop(id(node), None)
        if node_grad is None:
            continue
        if node.history is None:
            _accumulate(node, node_grad)
            continue
        function, ctx, inputs = node.history.function, node.history.ctx, node.history.inputs
        with backend(getattr(ctx, "backend", None) or active_backend()):  # the forward's backend
            input_grads = function.backward(ctx, node_grad)
        if not isinstance(input_grads, tuple):
            input_grads = (input_grads,)
        if len(input_grads) != len(inputs):
            raise RuntimeError(
                f"{function.__name__}.backward returned {len(input_grads)} gradients for {len(inputs)} inputs"
            )
        for parent, parent_grad in zip(inputs, input_grads):
            if parent_grad is None or not parent.requires_grad:
                continue
            parent_grad = unbroadcast(np.asarray(parent_grad), parent.shape)
            if parent_grad.shape != parent.shape:
                raise RuntimeError(
                    f"{function.__name__}.backward gave a gradient of shape "
                    f"{parent_grad.shape} for an input of shape {parent.shape}"
                )
            key = id(parent)
            pending[key] = pending[key] + parent_grad if key in pending else parent_grad


def _accumulate(leaf: Variable, grad: np.ndarray) -> None:
    if leaf.grad is None:
        leaf.grad = grad.astype(leaf.data.dtype)  # always a copy, and only one when the dtype differs
    else:
        leaf.grad += grad.astype(leaf.data.dtype, copy=False)
