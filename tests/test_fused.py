"""Fused inference stages against their unfused twins: thresholds exact for every dot product,
bits and integer dot products equal, the float first stage's decision equal to the float path's."""

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinybnn.architecture import construct, describe
from tinybnn.autograd import Tensor, no_grad
from tinybnn.autograd.conv import DIRECT_MIN_FILTERS, ConvGeometry, conv_forward_direct, pad_input
from tinybnn.errors import ArgumentError
from tinybnn.convert import affine_values, consumer_signs, convert_model, fuse_layers
from tinybnn.gemm.bitconv import pack_channels, pack_filters
from tinybnn.layers import Activation, BatchNorm, Convolution, Flatten, Pooling, QActivation, QConvolution, Sequential
from tinybnn.layers import fused
from tinybnn.layers.fused import BitConvolution, BitDense, ConvolutionToBits
from tinybnn.layers.packed import PackedConvolution, PackedFullyConnected
from tinybnn.layers.thresholds import (
    apply_float_thresholds,
    apply_integer_thresholds,
    float32_from_keys,
    float32_keys,
    float_thresholds,
    integer_thresholds,
    integer_thresholds_exhaustive,
    verified_integer_thresholds,
)
from tinybnn.models import lenet, resnet18

from .strategies import float_arrays, reduction_lengths

# --- thresholds ----------------------------------------------------------------------------------------
special_floats = st.sampled_from([0.0, -0.0, 1e-30, -1e-30, 1e-40, -1e-40, 1e30, -1e30, 3.4e38, -3.4e38])
any_float = st.one_of(special_floats, st.floats(-1e6, 1e6, width=32), st.floats(-0.0009765625, 0.0009765625, width=32))


def affine_decision(scale, shift, post_scale=None, post_shift=None):
    """The unfused layers' decision on a dot: float32(dot scale + shift) in float64, then optionally a
    float32 multiply-add (a BatchNorm), then sign."""

    def decide(dots):
        value = (
            dots.astype(np.float64) * scale[:, None].astype(np.float64) + shift[:, None].astype(np.float64)
        ).astype(np.float32)
        if post_scale is not None:
            value = value * post_scale[:, None] + post_shift[:, None]
        return value >= 0

    return decide


@settings(max_examples=200)
@given(
    reduction_lengths(700), st.lists(st.tuples(any_float, any_float), min_size=1, max_size=6), st.booleans(), st.data()
)
def test_integer_thresholds_give_the_float_decision_for_every_dot(k, pairs, with_post, data):
    scale = np.array([p[0] for p in pairs], np.float32)
    shift = np.array([p[1] for p in pairs], np.float32)
    # a shift where the decision changes inside [-k, k] as often as not
    moved = data.draw(st.lists(st.booleans(), min_size=len(pairs), max_size=len(pairs)))
    offset = np.array(data.draw(st.lists(st.integers(-k, k), min_size=len(pairs), max_size=len(pairs))))
    with np.errstate(over="ignore"):
        shift = np.where(moved, -offset * scale.astype(np.float64) + shift * 1e-3, shift).astype(np.float32)
    post = (None, None)
    if with_post:
        post = (
            np.array(data.draw(st.lists(any_float, min_size=len(pairs), max_size=len(pairs))), np.float32),
            np.array(data.draw(st.lists(any_float, min_size=len(pairs), max_size=len(pairs))), np.float32),
        )
    decide = affine_decision(scale, shift, *post)
    with np.errstate(over="ignore", invalid="ignore"):
        flip, threshold = integer_thresholds(decide, k, len(pairs))
        twin_flip, twin_threshold = integer_thresholds_exhaustive(decide, k, len(pairs))
        dots = np.arange(-k, k + 1)
        table = decide(np.broadcast_to(dots, (len(pairs), 2 * k + 1)))
        verified = verified_integer_thresholds(decide, k, len(pairs))
    steps = np.diff(table.astype(np.int8), axis=1)
    monotone = bool(np.all((steps >= 0).all(axis=1) | (steps <= 0).all(axis=1)))
    # float decisions are monotone, unless an infinity meets a zero: then the check says so
    assert monotone == (verified is not None)
    assert monotone == np.array_equal(apply_integer_thresholds(dots[:, None], flip, threshold).T, table)
    if monotone:
        assert np.array_equal(flip, twin_flip) and np.array_equal(threshold, twin_threshold)


