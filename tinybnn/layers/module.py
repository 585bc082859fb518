"""Module, Parameter and Sequential: how layers hold their state.

A :class:`Module` finds its parameters, buffers and children by looking at its
own attributes, in the order ``__init__`` created them; nothing is registered
behind the scenes. Layers create their parameters at the first call, when the
input's size is known (MXNet's deferred initialization), so a network is
written without channel counts; :meth:`Module.build` runs that first call on
zeros when the shapes are needed before any data (loading a model file).

Every module can describe itself as JSON-friendly ``config()`` (its
constructor arguments), which :mod:`tinybnn.serialization` stores beside the
arrays so that a model loads without the code that built it.

Each layer class also declares, in its own file, what a model file may say
about it and what that costs, so that a file is checked before anything is
built: ``config_schema`` (the types and ranges of its config, a
:mod:`tinybnn.schema` object) and the class method ``footprint(config,
input_shape, footprint_of)``, which computes from the config and the input's
shape alone (arithmetic, no array) its output shape and a :class:`Footprint`
of the bytes one forward pass at batch 1 needs.

A layer also declares, on its class, what the tools need from it, so that
adding a layer is one file plus its tests:

- ``@register_layer`` puts the class in :data:`LAYER_TYPES`, the one table of
  every layer a model file may name (:mod:`tinybnn.architecture` reads it);
- ``cost(x, y, after_binary)``: what ``tinybnn summary`` prints of it
  (parameters, bits per weight, bytes as float32 and as stored, binary and
  float multiply-accumulates per image), a :class:`Cost`;
- ``computes_on_bits()`` (it runs on packed 1-bit inputs and weights),
  ``packable()`` and ``packed(bn, input_bn, pool)``: what the converter does
  with it (the packed twin, or None: it stays as it is);
  ``packs_input_norm``/``packs_pool`` say whether that twin takes in a
  BatchNorm before it and a max pooling after it;
- ``drawn_filters()``: the kernels the filter picture draws (a
  :class:`Filters`), for a convolution.

The defaults describe a float layer that the converter keeps and that has
no filters to draw.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import Any, Callable, Iterator, TypeVar

import numpy as np

from ..autograd import Tensor, no_grad
from ..errors import ArgumentError
from ..schema import Json, List, Obj, Str

FLOAT32 = 4  # bytes per activation and per float parameter


@dataclass(frozen=True)
class Footprint:
    """Bytes a layer needs at batch 1, counted from its description (no array is made).

    ``state``: its parameters and buffers; ``activations``: every output one
    forward pass writes (float32); ``scratch``: the largest temporary it makes
    (im2col patches, a padded copy of the input); ``heaviest``: (bytes, label)
    of the leaf layer that needs the most, for error messages.
    """

    output_shape: tuple[int, ...]
    state: int = 0
    activations: int = 0
    scratch: int = 0
    heaviest: tuple[int, str] = (0, "")

    @property
    def total(self) -> int:
        return self.state + self.activations + self.scratch

    def then(self, after: "Footprint") -> "Footprint":
        """This layer followed by ``after``: states and outputs add up, scratch is reused."""
        return Footprint(
            after.output_shape,
            self.state + after.state,
            self.activations + after.activations,
            max(self.scratch, after.scratch),
            max(self.heaviest, after.heaviest),
        )


def elementwise(input_shape: tuple[int, ...], state: int = 0) -> Footprint:
    """The footprint of a layer whose output has its input's shape."""
    return Footprint(tuple(input_shape), state, FLOAT32 * math.prod(input_shape))


#: how a container's footprint asks for a nested description's: (description, input shape, child name)
FootprintOf = Callable[[Any, tuple[int, ...], str], Footprint]


@dataclass(frozen=True)
class Cost:
    """What a built layer costs on one image, as the summary prints it.

    ``params``: values it holds (for a packed layer, the weights it packs
    plus its float values); ``bits``: bits per weight (None: no array);
    ``float32_bytes``: its arrays as float32; ``stored_bytes``: as the
    converted file stores it; ``binary_macs`` / ``float_macs``:
    multiply-accumulates per image by XNOR-popcount and in floating point;
    ``output_shape``: shown instead of the output's own (packed bits).
    """

    params: int
    bits: int | None
    float32_bytes: int
    stored_bytes: int
    binary_macs: int = 0
    float_macs: int = 0
    output_shape: tuple[int, ...] | None = None


