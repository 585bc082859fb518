"""The fused conv + bias + tanh + 2x2 max pooling: Numba kernels against the NumPy twin, gradients,
and LeNet trained fused against unfused."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tinybnn.autograd import Tensor, gradcheck, softmax_cross_entropy
from tinybnn.autograd.fast_conv import (
    MAX_DIRECT_K,
    conv_tanh_max_pool,
    conv_tanh_pool_backward_reference,
    conv_tanh_pool_reference,
)
from tinybnn.layers import Activation, BatchNorm, Convolution, Flatten, FullyConnected, Pooling, Sequential
from tinybnn.layers.fusion import fusable_block, unfused
from tinybnn.models import build_model

#: float32 tolerance: sums of up to a few hundred products in another order than the GEMM's
RTOL, ATOL = 1e-4, 1e-5


@st.composite
def geometries(draw):
    """(x shape, w shape, stride, pad) with a conv output of at least 2x2."""
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    pad = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    channels = draw(st.integers(1, 3))
    height = draw(st.integers(max(1, kh - 2 * pad[0] + stride[0]), 12))
    width = draw(st.integers(max(1, kw - 2 * pad[1] + stride[1]), 12))
    # 17 and 65: a partly filled last block of 16, 32 or 64 filters (the tile widths by CPU)
    filters = draw(st.sampled_from((1, 2, 3, 4, 17, 65)))
    return (draw(st.integers(1, 3)), channels, height, width), (filters, channels, kh, kw), stride, pad


def operands(geometry, seed, dtype):
    x_shape, w_shape, stride, pad = geometry
    rng = np.random.default_rng(seed)
    return (
        rng.standard_normal(x_shape).astype(dtype),
        (rng.standard_normal(w_shape) * 0.5).astype(dtype),
        rng.standard_normal(w_shape[0]).astype(dtype),
    )


@settings(deadline=None, max_examples=60)
@given(geometries(), st.integers(0, 2**32 - 1), st.booleans())
def test_fused_kernels_agree_with_the_reference(geometry, seed, needs_x):
    _, _, stride, pad = geometry
    x, w, b = operands(geometry, seed, np.float32)
    y_ref, argmax = conv_tanh_pool_reference(x, w, b, stride, pad)
    xt, wt, bt = Tensor(x, requires_grad=needs_x), Tensor(w, requires_grad=True), Tensor(b, requires_grad=True)
    y = conv_tanh_max_pool(xt, wt, bt, stride=stride, pad=pad)
    np.testing.assert_allclose(y.data, y_ref, rtol=RTOL, atol=ATOL)
    g = np.random.default_rng(seed + 1).standard_normal(y.shape).astype(np.float32)
    y.backward(g)
    dx, dw, db = conv_tanh_pool_backward_reference(g, y_ref, argmax, x, w, stride, pad)
    np.testing.assert_allclose(wt.grad, dw, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(bt.grad, db, rtol=RTOL, atol=ATOL)
    if needs_x:
        np.testing.assert_allclose(xt.grad, dx, rtol=RTOL, atol=ATOL)
    else:
        assert xt.grad is None


def test_the_fused_output_is_the_composition_of_the_layers():
    x, w, b = operands(((2, 1, 10, 10), (3, 1, 5, 5), (1, 1), (0, 0)), 7, np.float32)
    composed = Sequential(Convolution((5, 5), 3), Activation("tanh"), Pooling("max", (2, 2), (2, 2)))
    composed(Tensor(x))  # creates the parameters
    composed[0].weight.data[...], composed[0].bias.data[...] = w, b
    with unfused():
        expected = composed(Tensor(x)).data
    np.testing.assert_allclose(conv_tanh_max_pool(Tensor(x), Tensor(w), Tensor(b)).data, expected, rtol=1e-6, atol=1e-6)


@settings(deadline=None, max_examples=15)
@given(geometries(), st.integers(0, 2**32 - 1))
def test_fused_gradient(geometry, seed):
    _, _, stride, pad = geometry
    x, w, b = (Tensor(a, requires_grad=True) for a in operands(geometry, seed, np.float64))
    gradcheck(lambda *t: conv_tanh_max_pool(*t, stride=stride, pad=pad), [x, w, b])


def test_only_a_small_biased_tanh_max_pool_block_is_fused():
    x = Tensor(np.zeros((1, 1, 12, 12), np.float32))

    def block(conv=None, act="tanh", pool=None):
        return [conv or Convolution((5, 5), 2), Activation(act), pool or Pooling("max", (2, 2), (2, 2))]

    assert fusable_block(block(), 0, x)
    assert not fusable_block(block(act="relu"), 0, x)
    assert not fusable_block(block(pool=Pooling("avg", (2, 2), (2, 2))), 0, x)
    assert not fusable_block(block(pool=Pooling("max", (3, 3), (2, 2))), 0, x)
    assert not fusable_block(block(conv=Convolution((5, 5), 2, no_bias=True)), 0, x)
    assert not fusable_block(block(), 1, x)
    wide = Tensor(np.zeros((1, MAX_DIRECT_K // 25 + 1, 12, 12), np.float32))
    assert not fusable_block(block(), 0, wide)  # K above MAX_DIRECT_K: im2col + GEMM
    with unfused():
        assert not fusable_block(block(), 0, x)


def test_lenet_trains_the_same_fused_and_unfused():
    """Two Adam steps of LeNet on each path, same start: the losses agree to float32 rounding."""
    from tinybnn.optim import Adam

    rng = np.random.default_rng(3)
    x, y = rng.random((4, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, 4)
    losses = []
    for fused in (True, False):
        model, _ = build_model("lenet", rng=np.random.default_rng(0))
        optimizer = Adam(model.parameters(), lr=1e-3)
        run = []
        for _ in range(2):
            if fused:
                loss = softmax_cross_entropy(model(Tensor(x)), y)
            else:
                with unfused():
                    loss = softmax_cross_entropy(model(Tensor(x)), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            run.append(float(loss.data))
        losses.append(run)
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-4)
    assert isinstance(model[0], Convolution) and isinstance(model[7], Flatten) and isinstance(model[-1], FullyConnected)
    assert any(isinstance(layer, BatchNorm) for layer in model)