def test_integer_thresholds_of_constant_decisions():
    decide = affine_decision(np.zeros(3, np.float32), np.array([1.0, -1.0, 0.0], np.float32))
    flip, threshold = integer_thresholds(decide, 5, 3)
    assert flip.tolist() == [1, 1, 1] and threshold.tolist() == [-5, 6, -5]


def test_float32_keys_follow_the_order_of_the_numbers():
    values = np.array([-np.inf, -3e38, -1.0, -1e-45, -0.0, 0.0, 1e-45, 1.0, 3e38, np.inf], np.float32)
    keys = float32_keys(values)
    assert np.all(np.diff(keys) > 0)
    assert np.array_equal(float32_from_keys(keys).view(np.int32), values.view(np.int32))


@settings(max_examples=60)
@given(
    st.lists(st.tuples(any_float, any_float, st.floats(0.015625, 10, width=32), any_float), min_size=1, max_size=5),
    st.data(),
)
def test_float_thresholds_give_the_float_decision(rows, data):
    """sign(BatchNorm(tanh(z))) against z >= threshold (or <=) on random z and on the float32
    neighbours of each threshold."""
    gamma, beta, var, mean = (np.array(col, np.float32) for col in zip(*rows))
    mean = np.clip(mean, -2, 2)
    inv = (1 / np.sqrt(var.astype(np.float64) + 1e-5)).astype(np.float32)

    def decide(z):
        return (np.tanh(z) - mean[:, None]) * inv[:, None] * gamma[:, None] + beta[:, None] >= 0

    with np.errstate(over="ignore", invalid="ignore"):
        flip, threshold = float_thresholds(decide, len(rows))
        z = data.draw(float_arrays((len(rows), 50), np.float32, layout="C")) * np.float32(3)
        finite = np.where(np.isfinite(threshold), threshold, 0)[:, None]
        big = np.finfo(np.float32).max
        near = np.concatenate(
            [
                np.nextafter(finite, np.float32(-np.inf)),
                finite,
                np.nextafter(finite, np.float32(np.inf)),
                np.full_like(finite, big),
                np.full_like(finite, -big),
            ],
            axis=1,
        )
        z = np.concatenate([z, near], axis=1).astype(np.float32)
        assert np.array_equal(apply_float_thresholds(z.T, flip, threshold).T, decide(z))


