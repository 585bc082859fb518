"""Modern binary blocks: RSign, RPReLU and BiRealConvolution against their formulas and
gradients (numerical checks in float64 where the layer is differentiable, the hand-written
straight-through formula where it is not), their errors, files and conversion, and the
reactnet-lenet built from them (a forward and backward pass on a few images, no training)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinybnn.architecture import construct, footprint
from tinybnn.autograd import Tensor, gradcheck
from tinybnn.convert import convert_model
from tinybnn.errors import ArgumentError, ModelFileError, NotANumberError, ShapeError
from tinybnn.layers import BatchNorm, Flatten, QFullyConnected, Residual, Sequential, describe
from tinybnn.layers.packed import PackedConvolution, PackedFullyConnected
from tinybnn.layers.rprelu import RPReLU
from tinybnn.layers.rsign import RSign
from tinybnn.layers.shortcut import BiRealConvolution
from tinybnn.models import build_model
from tinybnn.serialization import load_model, save_model

from .strategies import arrays_f64, with_zeros


def to_float64(layer, *names):
    """Replace the layer's parameters by float64 leaves (gradcheck needs float64) and return them."""
    leaves = []
    for name in names:
        leaf = Tensor(getattr(layer, name).data.astype(np.float64), requires_grad=True)
        setattr(layer, name, leaf)
        leaves.append(leaf)
    return leaves


def state_bytes(model):
    return sum(value.nbytes for value in model.state_dict().values())


@settings(deadline=None)
@given(st.sampled_from([(3, 2, 2, 2), (4, 3), (1, 1, 1, 1)]), st.sampled_from(["det_sign", "approx_sign"]), st.data())
def test_rsign_is_sign_of_x_minus_alpha_with_the_straight_through_gradient(shape, method, data):
    layer = RSign(method)
    layer(Tensor(np.zeros(shape)))
    (alpha,) = to_float64(layer, "alpha")
    alpha.data[...] = data.draw(arrays_f64((shape[1],), -1, 1))
    view = alpha.data.reshape(1, -1, *([1] * (len(shape) - 2)))
    x_values = with_zeros(data.draw(arrays_f64(shape)), data)
    x_values = np.where(data.draw(arrays_f64(shape, 0, 1)) < 0.2, view + 0 * x_values, x_values)  # u = 0 exactly
    g = data.draw(arrays_f64(shape))
    x = Tensor(x_values, requires_grad=True)
    y = layer(x)
    u = x_values - view
    assert np.array_equal(y.data, np.where(u >= 0, 1.0, -1.0))
    y.backward(g)
    slope = (np.abs(u) <= 1).astype(float) if method == "det_sign" else np.maximum(2 - 2 * np.abs(u), 0)
    np.testing.assert_allclose(x.grad, g * slope, rtol=1e-12, atol=1e-12)
    axes = tuple(a for a in range(len(shape)) if a != 1)
    np.testing.assert_allclose(alpha.grad, -(g * slope).sum(axis=axes), rtol=1e-9, atol=1e-12)


def test_rsign_starts_as_sign_and_refuses_nan_bad_shapes_and_methods():
    layer = RSign()
    assert np.array_equal(layer(Tensor(np.array([[-1.0, 0.0, 2.0]], np.float32))).data, [[-1, 1, 1]])
    with pytest.raises(NotANumberError, match="RSign: input contains NaN"):
        layer(Tensor(np.array([[np.nan, 0.0, 2.0]], np.float32)))
    with pytest.raises(ShapeError, match=r"RSign: input has 4 channels, the layer has 3"):
        layer(Tensor(np.zeros((1, 4), np.float32)))
    with pytest.raises(ShapeError, match=r"expected input \(N, C\) or \(N, C, H, W\), got shape \(3,\)"):
        RSign()(Tensor(np.zeros(3, np.float32)))
    with pytest.raises(ArgumentError, match="RSign: method must be one of"):
        RSign("ste_heaviside")


