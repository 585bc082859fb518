"""Module bookkeeping and the float layers."""

import json

import numpy as np
import pytest

from tinybnn.architecture import construct, describe
from tinybnn.autograd import Tensor, conv2d, gradcheck
from tinybnn.errors import ArgumentError, ModelFileError, ShapeError
from tinybnn.layers import (
    Activation,
    BatchNorm,
    Convolution,
    Dropout,
    Flatten,
    FullyConnected,
    Parameter,
    Pooling,
    Sequential,
)
from tinybnn.models import lenet


def small_net(seed=0):
    rng = np.random.default_rng(seed)
    return Sequential(
        Convolution(3, 4, pad=1, rng=rng),
        BatchNorm(),
        Activation("relu"),
        Pooling("max", 2),
        Flatten(),
        FullyConnected(5, rng=rng),
    )


def test_parameters_are_created_at_the_first_call_from_the_input_size():
    net = small_net()
    assert net.parameters() == []
    net(Tensor(np.zeros((2, 3, 6, 6), np.float32)))
    shapes = {name: p.shape for name, p in net.named_parameters()}
    assert shapes == {
        "0.weight": (4, 3, 3, 3),
        "0.bias": (4,),
        "1.gamma": (4,),
        "1.beta": (4,),
        "5.weight": (5, 36),
        "5.bias": (5,),
    }
    assert [name for name, _ in net.named_buffers()] == ["1.running_mean", "1.running_var"]


def test_same_rng_seed_gives_the_same_weights():
    a, b = small_net(7).build((3, 6, 6)), small_net(7).build((3, 6, 6))
    for (name, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        assert np.array_equal(p.data, q.data), name
    c = small_net(8).build((3, 6, 6))
    assert not np.array_equal(a[0].weight.data, c[0].weight.data)


def test_kaiming_default_bound():
    layer = Convolution(5, 64, rng=np.random.default_rng(0))
    layer(Tensor(np.zeros((1, 64, 8, 8), np.float32)))
    bound = 1 / np.sqrt(64 * 25)
    assert np.abs(layer.weight.data).max() <= bound
    assert np.abs(layer.weight.data).max() > 0.95 * bound


def test_train_and_eval_reach_every_layer():
    net = small_net()
    net.eval()
    assert all(not m.training for _, m in net.named_modules())
    net.train()
    assert all(m.training for _, m in net.named_modules())


def test_state_dict_round_trip_and_copies():
    net = small_net().build((3, 6, 6))
    state = net.state_dict()
    state["0.weight"][...] = 0  # a copy: the network is untouched
    assert np.abs(net[0].weight.data).sum() > 0
    other = small_net(1).build((3, 6, 6))
    other.load_state_dict(net.state_dict())
    x = Tensor(np.random.default_rng(0).standard_normal((2, 3, 6, 6)).astype(np.float32))
    net.eval(), other.eval()
    assert np.array_equal(net(x).data, other(x).data)


def test_load_state_dict_names_missing_extra_and_misshapen_arrays():
    net = small_net().build((3, 6, 6))
    state = net.state_dict()
    del state["0.bias"]
    state["9.weight"] = np.zeros(1)
    with pytest.raises(ArgumentError, match="missing 0.bias; unexpected 9.weight"):
        net.load_state_dict(state)
    state = net.state_dict()
    state["5.weight"] = np.zeros((5, 35))
    with pytest.raises(ArgumentError, match=r"5.weight has shape \(5, 35\), the network expects \(5, 36\)"):
        net.load_state_dict(state)


def test_description_round_trip_through_json():
    net = lenet(rng=np.random.default_rng(0))
    text = json.dumps(describe(net))
    rebuilt = construct(json.loads(text))
    assert describe(rebuilt) == describe(net)
    assert [type(m).__name__ for m in rebuilt] == [type(m).__name__ for m in net]


def test_unknown_layer_type_is_refused():
    with pytest.raises(ModelFileError, match="unknown layer type 'Magic'"):
        construct({"type": "Sequential", "config": {"layers": [{"type": "Magic", "config": {}}]}})
    with pytest.raises(ModelFileError, match="invalid config"):
        construct({"type": "Convolution", "config": {"kernel": 3}})


def test_lenet_shapes_match_bmxnet():
    net = lenet(rng=np.random.default_rng(0)).build((1, 28, 28))
    shapes = {name: p.shape for name, p in net.named_parameters()}
    assert shapes["0.weight"] == (64, 1, 5, 5)
    assert shapes["4.weight"] == (64, 64, 5, 5)
    assert shapes["8.weight"] == (1000, 1024)
    assert shapes["11.weight"] == (10, 1000)
    assert net(Tensor(np.zeros((3, 1, 28, 28), np.float32))).shape == (3, 10)


def test_errors_name_the_layer_and_both_shapes():
    net = lenet(rng=np.random.default_rng(0)).build((1, 28, 28))
    with pytest.raises(
        ShapeError,
        match=r"layer 0 \(Convolution\): input has 3 channels, weights expect 1 "
        r"\(input \(2, 3, 28, 28\), weights \(64, 1, 5, 5\)\)",
    ):
        net(Tensor(np.zeros((2, 3, 28, 28), np.float32)))
    message = r"layer 0 \(Convolution\): expected input \(N, C, H, W\), got shape \(28, 28\)"
    with pytest.raises(ShapeError, match=message):
        net(Tensor(np.zeros((28, 28), np.float32)))
    with pytest.raises(ShapeError, match=r"layer 8 \(FullyConnected\): input has 256 features, weights expect 1024"):
        net(Tensor(np.zeros((2, 1, 20, 20), np.float32)))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: Convolution(3, 0), "num_filter must be a positive integer"),
        (lambda: Convolution(0, 8), "kernel must be positive"),
        (lambda: Convolution(3, 8, stride=0), "stride must be positive"),
        (lambda: Convolution(3, 8, pad=-1), "pad must be >= 0"),
        (lambda: Convolution(3, 8, weight_init="zeros"), "weight_init must be one of"),
        (lambda: FullyConnected(-3), "num_hidden must be a positive integer"),
        (lambda: Pooling("median"), "pool_type must be 'max' or 'avg'"),
        (lambda: Pooling("max", 2, stride=0), "stride must be positive"),
        (lambda: Activation("swish"), "act_type must be one of"),
        (lambda: Dropout(1.0), r"p must lie in \[0, 1\)"),
        (lambda: BatchNorm(momentum=1.0), "momentum must lie in"),
    ],
)
def test_bad_arguments_are_refused_at_construction(make, message):
    with pytest.raises(ArgumentError, match=message):
        make()