# --- fused layers against the unfused ones ---------------------------------------------------------------
@st.composite
def conv_chain(draw):
    """A PackedConvolution (random filters, folded affine with negative and zero scales, optional
    pooling) and the packed layer after it (a convolution, with or without its input BatchNorm, or
    a dense layer after a Flatten)."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    c = draw(st.sampled_from([1, 3, 63, 64, 65, 130]))
    f = draw(st.sampled_from([1, 5, 64, 70]))
    k = draw(st.integers(1, 3))
    pad = draw(st.integers(0, 1))
    size = draw(st.integers(k + 3, 8))
    pool = draw(st.sampled_from([None, (2, 2), (2, 1)]))
    producer = PackedConvolution(
        k,
        f,
        c,
        stride=draw(st.integers(1, 2)),
        pad=pad,
        pad_value=draw(st.sampled_from([1.0, -1.0])),
        input_norm=draw(st.booleans()),
        pool_kernel=pool,
    )
    producer.weight_bits[...] = pack_filters(rng.standard_normal((f, c, k, k)), pad_words_to=1)
    bits = producer.bits
    producer.scale[...] = rng.choice([-1.0, 0.0, 1.0, 1e-3, 7.0], f) * rng.uniform(0.5, 2, f)
    producer.shift[...] = rng.normal(0, np.sqrt(bits), f) * np.abs(producer.scale) + rng.choice([0, 0.5, -0.5], f)
    if producer.input_norm:
        producer.input_mean[...] = rng.normal(0, 0.3, c)
        producer.input_gamma[...] = rng.choice([-1.0, 1.0], c)
    x = rng.standard_normal((draw(st.sampled_from([1, 2, 5])), c, size, size)).astype(np.float32)
    out = producer(Tensor(x)).data
    kind = draw(st.sampled_from(["conv", "normalized conv", "dense"]))
    if kind == "dense":
        features = out[0].size
        consumer = PackedFullyConnected(draw(st.integers(1, 9)), features)
        consumer.weight_bits[...] = pack_filters(
            rng.standard_normal((consumer.num_hidden, features, 1, 1)), pad_words_to=1
        )
        layers = [producer, Flatten(), consumer]
    else:
        consumer = PackedConvolution(
            1, 3, f, pad=1, pad_value=draw(st.sampled_from([1.0, -1.0])), input_norm=kind == "normalized conv"
        )
        consumer.weight_bits[...] = pack_filters(rng.standard_normal((3, f, 1, 1)), pad_words_to=1)
        if consumer.input_norm:
            consumer.input_mean[...] = rng.normal(0, 1, f) * np.abs(producer.scale)
            consumer.input_gamma[...] = rng.choice([-1.0, 0.0, 2.0], f)
            consumer.input_beta[...] = rng.normal(0, 0.1, f)
        layers = [producer, consumer]
    consumer.scale[...] = rng.normal(0, 1, consumer.scale.shape)
    consumer.shift[...] = rng.normal(0, 1, consumer.shift.shape)
    return layers, x


@settings(max_examples=60, deadline=None)
@given(conv_chain())
def test_fused_convolution_writes_the_bits_the_next_layer_would_take(chain):
    layers, x = chain
    fused_layers = fuse_layers(layers)
    assert [type(m) for m in fused_layers] == [BitConvolution, BitConvolution if len(layers) == 2 else BitDense]
    producer, consumer = layers[0], layers[-1]
    values = producer(Tensor(x)).data
    n, f, h, w = values.shape
    expected = consumer_signs(consumer, values.transpose(1, 0, 2, 3).reshape(f, -1))  # (F, N H W)
    bits = fused_layers[0](Tensor(x)).data
    assert bits.shape == (n, h, w, -(-f // 64))
    assert np.array_equal(
        bits, pack_channels(np.where(expected, 1.0, -1.0).reshape(f, n, h, w).transpose(1, 0, 2, 3).astype(np.float32))
    )
    # the next layer on those bits gives the unfused twin's numbers exactly
    assert np.array_equal(fused_layers[1](Tensor(bits)).data, Sequential(*layers)(Tensor(x)).data)


def test_affine_values_are_the_unfused_layers_numbers():
    layer = PackedConvolution(1, 3, 2)
    layer.scale[...] = [0.1, -3.0, 0.0]
    layer.shift[...] = [0.25, 1.0, -2.0]
    dots = np.array([[-2, 0, 2], [-2, 0, 2], [-2, 0, 2]])
    expected = (dots * layer.scale[:, None].astype(np.float64) + layer.shift[:, None]).astype(np.float32)
    assert np.array_equal(affine_values(layer, dots), expected)


def test_a_residual_body_passes_bits_and_its_float_shortcut_stays_float():
    rng = np.random.default_rng(0)
    model = resnet18(binary=True, rng=rng).build((3, 32, 32)).eval()
    randomize_batchnorms(model, rng)
    unfused, fused_model = convert_model(model, fuse=False), convert_model(model)
    block = fused_model[3]
    assert [type(m) for m in block.body] == [BitConvolution, BitConvolution]
    assert block.body[0].output == "bits" and block.body[1].input == "bits" and block.body[1].output == "float"
    assert [type(m) for m in fused_model[5].shortcut] == [PackedConvolution]
    x = Tensor(rng.standard_normal((2, 3, 32, 32)).astype(np.float32))
    with no_grad():
        assert np.array_equal(fused_model(x).data, unfused(x).data)


def randomize_batchnorms(model, rng, negative=0.3):
    """Non-trivial statistics; a fraction of gammas negative or zero."""
    for _, module in model.named_modules():
        if isinstance(module, BatchNorm):
            c = module.beta.shape[0]
            module.running_mean[...] = rng.normal(0, 0.5, c)
            module.running_var[...] = rng.uniform(0.5, 2, c)
            module.gamma.data[...] = rng.uniform(0.5, 1.5, c) * rng.choice([-1, 1], c, p=[negative, 1 - negative])
            module.gamma.data[:2] = 0.0
            module.beta.data[...] = rng.normal(0, 0.3, c)


def binary_lenet(seed=0):
    rng = np.random.default_rng(seed)
    model = lenet(binary=True, rng=rng).build((1, 28, 28))
    randomize_batchnorms(model, rng)
    return model.eval(), rng


def test_the_first_stage_decides_as_the_float_path_does_on_the_same_z():
    model, rng = binary_lenet()
    stage = convert_model(model)[0]
    x = Tensor(rng.random((4, 1, 28, 28), dtype=np.float32))
    with no_grad():
        z = model[0](x).data  # the float path's own convolution
        signs = QActivation()(model[3](model[2](model[1](Tensor(z))))).data > 0
    pooled = Pooling("max", (2, 2), (2, 2))(Tensor(z)).data
    assert np.array_equal(
        apply_float_thresholds(pooled.transpose(0, 2, 3, 1), stage.flip, stage.threshold), signs.transpose(0, 2, 3, 1)
    )
    assert (stage.flip < 0).any()  # some BatchNorm scales are negative: those channels fall


def test_the_first_stage_bits_equal_the_float_paths_but_within_rounding_of_the_threshold():
    model, rng = binary_lenet(1)
    stage = convert_model(model)[0]
    x = Tensor(rng.random((8, 1, 28, 28), dtype=np.float32))
    with no_grad():
        z = model[0](x).data
        signs = QActivation()(model[3](model[2](model[1](Tensor(z))))).data
    expected = pack_channels(signs)
    bits = stage(x).data
    flipped = np.asarray(pooled_margin(z, stage))[
        np.unpackbits((bits ^ expected).view(np.uint8), bitorder="little")
        .reshape(*bits.shape[:3], -1)[..., :64]
        .transpose(0, 3, 1, 2)
        .astype(bool)
    ]
    assert np.all(flipped < 1e-5), flipped  # a bit may differ only where z is that close to its threshold


@settings(deadline=None, max_examples=40)
@given(
    st.integers(DIRECT_MIN_FILTERS, 70),
    st.tuples(st.integers(1, 5), st.integers(1, 5)),
    st.tuples(st.integers(1, 2), st.integers(1, 2)),
    st.tuples(st.integers(0, 2), st.integers(0, 2)),
    st.integers(1, 3),
    st.data(),
)
def test_the_float_paths_direct_convolution_sums_z_as_the_first_stage_does(filters, kernel, stride, pad, images, data):
    """On one input channel, the direct kernel the float path takes where AVX-512 holds its tile
    (``conv_forward_direct``, run here on every CPU) gives every z + b bit for bit as the first stage's
    obvious twin sums it: from 0, one fused multiply-add per tap, then the bias. Starting from the
    bias instead flipped one first-stage bit of a trained binary LeNet on the MNIST test digits."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    size = [k + extra for k, extra in zip(kernel, (data.draw(st.integers(0, 6)), data.draw(st.integers(0, 6))))]
    x = rng.random((images, 1, *size), dtype=np.float32)
    x[rng.random(x.shape) < 0.6] = 0.0  # digits are mostly background
    w = (rng.standard_normal((filters, 1, *kernel)) * 0.3).astype(np.float32)
    b = (rng.standard_normal(filters) * 0.1).astype(np.float32)
    y, _ = conv_forward_direct(x, w, b, ConvGeometry.of(x.shape, w.shape, stride, pad, 0.0))
    z = fused.pooled_first_stage_z(pad_input(x, pad), w, b, *stride, 1, 1, 1, 1)
    assert np.array_equal(y, z) and np.array_equal(np.signbit(y), np.signbit(z))