def test_rprelu_follows_its_formula():
    layer = RPReLU(slope=0.5)
    layer(Tensor(np.zeros((1, 2))))
    layer.gamma.data[...] = [1.0, -1.0]
    layer.zeta.data[...] = [0.25, 0.0]
    y = layer(Tensor(np.array([[3.0, -3.0], [0.0, 0.0]], np.float32)))
    # channel 0: u = x - 1 -> 2, -1 -> 2 + 0.25, 0.5 * -1 + 0.25; channel 1: u = x + 1 -> -2 -> -1, 1 -> 1
    assert np.array_equal(y.data, [[2.25, -1.0], [-0.25, 1.0]])


@pytest.mark.parametrize("shape", [(3, 2, 3, 2), (5, 4)])
def test_rprelu_gradients_numerically(shape):
    rng = np.random.default_rng(5)
    layer = RPReLU()
    layer(Tensor(np.zeros(shape)))
    gamma, beta, zeta = to_float64(layer, "gamma", "beta", "zeta")
    gamma.data[...] = rng.uniform(-0.5, 0.5, gamma.shape)
    beta.data[...] = rng.uniform(0.1, 0.9, beta.shape)
    zeta.data[...] = rng.uniform(-0.5, 0.5, zeta.shape)
    view = gamma.data.reshape(1, -1, *([1] * (len(shape) - 2)))
    u = rng.uniform(0.05, 1.0, shape) * rng.choice([-1.0, 1.0], shape)  # away from the kink at x = gamma
    x = Tensor(u + view, requires_grad=True)
    gradcheck(lambda x_, g_, b_, z_: layer(x_), [x, gamma, beta, zeta])


def test_rprelu_refuses_bad_shapes_and_slopes():
    layer = RPReLU()
    layer(Tensor(np.zeros((1, 3, 2, 2), np.float32)))
    with pytest.raises(ShapeError, match="RPReLU: input has 2 channels, the layer has 3"):
        layer(Tensor(np.zeros((1, 2, 2, 2), np.float32)))
    with pytest.raises(ArgumentError, match="RPReLU: slope must be a finite number"):
        RPReLU(float("nan"))


def test_bireal_convolution_adds_its_input_to_the_binary_branch():
    rng = np.random.default_rng(1)
    block = BiRealConvolution(3, 4, rng=rng)
    x = Tensor(rng.standard_normal((2, 4, 5, 5)).astype(np.float32), requires_grad=True)
    y = block(x)
    branch = Tensor(x.data, requires_grad=True)
    expected = block.body(branch)
    assert [type(layer).__name__ for layer in block.body] == ["RSign", "QConvolution", "BatchNorm"]
    np.testing.assert_allclose(y.data, expected.data + x.data, rtol=1e-6, atol=1e-6)
    g = rng.standard_normal(y.shape).astype(np.float32)
    y.backward(g)
    expected.backward(g)
    np.testing.assert_allclose(x.grad, g + branch.grad, rtol=1e-5, atol=1e-5)  # the shortcut passes g itself


def test_bireal_convolution_gradients_numerically_with_a_float_body():
    """With act_bit = weight_bit = 32 the block is differentiable: conv, BatchNorm, shortcut."""
    rng = np.random.default_rng(2)
    block = BiRealConvolution(3, 3, act_bit=32, weight_bit=32, rng=rng)
    block(Tensor(np.zeros((2, 3, 4, 4))))
    conv, bn = block.body[0], block.body[1]
    (weight,) = to_float64(conv, "weight")
    gamma, beta = to_float64(bn, "gamma", "beta")
    bn.running_mean, bn.running_var = bn.running_mean.astype(np.float64), bn.running_var.astype(np.float64)
    x = Tensor(rng.standard_normal((2, 3, 4, 4)), requires_grad=True)
    gradcheck(lambda x_, w_, g_, b_: block(x_), [x, weight, gamma, beta], atol=1e-5, rtol=1e-3)


