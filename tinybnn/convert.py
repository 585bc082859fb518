"""The converter: a trained binary model becomes a packed inference model.

``convert_model(model)`` walks the network (Sequential and Residual
containers) and replaces every QConvolution / QFullyConnected whose input
and weights are both 1-bit by a :class:`PackedConvolution` /
:class:`PackedFullyConnected`:

- the latent weights become bits, ``sign(w)`` packed 64 to a ``uint64`` word;
- XNOR-Net's alpha, the bias and a directly following BatchNorm (in
  evaluation mode) fold into one per-channel multiply-add (see
  :mod:`tinybnn.layers.packed`), and the BatchNorm disappears;
- a QActivation(act_bit=1) directly before it disappears too: the packed
  layer takes the sign of its input itself (sign(sign(x)) = sign(x)).

Every other layer (float layers, k-bit Q-layers) is kept as it is.
``convert_file`` writes the result as ``binarized_<name>.npz`` beside the
input (BMXNet's naming), a model file of kind ``"binarized"``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import ModelFileError
from .gemm import pack_bits
from .gemm.bitconv import pack_filters
from .layers import (BatchNorm, Module, QActivation, QConvolution, QFullyConnected, Residual, Sequential)
from .layers.packed import PackedConvolution, PackedFullyConnected, PackedModule
from .serialization import ModelFile, load_model, save_model

BINARIZED = "binarized"


def is_binary(layer: Module) -> bool:
    """A Q-layer whose input and weights are both 1-bit: it runs on packed bits."""
    return isinstance(layer, (QConvolution, QFullyConnected)) and layer.act_bit == 1 and layer.weight_bit == 1


def folded_affine(layer: QConvolution | QFullyConnected, bn: BatchNorm | None) -> tuple[np.ndarray, np.ndarray]:
    """(scale, shift) with layer's alpha and bias and ``bn`` (evaluation mode) folded in::

        scale = alpha gamma / sqrt(running_var + eps)
        shift = (b - running_mean) gamma / sqrt(running_var + eps) + beta

    alpha = mean |W_f| with ``scaling_factor`` (else 1), b the bias (else 0);
    without ``bn``, scale = alpha and shift = b. Computed in float64, stored
    as float32.
    """
    weight = layer.weight.data.astype(np.float64)
    outputs = weight.shape[0]
    scale = np.abs(weight).reshape(outputs, -1).mean(axis=1) if layer.scaling_factor else np.ones(outputs)
    shift = layer.bias.data.astype(np.float64) if layer.bias is not None else np.zeros(outputs)
    if bn is not None:
        factor = bn.gamma.data.astype(np.float64) / np.sqrt(bn.running_var.astype(np.float64) + bn.eps)
        scale = scale * factor
        shift = (shift - bn.running_mean) * factor + bn.beta.data
    return scale.astype(np.float32), shift.astype(np.float32)


def packed_layer(layer: QConvolution | QFullyConnected, bn: BatchNorm | None) -> PackedModule:
    """The packed twin of a built 1-bit Q-layer (and the BatchNorm after it)."""
    weight = layer.weight.data
    if isinstance(layer, QConvolution):
        packed: PackedModule = PackedConvolution(layer.kernel, layer.num_filter, channels=weight.shape[1],
                                                 stride=layer.stride, pad=layer.pad, pad_value=layer.pad_value)
        bits = pack_filters(weight, pad_words_to=1)
    else:
        packed = PackedFullyConnected(layer.num_hidden, features=weight.shape[1])
        bits = pack_bits(weight, axis=-1)
    packed.weight_bits[...] = bits
    packed.scale[...], packed.shift[...] = folded_affine(layer, bn)
    return packed


def convert_layers(layers: list[Module]) -> list[Module]:
    """Convert a list of consecutive layers (the contents of a Sequential)."""
    out: list[Module] = []
    i = 0
    while i < len(layers):
        layer = layers[i]
        following = layers[i + 1] if i + 1 < len(layers) else None
        if isinstance(layer, QActivation) and layer.act_bit == 1 and following is not None and is_binary(following):
            i += 1
            continue
        if is_binary(layer):
            bn = following if isinstance(following, BatchNorm) else None
            out.append(packed_layer(layer, bn))
            i += 2 if bn is not None else 1
            continue
        out.append(convert_model(layer))
        i += 1
    return out


def convert_model(model: Module) -> Module:
    """The packed inference twin of ``model`` (built, in any mode); ``model`` is not changed.

    The result, in evaluation mode, computes what ``model`` computes in
    evaluation mode: the dot products are the same integers, and only the
    folded multiply-add rounds differently (float32).

    >>> import numpy as np
    >>> from tinybnn.autograd import Tensor
    >>> from tinybnn.models import lenet
    >>> model = lenet(binary=True, rng=np.random.default_rng(0)).build((1, 28, 28)).eval()
    >>> packed = convert_model(model)
    >>> [type(layer).__name__ for layer in packed]      # doctest: +NORMALIZE_WHITESPACE
    ['Convolution', 'Activation', 'Pooling', 'BatchNorm', 'PackedConvolution', 'Pooling', 'Flatten',
     'PackedFullyConnected', 'Activation', 'FullyConnected']
    >>> x = Tensor(np.random.default_rng(1).random((2, 1, 28, 28), dtype=np.float32))
    >>> bool(np.abs(model(x).data - packed(x).data).max() < 1e-4)
    True
    """
    if isinstance(model, Sequential):
        converted = Sequential(*convert_layers(list(model.layers)))
    elif isinstance(model, Residual):
        converted = Residual(Sequential(*convert_layers(list(model.body.layers))),
                             Sequential(*convert_layers(list(model.shortcut.layers))), model.activation)
    else:
        return model
    converted.eval()
    return converted


def count_binary_layers(model: Module) -> int:
    return sum(1 for _, m in model.named_modules() if is_binary(m))


def binarized_path(path: Path) -> Path:
    """``dir/model.npz`` -> ``dir/binarized_model.npz`` (BMXNet's naming)."""
    return path.with_name("binarized_" + path.name)


def convert_file(path: str | Path, out: str | Path | None = None) -> tuple[Path, ModelFile]:
    """Convert the model file at ``path``; return where the result went and the loaded input.

    Refuses (ModelFileError) a file that is already converted, or one without
    any 1-bit layer, saying so.
    """
    path = Path(path)
    loaded = load_model(path)
    if loaded.kind == BINARIZED:
        raise ModelFileError(f"{path}: already converted (a binarized model file); nothing to do")
    if count_binary_layers(loaded.model) == 0:
        raise ModelFileError(f"{path}: has no binary layer (QConvolution or QFullyConnected with act_bit=1 "
                             "and weight_bit=1), so there is nothing to pack")
    converted = convert_model(loaded.model)
    target = Path(out) if out is not None else binarized_path(path)
    metadata = dict(loaded.metadata)
    metadata["converted_from"] = path.name
    save_model(target, converted, loaded.input_shape, metadata=metadata, kind=BINARIZED)
    return target, loaded
