"""Every fast kernel agrees with its reference twin (tinybnn.autograd.backends.KERNELS).

Exactly (same values, same dtype, ``-0.0`` and ``0.0`` aside) for the
kernels declared exact: signs, masks, argmax indices, copies and the ±1 dot
products of binary layers. Within the kernel's stated :class:`Tolerance`
(``|fast - reference| <= atol + rtol |reference|``) for float results whose
sums run in another order: FEW_ULPS (rtol = atol = 1e-6) and
SUMMED_IN_ANOTHER_ORDER (rtol = atol = 1e-5), for float32 values of order 1;
float64 inputs are held to the same bounds. Every kernel in the registry has a
test here (the last test checks it).
"""

from pathlib import Path

import numba
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tinybnn.autograd import conv as conv_module
from tinybnn.autograd.backends import KERNELS
from tinybnn.autograd.conv import (
    DIRECT_MIN_FILTERS,
    DIRECT_TILE_FITS,
    ConvGeometry,
    compiles_for_avx512,
    conv_forward_direct,
    uses_direct_convolution,
)

from .strategies import float_dtypes, with_layout


def twins(name):
    """The reference and fast implementations of the kernel ``name``."""
    return KERNELS[name].reference, KERNELS[name].fast


def assert_agree(name, reference, fast):
    """fast == reference as the kernel ``name`` promises (exactly, or within its tolerance); tuples
    and None element by element."""
    if isinstance(reference, tuple):
        assert isinstance(fast, tuple) and len(fast) == len(reference), name
        for r, f in zip(reference, fast):
            assert_agree(name, r, f)
        return
    if reference is None:
        assert fast is None, name
        return
    reference, fast = np.asarray(reference), np.asarray(fast)
    assert reference.shape == fast.shape, (name, reference.shape, fast.shape)
    tolerance = KERNELS[name].tolerance
    if tolerance is None:
        assert reference.dtype == fast.dtype, (name, reference.dtype, fast.dtype)
        assert np.array_equal(reference, fast), name
    else:
        np.testing.assert_allclose(fast, reference, rtol=tolerance.rtol, atol=tolerance.atol, err_msg=name)


def channel_major_copy(x):
    """x's values laid out in memory as (C, N, H, W), as a convolution's output is."""
    return np.ascontiguousarray(x.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)


@st.composite
def nchw(draw, dtype=None, min_side=1, max_side=6, zeros=True, shape=None):
    """A 4-D float array: normal values, exact zeros, -0.0 and ±1, in C order, channel-major or any layout."""
    if shape is None:
        shape = (
            draw(st.integers(1, 4)),
            draw(st.integers(1, 4)),
            draw(st.integers(min_side, max_side)),
            draw(st.integers(min_side, max_side)),
        )
    dtype = draw(float_dtypes()) if dtype is None else dtype
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal(shape).astype(dtype)
    if zeros:
        special = rng.random(shape)
        x[special < 0.1] = 0.0
        x[(special >= 0.1) & (special < 0.15)] = 1.0
        x[(special >= 0.15) & (special < 0.2)] = -1.0
        x.flat[rng.integers(x.size)] = -0.0
    layout = draw(st.sampled_from(["C", "channel-major", "F", "strided"]))
    return channel_major_copy(x) if layout == "channel-major" else with_layout(x, layout)


limits = st.sampled_from([0.0, 0.5, 1.0, 2.0])


@settings(deadline=None, max_examples=60)
@given(x=nchw())
def test_sign(x):
    reference, fast = twins("sign")
    assert_agree("sign", reference(x), fast(x))


@settings(deadline=None, max_examples=60)
@given(x=nchw(), limit=limits)
def test_sign_and_mask(x, limit):
    reference, fast = twins("sign_and_mask")
    assert_agree("sign_and_mask", reference(x, limit), fast(x, limit))


@settings(deadline=None, max_examples=60)
@given(data=st.data(), limit=limits)
def test_straight_through(data, limit):
    reference, fast = twins("straight_through")
    x = data.draw(nchw())
    grad = data.draw(nchw(dtype=x.dtype, shape=x.shape))
    expected = reference(grad.copy(), x, limit)
    assert_agree("straight_through", expected, fast(grad.copy(), x, limit))  # fast may write into grad


def test_straight_through_of_a_channel_major_input_zeroes_nan_like_the_reference():
    """The plane-by-plane kernel (a C-order gradient, a channel-major input): |NaN| <= limit is false."""
    x = channel_major_copy(np.array([[[[0.5, np.nan], [2.0, -1.0]]] * 2] * 3, np.float32))
    assert not x.flags.c_contiguous
    reference, fast = twins("straight_through")
    grad = np.ones(x.shape, np.float32)
    assert_agree("straight_through", reference(grad.copy(), x, 1.0), fast(grad.copy(), x, 1.0))
    assert fast(grad.copy(), x, 1.0)[0, 0].tolist() == [[1.0, 0.0], [0.0, 1.0]]