def test_convolution_layer_computes_conv2d():
    rng = np.random.default_rng(3)
    layer = Convolution((3, 2), 4, stride=(2, 1), pad=(1, 0), rng=rng)
    x = Tensor(rng.standard_normal((2, 3, 7, 6)).astype(np.float32))
    y = layer(x)
    expected = conv2d(x, layer.weight, layer.bias, stride=(2, 1), pad=(1, 0))
    assert np.array_equal(y.data, expected.data)


def test_fully_connected_flattens_and_has_gradients():
    rng = np.random.default_rng(4)
    layer = FullyConnected(3, rng=rng)
    layer(Tensor(np.zeros((1, 2, 2, 2))))
    weight = Tensor(layer.weight.data.astype(np.float64), requires_grad=True)
    bias = Tensor(layer.bias.data.astype(np.float64), requires_grad=True)
    layer.weight, layer.bias = weight, bias
    x = Tensor(rng.standard_normal((4, 2, 2, 2)), requires_grad=True)
    gradcheck(lambda x_, w_, b_: layer(x_), [x, weight, bias])


def test_fix_gamma_keeps_gamma_out_of_the_parameters():
    bn = BatchNorm(fix_gamma=True)
    bn(Tensor(np.ones((2, 3))))
    assert [name for name, _ in bn.named_parameters()] == ["beta"]


def test_global_average_pooling():
    pool = Pooling("avg", global_pool=True)
    x = np.arange(32.0).reshape(1, 2, 4, 4)
    assert np.allclose(pool(Tensor(x)).data.ravel(), x.mean(axis=(2, 3)).ravel())


def test_parameter_constraint_clips_in_place():
    p = Parameter(np.array([-3.0, 0.5, 2.0]), clip=(-1.0, 1.0))
    data = p.data
    p.apply_constraint()
    assert p.data is data and np.array_equal(p.data, [-1.0, 0.5, 1.0])
