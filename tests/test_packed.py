"""Packed inference: bit-level convolution pieces, packed layers against the
float path on ±1 values (exactly: these are integers), and the converter."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinybnn.autograd import Tensor, conv2d, no_grad
from tinybnn.convert import convert_model
from tinybnn.errors import ArgumentError
from tinybnn.gemm import pack_bits
from tinybnn.gemm.bitconv import im2col_words, pack_channels, pack_filters
from tinybnn.layers import BatchNorm, QActivation, QConvolution, QFullyConnected, Sequential, use_float_path
from tinybnn.layers.packed import PackedConvolution, PackedFullyConnected
from tinybnn.models import lenet

from .strategies import float_arrays


def sign(a):
    return np.where(a >= 0, 1.0, -1.0)


@given(st.integers(1, 3), st.integers(1, 140), st.integers(1, 5), st.integers(1, 5), st.booleans(), st.data())
def test_pack_channels_equals_packing_each_pixel(n, c, h, w, channel_major, data):
    x = data.draw(float_arrays((n, c, h, w), np.float32, layout="C"))
    if channel_major:
        x = np.ascontiguousarray(x.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    expected = pack_bits(np.ascontiguousarray(x.transpose(0, 2, 3, 1)), axis=-1)
    assert np.array_equal(pack_channels(x), expected)


@st.composite
def binary_conv_case(draw):
    c = draw(st.sampled_from([1, 3, 63, 64, 65, 130]))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    h = draw(st.integers(max(1, kh - 2 * ph), 6))
    w = draw(st.integers(max(1, kw - 2 * pw), 6))
    return dict(
        n=draw(st.integers(1, 2)),
        c=c,
        f=draw(st.integers(1, 5)),
        kernel=(kh, kw),
        stride=(draw(st.integers(1, 2)), draw(st.integers(1, 2))),
        pad=(ph, pw),
        h=h,
        w=w,
        pad_value=draw(st.sampled_from([1.0, -1.0])),
    )


@settings(max_examples=40)
@given(binary_conv_case(), st.data())
def test_packed_convolution_equals_float_convolution_on_signs(case, data):
    x = data.draw(float_arrays((case["n"], case["c"], case["h"], case["w"]), np.float32, layout="C"))
    weight = data.draw(float_arrays((case["f"], case["c"], *case["kernel"]), np.float32, layout="C"))
    layer = PackedConvolution(
        case["kernel"], case["f"], case["c"], stride=case["stride"], pad=case["pad"], pad_value=case["pad_value"]
    )
    layer.weight_bits[...] = pack_filters(weight, pad_words_to=1)
    ph, pw = case["pad"]
    padded = np.pad(sign(x), ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=case["pad_value"])
    expected = conv2d(Tensor(padded.astype(np.float64)), Tensor(sign(weight)), stride=case["stride"]).data
    assert np.array_equal(layer(Tensor(x)).data, expected)


def test_packed_words_per_pixel_and_padding_words():
    x = np.ones((1, 3, 1, 1), np.float32)
    x[0, 1] = -2.0  # channels + - +
    words = pack_channels(x)
    assert words[0, 0, 0, 0] == 0b101
    patches = im2col_words(words, 3, (1, 3), (1, 1), (0, 1), pad_value=1.0, pad_words_to=4)
    # padding pixel (+1 in 3 channels), the pixel, padding pixel, then a zero word up to 4
    assert patches.tolist() == [[0b111, 0b101, 0b111, 0]]
    patches = im2col_words(words, 3, (1, 3), (1, 1), (0, 1), pad_value=-1.0, pad_words_to=4)
    assert patches.tolist() == [[0, 0b101, 0, 0]]


def test_a_padding_pixel_takes_the_sign_of_pad_value_in_every_word():
    words = pack_channels(np.ones((1, 65, 1, 1), np.float32))
    full, last = 0xFFFFFFFFFFFFFFFF, 0b1
    for pad_value, expected in [(1.0, [full, last]), (0.0, [full, last]), (-1.0, [0, 0])]:  # sign(0) = +1
        patches = im2col_words(words, 65, (1, 2), (1, 1), (0, 1), pad_value=pad_value, pad_words_to=1)
        assert patches.tolist() == [expected + [full, last], [full, last] + expected]


def test_packed_convolution_refuses_a_pad_value_other_than_plus_or_minus_one():
    with pytest.raises(ArgumentError, match="PackedConvolution: pad_value must be \\+1 or -1"):
        PackedConvolution(3, 4, 8, pad_value=0.5)


@given(st.integers(1, 4), st.integers(1, 200), st.integers(1, 6), st.data())
def test_packed_fully_connected_equals_float_on_signs(n, d, h, data):
    x = data.draw(float_arrays((n, d), np.float32, layout="C"))
    weight = data.draw(float_arrays((h, d), np.float32, layout="C"))
    layer = PackedFullyConnected(h, d)
    layer.weight_bits[...] = pack_bits(weight, axis=-1)
    assert np.array_equal(layer(Tensor(x)).data, sign(x) @ sign(weight).T)


def random_statistics(model, rng):
    """Give every BatchNorm non-trivial running statistics and affine parameters."""
    for _, module in model.named_modules():
        if isinstance(module, BatchNorm):
            c = module.beta.shape[0]
            module.running_mean[...] = rng.normal(0, 3, c)
            module.running_var[...] = rng.uniform(0.5, 20, c)
            module.gamma.data[...] = rng.uniform(0.5, 1.5, c)
            module.beta.data[...] = rng.normal(0, 0.5, c)


@pytest.mark.parametrize("scaling, bias", [(False, False), (True, False), (False, True), (True, True)])
def test_conversion_folds_scaling_bias_and_batchnorm(scaling, bias):
    rng = np.random.default_rng(0)
    model = Sequential(
        QActivation(),
        QConvolution(3, 8, pad=1, scaling_factor=scaling, no_bias=not bias, rng=rng),
        BatchNorm(),
        QActivation(),
        QFullyConnected(5, scaling_factor=scaling, no_bias=not bias, rng=rng),
        BatchNorm(),
    ).build((4, 6, 6))
    random_statistics(model, rng)
    if bias:
        model[1].bias.data[...] = rng.normal(0, 2, 8)
        model[4].bias.data[...] = rng.normal(0, 2, 5)
    model.eval()
    converted = convert_model(model, fuse=False)
    assert [type(m).__name__ for m in converted] == ["PackedConvolution", "PackedFullyConnected"]
    fused = convert_model(model)
    assert [type(m).__name__ for m in fused] == ["BitConvolution", "BitDense"]
    x = Tensor(rng.standard_normal((7, 4, 6, 6)).astype(np.float32))
    with no_grad():
        # compare the first layer alone: its packed dot products are exact integers
        np.testing.assert_allclose(converted[0](x).data, model[2](model[1](model[0](x))).data, rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(converted(x).data, model(x).data, rtol=1e-4, atol=1e-3)
        assert np.array_equal(fused(x).data, converted(x).data)


def test_converted_lenet_matches_the_float_path():
    rng = np.random.default_rng(1)
    model = lenet(binary=True, rng=rng).build((1, 28, 28))
    random_statistics(model, rng)
    model.eval()
    converted = convert_model(model, fuse=False)
    fused = convert_model(model)
    use_float_path(model)
    assert [type(m).__name__ for m in converted] == [
        "Convolution",
        "Activation",
        "Pooling",
        "PackedConvolution",
        "Flatten",
        "PackedFullyConnected",
        "Activation",
        "FullyConnected",
    ]
    assert converted[3].input_norm and converted[3].pool_kernel == (2, 2)
    assert [type(m).__name__ for m in fused] == ["ConvolutionToBits", "BitConvolution", "BitDense"]
    x = Tensor(rng.random((20, 1, 28, 28), dtype=np.float32))
    with no_grad():
        a = model(x).data
        for twin in (converted, fused):
            b = twin(x).data
            assert np.array_equal(a.argmax(axis=1), b.argmax(axis=1))
            np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-4 * np.abs(a).max())


def test_conversion_leaves_k_bit_and_float_layers_alone():
    rng = np.random.default_rng(2)
    model = lenet(binary=True, act_bit=2, weight_bit=2, rng=rng).build((1, 28, 28))
    converted = convert_model(model)
    assert not any(type(m).__name__.startswith("Packed") for m in converted)
    assert len(converted) == len(model)


def test_conversion_does_not_change_the_model():
    rng = np.random.default_rng(3)
    model = lenet(binary=True, rng=rng).build((1, 28, 28))
    before = model.state_dict()
    convert_model(model)
    after = model.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before) and model.training


@given(st.integers(1, 3), st.sampled_from([1, 5, 64, 70]), st.integers(1, 4), st.booleans(), st.data())
def test_normalized_packing_gives_the_batchnorm_layers_signs(n, c, h, channel_major, data):
    """Values placed right at BatchNorm's threshold, where a differently rounded formula would flip signs."""
    from tinybnn.autograd import batch_norm
    from tinybnn.gemm.bitconv import pack_normalized_channels

    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    mean = rng.normal(0, 2, c).astype(np.float32)
    var = rng.uniform(0.01, 9, c).astype(np.float32)
    gamma = rng.uniform(-1.5, 1.5, c).astype(np.float32)
    beta = rng.normal(0, 1, c).astype(np.float32)
    threshold = mean - beta * np.sqrt(var + 1e-5) / np.where(gamma == 0, 1, gamma)  # BN(x) = 0 here
    x = (threshold[None, :, None, None] + rng.normal(0, 1e-6, (n, c, h, h))).astype(np.float32)
    if channel_major:
        x = np.ascontiguousarray(x.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    y = batch_norm(Tensor(x), Tensor(gamma), Tensor(beta), mean, var, training=False, eps=1e-5).data
    inv_std = (1.0 / np.sqrt(var.astype(np.float64) + 1e-5)).astype(np.float32)
    assert np.array_equal(pack_normalized_channels(x, mean, inv_std, gamma, beta), pack_channels(y))


@given(binary_conv_case(), st.sampled_from([(1, 1), (2, 2), (2, 1)]), st.data())
def test_pooling_in_the_epilogue_equals_pooling_after(case, pool, data):
    from tinybnn.autograd import max_pool2d

    x = data.draw(float_arrays((case["n"], case["c"], case["h"] + 2, case["w"] + 2), np.float32, layout="C"))
    weight = data.draw(float_arrays((case["f"], case["c"], *case["kernel"]), np.float32, layout="C"))
    plain = PackedConvolution(case["kernel"], case["f"], case["c"], stride=case["stride"], pad=case["pad"])
    pooled = PackedConvolution(
        case["kernel"], case["f"], case["c"], stride=case["stride"], pad=case["pad"], pool_kernel=pool
    )
    for layer in (plain, pooled):
        layer.weight_bits[...] = pack_filters(weight, pad_words_to=1)
        layer.scale[...] = np.linspace(-1, 2, case["f"])
        layer.shift[...] = np.linspace(0.5, -0.5, case["f"])
    full = plain(Tensor(x)).data
    if full.shape[2] < pool[0] or full.shape[3] < pool[1]:
        return
    assert np.array_equal(pooled(Tensor(x)).data, max_pool2d(Tensor(full), pool).data)
