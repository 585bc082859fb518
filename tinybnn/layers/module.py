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
"""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import Any, Callable, Iterator

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
        return Footprint(after.output_shape, self.state + after.state, self.activations + after.activations,
                         max(self.scratch, after.scratch), max(self.heaviest, after.heaviest))


def elementwise(input_shape: tuple[int, ...], state: int = 0) -> Footprint:
    """The footprint of a layer whose output has its input's shape."""
    return Footprint(tuple(input_shape), state, FLOAT32 * math.prod(input_shape))


#: how a container's footprint asks for a nested description's: (description, input shape, child name)
FootprintOf = Callable[[Any, tuple[int, ...], str], Footprint]


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
        return {path: module.rng for path, module in self.named_modules()
                if isinstance(getattr(module, "rng", None), np.random.Generator)}

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
                + "; ".join(part for part in (
                    f"missing {', '.join(missing)}" if missing else "",
                    f"unexpected {', '.join(extra)}" if extra else "") if part)
            )
        for name, target in targets.items():
            value = np.asarray(state[name])
            if value.shape != target.shape:
                raise ArgumentError(
                    f"array {name} has shape {value.shape}, the network expects {target.shape}"
                )
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
        defaults = {name: p.default for name, p in inspect.signature(cls.__init__).parameters.items()
                    if p.default is not inspect.Parameter.empty}
        return {**defaults, **config}

    @classmethod
    def footprint(cls, config: dict[str, Any], input_shape: tuple[int, ...],
                  footprint_of: FootprintOf) -> Footprint:
        """Output shape and bytes at batch 1 of this layer on a sample of ``input_shape``
        (no batch axis), from ``config`` (checked by ``config_schema``, completed by
        :meth:`with_defaults`) alone; raises ShapeError where the forward pass would."""
        raise NotImplementedError(f"{cls.__name__} does not declare its footprint")

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.config().items())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"


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
    def footprint(cls, config: dict[str, Any], input_shape: tuple[int, ...],
                  footprint_of: FootprintOf) -> Footprint:
        total = Footprint(tuple(input_shape))
        for i, item in enumerate(config["layers"]):
            total = total.then(footprint_of(item, total.output_shape, str(i)))
        return total

    def __repr__(self) -> str:
        lines = [f"  ({i}) {layer!r}" for i, layer in enumerate(self.layers)]
        return "Sequential(\n" + "\n".join(lines) + "\n)"