def pooled_margin(z, stage):
    pooled = Pooling("max", (2, 2), (2, 2))(Tensor(z)).data
    return np.abs(pooled - stage.threshold[None, :, None, None]) / np.maximum(1, np.abs(pooled))


@pytest.mark.parametrize("batch", [1, 3, 17])
def test_fused_lenet_matches_the_unfused_packed_lenet(batch):
    model, rng = binary_lenet(2)
    unfused, fused_model = convert_model(model, fuse=False), convert_model(model)
    assert [type(m) for m in fused_model] == [ConvolutionToBits, BitConvolution, BitDense]
    x = Tensor(rng.random((batch, 1, 28, 28), dtype=np.float32))
    with no_grad():
        a, b = unfused(x).data, fused_model(x).data
        stage1_bits = fused_model[0](x).data
        stage2_bits = fused_model[1](Tensor(stage1_bits)).data
    # the binary convolution's bits are exactly the signs of the unfused numbers (given the same input bits)
    assert np.array_equal(stage2_bits, pack_channels(packed_convolution_signs(fused_model[1], unfused[3], stage1_bits)))
    assert np.array_equal(a.argmax(axis=1), b.argmax(axis=1))
    np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5 * np.abs(a).max())


def packed_convolution_signs(stage, packed, input_bits):
    """The unfused PackedConvolution (without its input BatchNorm: the bits already took it) on the same
    input signs, then the dense layer's sign."""
    twin = PackedConvolution(
        packed.kernel,
        packed.num_filter,
        packed.channels,
        packed.stride,
        packed.pad,
        packed.pad_value,
        pool_kernel=packed.pool_kernel,
        pool_stride=packed.pool_stride,
    )
    twin.weight_bits[...], twin.scale[...], twin.shift[...] = packed.weight_bits, packed.scale, packed.shift
    signs = np.unpackbits(input_bits.view(np.uint8), bitorder="little").reshape(*input_bits.shape[:3], -1)
    x = np.where(signs[..., : packed.channels].transpose(0, 3, 1, 2) > 0, 1.0, -1.0).astype(np.float32)
    values = twin(Tensor(x)).data
    return np.where(values >= 0, 1.0, -1.0).astype(np.float32)


