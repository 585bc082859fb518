"""Reverse-mode differentiation over the graph that Functions record.

``topological_sort`` orders the tensors so that each comes before the inputs
it was computed from; ``backpropagate`` walks that order once, calling each
Function's ``backward`` and summing the gradients that reach a tensor along
different paths (so ``(x + x) * x`` gets ``4x + ... `` right, not half of it).
Leaves (tensors with no history that require a gradient) accumulate into
``.grad`` with ``+=`` across backward calls, as in PyTorch.
"""
from __future__ import annotations

import numpy as np

from .function import unbroadcast
from .tensor import Tensor


def topological_sort(root: Tensor) -> list[Tensor]:
    """Tensors reachable from ``root`` through histories, ``root`` first.

    Iterative depth-first search, so deep graphs do not hit Python's
    recursion limit.
    """
    order: list[Tensor] = []
    visited: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(root, False)]
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


def backpropagate(root: Tensor, grad: np.ndarray) -> None:
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
        input_grads = function.backward(ctx, node_grad)
        if not isinstance(input_grads, tuple):
            input_grads = (input_grads,)
        if len(input_grads) != len(inputs):
            raise RuntimeError(
                f"{function.__name__}.backward returned {len(input_grads)} gradients "
                f"for {len(inputs)} inputs"
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


def _accumulate(leaf: Tensor, grad: np.ndarray) -> None:
    if leaf.grad is None:
        leaf.grad = grad.astype(leaf.dtype)  # always a copy, and only one when the dtype differs
    else:
        leaf.grad += grad.astype(leaf.dtype, copy=False)
