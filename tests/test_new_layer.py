"""A layer defined in this file alone (no edit to the package) works everywhere a layer is used:
model files (describe, construct, footprint), the summary, the converter and the filter picture."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tinybnn.architecture import LAYER_TYPES, construct, footprint
from tinybnn.autograd import Tensor
from tinybnn.autograd.gradcheck import gradcheck
from tinybnn.convert import convert_model, count_binary_layers
from tinybnn.layers import Convolution, Flatten, FullyConnected, Parameter, QActivation, QConvolution, Sequential
from tinybnn.layers.module import Cost, Filters, Footprint, Module, elementwise, float_cost, register_layer
from tinybnn.pictures import filter_panels
from tinybnn.schema import Obj
from tinybnn.serialization import load_model, save_model
from tinybnn.summary import summarize


@register_layer
class ChannelGain(Module):
    """y[n, c, i, j] = g[c] x[n, c, i, j]: a learnable gain per channel, drawn as 1x1 filters."""

    def __init__(self) -> None:
        super().__init__()
        self.gain: Parameter | None = None

    config_schema = Obj()

    @classmethod
    def footprint(cls, config: dict[str, Any], input_shape: tuple[int, ...], footprint_of: Any) -> Footprint:
        return elementwise(input_shape, state=4 * input_shape[0])

    def forward(self, x: Tensor) -> Tensor:
        if self.gain is None:
            self.gain = Parameter(np.ones(x.shape[1], dtype=np.float32))
        return x * self.gain.reshape(1, -1, 1, 1)

    def cost(self, x: Tensor, y: Tensor, after_binary: bool) -> Cost:
        return float_cost(self, float_macs=math.prod(y.shape[1:]))

    def drawn_filters(self) -> Filters | None:
        return None if self.gain is None else Filters("float", self.gain.data.reshape(-1, 1, 1, 1).copy(), 32)


def network(binary: bool = False) -> Sequential:
    rng = np.random.default_rng(0)
    middle = [QActivation(), QConvolution(3, 4, rng=rng)] if binary else [Convolution(3, 4, rng=rng)]
    return Sequential(Convolution(3, 3, rng=rng), ChannelGain(), *middle, Flatten(), FullyConnected(2, rng=rng))


def test_it_registers_itself_and_round_trips_through_a_model_file(tmp_path):
    assert LAYER_TYPES["ChannelGain"] is ChannelGain
    model = network().build((1, 8, 8))
    model[1].gain.data[...] = [0.5, -2.0, 3.0]
    description = {"type": "Sequential", "config": model.config()}
    assert isinstance(construct(description)[1], ChannelGain)
    assert footprint(description, (1, 8, 8)).output_shape == (2,)
    loaded = load_model(save_model(tmp_path / "gain.npz", model, (1, 8, 8))).model
    x = Tensor(np.random.default_rng(1).standard_normal((2, 1, 8, 8)).astype(np.float32))
    np.testing.assert_array_equal(loaded.eval()(x).data, model.eval()(x).data)


def test_the_summary_prints_what_it_declares():
    rows, predicted = summarize(network().build((1, 8, 8)), (1, 8, 8))
    gain = next(r for r in rows if r.name == "1 ChannelGain")
    assert (gain.output_shape, gain.params, gain.bits, gain.stored_bytes, gain.float_macs) == (
        (3, 6, 6),
        3,
        32,
        12,
        108,
    )
    assert predicted is None  # no binary layer: nothing to convert


def test_the_converter_keeps_it_as_it_is_between_packed_layers():
    model = network(binary=True).build((1, 8, 8)).eval()
    assert count_binary_layers(model) == 1
    converted = convert_model(model)
    assert [type(m).__name__ for m in converted][:2] == ["Convolution", "ChannelGain"]
    assert count_binary_layers(converted) == 0
    x = Tensor(np.random.default_rng(2).standard_normal((2, 1, 8, 8)).astype(np.float32))
    np.testing.assert_allclose(converted(x).data, model(x).data, rtol=1e-4, atol=1e-4)
    rows, predicted = summarize(model, (1, 8, 8))
    assert predicted is not None and any(r.name == "1 ChannelGain" for r in rows)


def test_the_filter_picture_draws_its_declared_filters():
    panels = filter_panels(network().build((1, 8, 8)))
    assert [(p.name, p.layer_type, p.values.shape) for p in panels] == [
        ("0", "Convolution", (3, 1, 3, 3)),
        ("1", "ChannelGain", (3, 1, 1, 1)),
        ("2", "Convolution", (4, 3, 3, 3)),
    ]


def test_its_gradient_matches_central_differences():
    layer = ChannelGain()
    x = Tensor(np.random.default_rng(3).standard_normal((2, 3, 2, 2)), requires_grad=True)
    gain = Tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True)
    layer.gain = gain  # type: ignore[assignment]  # float64 for the check
    assert gradcheck(lambda x_, g_: layer(x_), [x, gain])
