"""Each layer's declared footprint (output shape and state bytes from its config alone)
agrees with the network actually built, for random architectures and input shapes;
where building fails on the shapes, the footprint refuses them too."""

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from tinybnn.autograd import Tensor
from tinybnn.architecture import LAYER_TYPES, footprint
from tinybnn.convert import convert_model
from tinybnn.errors import ModelFileError, TinyBNNError
from tinybnn.layers import (
    Activation,
    BatchNorm,
    Convolution,
    Dropout,
    Flatten,
    FullyConnected,
    Pooling,
    QActivation,
    QConvolution,
    QFullyConnected,
    Residual,
    Sequential,
    describe,
)
from tinybnn.layers.module import Module
from tinybnn.models import build_model


def state_bytes(model):
    return sum(value.nbytes for value in model.state_dict().values())


@st.composite
def conv_layers(draw, rng):
    kernel, stride, pad = draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.integers(0, 2))
    filters = draw(st.integers(1, 70))
    if draw(st.booleans()):
        return QConvolution(
            kernel,
            filters,
            stride=stride,
            pad=pad,
            scaling_factor=draw(st.booleans()),
            no_bias=draw(st.booleans()),
            act_bit=draw(st.sampled_from([1, 1, 2])),
            rng=rng,
        )
    return Convolution(kernel, filters, stride=stride, pad=pad, no_bias=draw(st.booleans()), rng=rng)


@st.composite
def image_layers(draw, rng):
    """A layer that keeps a (C, H, W) input four-dimensional (or may refuse it)."""
    choice = draw(st.sampled_from(["conv", "conv", "pool", "bn", "act", "qact", "drop", "residual"]))
    if choice == "conv":
        return draw(conv_layers(rng))
    if choice == "pool":
        return Pooling(
            draw(st.sampled_from(["max", "avg"])),
            kernel=draw(st.integers(1, 3)),
            stride=draw(st.one_of(st.none(), st.integers(1, 3))),
            global_pool=draw(st.booleans()),
        )
    if choice == "bn":
        return BatchNorm(fix_gamma=draw(st.booleans()))
    if choice == "act":
        return Activation("relu")
    if choice == "qact":
        return QActivation(draw(st.integers(1, 4)))
    if choice == "drop":
        return Dropout(0.3, rng=rng)
    filters = draw(st.integers(1, 8))
    shortcut = Sequential(Convolution(1, filters, rng=rng)) if draw(st.booleans()) else None
    return Residual(
        Sequential(Convolution(3, filters, pad=1, rng=rng), BatchNorm()),
        shortcut,
        draw(st.sampled_from([None, "relu"])),
    )


@st.composite
def networks(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    layers = draw(st.lists(image_layers(rng), min_size=0, max_size=4))
    if draw(st.booleans()):
        layers += [
            Flatten(),
            (QFullyConnected if draw(st.booleans()) else FullyConnected)(draw(st.integers(1, 20)), rng=rng),
        ]
    shape = (draw(st.integers(1, 70)), draw(st.integers(1, 12)), draw(st.integers(1, 12)))
    return Sequential(*layers), shape


@settings(max_examples=150, deadline=None)
@given(networks())
def test_footprint_agrees_with_the_built_network(case):
    model, shape = case
    try:
        model.build(shape)
    except TinyBNNError:
        event("the shapes do not fit")
        with pytest.raises(ModelFileError):
            footprint(describe(model), shape)
        return
    event("built")
    declared = footprint(describe(model), shape)
    output = model.eval()(Tensor(np.zeros((1, *shape), np.float32)))
    assert declared.output_shape == output.shape[1:]
    fixed = sum(m.beta.size * 4 for _, m in model.named_modules() if isinstance(m, BatchNorm) and m.fix_gamma)
    assert declared.state == state_bytes(model) + fixed  # a fixed gamma is memory, not state
    for fuse in (False, True):  # the readable packed twins, and the fused stages passing bits
        converted = convert_model(model, fuse=fuse)
        packed = footprint(describe(converted), shape)
        assert packed.output_shape == converted(Tensor(np.zeros((1, *shape), np.float32))).shape[1:]
        fixed = sum(m.beta.size * 4 for _, m in converted.named_modules() if isinstance(m, BatchNorm) and m.fix_gamma)
        assert packed.state == state_bytes(converted) + fixed


@pytest.mark.parametrize("name", ["lenet", "binary-lenet", "resnet18", "binary-resnet18"])
def test_the_shipped_architectures_need_far_less_than_the_limit(name):
    model, shape = build_model(name, rng=np.random.default_rng(0))
    declared = footprint(describe(model), shape)
    assert declared.state == state_bytes(model.build(shape)) and declared.total < 60_000_000


def test_every_loadable_layer_declares_its_schema_and_footprint():
    for name, cls in LAYER_TYPES.items():
        assert cls.footprint.__func__ is not Module.footprint.__func__, name
        assert cls.config_schema is not Module.config_schema or name == "Flatten", name