@settings(deadline=None, max_examples=40)
@given(x=nchw())
def test_tanh(x):
    reference, fast = twins("tanh")
    assert_agree("tanh", reference(x), fast(x))


@settings(deadline=None, max_examples=40)
@given(data=st.data())
def test_tanh_backward(data):
    reference, fast = twins("tanh_backward")
    out = np.tanh(data.draw(nchw()))
    grad = data.draw(nchw(dtype=out.dtype, shape=out.shape))
    assert_agree("tanh_backward", reference(grad, out), fast(grad, out))


@st.composite
def convolutions(draw, pad_values=(0.0, 1.0, -1.0)):
    """(x, w, geometry) of a small convolution that fits."""
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    pad = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    dtype = draw(float_dtypes())
    x = draw(nchw(dtype=dtype, min_side=max(kh, kw)))
    filters = draw(st.integers(1, 5))
    w = draw(nchw(dtype=dtype, shape=(filters, x.shape[1], kh, kw)))
    return x, w, ConvGeometry.of(x.shape, w.shape, stride, pad, draw(st.sampled_from(pad_values)))


def needs_of(draw, count):
    return tuple(draw(st.booleans()) for _ in range(count))


def check_conv_twins(x, w, geometry, with_bias, data, fast_forward=None):
    """conv_forward's twins agree (or its reference and ``fast_forward``), then conv_backward's
    on what each forward kept, for a drawn output gradient and a drawn choice of the gradients
    needed."""
    b = np.random.default_rng(0).standard_normal(w.shape[0]).astype(x.dtype) if with_bias else None
    reference, fast = twins("conv_forward")
    fast = fast_forward or fast
    (y_ref, cols), (y_fast, patches) = reference(x, w, b, geometry), fast(x, w, b, geometry)
    assert_agree("conv_forward", y_ref, y_fast)
    grad = data.draw(nchw(dtype=x.dtype, shape=y_ref.shape))
    needs = (*needs_of(data.draw, 2), with_bias and data.draw(st.booleans()))
    reference, fast = twins("conv_backward")
    assert_agree("conv_backward", reference(grad, cols, w, geometry, needs), fast(grad, patches, w, geometry, needs))


@settings(deadline=None, max_examples=60)
@given(conv=convolutions(), with_bias=st.booleans(), data=st.data())
def test_conv_forward_and_backward(conv, with_bias, data):
    x, w, geometry = conv
    check_conv_twins(x, w, geometry, with_bias, data)


@settings(deadline=None, max_examples=40)
@given(conv=convolutions(), filters=st.integers(DIRECT_MIN_FILTERS, 70), with_bias=st.booleans(), data=st.data())
def test_the_direct_convolution_and_the_backward_on_its_patches(conv, filters, with_bias, data):
    """The direct kernel that conv_forward's fast twin takes for float32 and 32 or more filters
    where AVX-512 holds its tile (its 64-filter tiles full or partial), and the backward on the
    padded copy it keeps; run on every CPU, whatever the dispatch says."""
    x, _, geometry = conv
    x = x.astype(np.float32)
    w = data.draw(nchw(dtype=np.float32, shape=(filters, *geometry.w_shape[1:])))
    geometry = ConvGeometry.of(x.shape, w.shape, geometry.stride, geometry.pad, geometry.pad_value)
    check_conv_twins(x, w, geometry, with_bias, data, fast_forward=conv_forward_direct)


def test_the_direct_convolution_is_taken_where_its_tile_fits():
    x, w = np.zeros((1, 2, 6, 6), np.float32), np.zeros((DIRECT_MIN_FILTERS, 2, 3, 3), np.float32)
    assert uses_direct_convolution(x, w, None) == DIRECT_TILE_FITS
    assert not uses_direct_convolution(x, w[: DIRECT_MIN_FILTERS - 1], None)
    assert not uses_direct_convolution(x.astype(np.float64), w, None)


def test_avx512_is_read_from_numbas_cpu_features(monkeypatch):
    monkeypatch.setattr(numba.config, "CPU_FEATURES", "+avx2,+avx512f,-prefer-256-bit")
    assert compiles_for_avx512()
    monkeypatch.setattr(numba.config, "CPU_FEATURES", "+avx2,-avx512f")
    assert not compiles_for_avx512()


def test_a_cpu_named_without_features_is_not_taken_for_avx512(monkeypatch):
    monkeypatch.setattr(conv_module, "host_cpu_features", lambda: "+avx2,+avx512f")  # an AVX-512 host, on any CPU
    monkeypatch.setattr(numba.config, "CPU_FEATURES", None)
    monkeypatch.setattr(numba.config, "CPU_NAME", "generic")
    assert not compiles_for_avx512()