def float_cost(layer: "Module", float_macs: int = 0, bits: int | None = None) -> Cost:
    """The cost of a layer stored as float32 (its parameters and buffers)."""
    params = sum(p.size for _, p in layer.named_parameters())
    arrays = params + sum(b.size for _, b in layer.named_buffers())
    return Cost(
        params,
        bits if bits is not None else 32 if arrays else None,
        FLOAT32 * arrays,
        FLOAT32 * arrays,
        float_macs=float_macs,
    )


def bits_cost(outputs: int, words: int, params: int, float32_values: int, floats: int, binary_macs: int) -> Cost:
    """The cost of a 1-bit layer as converted: ``words`` 64-bit words of weight bits per output channel
    and ``floats`` float32 values (scale and shift per output channel)."""
    return Cost(params, 1, FLOAT32 * float32_values, outputs * words * 8 + FLOAT32 * floats, binary_macs=binary_macs)


@dataclass(frozen=True)
class Filters:
    """A convolution's kernels as the filter picture draws them.

    ``values`` (F, C, KH, KW): ±1 for ``kind`` "binary" (sign(0) = +1), the
    (quantized) weights for "float" and "k-bit"; ``bits``: bits per weight.
    """

    kind: str
    values: np.ndarray
    bits: int


class Parameter(Tensor):
    """A trainable tensor. ``clip=(low, high)`` is a constraint the optimizer
    enforces after every step (binary layers clip latent weights to [-1, 1])."""

    __slots__ = ("clip",)

    def __init__(self, data: Any, clip: tuple[float, float] | None = None):
        super().__init__(np.asarray(data, dtype=np.float32), requires_grad=True)
        self.clip = clip

    def apply_constraint(self) -> None:
        if self.clip is not None:
            np.clip(self.data, self.clip[0], self.clip[1], out=self.data)


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


