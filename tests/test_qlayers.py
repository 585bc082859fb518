"""Q-layers: equal to the float layers run on quantized values, ±1 padding,
XNOR-Net scaling, latent-weight clipping, and the binary LeNet."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinybnn.architecture import construct, describe
from tinybnn.autograd import Tensor, conv2d, gradcheck
from tinybnn.errors import ArgumentError
from tinybnn.layers import BatchNorm, Convolution, FullyConnected, QActivation, QConvolution, QFullyConnected
from tinybnn.models import lenet
from tinybnn.optim import SGD, Adam

from .strategies import arrays_f64, with_zeros


def sign(a):
    return np.where(a >= 0, 1.0, -1.0)


@given(
    st.integers(1, 3),
    st.integers(1, 3),
    st.integers(1, 4),
    st.integers(0, 2),
    st.integers(1, 2),
    st.sampled_from([1.0, -1.0]),
    st.data(),
)
def test_binary_convolution_equals_float_convolution_on_signs(n, c, f, pad, stride, pad_value, data):
    x_values = with_zeros(data.draw(arrays_f64((n, c, 6, 5))), data)
    layer = QConvolution(3, f, stride=stride, pad=pad, pad_value=pad_value, rng=np.random.default_rng(0))
    x = Tensor(x_values)
    layer(x)
    layer.weight.data[...] = with_zeros(layer.weight.data, data)
    y = layer(x).data
    # the float layer on sign(x), padded with the same ±1 value (padding after binarization)
    padded = np.pad(sign(x_values), ((0, 0), (0, 0), (pad, pad), (pad, pad)), constant_values=pad_value)
    expected = conv2d(Tensor(padded), Tensor(sign(layer.weight.data.astype(np.float64))), stride=stride).data
    np.testing.assert_array_equal(y, expected)
    assert np.all(np.abs(y) <= c * 9) and np.all((y - c * 9) % 2 == 0)  # ±1 dot products of length 9c


@given(st.integers(1, 4), st.integers(1, 20), st.integers(1, 5), st.data())
def test_binary_fully_connected_equals_float_on_signs(n, d, h, data):
    x_values = with_zeros(data.draw(arrays_f64((n, d))), data)
    layer = QFullyConnected(h, rng=np.random.default_rng(1))
    layer(Tensor(x_values))
    layer.weight.data[...] = with_zeros(layer.weight.data, data)
    expected = sign(x_values) @ sign(layer.weight.data.astype(np.float64)).T
    np.testing.assert_array_equal(layer(Tensor(x_values)).data, expected)


def test_k_bit_convolution_pads_with_zero_and_quantizes():
    layer = QConvolution(3, 2, pad=1, act_bit=2, weight_bit=2, rng=np.random.default_rng(2))
    x = np.random.default_rng(3).uniform(-0.5, 1.5, (1, 2, 4, 4))
    layer(Tensor(x))
    q_x = np.round(np.clip(x, 0, 1) * 3) / 3
    t = np.tanh(layer.weight.data.astype(np.float64))
    q_w = 2 * np.round((t / (2 * np.abs(t).max()) + 0.5) * 3) / 3 - 1
    expected = conv2d(Tensor(q_x), Tensor(q_w), pad=1).data
    np.testing.assert_allclose(layer(Tensor(x)).data, expected, rtol=1e-5, atol=1e-5)


def test_32_bit_layers_are_the_float_layers():
    rng = np.random.default_rng(4)
    x = Tensor(rng.standard_normal((2, 3, 5, 5)))
    q = QConvolution(3, 4, act_bit=32, weight_bit=32, no_bias=False, rng=np.random.default_rng(5))
    f = Convolution(3, 4, rng=np.random.default_rng(5))
    np.testing.assert_allclose(q(x).data, f(x).data, rtol=1e-6)
    assert q.weight.clip is None


def test_scaling_factor_against_a_hand_computation():
    layer = QFullyConnected(2, scaling_factor=True)
    layer(Tensor(np.zeros((1, 3))))
    layer.weight.data[...] = [[0.5, -0.25, 0.0], [-1.0, 1.0, 0.25]]
    x = np.array([[1.0, -2.0, 0.0]])
    # sign(x) = [1, -1, 1]; sign(W) rows = [1, -1, 1], [-1, 1, 1]
    # dots = [3, -1]; alpha = mean|W| = [0.25, 0.75]
    assert np.allclose(layer(Tensor(x)).data, [[0.75, -0.75]])


def test_scaling_factor_for_convolution_per_output_channel():
    layer = QConvolution(1, 2, scaling_factor=True)
    layer(Tensor(np.zeros((1, 2, 1, 1))))
    layer.weight.data[...] = np.array([[0.5, -0.1], [0.2, 0.2]]).reshape(2, 2, 1, 1)
    x = np.array([1.0, 1.0]).reshape(1, 2, 1, 1)
    # dots: [1 - 1, 1 + 1] = [0, 2]; alpha = [0.3, 0.2]
    assert np.allclose(layer(Tensor(x)).data.ravel(), [0.0, 0.4])


def test_scaling_gradient_is_checked_numerically():
    # the scale alpha = mean|W| is a float part: check d/dW through alpha, keeping
    # weights away from 0 so that sign(W) does not flip under the perturbation
    layer = QFullyConnected(3, scaling_factor=True, weight_bit=32, act_bit=32)
    rng = np.random.default_rng(6)
    layer(Tensor(np.zeros((1, 4))))
    w = Tensor(rng.uniform(0.2, 0.9, (3, 4)) * rng.choice([-1, 1], (3, 4)), requires_grad=True)
    layer.weight = w
    x = Tensor(rng.standard_normal((2, 4)), requires_grad=True)
    gradcheck(lambda x_, w_: layer(x_), [x, w])


def test_batch_norm_after_a_binary_layer_is_gradchecked():
    rng = np.random.default_rng(7)
    q = QConvolution(3, 2, pad=1, rng=rng)
    bn = BatchNorm()
    x = Tensor(rng.standard_normal((3, 2, 4, 4)))
    bn(q(x))
    gamma = Tensor(rng.uniform(0.5, 1.5, 2), requires_grad=True)
    beta = Tensor(rng.standard_normal(2), requires_grad=True)
    bn.gamma, bn.beta = gamma, beta
    h = q(x).data  # binary output: a constant for BatchNorm's check
    gradcheck(
        lambda h_, g_, b_: bn(h_),
        [Tensor(h + rng.uniform(0, 0.1, h.shape), requires_grad=True), gamma, beta],
        atol=1e-5,
    )


def test_straight_through_gradient_reaches_input_and_latent_weights():
    layer = QFullyConnected(2)
    x = Tensor(np.array([[0.5, -2.0, 0.0]]), requires_grad=True)
    layer(x)
    layer.weight.data[...] = [[0.3, -0.6, 0.9], [-0.2, 0.4, 0.0]]
    y = layer(x)
    y.backward(np.array([[1.0, 2.0]]))
    sw = sign(layer.weight.data)
    # dy/dsign(x) = g @ sign(W), passed where |x| <= 1
    assert np.allclose(x.grad, (np.array([[1.0, 2.0]]) @ sw) * np.array([[1, 0, 1]]))
    # dy/dsign(W) = g^T sign(x), passed where |W| <= 1 (always, latent weights are clipped)
    assert np.allclose(layer.weight.grad, np.array([[1.0], [2.0]]) @ sign(x.data))


def test_latent_weights_are_clipped_after_every_step():
    layer = QConvolution(3, 4, rng=np.random.default_rng(8))
    layer(Tensor(np.zeros((1, 2, 5, 5))))
    assert layer.weight.clip == (-1.0, 1.0)
    layer.weight.data[...] = 0.99
    layer.weight.grad = np.full(layer.weight.shape, -5.0, np.float32)
    SGD([layer.weight], lr=1.0).step()
    assert layer.weight.data.max() == 1.0
    float_layer = FullyConnected(3)
    float_layer(Tensor(np.zeros((1, 2))))
    assert float_layer.weight.clip is None


def test_q_activation_methods_and_errors():
    x = Tensor(np.array([-0.5, 0.0, 2.0]), requires_grad=True)
    QActivation(method="approx_sign")(x).sum().backward()
    assert np.array_equal(x.grad, [1.0, 2.0, 0.0])
    with pytest.raises(ArgumentError, match="QActivation: act_bit must be an integer from 1 to 32, got 0"):
        QActivation(act_bit=0)
    with pytest.raises(ArgumentError, match="method must be one of"):
        QActivation(method="stochastic")
    with pytest.raises(ArgumentError, match="QConvolution: weight_bit must be an integer from 1 to 32, got 64"):
        QConvolution(3, 8, weight_bit=64)
    with pytest.raises(ArgumentError, match="QFullyConnected: act_bit"):
        QFullyConnected(8, act_bit=33)
    with pytest.raises(ArgumentError, match="pad_value must be \\+1 or -1"):
        QConvolution(3, 8, pad_value=0)


def test_binary_lenet_is_bmxnets():
    net = lenet(binary=True, rng=np.random.default_rng(0)).build((1, 28, 28))
    kinds = [type(m).__name__ for m in net]
    assert kinds == [
        "Convolution",
        "Activation",
        "Pooling",
        "BatchNorm",
        "QActivation",
        "QConvolution",
        "BatchNorm",
        "Pooling",
        "Flatten",
        "QActivation",
        "QFullyConnected",
        "BatchNorm",
        "Activation",
        "FullyConnected",
    ]
    assert net[5].weight.shape == (64, 64, 5, 5) and net[10].weight.shape == (1000, 1024)
    assert net[5].act_bit == net[5].weight_bit == 1 and net[5].bias is None
    rebuilt = construct(describe(net))
    assert describe(rebuilt) == describe(net)
    k_bit = lenet(binary=True, act_bit=2, weight_bit=4)
    assert k_bit[5].act_bit == 2 and k_bit[10].weight_bit == 4


def test_binary_lenet_learns_a_tiny_problem():
    rng = np.random.default_rng(9)
    net = lenet(binary=True, rng=rng).build((1, 28, 28))
    x = rng.random((20, 1, 28, 28), dtype=np.float32)
    y = np.arange(20) % 10
    from tinybnn.autograd import softmax_cross_entropy

    opt = Adam(net.parameters(), lr=1e-2)
    losses = []
    for _ in range(15):
        loss = softmax_cross_entropy(net(Tensor(x)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    assert all(np.abs(p.data).max() <= 1 for p in (net[5].weight, net[10].weight))


def test_a_one_bit_input_is_padded_with_pad_value_whatever_the_weight_bits():
    layer = QConvolution(3, 1, pad=1, act_bit=1, weight_bit=2, pad_value=-1.0, rng=np.random.default_rng(9))
    x = np.ones((1, 1, 3, 3))
    layer(Tensor(x))
    layer.weight.data[...] = 1.0  # every 2-bit weight at the top level, +1
    # the centre sees 9 ones; a corner sees 4 ones and 5 padding values of -1
    y = layer(Tensor(x)).data[0, 0]
    assert y[1, 1] == 9 and y[0, 0] == 4 - 5


def test_float_path_gives_the_same_numbers_as_the_xnor_path():
    from tinybnn.layers import use_float_path

    rng = np.random.default_rng(10)
    model = lenet(binary=True, rng=rng).build((1, 28, 28)).eval()
    x = Tensor(rng.standard_normal((4, 1, 28, 28)).astype(np.float32))
    xnor = model(x).data
    assert use_float_path(model) is model and not model[5].xnor and not model[10].xnor
    assert np.array_equal(model(x).data, xnor)
    use_float_path(model, enabled=False)
    assert model[5].xnor and model[10].xnor