def test_without_a_cpu_given_the_hosts_features_decide(monkeypatch):
    monkeypatch.setattr(numba.config, "CPU_FEATURES", None)
    monkeypatch.setattr(numba.config, "CPU_NAME", None)
    monkeypatch.setattr(conv_module, "host_cpu_features", lambda: "+avx2,+avx512f")
    assert compiles_for_avx512()
    monkeypatch.setattr(conv_module, "host_cpu_features", lambda: "+avx2,-avx512f")
    assert not compiles_for_avx512()
    monkeypatch.setattr(conv_module, "host_cpu_features", lambda: None)  # no host detection on this platform
    assert not compiles_for_avx512()


@settings(deadline=None, max_examples=60)
@given(conv=convolutions(pad_values=(1.0, -1.0)), data=st.data())
def test_binary_conv_forward_and_backward(conv, data):
    x, w, geometry = conv
    reference, fast = twins("binary_conv_forward")
    y = reference(x, w, geometry)
    assert_agree("binary_conv_forward", y, fast(x, w, geometry))
    grad = data.draw(nchw(dtype=x.dtype, shape=y.shape))
    grad_cancel = data.draw(limits)
    needs = needs_of(data.draw, 2)
    reference, fast = twins("binary_conv_backward")
    assert_agree(
        "binary_conv_backward",
        reference(grad, x, w, geometry, grad_cancel, needs),
        fast(grad, x, w, geometry, grad_cancel, needs),
    )


@settings(deadline=None, max_examples=60)
@given(
    n=st.integers(1, 6),
    k=st.integers(1, 200),
    m=st.integers(1, 6),
    seed=st.integers(0, 2**32 - 1),
    dtype=float_dtypes(),
)
def test_binary_dense_forward(n, k, m, seed, dtype):
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal((n, k)).astype(dtype), rng.standard_normal((m, k)).astype(dtype)
    x[rng.random(x.shape) < 0.2] = 0.0
    reference, fast = twins("binary_dense_forward")
    assert_agree("binary_dense_forward", reference(x, w), fast(x, w))


@settings(deadline=None, max_examples=40)
@given(
    data=st.data(),
    kernel=st.sampled_from([(1, 1), (2, 2), (3, 3), (2, 3)]),
    stride=st.sampled_from([(1, 1), (2, 2), (3, 2)]),
    with_argmax=st.booleans(),
)
def test_max_pool_forward_and_backward(data, kernel, stride, with_argmax):
    x = data.draw(nchw(min_side=3))
    reference, fast = twins("max_pool")
    expected, got = reference(x, kernel, stride, with_argmax), fast(x, kernel, stride, with_argmax)
    assert_agree("max_pool", expected, got)
    argmax = fast(x, kernel, stride, True)[1]
    grad = data.draw(nchw(dtype=x.dtype, shape=argmax.shape))
    reference, fast = twins("max_pool_backward")
    assert_agree(
        "max_pool_backward",
        reference(grad, argmax, x.shape, kernel, stride),
        fast(grad, argmax, x.shape, kernel, stride),
    )


@st.composite
def batch_norm_inputs(draw):
    """x (N, C) or (N, C, H, W) with at least 8 values per channel (so the variance is not tiny), gamma, beta."""
    dtype = draw(float_dtypes())
    if draw(st.booleans()):
        n, c = draw(st.integers(8, 20)), draw(st.integers(1, 5))
        x = np.random.default_rng(draw(st.integers(0, 2**32 - 1))).standard_normal((n, c)).astype(dtype)
    else:
        x = draw(nchw(dtype=dtype, shape=(draw(st.integers(2, 4)), draw(st.integers(1, 4)), 2, 2), zeros=False))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    gamma = rng.uniform(0.5, 2.0, x.shape[1]).astype(dtype)
    beta = rng.standard_normal(x.shape[1]).astype(dtype)
    return x, gamma, beta


@settings(deadline=None, max_examples=30)
@given(inputs=batch_norm_inputs(), training=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_batch_norm_forward_and_backward(inputs, training, seed):
    x, gamma, beta = inputs
    rng = np.random.default_rng(seed)
    channels = x.shape[1]
    mean = None if training else rng.standard_normal(channels).astype(np.float32)
    var = None if training else rng.uniform(0.5, 2.0, channels).astype(np.float32)
    reference, fast = twins("batch_norm_forward")
    expected, got = reference(x, gamma, beta, mean, var, 1e-5), fast(x, gamma, beta, mean, var, 1e-5)
    assert_agree("batch_norm_forward", expected, got)
    _, xhat, inv_std, _, _ = expected
    grad = rng.standard_normal(x.shape).astype(x.dtype)
    reference, fast = twins("batch_norm_backward")
    assert_agree(
        "batch_norm_backward",
        reference(grad, xhat, gamma, inv_std, training),
        fast(grad, xhat, gamma, inv_std, training),
    )


def test_every_kernel_has_its_twin_test():
    """Each registered kernel is compared by a test of this file (one that calls ``twins(name)``)."""
    source = Path(__file__).read_text()
    untested = sorted(name for name in KERNELS if f'twins("{name}")' not in source)
    assert not untested, f"kernels without a twin test: {untested}"