def test_serial_and_parallel_kernels_agree_and_the_batch_picks_them(monkeypatch):
    model, rng = binary_lenet(3)
    fused_model = convert_model(model)
    x = Tensor(rng.random((6, 1, 28, 28), dtype=np.float32))
    monkeypatch.setenv("TINYBNN_PARALLEL_MIN_BATCH", "1000")
    serial = fused_model(x).data
    monkeypatch.setenv("TINYBNN_PARALLEL_MIN_BATCH", "1")
    assert np.array_equal(fused_model(x).data, serial)
    monkeypatch.delenv("TINYBNN_PARALLEL_MIN_BATCH")
    assert fused.choose(fused._BIT_DENSE, 1) is fused._BIT_DENSE[1]  # one image: no threads
    monkeypatch.setenv("TINYBNN_PARALLEL_MIN_BATCH", "1000")
    assert fused.choose(fused._BIT_DENSE, 999) is fused._BIT_DENSE[1]
    monkeypatch.setenv("TINYBNN_PARALLEL_MIN_BATCH", "many")
    with pytest.raises(ArgumentError, match="TINYBNN_PARALLEL_MIN_BATCH"):
        fused.choose(fused._BIT_DENSE, 5)


def test_a_fused_model_called_from_several_threads_at_once_gives_each_its_own_answer():
    model, rng = binary_lenet(4)
    fused_model = convert_model(model)
    inputs = [rng.random((n, 1, 28, 28), dtype=np.float32) for n in (1, 5, 20, 2, 7, 1)]
    expected = [fused_model(Tensor(x)).data.copy() for x in inputs]
    results = [None] * len(inputs)

    def run(i):
        for _ in range(5):
            results[i] = fused_model(Tensor(inputs[i])).data

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(np.array_equal(r, e) for r, e in zip(results, expected))


