"""Networks as data: the JSON description stored in model files.

``describe(module)`` gives ``{"type": "Convolution", "config": {...}}``
(nested for containers); ``construct(description)`` builds the module back,
looking the type up in :data:`LAYER_TYPES`, the one table of every layer a
model file may name. A layer class enters it by its ``@register_layer``
decorator (:mod:`tinybnn.layers.module`); every module of
:mod:`tinybnn.layers` is imported here, so a new layer file there is
loadable without editing this one.

``footprint(description, input_shape)`` checks a description against each
layer's ``config_schema`` and adds up what the layers declare they need
(:class:`~tinybnn.layers.module.Footprint`) without building anything, so
that a model file's claims are bounded before a single parameter exists.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from . import layers
from .errors import ModelFileError, TinyBNNError
from .layers.module import LAYER_TYPES, Footprint, Module, describe
from .schema import SchemaError, validate

for _module in pkgutil.iter_modules(layers.__path__):  # each layer registers itself as its file is imported
    importlib.import_module(f"{layers.__name__}.{_module.name}")

#: containers inside containers, at most (ResNet-18 needs 3)
MAX_DEPTH = 16


def construct(description: Any) -> Module:
    """Build a module from ``describe``'s output; unknown or malformed entries raise ModelFileError."""
    if not isinstance(description, dict) or "type" not in description:
        raise ModelFileError(f"layer description must be an object with a 'type', got {description!r:.80}")
    kind = description["type"]
    if kind not in LAYER_TYPES:
        raise ModelFileError(f"unknown layer type {kind!r} (known: {', '.join(sorted(LAYER_TYPES))})")
    config = description.get("config", {})
    if not isinstance(config, dict):
        raise ModelFileError(f"layer {kind}: config must be an object, got {config!r:.80}")
    try:
        return LAYER_TYPES[kind].from_config(config, construct)
    except ModelFileError:
        raise
    except (TypeError, ValueError, KeyError) as error:
        raise ModelFileError(f"layer {kind}: invalid config {config!r:.120}: {error}") from None


def footprint(
    description: Any, input_shape: tuple[int, ...], path: str = "architecture", name: str = "", depth: int = 0
) -> Footprint:
    """What the network ``description`` needs at batch 1 on a sample of ``input_shape``, from
    arithmetic alone. A field outside its layer's schema raises SchemaError naming it
    (``architecture.config.layers[3].config.num_filter``); a layer that does not fit its
    input raises ModelFileError naming the layer."""
    if not isinstance(description, dict) or not isinstance(description.get("type"), str):
        raise SchemaError(path, 'a layer description {"type": ..., "config": {...}}', description)
    kind = description["type"]
    if kind not in LAYER_TYPES:
        raise ModelFileError(
            f"field {path}.type: unknown layer type {kind!r:.60} (known: {', '.join(sorted(LAYER_TYPES))})"
        )
    if depth > MAX_DEPTH:
        raise SchemaError(path, f"layers nested at most {MAX_DEPTH} deep", "deeper nesting")
    cls = LAYER_TYPES[kind]
    config = description.get("config", {})
    validate(config, cls.config_schema, f"{path}.config")
    label = f"layer {name} ({kind})" if name else kind

    def footprint_of(child: Any, shape: tuple[int, ...], child_name: str) -> Footprint:
        child_path = f"{path}.config.layers[{child_name}]" if child_name.isdigit() else f"{path}.config.{child_name}"
        return footprint(child, shape, child_path, f"{name}.{child_name}" if name else child_name, depth + 1)

    try:
        result = cls.footprint(cls.with_defaults(config), tuple(input_shape), footprint_of)
    except ModelFileError:
        raise
    except (TinyBNNError, ValueError) as error:
        raise ModelFileError(f"{label}: {error}") from None
    if result.heaviest[1]:
        return result
    return Footprint(result.output_shape, result.state, result.activations, result.scratch, (result.total, label))


__all__ = ["LAYER_TYPES", "Module", "construct", "describe", "footprint"]
