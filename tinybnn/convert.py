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
  layer takes the sign of its input itself (sign(sign(x)) = sign(x));
- a BatchNorm before a binary convolution moves into the packing of its
  input, and a max pooling after it into its epilogue, both computing the
  same numbers as the layers they replace (see ``PackedConvolution``).

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
from .layers import (BatchNorm, Module, Pooling, QActivation, QConvolution, QFullyConnected, Residual,
                     Sequential)
from .layers.packed import PackedConvolution, PackedFullyConnected, PackedModule
from .outputs import check_output
from .serialization import load_model, save_model

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


def binary_run(layers: list[Module], i: int) -> tuple[int, PackedModule] | None:
    """The layers from ``i`` that one packed layer replaces, as (how many, packed layer), or None.

    The run is ``[BatchNorm] [QActivation(1)] <1-bit Q-layer> [BatchNorm] [Pooling(max)]``:
    a BatchNorm before a binary convolution moves into its input packing, the
    QActivation is a sign the packed layer takes anyway, the BatchNorm after
    folds into its multiply-add, and a max pooling after a convolution is
    taken in its epilogue.
    """
    def at(j: int) -> Module | None:
        return layers[j] if j < len(layers) else None

    j, input_bn = i, None
    if isinstance(at(j), BatchNorm):
        input_bn, j = at(j), j + 1
    if isinstance(at(j), QActivation) and at(j).act_bit == 1:
        j += 1
    layer = at(j)
    if not is_binary(layer) or (input_bn is not None and not isinstance(layer, QConvolution)):
        return None
    j += 1
    bn = at(j) if isinstance(at(j), BatchNorm) else None
    j += bn is not None
    pool = at(j) if isinstance(layer, QConvolution) and isinstance(at(j), Pooling) else None
    if pool is not None and (pool.pool_type != "max" or pool.global_pool):
        pool = None
    j += pool is not None
    return j - i, packed_layer(layer, bn, input_bn, pool)


def packed_layer(layer: QConvolution | QFullyConnected, bn: BatchNorm | None = None,
                 input_bn: BatchNorm | None = None, pool: Pooling | None = None) -> PackedModule:
    """The packed twin of a built 1-bit Q-layer, with the layers around it that it absorbs."""
    weight = layer.weight.data
    if isinstance(layer, QConvolution):
        packed: PackedModule = PackedConvolution(
            layer.kernel, layer.num_filter, channels=weight.shape[1], stride=layer.stride, pad=layer.pad,
            pad_value=layer.pad_value, input_norm=input_bn is not None,
            pool_kernel=None if pool is None else pool.kernel, pool_stride=None if pool is None else pool.stride)
        bits = pack_filters(weight, pad_words_to=1)
        if input_bn is not None:  # the very numbers the BatchNorm kernel computes with
            packed.input_mean[...] = input_bn.running_mean
            packed.input_inv_std[...] = 1.0 / np.sqrt(input_bn.running_var.astype(np.float64) + input_bn.eps)
            packed.input_gamma[...] = input_bn.gamma.data
            packed.input_beta[...] = input_bn.beta.data
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
        run = binary_run(layers, i)
        if run is not None:
            count, packed = run
            out.append(packed)
            i += count
        else:
            out.append(convert_model(layers[i]))
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
    ['Convolution', 'Activation', 'Pooling', 'PackedConvolution', 'Flatten', 'PackedFullyConnected',
     'Activation', 'FullyConnected']
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


def convert_file(path: str | Path, out: str | Path | None = None, force: bool = False) -> Path:
    """Convert the model file at ``path``; return where the result went.

    Refuses (ModelFileError) a file that is already converted, or one without
    any 1-bit layer, saying so. Before loading anything it refuses
    (ArgumentError, see :func:`tinybnn.outputs.check_output`) an ``out`` that
    is ``path`` itself, or that exists and is not a converted model file
    (unless ``force``).
    """
    path = Path(path)
    target = Path(out) if out is not None else binarized_path(path)
    check_output(target, BINARIZED, inputs=[path], force=force)
    loaded = load_model(path)
    if loaded.kind == BINARIZED:
        raise ModelFileError(f"{path}: already converted (a binarized model file); nothing to do")
    if count_binary_layers(loaded.model) == 0:
        raise ModelFileError(f"{path}: has no binary layer (QConvolution or QFullyConnected with act_bit=1 "
                             "and weight_bit=1), so there is nothing to pack")
    converted = convert_model(loaded.model)
    metadata = dict(loaded.metadata)
    metadata["converted_from"] = path.name
    return save_model(target, converted, loaded.input_shape, metadata=metadata, kind=BINARIZED)