def test_fused_layers_survive_describe_and_construct():
    model, rng = binary_lenet(5)
    fused_model = convert_model(model)
    rebuilt = construct(describe(fused_model))
    rebuilt.load_state_dict(fused_model.state_dict())
    x = Tensor(rng.random((3, 1, 28, 28), dtype=np.float32))
    assert np.array_equal(rebuilt(x).data, fused_model(x).data)


def test_fused_layers_refuse_the_wrong_input():
    model, _ = binary_lenet(6)
    first, middle, last = convert_model(model)
    with pytest.raises(Exception, match="float32 input"):
        first(Tensor(np.zeros((1, 2, 28, 28), np.float32)))
    with pytest.raises(Exception, match="packed bits"):
        middle(Tensor(np.zeros((1, 64, 12, 12), np.float32)))
    with pytest.raises(Exception, match="16 words"):
        last(Tensor(np.zeros((1, 4, 4, 2), np.uint64)))


def test_a_float_block_before_a_packed_convolution_becomes_one_stage():
    rng = np.random.default_rng(7)
    model = Sequential(
        Convolution(3, 70, pad=1, rng=rng),
        Activation("relu"),
        Pooling("max", (2, 2), (2, 2)),
        BatchNorm(),
        QActivation(),
        QConvolution(3, 5, rng=rng),
    ).build((2, 8, 8))
    randomize_batchnorms(model, rng)
    model.eval()
    fused_model = convert_model(model)
    assert [type(m) for m in fused_model] == [ConvolutionToBits, BitConvolution]
    x = Tensor(rng.standard_normal((3, 2, 8, 8)).astype(np.float32))
    with no_grad():
        np.testing.assert_allclose(fused_model(x).data, convert_model(model, fuse=False)(x).data, rtol=1e-5, atol=1e-4)


def test_a_decision_that_is_not_monotone_stays_unfused():
    """An affine overflowing to infinity, times a zero BatchNorm scale, is NaN (sign -1) at both ends
    of the dot range and +1 in between: no threshold can say that, so the converter keeps the layers."""
    producer = PackedConvolution(3, 1, 1)  # K = 9: dots beyond 1 overflow float32
    producer.scale[...], producer.shift[...] = 3.4e38, 0.0
    consumer = PackedConvolution(1, 1, 1, input_norm=True)
    consumer.input_gamma[...] = 0.0
    with np.errstate(over="ignore", invalid="ignore"):
        assert [type(m) for m in fuse_layers([producer, consumer])] == [PackedConvolution, PackedConvolution]


def test_the_shipped_unfused_model_file_still_loads_and_runs():
    from tinybnn.predict import SHIPPED_MODEL
    from tinybnn.serialization import load_model

    model = load_model(SHIPPED_MODEL).model
    kinds = {type(m).__name__ for _, m in model.named_modules()}
    x = Tensor(np.random.default_rng(8).random((2, 1, 28, 28), dtype=np.float32))
    assert model(x).data.shape == (2, 10)
    if "PackedConvolution" in kinds:  # an old file: fusing what it holds gives the same predictions
        refused = Sequential(*fuse_layers(list(model.layers)))
        assert [type(m) for m in refused] == [ConvolutionToBits, BitConvolution, BitDense]
        np.testing.assert_allclose(refused(x).data, model(x).data, rtol=1e-5, atol=1e-5)


def test_the_fused_stages_give_back_their_filters_for_pictures():
    from tinybnn.pictures import filter_panels

    model, _ = binary_lenet(9)
    unfused, fused_model = convert_model(model, fuse=False), convert_model(model)
    assert np.array_equal(fused_model[0].filters(), model[0].weight.data)
    assert np.array_equal(fused_model[1].filters(), filter_panels(unfused)[1].values)
    assert [p.kind for p in filter_panels(fused_model)] == ["float", "binary"]