class Module:
    """Base class of layers and networks."""

    #: names of non-trainable arrays kept in the state (BatchNorm's running statistics)
    buffer_names: tuple[str, ...] = ()
    #: what a model file's config of this layer may hold (no field by default)
    config_schema: Obj = Obj()
    #: whether the converter's packed twin (:meth:`packed`) takes in a BatchNorm before it / a max pooling after
    packs_input_norm: bool = False
    packs_pool: bool = False

    def __init__(self) -> None:
        self.training = True
        self.name = ""

    # --- computation -------------------------------------------------------
    def forward(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def __call__(self, x: Tensor) -> Tensor:
        return self.forward(x)

    def build(self, input_shape: tuple[int, ...]) -> "Module":
        """Create deferred parameters by running one zero sample of ``input_shape``
        (without the batch axis) through the network in evaluation mode."""
        was_training = self.training
        self.eval()
        with no_grad():
            self(Tensor(np.zeros((1, *input_shape), dtype=np.float32)))
        self.train(was_training)
        return self

    # --- structure ---------------------------------------------------------
    def children(self) -> Iterator[tuple[str, "Module"]]:
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, "Module"]]:
        yield prefix, self
        for name, child in self.children():
            yield from child.named_modules(_join(prefix, name))

    def named_parameters(self) -> Iterator[tuple[str, Parameter]]:
        for path, module in self.named_modules():
            for name, value in vars(module).items():
                if isinstance(value, Parameter):
                    yield _join(path, name), value

    def parameters(self) -> list[Parameter]:
        return [p for _, p in self.named_parameters()]

    def named_buffers(self) -> Iterator[tuple[str, np.ndarray]]:
        for path, module in self.named_modules():
            for name in module.buffer_names:
                value = getattr(module, name)
                if value is not None:
                    yield _join(path, name), value

    def generators(self) -> dict[str, np.random.Generator]:
        """Every layer's random generator (its ``rng``: initialization, dropout masks), by path,
        so that a checkpoint can save their states and a resumed run draw the same numbers."""
        found = {path: getattr(module, "rng", None) for path, module in self.named_modules()}
        return {path: rng for path, rng in found.items() if isinstance(rng, np.random.Generator)}

    def label(self) -> str:
        """How errors name this layer: its path in the network and its type."""
        kind = type(self).__name__
        return f"layer {self.name} ({kind})" if self.name else kind

    def assign_names(self) -> None:
        """Name every descendant by its path ("3", "body.0.conv1"), for error messages."""
        for path, module in self.named_modules():
            module.name = path

    # --- modes and gradients -------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        for _, module in self.named_modules():
            module.training = mode
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None

    # --- state ---------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of every parameter and buffer, by path."""
        state = {name: p.data.copy() for name, p in self.named_parameters()}
        state.update((name, b.copy()) for name, b in self.named_buffers())
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Copy arrays into the (built) parameters and buffers; names and shapes must match."""
        targets: dict[str, np.ndarray] = {name: p.data for name, p in self.named_parameters()}
        targets.update(self.named_buffers())
        missing = sorted(set(targets) - set(state))
        extra = sorted(set(state) - set(targets))
        if missing or extra:
            raise ArgumentError(
                "state does not match the network: "
                + "; ".join(
                    part
                    for part in (
                        f"missing {', '.join(missing)}" if missing else "",
                        f"unexpected {', '.join(extra)}" if extra else "",
                    )
                    if part
                )
            )
        for name, target in targets.items():
            value = np.asarray(state[name])
            if value.shape != target.shape:
                raise ArgumentError(f"array {name} has shape {value.shape}, the network expects {target.shape}")
            if value.dtype != target.dtype:
                raise ArgumentError(f"array {name} has dtype {value.dtype}, the network expects {target.dtype}")
            target[...] = value

    # --- description ---------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """Constructor arguments, JSON-friendly, so that ``type(self)(**config)`` rebuilds it."""
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any], construct: Callable[[dict], "Module"]) -> "Module":
        """Rebuild from ``config()``; ``construct`` rebuilds nested descriptions."""
        return cls(**config)

    @classmethod
    def with_defaults(cls, config: dict[str, Any]) -> dict[str, Any]:
        """``config`` completed with the constructor's defaults, for :meth:`footprint`."""
        defaults = {
            name: p.default
            for name, p in inspect.signature(cls.__init__).parameters.items()
            if p.default is not inspect.Parameter.empty
        }
        return {**defaults, **config}

    @classmethod
    def footprint(cls, config: dict[str, Any], input_shape: tuple[int, ...], footprint_of: FootprintOf) -> Footprint:
        """Output shape and bytes at batch 1 of this layer on a sample of ``input_shape``
        (no batch axis), from ``config`` (checked by ``config_schema``, completed by
        :meth:`with_defaults`) alone; raises ShapeError where the forward pass would."""
        raise NotImplementedError(f"{cls.__name__} does not declare its footprint")

    # --- what the summary, the converter and the pictures need ------------------------
    def walk(self, x: Tensor, path: str, record: Callable[[str, "Module", Tensor, Tensor], None]) -> Tensor:
        """Run ``x`` through this layer, calling ``record(path, layer, input, output)`` for every leaf
        layer in execution order (containers override this to walk their children)."""
        y = self(x)
        record(path, self, x, y)
        return y

    def cost(self, x: Tensor, y: Tensor, after_binary: bool) -> Cost:
        """What this built leaf layer costs on the batch of one ``x`` giving ``y``; ``after_binary``:
        the layer before it computes on bits. By default: float32 arrays, no multiply-accumulate."""
        return float_cost(self)

    def computes_on_bits(self) -> bool:
        """Whether this layer multiplies 1-bit inputs by 1-bit weights (XNOR-popcount)."""
        return False

    def packable(self) -> bool:
        """Whether the converter replaces this layer by a packed twin (:meth:`packed`)."""
        return False

    def packed(self, bn: Any = None, input_bn: Any = None, pool: Any = None) -> "Module":
        """The packed inference twin of this built layer, with a BatchNorm after it (``bn``), a
        BatchNorm before it (``input_bn``, if :attr:`packs_input_norm`) and a max pooling after it
        (``pool``, if :attr:`packs_pool`) taken in. Only for a :meth:`packable` layer."""
        raise NotImplementedError(f"{type(self).__name__} is not packed by the converter")

    def converted(self, convert: Callable[["Module"], "Module"]) -> "Module":
        """This layer in the converted model, ``convert`` converting nested containers: itself by
        default (containers holding layers other than a list override this)."""
        return self

    def drawn_filters(self) -> Filters | None:
        """The kernels the filter picture draws, or None: not a convolution."""
        return None

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.config().items())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"


