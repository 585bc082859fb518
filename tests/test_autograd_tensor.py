"""The graph machinery: accumulation, broadcasting, no_grad, backward's contract."""

import numpy as np
import pytest

from tinybnn.autograd import Function, Tensor, no_grad, unbroadcast
from tinybnn.autograd.graph import topological_sort


def test_value_used_twice_gets_both_contributions():
    # d/dx (x + x) * x = 4x (micrograd's classic bug would give 2x or 3x)
    x = Tensor(np.array([2.0, -3.0]), requires_grad=True)
    ((x + x) * x).sum().backward()
    assert np.array_equal(x.grad, [8.0, -12.0])


def test_diamond_graph():
    # y = a*b, z = a + y, w = z * y: dw/da = y + z*b + y*b... check numerically exact form
    a = Tensor(np.array(3.0), requires_grad=True)
    b = Tensor(np.array(5.0), requires_grad=True)
    y = a * b
    w = (a + y) * y
    w.backward()
    # w = (a + ab) ab = a^2 b + a^2 b^2;  dw/da = 2ab + 2ab^2, dw/db = a^2 + 2a^2 b
    assert a.grad == pytest.approx(2 * 3 * 5 + 2 * 3 * 25)
    assert b.grad == pytest.approx(9 + 2 * 9 * 5)


def test_leaf_gradients_accumulate_across_backward_calls():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    (x * 3).sum().backward()
    (x * 3).sum().backward()
    assert np.array_equal(x.grad, [6.0, 6.0])
    x.zero_grad()
    assert x.grad is None


def test_broadcasting_is_reduced_to_the_input_shape():
    a = Tensor(np.ones((4, 3)), requires_grad=True)
    b = Tensor(np.ones((1, 3)), requires_grad=True)
    c = Tensor(np.ones(3), requires_grad=True)
    s = Tensor(np.array(2.0), requires_grad=True)
    (a * b + c * s).sum().backward()
    assert b.grad.shape == (1, 3) and np.array_equal(b.grad, [[4, 4, 4]])
    assert c.grad.shape == (3,) and np.array_equal(c.grad, [8, 8, 8])
    assert s.grad.shape == () and s.grad == 12


def test_unbroadcast_sums_added_and_stretched_axes():
    g = np.arange(24.0).reshape(2, 3, 4)
    assert np.array_equal(unbroadcast(g, (3, 1)), g.sum(axis=(0, 2)).reshape(3, 1))
    assert np.array_equal(unbroadcast(g, ()), np.array(g.sum()))
    assert unbroadcast(g, g.shape) is g


def test_no_grad_records_nothing():
    x = Tensor(np.ones(3), requires_grad=True)
    with no_grad():
        y = x * 2
    assert not y.requires_grad and y.history is None
    z = x * 2
    assert z.requires_grad and z.history is not None


def test_context_saves_nothing_under_no_grad():
    seen = []

    class Spy(Function):
        @staticmethod
        def forward(ctx, a):
            ctx.save_for_backward(a)
            seen.append(ctx.saved_values)
            return a

        @staticmethod
        def backward(ctx, grad):
            return grad

    x = Tensor(np.ones(2), requires_grad=True)
    with no_grad():
        Spy.apply(x)
    Spy.apply(x)
    assert seen[0] == () and len(seen[1]) == 1


def test_backward_needs_a_gradient_for_non_scalars():
    x = Tensor(np.ones(3), requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match="scalar"):
        y.backward()
    y.backward(np.array([1.0, 0.0, 2.0]))
    assert np.array_equal(x.grad, [2.0, 0.0, 4.0])
    with pytest.raises(ValueError, match="shape"):
        (x * 2).backward(np.ones(2))


def test_backward_on_a_constant_is_an_error():
    with pytest.raises(RuntimeError, match="does not require grad"):
        Tensor(np.ones(1)).backward()


def test_integer_tensors_cannot_require_grad():
    with pytest.raises(TypeError, match="floating-point"):
        Tensor(np.arange(3), requires_grad=True)


def test_scalars_take_the_tensor_dtype():
    x = Tensor(np.ones(2, dtype=np.float32), requires_grad=True)
    assert (x * 2.5).dtype == np.float32
    assert (1 - x).dtype == np.float32


def test_wrong_number_of_gradients_is_reported_loudly():
    class Broken(Function):
        @staticmethod
        def forward(ctx, a, b):
            return a + b

        @staticmethod
        def backward(ctx, grad):
            return grad

    x = Tensor(np.ones(2), requires_grad=True)
    with pytest.raises(RuntimeError, match="Broken.backward returned 1 gradients for 2 inputs"):
        Broken.apply(x, x).sum().backward()


def test_wrong_gradient_shape_is_reported_loudly():
    class Broken(Function):
        @staticmethod
        def forward(ctx, a):
            return a.sum()

        @staticmethod
        def backward(ctx, grad):
            return np.ones(7)

    x = Tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(RuntimeError, match=r"Broken.backward gave a gradient of shape \(7,\)"):
        Broken.apply(x).backward()


def test_topological_order_puts_every_tensor_before_its_inputs():
    a = Tensor(np.ones(1), requires_grad=True)
    b = a * 2
    c = b + a
    d = c * b
    order = topological_sort(d)
    position = {id(t): i for i, t in enumerate(order)}
    for t in order:
        if t.history is not None:
            for parent in t.history.inputs:
                if parent.requires_grad:  # constants are not part of the walk
                    assert position[id(t)] < position[id(parent)]
    assert order[0] is d and len(order) == 4


def test_deep_graph_does_not_hit_the_recursion_limit():
    x = Tensor(np.array(1.0), requires_grad=True)
    y = x
    for _ in range(5000):
        y = y * 1.0
    y.backward()
    assert x.grad == 1.0


def test_detach_cuts_the_graph():
    x = Tensor(np.array(2.0), requires_grad=True)
    y = (x * x).detach() * x
    y.backward()
    assert x.grad == 4.0