@settings(max_examples=40)
@given(
    st.integers(1, 3),
    st.integers(1, 130),
    st.tuples(st.integers(1, 4), st.integers(1, 4)),
    st.tuples(st.integers(1, 2), st.integers(1, 2)),
    st.tuples(st.integers(0, 2), st.integers(0, 2)),
    st.tuples(st.integers(1, 3), st.integers(1, 3)),
    st.integers(1, 3),
    st.data(),
)
def test_the_first_stage_kernel_equals_its_obvious_twin_on_every_bit(
    channels, filters, kernel, stride, pad, pool, images, data
):
    # filters across word boundaries, pooling windows of 1 to 9 pixels (groups of 4 with a short last one),
    # falling and rising channels, thresholds on the very values the window's maximum takes, pixels +-0 (the
    # kernel skips taps where all its pixels are), a weight that is not finite
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    height, width = data.draw(st.integers(0, 5)), data.draw(st.integers(0, 5))
    size = [k + (q - 1) * s + extra for k, q, s, extra in zip(kernel, pool, stride, (height, width))]
    stage = ConvolutionToBits(kernel, filters, channels, stride, pad, "tanh", pool, pool)
    stage.weight[...] = rng.standard_normal(stage.weight.shape).astype(np.float32)
    stage.bias[...] = rng.standard_normal(filters).astype(np.float32)
    stage.flip[...] = rng.choice([-1, 1], filters)
    x = rng.standard_normal((images, channels, *size)).astype(np.float32)
    x[rng.random(x.shape) < data.draw(st.sampled_from([0.0, 0.5, 0.9]))] = data.draw(st.sampled_from([0.0, -0.0]))
    if pool == (1, 1) and data.draw(st.booleans()):
        # the kernel skips taps whose pixels are all +-0 only while every weight is finite (0 inf is NaN); one
        # pixel per window, since where a maximum meets a NaN depends on the order it is taken in
        stage.weight.flat[rng.integers(stage.weight.size)] = data.draw(st.sampled_from([np.inf, -np.inf, np.nan]))
    padded = np.pad(x, ((0, 0), (0, 0), (pad[0], pad[0]), (pad[1], pad[1])))
    m = fused.pooled_first_stage_z(padded, stage.filters(), stage.bias, *stride, *pool, *pool)
    picks = rng.integers(0, m.size // filters, filters)
    stage.threshold[...] = m.transpose(1, 0, 2, 3).reshape(filters, -1)[np.arange(filters), picks]
    stage.threshold[rng.random(filters) < 0.2] = rng.choice([-np.inf, np.inf, 0.0])
    decisions = apply_float_thresholds(m.transpose(0, 2, 3, 1), stage.flip, stage.threshold)
    expected = pack_channels(np.where(decisions, 1.0, -1.0).astype(np.float32).transpose(0, 3, 1, 2))
    with no_grad():
        assert np.array_equal(stage(Tensor(x)).data, expected)


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_the_first_stage_skips_no_zero_pixel_while_a_weight_is_not_finite(bad):
    stage = ConvolutionToBits((2, 2), 3, 1, pool_kernel=(1, 1))
    stage.weight[...] = 1.0
    stage.weight[0, 1] = bad  # 0 bad is NaN, not 0: filter 1 decides on NaN wherever its first tap sees a 0
    stage.threshold[...] = -1.0  # every finite z >= 0 passes; NaN never does
    x = np.zeros((1, 1, 3, 3), np.float32)
    x[0, 0, 1:, 1:] = 1.0  # the window at (1, 1) has no zero under the bad tap: there filter 1 is +-inf, or NaN
    m = fused.pooled_first_stage_z(x, stage.filters(), stage.bias, 1, 1, 1, 1, 1, 1)
    expected = pack_channels(np.where(m >= -1.0, 1.0, -1.0).astype(np.float32))
    with no_grad():
        bits = stage(Tensor(x)).data
    assert np.array_equal(bits, expected)
    assert bits[0, 0, 0, 0] == 0b101  # the all-zero window: filters 0 and 2 on (z = 0), filter 1 off (NaN)