def test_bireal_convolution_errors_name_the_problem():
    with pytest.raises(ArgumentError, match="kernel must be an odd positive integer"):
        BiRealConvolution(2, 8)
    with pytest.raises(ArgumentError, match="BiRealConvolution: method must be one of"):
        BiRealConvolution(3, 8, method="ste_tern")
    with pytest.raises(ArgumentError, match="BiRealConvolution: act_bit must be an integer from 1 to 32"):
        BiRealConvolution(3, 8, act_bit=0)
    block = Sequential(BiRealConvolution(3, 8, rng=np.random.default_rng(0)))
    with pytest.raises(
        ShapeError,
        match=r"layer 0 \(BiRealConvolution\): body gives \(1, 8, 5, 5\) but the "
        r"shortcut gives \(1, 3, 5, 5\)",
    ):
        block(Tensor(np.zeros((1, 3, 5, 5), np.float32)))
    with pytest.raises(ModelFileError, match="BiRealConvolution.* body gives"):
        footprint(describe(Sequential(BiRealConvolution(3, 8))), (3, 5, 5))


def blocks_net(rng):
    return Sequential(
        BatchNorm(),
        BiRealConvolution(3, 4, rng=rng),
        RPReLU(),
        BiRealConvolution(5, 4, learn_threshold=False, method="approx_sign", rng=rng),
        RPReLU(),
        Flatten(),
        RSign(),
        QFullyConnected(6, rng=rng),
        BatchNorm(),
        RPReLU(),
    )


def trained_looking(model, rng):
    """Random values in every parameter and running statistic, as training would leave them."""
    for _, p in model.named_parameters():
        p.data[...] = rng.uniform(-0.9, 0.9, p.shape)
    for _, module in model.named_modules():
        if isinstance(module, BatchNorm):
            module.running_mean[...] = rng.standard_normal(module.running_mean.shape)
            module.running_var[...] = rng.uniform(0.5, 2.0, module.running_var.shape)
    return model.eval()


def test_files_round_trip_and_footprint_matches(tmp_path):
    rng = np.random.default_rng(3)
    model = trained_looking(blocks_net(rng).build((4, 5, 5)), rng)
    x = Tensor(rng.standard_normal((3, 4, 5, 5)).astype(np.float32))
    path = save_model(tmp_path / "blocks.npz", model, (4, 5, 5))
    loaded = load_model(path).model.eval()
    assert np.array_equal(loaded(x).data, model(x).data)
    assert describe(construct(describe(model))) == describe(model)
    declared = footprint(describe(model), (4, 5, 5))
    assert declared.output_shape == (6,) and declared.state == state_bytes(model)


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_conversion_packs_the_binary_layers_and_computes_the_same(seed):
    rng = np.random.default_rng(seed)
    model = trained_looking(blocks_net(rng).build((4, 5, 5)), rng)
    x = Tensor(np.where(rng.random((4, 4, 5, 5)) < 0.2, 0.0, rng.standard_normal((4, 4, 5, 5))).astype(np.float32))
    for fuse in (False, True):
        converted = convert_model(model, fuse=fuse)
        kinds = [type(m) for _, m in converted.named_modules()]
        assert kinds.count(PackedConvolution) == 2 and kinds.count(PackedFullyConnected) == 1
        assert kinds.count(Residual) == 2 and kinds.count(RSign) == 2 and kinds.count(RPReLU) == 3
        np.testing.assert_allclose(converted(x).data, model(x).data, rtol=1e-5, atol=1e-4)


def test_reactnet_lenet_trains_a_step_on_a_few_images():
    model, shape = build_model("reactnet-lenet", rng=np.random.default_rng(0))
    from tinybnn.autograd import softmax_cross_entropy

    x = Tensor(np.random.default_rng(1).random((4, *shape), dtype=np.float32))
    logits = model(x)
    assert logits.shape == (4, 10)
    softmax_cross_entropy(logits, np.array([0, 1, 2, 3])).backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or not np.any(p.grad)]
    assert missing == []
    kinds = [type(layer).__name__ for layer in model]
    assert kinds.count("BiRealConvolution") == 1 and kinds.count("RSign") == 1 and kinds.count("RPReLU") == 2
    assert footprint(describe(model), shape).state == state_bytes(model)