#: every layer a model file may name, by class name (filled by :func:`register_layer`)
LAYER_TYPES: dict[str, type[Module]] = {}

M = TypeVar("M", bound=type[Module])


def register_layer(cls: M) -> M:
    """Class decorator: model files may name ``cls`` by its class name (see :data:`LAYER_TYPES`)."""
    known = LAYER_TYPES.get(cls.__name__)
    if known is not None and (known.__module__, known.__qualname__) != (cls.__module__, cls.__qualname__):
        raise TypeError(f"two layer classes are called {cls.__name__}: in {known.__module__} and {cls.__module__}")
    LAYER_TYPES[cls.__name__] = cls
    return cls


def describe(module: Module) -> dict[str, Any]:
    """A module as JSON-friendly data: ``{"type": class name, "config": {...}}``."""
    return {"type": type(module).__name__, "config": module.config()}


#: a nested layer description, checked in full when the container's footprint reaches it
DESCRIPTION = Obj({"type": Str(max_len=64)}, {"config": Obj(other=Json())})
LAYER_LIST = List(DESCRIPTION, max_len=10_000)


def run_in_order(layers: list[Module], x: Tensor) -> Tensor:
    """y = f_n(... f_2(f_1(x))), one layer after the other."""
    for layer in layers:
        x = layer(x)
    return x


#: how Sequential runs its layers; :mod:`tinybnn.layers.fusion` installs its runner, which fuses LeNet's first block
RUNNER: list[Callable[[list[Module], Tensor], Tensor]] = [run_in_order]


@register_layer
class Sequential(Module):
    """Layers applied one after the other: y = f_n(... f_2(f_1(x)))."""

    def __init__(self, *layers: Module):
        super().__init__()
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise ArgumentError(f"Sequential: item {i} is a {type(layer).__name__}, not a Module")
        self.layers = list(layers)
        self.assign_names()

    def children(self) -> Iterator[tuple[str, Module]]:
        for i, layer in enumerate(self.layers):
            yield str(i), layer

    def forward(self, x: Tensor) -> Tensor:
        return RUNNER[0](self.layers, x)

    def walk(self, x: Tensor, path: str, record: Callable[[str, Module, Tensor, Tensor], None]) -> Tensor:
        for i, layer in enumerate(self.layers):
            x = layer.walk(x, _join(path, str(i)), record)
        return x

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, index: int) -> Module:
        return self.layers[index]

    def __iter__(self) -> Iterator[Module]:
        return iter(self.layers)

    def config(self) -> dict[str, Any]:
        return {"layers": [describe(layer) for layer in self.layers]}

    config_schema = Obj({"layers": LAYER_LIST})

    @classmethod
    def from_config(cls, config: dict[str, Any], construct: Callable[[dict], Module]) -> "Sequential":
        return cls(*(construct(item) for item in config["layers"]))

    @classmethod
    def footprint(cls, config: dict[str, Any], input_shape: tuple[int, ...], footprint_of: FootprintOf) -> Footprint:
        total = Footprint(tuple(input_shape))
        for i, item in enumerate(config["layers"]):
            total = total.then(footprint_of(item, total.output_shape, str(i)))
        return total

    def __repr__(self) -> str:
        lines = [f"  ({i}) {layer!r}" for i, layer in enumerate(self.layers)]
        return "Sequential(\n" + "\n".join(lines) + "\n)"
