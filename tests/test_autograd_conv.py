"""Convolution: the formula, the Numba kernels against their NumPy twins, gradients.

im2col only copies values, so the fast and reference versions must agree
exactly; col2im adds, possibly in another order, so float64 results must
agree to 1e-12 relative.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinybnn.autograd import Tensor, conv2d, gradcheck
from tinybnn.autograd import conv
from tinybnn.autograd.conv import (
    ConvGeometry,
    channels_last,
    col2im,
    col2im_channels_last,
    col2im_reference,
    im2col,
    im2col_channels_last,
    im2col_reference,
    output_size,
)
from tinybnn.errors import ArgumentError, ShapeError

from .strategies import arrays_f64, with_layout


@st.composite
def conv_geometry(draw, max_side=7):
    """(x_shape, w_shape, stride, pad) of a valid convolution."""
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    h = draw(st.integers(max(1, kh - 2 * ph), max_side))
    w = draw(st.integers(max(1, kw - 2 * pw), max_side))
    n, c, f = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    return (n, c, h, w), (f, c, kh, kw), stride, (ph, pw)


def direct_convolution(x, w, b, stride, pad, pad_value=0.0):
    """The definition, one output element at a time."""
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad[0],) * 2, (pad[1],) * 2), constant_values=pad_value)
    oh, ow = output_size(h, kh, stride[0], pad[0]), output_size(wd, kw, stride[1], pad[1])
    y = np.zeros((n, f, oh, ow))
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, :, i * stride[0] : i * stride[0] + kh, j * stride[1] : j * stride[1] + kw]
            y[:, :, i, j] = np.einsum("ncuv,fcuv->nf", patch, w)
    return y + (0 if b is None else b[None, :, None, None])


@given(conv_geometry(), st.sampled_from([0.0, 1.0, -1.0]), st.data())
def test_im2col_kernel_equals_reference_exactly(geometry, pad_value, data):
    x_shape, w_shape, stride, pad = geometry
    x = data.draw(arrays_f64(x_shape))
    kernel = w_shape[2:]
    assert np.array_equal(
        im2col(x, kernel, stride, pad, pad_value), im2col_reference(x, kernel, stride, pad, pad_value)
    )
    x32 = x.astype(np.float32)
    assert np.array_equal(
        im2col(x32, kernel, stride, pad, pad_value), im2col_reference(x32, kernel, stride, pad, pad_value)
    )


@given(conv_geometry(), st.data())
def test_col2im_kernel_equals_reference(geometry, data):
    x_shape, w_shape, stride, pad = geometry
    kernel = w_shape[2:]
    rows = (
        x_shape[0]
        * output_size(x_shape[2], kernel[0], stride[0], pad[0])
        * output_size(x_shape[3], kernel[1], stride[1], pad[1])
    )
    cols = data.draw(arrays_f64((rows, x_shape[1] * kernel[0] * kernel[1])))
    np.testing.assert_allclose(
        col2im(cols, x_shape, kernel, stride, pad),
        col2im_reference(cols, x_shape, kernel, stride, pad),
        rtol=1e-12,
        atol=1e-12,
    )


@given(conv_geometry(), st.data())
def test_col2im_is_the_adjoint_of_im2col(geometry, data):
    # <im2col(x), c> == <x, col2im(c)> for every x and c
    x_shape, w_shape, stride, pad = geometry
    x = data.draw(arrays_f64(x_shape))
    cols = im2col(x, w_shape[2:], stride, pad)
    c = data.draw(arrays_f64(cols.shape))
    back = col2im(c, x_shape, w_shape[2:], stride, pad)
    assert np.sum(cols * c) == pytest.approx(np.sum(x * back), rel=1e-9, abs=1e-9)


def channel_columns_last(cols, channels, kernel):
    """im2col_reference's (c, u, v) columns reordered to im2col_channels_last's (u, v, c)."""
    return cols.reshape(cols.shape[0], channels, *kernel).transpose(0, 2, 3, 1).reshape(cols.shape[0], -1)


@given(
    conv_geometry(),
    st.sampled_from([0.0, 1.0, -1.0]),
    st.sampled_from(["C", "F", "strided"]),
    st.booleans(),
    st.booleans(),
    st.data(),
)
def test_channels_last_im2col_is_the_reference_with_columns_permuted(
    geometry, pad_value, layout, signs, ones_column, data
):
    x_shape, w_shape, stride, pad = geometry
    kernel = w_shape[2:]
    for dtype in (np.float64, np.float32):
        x = with_layout(data.draw(arrays_f64(x_shape)).astype(dtype), layout)
        x.flat[0] = 0.0  # sign(0) = +1
        last = channels_last(x, signs)
        assert last.flags.c_contiguous and last.dtype == dtype
        values = np.where(x >= 0, 1.0, -1.0).astype(dtype) if signs else x
        assert np.array_equal(last, values.transpose(0, 2, 3, 1))
        want = channel_columns_last(im2col_reference(values, kernel, stride, pad, pad_value), x_shape[1], kernel)
        got = im2col_channels_last(last, kernel, stride, pad, pad_value, ones_column)
        assert got.dtype == dtype and np.array_equal(got[:, : want.shape[1]], want)
        assert got.shape[1] == want.shape[1] + ones_column and np.all(got[:, want.shape[1] :] == 1)


def test_channels_last_im2col_refuses_an_out_that_is_not_contiguous():
    x = np.zeros((1, 3, 3, 2))
    with pytest.raises(ArgumentError, match="C-contiguous"):
        im2col_channels_last(x, (2, 2), (1, 1), out=np.zeros((4, 16))[:, ::2])


@given(conv_geometry(), st.data())
def test_channels_last_col2im_equals_the_reference(geometry, data):
    x_shape, w_shape, stride, pad = geometry
    kernel = w_shape[2:]
    rows = im2col_reference(np.zeros(x_shape), kernel, stride, pad).shape[0]
    cols = data.draw(arrays_f64((rows, x_shape[1] * kernel[0] * kernel[1])))
    got = col2im_channels_last(channel_columns_last(cols, x_shape[1], kernel), x_shape, kernel, stride, pad)
    assert got.flags.c_contiguous
    np.testing.assert_allclose(got, col2im_reference(cols, x_shape, kernel, stride, pad), rtol=1e-12, atol=1e-12)


@given(conv_geometry(), st.booleans(), st.sampled_from([0.0, 1.0, -1.0]), st.data())
def test_the_fast_convolution_one_image_per_chunk_agrees_with_the_reference(geometry, with_bias, pad_value, data):
    x_shape, w_shape, stride, pad = geometry
    x, w, grad_seed = data.draw(arrays_f64(x_shape)), data.draw(arrays_f64(w_shape)), data.draw(st.integers(0, 99))
    b = data.draw(arrays_f64((w_shape[0],))) if with_bias else None
    g = ConvGeometry.of(x_shape, w_shape, stride, pad, pad_value)
    needs = (True, True, with_bias)
    saved, conv.CHUNK_BYTES = conv.CHUNK_BYTES, 1  # every image its own chunk, forward and backward
    try:
        y, patches = conv.conv_forward_fast(x, w, b, g)
        grad = np.random.default_rng(grad_seed).standard_normal(y.shape)
        fast = conv.conv_backward_fast(grad, patches, w, g, needs)
    finally:
        conv.CHUNK_BYTES = saved
    y_ref, cols = conv.conv_forward_reference(x, w, b, g)
    np.testing.assert_allclose(y, y_ref, rtol=1e-12, atol=1e-12)
    for got, want in zip(fast, conv.conv_backward_reference(grad, cols, w, g, needs)):
        if want is not None:
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@given(conv_geometry(), st.booleans(), st.sampled_from([0.0, 1.0, -1.0]), st.data())
def test_conv2d_matches_the_definition(geometry, with_bias, pad_value, data):
    x_shape, w_shape, stride, pad = geometry
    x, w = data.draw(arrays_f64(x_shape)), data.draw(arrays_f64(w_shape))
    b = data.draw(arrays_f64((w_shape[0],))) if with_bias else None
    y = conv2d(Tensor(x), Tensor(w), None if b is None else Tensor(b), stride=stride, pad=pad, pad_value=pad_value)
    np.testing.assert_allclose(y.data, direct_convolution(x, w, b, stride, pad, pad_value), rtol=1e-10, atol=1e-10)


@given(conv_geometry(max_side=5), st.booleans(), st.data())
def test_conv2d_gradients(geometry, with_bias, data):
    x_shape, w_shape, stride, pad = geometry
    x = Tensor(data.draw(arrays_f64(x_shape)), requires_grad=True)
    w = Tensor(data.draw(arrays_f64(w_shape)), requires_grad=True)
    if with_bias:
        b = Tensor(data.draw(arrays_f64((w_shape[0],))), requires_grad=True)
        gradcheck(lambda x_, w_, b_: conv2d(x_, w_, b_, stride=stride, pad=pad), [x, w, b])
    else:
        gradcheck(lambda x_, w_: conv2d(x_, w_, stride=stride, pad=pad, pad_value=1.0), [x, w])


def test_conv2d_gradient_of_weights_only():
    rng = np.random.default_rng(1)
    x = Tensor(rng.standard_normal((2, 3, 5, 5)))
    w = Tensor(rng.standard_normal((4, 3, 3, 3)), requires_grad=True)
    gradcheck(lambda w_: conv2d(x, w_, pad=1), [w])


def test_conv2d_float32_close_to_float64():
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((3, 4, 9, 9)), rng.standard_normal((5, 4, 3, 3))
    y32 = conv2d(Tensor(x.astype(np.float32)), Tensor(w.astype(np.float32)), pad=1).data
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, conv2d(Tensor(x), Tensor(w), pad=1).data, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "x_shape, w_shape, kwargs, error, message",
    [
        ((2, 3, 8), (4, 3, 3, 3), {}, ShapeError, r"\(N, C, H, W\)"),
        ((2, 3, 8, 8), (4, 2, 3, 3), {}, ShapeError, "3 channels, weights expect 2"),
        ((2, 3, 2, 2), (4, 3, 3, 3), {}, ShapeError, "larger than the padded input"),
        ((2, 3, 8, 8), (4, 3, 3, 3), {"stride": 0}, ArgumentError, "stride must be positive"),
        ((2, 3, 8, 8), (4, 3, 3, 3), {"pad": -1}, ArgumentError, "padding must be >= 0"),
    ],
)
def test_conv2d_refuses_bad_shapes(x_shape, w_shape, kwargs, error, message):
    with pytest.raises(error, match=message):
        conv2d(Tensor(np.zeros(x_shape)), Tensor(np.zeros(w_shape)), **kwargs)
