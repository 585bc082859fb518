"""Larq's other quantizers: forward values against their definitions and each backward against
its hand-written formula, zeros always in the data; SignSwish's gradient against central
differences of SignSwish itself in float64; the Q-layers take every quantizer by name, and the
converter packs their models exactly."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinybnn.autograd import Tensor, conv2d
from tinybnn.autograd.larq_quantizers import (
    ACTIVATION_QUANTIZERS,
    SIGN_FORWARD,
    WEIGHT_QUANTIZERS,
    magnitude_aware_sign,
    ste_heaviside,
    ste_tern,
    swish_sign,
)
from tinybnn.architecture import construct
from tinybnn.convert import PACKABLE_WEIGHTS, convert_model
from tinybnn.errors import ArgumentError
from tinybnn.layers import BatchNorm, Flatten, QActivation, QConvolution, QFullyConnected, Sequential, describe
from tinybnn.layers.packed import PackedConvolution, PackedFullyConnected

from .strategies import arrays_f64, shapes, with_zeros


def leaf(values):
    return Tensor(np.array(values, dtype=np.float64), requires_grad=True)


def sign_swish(x, beta):
    """BNN+'s SignSwish, whose derivative swish_sign's backward is."""
    s = 1 / (1 + np.exp(-beta * x))
    return 2 * s * (1 + beta * x * (1 - s)) - 1


@given(arrays_f64(shapes(), -3, 3), st.sampled_from([1.0, 5.0, 10.0]), st.data())
def test_swish_sign_is_sign_forward_and_larq_formula_backward(values, beta, data):
    x_values = with_zeros(values, data)
    g = data.draw(arrays_f64(values.shape))
    x = leaf(x_values)
    y = swish_sign(x, beta)
    assert np.array_equal(y.data, np.where(x_values >= 0, 1.0, -1.0))
    y.backward(g)
    larq = beta * (2 - beta * x_values * np.tanh(beta * x_values / 2)) / (1 + np.cosh(beta * x_values))
    np.testing.assert_allclose(x.grad, g * larq, rtol=1e-9, atol=1e-12)


def test_swish_sign_backward_is_the_derivative_of_sign_swish():
    x_values = np.concatenate([np.linspace(-3, 3, 61), [0.0, 1e-3, -1e-3]])
    eps = 1e-6
    numeric = (sign_swish(x_values + eps, 5.0) - sign_swish(x_values - eps, 5.0)) / (2 * eps)
    x = leaf(x_values)
    swish_sign(x).sum().backward()
    np.testing.assert_allclose(x.grad, numeric, rtol=1e-6, atol=1e-8)
    assert x.grad[30] == 5.0  # beta at 0


def test_swish_sign_backward_stays_finite_far_out():
    x = leaf([-1e4, -200.0, 200.0, 1e4])
    swish_sign(x).sum().backward()
    assert np.all(np.isfinite(x.grad)) and np.all(np.abs(x.grad) < 1e-30)


@given(arrays_f64(shapes(2, 4), -2, 2), st.sampled_from([0.5, 1.0]), st.data())
def test_magnitude_aware_sign_scales_by_the_channel_mean(values, clip, data):
    x_values = with_zeros(values, data)
    axis = data.draw(st.integers(0, values.ndim - 1))
    g = data.draw(arrays_f64(values.shape))
    others = tuple(a for a in range(values.ndim) if a != axis)
    alpha = np.abs(x_values).mean(axis=others, keepdims=True)
    x = leaf(x_values)
    y = magnitude_aware_sign(x, axis=axis, clip=clip)
    np.testing.assert_allclose(y.data, alpha * np.where(x_values >= 0, 1.0, -1.0), rtol=1e-12, atol=0)
    y.backward(g)
    np.testing.assert_allclose(x.grad, g * alpha * (np.abs(x_values) <= clip), rtol=1e-12, atol=0)


def test_magnitude_aware_sign_of_an_all_zero_channel_is_zero():
    y = magnitude_aware_sign(leaf([[0.0, 0.0], [1.0, -3.0]]))
    assert np.array_equal(y.data, [[0.0, 0.0], [2.0, -2.0]])


@given(arrays_f64(shapes(), -2, 2), st.sampled_from([0.0, 0.05, 0.5]), st.booleans(), st.data())
def test_ste_tern_forward_and_straight_through_backward(values, threshold, twn, data):
    x_values = with_zeros(values, data)
    g = data.draw(arrays_f64(values.shape))
    x = leaf(x_values)
    y = ste_tern(x, threshold=threshold, ternary_weight_networks=twn)
    d = 0.7 * np.abs(x_values).mean() if twn else threshold
    if d > 0:
        expected = np.where(x_values >= d, 1.0, np.where(x_values <= -d, -1.0, 0.0))
    else:
        expected = np.sign(x_values)
    np.testing.assert_array_equal(y.data, expected)
    y.backward(g)
    np.testing.assert_array_equal(x.grad, g * (np.abs(x_values) <= 1))


def test_ste_tern_at_the_threshold_and_twn():
    x = leaf([-0.5, -0.05, -0.04, 0.0, 0.05, 2.0])
    assert np.array_equal(ste_tern(x).data, [-1, -1, 0, 0, 1, 1])
    assert np.array_equal(ste_tern(x, ternary_weight_networks=True).data, [-1, 0, 0, 0, 0, 1])  # d = 0.3073


@given(arrays_f64(shapes(), -3, 3), st.sampled_from([0.5, 1.0, 2.0]), st.data())
def test_ste_heaviside_forward_and_straight_through_backward(values, clip, data):
    x_values = with_zeros(values, data)
    g = data.draw(arrays_f64(values.shape))
    x = leaf(x_values)
    y = ste_heaviside(x, clip=clip)
    assert np.array_equal(y.data, (x_values > 0).astype(np.float64))
    y.backward(g)
    assert np.array_equal(x.grad, np.where(np.abs(x_values) <= clip, g, 0.0))


def test_heaviside_of_zero_is_zero_as_in_larq():
    assert np.array_equal(ste_heaviside(leaf([-0.0, 0.0, 1e-300])).data, [0.0, 0.0, 1.0])


@pytest.mark.parametrize("method", sorted(ACTIVATION_QUANTIZERS))
def test_qactivation_takes_every_quantizer_by_name_and_saves_it(method):
    layer = QActivation(1, method=method)
    x = Tensor(np.array([[-2.0, -0.5, 0.0, 0.01, 0.5, 2.0]], dtype=np.float32), requires_grad=True)
    y = layer(x)
    y.sum().backward()
    assert y.shape == x.shape and x.grad is not None and np.all(np.isfinite(x.grad))
    rebuilt = construct(describe(layer))
    assert rebuilt.method == method and np.array_equal(rebuilt(x).data, y.data)


def test_qactivation_refuses_an_unknown_quantizer_naming_the_choices():
    with pytest.raises(ArgumentError, match="QActivation: method must be one of .*ste_heaviside"):
        QActivation(1, method="ste_sine")


@settings(max_examples=20, deadline=None)
@given(st.sampled_from(sorted(ACTIVATION_QUANTIZERS)), st.integers(0, 2**32 - 1))
def test_converted_models_compute_what_the_model_computes_for_every_quantizer(method, seed):
    """A sign-forward quantizer is absorbed by the packed layer; any other stays in front of it,
    and the packed layer signs its output as the QConvolution did."""
    rng = np.random.default_rng(seed)
    model = Sequential(
        QActivation(1, method=method),
        QConvolution(3, 4, pad=1, rng=rng),
        BatchNorm(),
        Flatten(),
        QActivation(1, method=method),
        QFullyConnected(5, rng=rng),
        BatchNorm(),
    )
    model.build((3, 6, 6))
    for layer in model:
        if isinstance(layer, BatchNorm):
            layer.running_mean[...] = rng.standard_normal(layer.running_mean.shape)
    model.eval()
    x = Tensor(np.where(rng.random((4, 3, 6, 6)) < 0.2, 0.0, rng.standard_normal((4, 3, 6, 6))).astype(np.float32))
    for fuse in (False, True):
        converted = convert_model(model, fuse=fuse)
        kept = sum(isinstance(layer, QActivation) for layer in converted)
        assert kept == (0 if method in SIGN_FORWARD else 2) or fuse
        np.testing.assert_allclose(converted(x).data, model(x).data, rtol=1e-5, atol=1e-4)


def test_the_docs_picture_is_drawn_from_the_quantizers_themselves(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    from PIL import Image

    from tinybnn.charts import BACKWARD_COLOUR, FORWARD_COLOUR

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "quantizers.png"
    done = subprocess.run(
        [sys.executable, str(root / "scripts" / "draw_quantizers.py"), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    image = np.asarray(Image.open(out).convert("RGB"))
    width = image.shape[1] // 4
    for column in range(4):  # every panel of the first row holds both curves
        panel = image[40:340, column * width : (column + 1) * width].reshape(-1, 3)
        for colour in (FORWARD_COLOUR, BACKWARD_COLOUR):
            assert np.any(np.all(panel == colour, axis=1)), (column, colour)


@pytest.mark.parametrize("method", sorted(WEIGHT_QUANTIZERS))
def test_q_layers_take_every_weight_quantizer_by_name(method):
    """Forward: the float operation on sign(x) and q(W); backward to W: dL/dq(W) times q's slope."""
    rng = np.random.default_rng(4)
    layer = QConvolution(3, 4, pad=1, weight_method=method, rng=rng)
    x = Tensor(rng.standard_normal((2, 3, 5, 5)))
    layer(x)
    layer.weight = Tensor(
        np.where(rng.random(layer.weight.shape) < 0.2, 0.0, rng.uniform(-1.5, 1.5, layer.weight.shape)),
        requires_grad=True,
    )
    y = layer(x)
    wq = Tensor(WEIGHT_QUANTIZERS[method](Tensor(layer.weight.data), 1.0).data, requires_grad=True)
    expected = conv2d(Tensor(np.where(x.data >= 0, 1.0, -1.0)), wq, pad=1, pad_value=1.0)
    np.testing.assert_allclose(y.data, expected.data, rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(y.shape)
    y.backward(g)
    expected.backward(g)
    w = layer.weight.data
    window = (np.abs(w) <= 1).astype(float)
    slope = {
        "approx_sign": np.maximum(2 - 2 * np.abs(w), 0),
        "swish_sign": 5 * (2 - 5 * w * np.tanh(5 * w / 2)) / (1 + np.cosh(5 * w)),
        "magnitude_aware_sign": np.abs(w).mean(axis=(1, 2, 3), keepdims=True) * window,
    }.get(method, window)
    np.testing.assert_allclose(layer.weight.grad, wq.grad * slope, rtol=1e-9, atol=1e-12)
    assert construct(describe(layer)).weight_method == method


def test_q_layers_refuse_an_unknown_weight_quantizer():
    with pytest.raises(ArgumentError, match="QFullyConnected: weight_method must be one of"):
        QFullyConnected(4, weight_method="sign")


@settings(max_examples=20, deadline=None)
@given(st.sampled_from(sorted(WEIGHT_QUANTIZERS)), st.booleans(), st.integers(0, 2**32 - 1))
def test_converted_models_compute_the_same_for_every_weight_quantizer(method, scaling, seed):
    """sign and alpha sign weights are packed (alpha folds into the scale); ternary and 0/1 weights stay."""
    rng = np.random.default_rng(seed)
    model = Sequential(
        QConvolution(3, 4, pad=1, weight_method=method, scaling_factor=scaling, rng=rng),
        BatchNorm(),
        Flatten(),
        QFullyConnected(5, weight_method=method, rng=rng),
        BatchNorm(),
    )
    model.build((3, 6, 6))
    model.eval()
    x = Tensor(np.where(rng.random((4, 3, 6, 6)) < 0.2, 0.0, rng.standard_normal((4, 3, 6, 6))).astype(np.float32))
    converted = convert_model(model, fuse=False)
    packed = sum(isinstance(layer, (PackedConvolution, PackedFullyConnected)) for layer in converted)
    assert packed == (2 if method in PACKABLE_WEIGHTS else 0)
    for fused in (converted, convert_model(model)):
        np.testing.assert_allclose(fused(x).data, model(x).data, rtol=1e-5, atol=1e-4)


def test_converting_a_model_with_only_ternary_weights_is_refused_saying_why(tmp_path):
    from tinybnn.convert import convert_file
    from tinybnn.errors import ModelFileError
    from tinybnn.serialization import save_model

    model = Sequential(Flatten(), QFullyConnected(3, weight_method="ste_tern", rng=np.random.default_rng(0)))
    path = save_model(tmp_path / "tern.npz", model.build((4,)), (4,))
    with pytest.raises(
        ModelFileError,
        match=r"tern.npz: has no binary layer .*weight_method one of det_sign, "
        r"approx_sign, swish_sign, magnitude_aware_sign",
    ):
        convert_file(path)
