"""Every differentiable op against central differences in float64.

Tolerances: gradcheck's defaults (atol 1e-6, rtol 1e-4, eps 1e-6) unless an
op says otherwise. Ops with kinks (relu, hardtanh, max) are checked on
inputs kept at least 1e-3 away from the kink, so that x +- eps stays on
one side of it.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinybnn.autograd import Tensor, dropout, gradcheck, hardtanh
from tinybnn.autograd.gradcheck import GradcheckError
from tinybnn.autograd.function import Function

from .strategies import arrays_f64, shapes


def leaf(array):
    return Tensor(np.array(array, dtype=np.float64), requires_grad=True)


def away_from(values, kinks, margin=1e-3):
    """Move values within ``margin`` of any kink to kink + 2 margin."""
    values = np.array(values, dtype=np.float64)
    for k in kinks:
        near = np.abs(values - k) < margin
        values[near] = k + 2 * margin
    return values


@given(st.data())
def test_binary_arithmetic_with_broadcasting(data):
    shape = data.draw(shapes(max_dims=3))
    # the second operand broadcasts: some axes of size 1, maybe fewer axes
    other = tuple(1 if data.draw(st.booleans()) else n for n in shape)[data.draw(st.integers(0, len(shape))) :]
    a = leaf(data.draw(arrays_f64(shape)))
    b = leaf(data.draw(arrays_f64(other)))
    positive = leaf(np.abs(data.draw(arrays_f64(other))) + 0.5)
    gradcheck(lambda x, y: x + y, [a, b])
    gradcheck(lambda x, y: x - y, [a, b])
    gradcheck(lambda x, y: x * y, [a, b])
    gradcheck(lambda x, y: x / y, [a, positive])
    gradcheck(lambda x: -x, [a])


@given(arrays_f64(shapes()), st.sampled_from([2.0, 3.0, 0.5, -1.0, 1.5]))
def test_pow(values, exponent):
    gradcheck(lambda x: x**exponent, [leaf(np.abs(values) + 0.5)])


@given(st.integers(1, 5), st.integers(1, 5), st.integers(1, 5), st.integers(0, 2), st.data())
def test_matmul(m, k, n, batch, data):
    lead = (batch + 1,) if batch else ()
    a = leaf(data.draw(arrays_f64(lead + (m, k))))
    b = leaf(data.draw(arrays_f64((k, n))))
    gradcheck(lambda x, y: x @ y, [a, b])


def test_matmul_refuses_vectors():
    with pytest.raises(ValueError, match="rank >= 2"):
        leaf(np.ones(3)) @ leaf(np.ones((3, 2)))


@given(st.data())
def test_sum_and_mean_over_axes(data):
    shape = data.draw(shapes(max_dims=4))
    x = leaf(data.draw(arrays_f64(shape)))
    axis = data.draw(
        st.one_of(
            st.none(),
            st.integers(-len(shape), len(shape) - 1),
            st.lists(st.integers(0, len(shape) - 1), min_size=1, unique=True).map(tuple),
        )
    )
    keepdims = data.draw(st.booleans())
    gradcheck(lambda t: t.sum(axis=axis, keepdims=keepdims), [x])
    gradcheck(lambda t: t.mean(axis=axis, keepdims=keepdims), [x])


@given(st.data())
def test_max_over_an_axis(data):
    shape = data.draw(shapes(max_dims=3))
    # distinct values, at least 1e-3 apart, so that no tie sits within eps
    values = data.draw(st.permutations(range(int(np.prod(shape)))))
    x = leaf(np.array(values, dtype=np.float64).reshape(shape) * 1e-2)
    axis = data.draw(st.one_of(st.none(), st.integers(0, len(shape) - 1)))
    keepdims = data.draw(st.booleans())
    gradcheck(lambda t: t.max(axis=axis, keepdims=keepdims), [x])


def test_max_shares_the_gradient_between_ties():
    x = leaf([[1.0, 3.0, 3.0], [2.0, 0.0, 1.0]])
    x.max(axis=1).sum().backward()
    assert np.array_equal(x.grad, [[0, 0.5, 0.5], [1, 0, 0]])


@given(st.data())
def test_reshape_transpose_flatten(data):
    shape = data.draw(shapes(min_dims=2, max_dims=4))
    x = leaf(data.draw(arrays_f64(shape)))
    axes = tuple(data.draw(st.permutations(range(len(shape)))))
    gradcheck(lambda t: t.reshape(-1), [x])
    gradcheck(lambda t: t.transpose(axes), [x])
    gradcheck(lambda t: t.T, [x])
    gradcheck(lambda t: t.flatten(), [x])


@given(arrays_f64(shapes()))
def test_smooth_elementwise_functions(values):
    x = leaf(values)
    gradcheck(lambda t: t.exp(), [x])
    gradcheck(lambda t: t.tanh(), [x])
    gradcheck(lambda t: t.sigmoid(), [x])
    gradcheck(lambda t: t.log(), [leaf(np.abs(values) + 0.1)])


@given(arrays_f64(shapes()))
def test_relu_and_hardtanh_away_from_kinks(values):
    gradcheck(lambda t: t.relu(), [leaf(away_from(values, [0.0]))])
    gradcheck(lambda t: hardtanh(t), [leaf(away_from(values, [-1.0, 1.0]))])
    gradcheck(lambda t: hardtanh(t, -0.5, 2.0), [leaf(away_from(values, [-0.5, 2.0]))])


def test_sigmoid_does_not_overflow():
    x = Tensor(np.array([-1000.0, 0.0, 1000.0]))
    assert np.array_equal(x.sigmoid().data, [0.0, 0.5, 1.0])


@given(arrays_f64(shapes()), st.sampled_from([0.0, 0.2, 0.5, 0.9]), st.integers(0, 10))
def test_dropout_gradient_is_its_mask(values, p, seed):
    x = leaf(values)
    y = dropout(x, p=p, rng=np.random.default_rng(seed))
    scale = y.data / np.where(values == 0, 1, values)
    scale[values == 0] = 1 / (1 - p)  # where x is 0 the output cannot tell the mask
    y.sum().backward()
    expected = np.random.default_rng(seed).random(values.shape) >= p if p else np.ones(values.shape, bool)
    assert np.allclose(x.grad, expected / (1 - p))
    assert np.allclose(y.data, values * expected / (1 - p))


def test_dropout_is_identity_in_evaluation():
    x = leaf(np.ones((3, 4)))
    y = dropout(x, p=0.5, rng=np.random.default_rng(0), training=False)
    assert np.array_equal(y.data, x.data)


def test_gradcheck_catches_a_wrong_derivative():
    class WrongSquare(Function):
        @staticmethod
        def forward(ctx, a):
            ctx.save_for_backward(a)
            return a * a

        @staticmethod
        def backward(ctx, grad):
            (a,) = ctx.saved_values
            return grad * a  # should be 2a

    with pytest.raises(GradcheckError, match="differs"):
        gradcheck(WrongSquare.apply, [leaf([1.0, 2.0])])


def test_gradcheck_needs_float64():
    with pytest.raises(TypeError, match="float64"):
        gradcheck(lambda t: t * 2, [Tensor(np.ones(2, np.float32), requires_grad=True)])
