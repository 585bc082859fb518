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
  layer takes the sign of its input itself (sign(sign(x)) = sign(x)), as
  long as its forward is sign itself (``SIGN_FORWARD``: det_sign,
  approx_sign, swish_sign); any other (magnitude_aware_sign's alpha sign(x),
  ste_tern's -1/0/+1, ste_heaviside's 0/1) stays a float layer in front of
  the packed layer, which then signs its output exactly as the Q-layer did;
- a BatchNorm before a binary convolution moves into the packing of its
  input, and a max pooling after it into its epilogue, both computing the
  same numbers as the layers they replace (see ``PackedConvolution``).

Every other layer (float layers, k-bit Q-layers) is kept as it is. What
happens to a layer is declared by the layer (``packable``, ``packed``,
``packs_input_norm``, ``packs_pool``, ``converted``; see
:mod:`tinybnn.layers.module`), so a new layer needs no edit here.
``convert_file`` writes the result as ``binarized_<name>.npz`` beside the
input (BMXNet's naming), a model file of kind ``"binarized"``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import ModelFileError
from .autograd import Tensor
from .autograd.larq_quantizers import SIGN_FORWARD
from .gemm import pack_bits, unpack_bits
from .gemm.bitconv import pack_channels, pack_normalized_channels
from .layers import (
    Activation,
    BatchNorm,
    Convolution,
    Flatten,
    FullyConnected,
    Module,
    Pooling,
    QActivation,
    Sequential,
)
from .layers.quantized import PACKABLE_WEIGHTS
from .layers.fused import ACTIVATIONS, BitConvolution, BitDense, ConvolutionToBits
from .layers.packed import PackedConvolution, PackedFullyConnected, PackedModule, _affine_pool_nchw
from .layers.packed import folded_affine as folded_affine  # the folding formula, where the converter's reader looks
from .layers.thresholds import float_thresholds, verified_integer_thresholds
from .outputs import check_output
from .serialization import load_model, save_model

BINARIZED = "binarized"


def is_binary(layer: Module) -> bool:
    """A layer the converter packs (a Q-layer whose input and weights are both 1-bit): it says so
    itself (:meth:`~tinybnn.layers.Module.packable`)."""
    return layer.packable()


def binary_run(layers: list[Module], i: int) -> tuple[int, Module] | None:
    """The layers from ``i`` that one packed layer replaces, as (how many, packed layer), or None.

    The run is ``[BatchNorm] [QActivation(1)] <packable layer> [BatchNorm] [Pooling(max)]``:
    a BatchNorm before it moves into its input packing (if its twin
    :attr:`~tinybnn.layers.Module.packs_input_norm`), the QActivation is a sign
    the packed layer takes anyway, the BatchNorm after folds into its
    multiply-add, and a max pooling after it is taken in its epilogue (if
    :attr:`~tinybnn.layers.Module.packs_pool`). The layer builds its own twin
    (:meth:`~tinybnn.layers.Module.packed`).
    """

    def at(j: int) -> Module | None:
        return layers[j] if j < len(layers) else None

    j, input_bn = i, None
    if isinstance(at(j), BatchNorm):
        input_bn, j = at(j), j + 1
    sign = at(j)
    if isinstance(sign, QActivation) and sign.act_bit == 1 and sign.method in SIGN_FORWARD:
        j += 1
    layer = at(j)
    if layer is None or not layer.packable() or (input_bn is not None and not layer.packs_input_norm):
        return None
    j += 1
    bn = at(j) if isinstance(at(j), BatchNorm) else None
    j += bn is not None
    pool = at(j)
    if not (layer.packs_pool and isinstance(pool, Pooling) and pool.pool_type == "max" and not pool.global_pool):
        pool = None
    j += pool is not None
    return j - i, layer.packed(bn, input_bn, pool)


def packed_layer(
    layer: Module, bn: BatchNorm | None = None, input_bn: BatchNorm | None = None, pool: Pooling | None = None
) -> Module:
    """The packed twin of a built 1-bit Q-layer, with the layers around it that it absorbs."""
    return layer.packed(bn, input_bn, pool)


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


def convert_model(model: Module, fuse: bool = True) -> Module:
    """The packed inference twin of ``model`` (built, in any mode); ``model`` is not changed.

    The result, in evaluation mode, computes what ``model`` computes in
    evaluation mode: the dot products are the same integers, and only the
    folded multiply-add rounds differently (float32). With ``fuse`` (the
    default), consecutive stages then pass bits instead of floats
    (:func:`fuse_layers`); ``fuse=False`` keeps the unfused packed layers,
    their readable twins.

    >>> import numpy as np
    >>> from tinybnn.autograd import Tensor
    >>> from tinybnn.models import lenet
    >>> model = lenet(binary=True, rng=np.random.default_rng(0)).build((1, 28, 28)).eval()
    >>> [type(layer).__name__ for layer in convert_model(model, fuse=False)]  # doctest: +NORMALIZE_WHITESPACE
    ['Convolution', 'Activation', 'Pooling', 'PackedConvolution', 'Flatten', 'PackedFullyConnected',
     'Activation', 'FullyConnected']
    >>> packed = convert_model(model)
    >>> [type(layer).__name__ for layer in packed]
    ['ConvolutionToBits', 'BitConvolution', 'BitDense']
    >>> x = Tensor(np.random.default_rng(1).random((2, 1, 28, 28), dtype=np.float32))
    >>> bool(np.abs(model(x).data - packed(x).data).max() < 1e-4)
    True
    """
    converted: Module
    if isinstance(model, Sequential):
        layers = convert_layers(list(model.layers))
        converted = Sequential(*(fuse_layers(layers) if fuse else layers))
    else:  # a leaf stays as it is; a container (Residual) converts what it holds
        converted = model.converted(lambda child: convert_model(child, fuse))
        if converted is model:
            return model
    converted.eval()
    return converted


# --- fusion: bits between stages -------------------------------------------------------------------
MONOTONE_ACTIVATIONS = ("tanh", "relu", "sigmoid", "hardtanh")  # non-decreasing: they commute with max
MAX_DIRECT_TAPS = 128  # C KH KW up to which a float convolution runs as ConvolutionToBits' direct loop


def is_max_pool(layer: Module) -> bool:
    return isinstance(layer, Pooling) and layer.pool_type == "max" and not layer.global_pool


def float_stem_start(layers: list[Module], end: int) -> int | None:
    """The index of a float block ``Convolution [Activation(monotone)] [Pooling(max)]`` ending before
    ``end``, or None."""
    j = end - 1
    if j >= 0 and is_max_pool(layers[j]):
        j -= 1
    act = layers[j] if j >= 0 else None
    if isinstance(act, Activation) and act.act_type in MONOTONE_ACTIVATIONS:
        j -= 1
    conv = layers[j] if j >= 0 else None
    if type(conv) is Convolution and conv.weight is not None and conv.weight.data[0].size <= MAX_DIRECT_TAPS:
        return j
    return None


def packed_arrays(layer: PackedModule) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A packed layer's (weight_bits, scale, shift), which its constructor allocates."""
    assert layer.weight_bits is not None and layer.scale is not None and layer.shift is not None
    return layer.weight_bits, layer.scale, layer.shift


def filters_of(layer: Module) -> int:
    """The output channels of a bit producer: a packed convolution or a float stem's convolution."""
    assert isinstance(layer, (PackedConvolution, Convolution))  # what bit_links links
    return layer.num_filter


def bit_links(layers: list[Module]) -> tuple[dict[int, tuple[int, tuple]], dict[int, int]]:
    """({producer index: (consumer index, its thresholds)}, {float stem start: consumer index}): the
    packed layers whose input sign can arrive as bits from a packed convolution or a float first
    block just before (with a Flatten between for a dense consumer). A producer whose decision
    turns out not to be monotone (:func:`~tinybnn.layers.thresholds.verified_integer_thresholds`)
    is left unfused."""
    producers: dict[int, tuple[int, tuple]] = {}
    stems: dict[int, int] = {}
    for i, layer in enumerate(layers):
        if not isinstance(layer, (PackedConvolution, PackedFullyConnected)):
            continue
        end = i - 1 if isinstance(layer, PackedFullyConnected) and i > 0 and isinstance(layers[i - 1], Flatten) else i
        before = layers[end - 1] if end > 0 else None
        start = None if isinstance(before, PackedConvolution) else float_stem_start(layers, end)
        channels = (
            before.num_filter
            if isinstance(before, PackedConvolution)
            else (filters_of(layers[start]) if start is not None else None)
        )
        if channels is None or isinstance(layer, PackedFullyConnected) and layer.features % channels:
            continue  # nothing to fuse, or bits that could not be laid out as the dense layer's features
        if start is not None:
            stems[start] = i
            continue
        assert isinstance(before, PackedConvolution)  # no float stem, so the channels came from it
        _, scale, shift = packed_arrays(before)
        if not (np.isfinite(scale).all() and np.isfinite(shift).all()):
            continue
        thresholds = verified_integer_thresholds(
            lambda dots: consumer_signs(layer, affine_values(before, dots)), before.bits, before.num_filter
        )
        if thresholds is not None:
            producers[end - 1] = (i, thresholds)
    return producers, stems


def consumer_signs(consumer: PackedModule, values: np.ndarray) -> np.ndarray:
    """The signs the consumer takes of float32 ``values`` (F, m), channel f in row f: with its
    input BatchNorm, by the very kernel it packs with (bool (F, m), True for +1)."""
    x = np.ascontiguousarray(values[None, :, :, None], dtype=np.float32)  # (1, F, m, 1): m pixels
    if isinstance(consumer, PackedConvolution) and consumer.input_norm:
        words = pack_normalized_channels(
            x, consumer.input_mean, consumer.input_inv_std, consumer.input_gamma, consumer.input_beta
        )
    else:
        words = pack_channels(x)
    return unpack_bits(words.reshape(values.shape[1], -1), values.shape[0]).T > 0


def affine_values(layer: PackedConvolution, dots: np.ndarray) -> np.ndarray:
    """What the unfused layer computes for integer dots (F, m), channel f in row f: its own kernel."""
    channels, m = dots.shape
    out = np.empty((1, channels, m, 1), np.float32)
    _, scale, shift = packed_arrays(layer)
    _affine_pool_nchw(np.ascontiguousarray(dots.T, dtype=np.int32), np.int32(0), scale, shift, 1, m, 1, 1, 1, 1, 1, out)
    return out[0, :, :, 0]


def bit_convolution(layer: PackedConvolution, bits_in: bool, thresholds: tuple | None) -> BitConvolution:
    """``layer`` reading bits (``bits_in``) and/or writing bits by the (flip, threshold) pair given."""
    fused = BitConvolution(
        layer.kernel,
        layer.num_filter,
        layer.channels,
        layer.stride,
        layer.pad,
        layer.pad_value,
        input="bits" if bits_in else "float",
        output="float" if thresholds is None else "bits",
        input_norm=layer.input_norm and not bits_in,
        pool_kernel=layer.pool_kernel or (1, 1),
        pool_stride=layer.pool_stride,
    )
    weight_bits, scale, shift = packed_arrays(layer)
    fused.weight_bits[...] = weight_bits.T
    if thresholds is None:
        fused.scale[...], fused.shift[...] = scale, shift
    else:
        fused.flip[...], fused.threshold[...] = thresholds
        fused.pool_sign[...] = np.where(scale < 0, -1, 1)
    if fused.input_norm:
        for name in ("input_mean", "input_inv_std", "input_gamma", "input_beta"):
            getattr(fused, name)[...] = getattr(layer, name)
    return fused


def first_stage(block: list[Module], consumer: PackedModule) -> ConvolutionToBits:
    """``Convolution [Activation] [Pooling(max)]`` and the consumer's input sign as one stage."""
    conv = block[0]
    assert isinstance(conv, Convolution) and conv.weight is not None  # a float stem (float_stem_start), built
    act = next((m for m in block if isinstance(m, Activation)), None)
    pool = next((m for m in block if isinstance(m, Pooling)), None)
    weight = conv.weight.data
    stage = ConvolutionToBits(
        conv.kernel,
        conv.num_filter,
        weight.shape[1],
        conv.stride,
        conv.pad,
        activation=act.act_type if act is not None else "identity",
        pool_kernel=pool.kernel if pool is not None else (1, 1),
        pool_stride=pool.stride if pool is not None else None,
    )
    stage.weight[...] = weight.reshape(conv.num_filter, -1).T
    if conv.bias is not None:
        stage.bias[...] = conv.bias.data

    def decide(z: np.ndarray) -> np.ndarray:
        values = act(Tensor(z)).data if act is not None else z
        return consumer_signs(consumer, values)

    flip, threshold = float_thresholds(decide, conv.num_filter)
    stage.flip[...], stage.threshold[...] = flip, threshold
    return stage


def permuted_dense_bits(layer: PackedFullyConnected, channels: int) -> np.ndarray:
    """The dense layer's weight signs, Flatten's order c P + p (P pixels), re-packed in the order the
    bits arrive (pixel p's channel words, p Cw + c // 64), as (P Cw, num_hidden) words."""
    signs = unpack_bits(packed_arrays(layer)[0], layer.features)  # (H, C P)
    pixel_major = signs.reshape(layer.num_hidden, channels, -1).transpose(0, 2, 1)  # (H, P, C)
    return np.ascontiguousarray(pack_bits(pixel_major, axis=-1).reshape(layer.num_hidden, -1).T)


def bit_dense(layer: PackedFullyConnected, channels: int, after: list[Module]) -> tuple[BitDense, int]:
    """The dense layer reading bits, with an Activation and a FullyConnected after it taken in:
    (the stage, how many of ``after`` it took)."""
    taken, activation = 0, "identity"
    if after and isinstance(after[0], Activation) and after[0].act_type in ACTIVATIONS:
        activation, taken = after[0].act_type, 1
    classifier = after[taken] if len(after) > taken else None
    if not isinstance(classifier, FullyConnected):
        classifier = None
    words = permuted_dense_bits(layer, channels)
    stage = BitDense(
        layer.num_hidden,
        layer.features,
        words.shape[0],
        activation,
        classes=0 if classifier is None else classifier.num_hidden,
    )
    stage.weight_bits[...] = words
    stage.scale[...], stage.shift[...] = packed_arrays(layer)[1:]
    if classifier is not None:
        assert classifier.weight is not None  # a built network
        stage.classifier[...] = classifier.weight.data
        if classifier.bias is not None:
            stage.classifier_bias[...] = classifier.bias.data
        taken += 1
    return stage, taken


def fuse_layers(layers: list[Module]) -> list[Module]:
    """Packed layers (:func:`convert_layers`' output) with bits flowing between them where possible.

    - a PackedConvolution whose output only feeds the next packed layer's sign
      (through a Flatten for a dense one) writes those bits itself, with exact
      integer thresholds that take in its max pooling and the next layer's
      input BatchNorm (:class:`~tinybnn.layers.fused.BitConvolution`);
    - a float ``Convolution [tanh] [max pooling]`` before a packed layer
      becomes one stage writing the bits that layer takes
      (:class:`~tinybnn.layers.fused.ConvolutionToBits`);
    - a packed layer with bits arriving reads them as they are; a dense one
      takes a following Activation and FullyConnected in
      (:class:`~tinybnn.layers.fused.BitDense`).

    Anything else is kept: a residual's float shortcut, float layers elsewhere.
    """
    producers, stems = bit_links(layers)
    consumers = {c for c, _ in producers.values()} | set(stems.values())
    channels_into = {c: filters_of(layers[p]) for p, (c, _) in producers.items()}
    channels_into.update({c: filters_of(layers[s]) for s, c in stems.items()})
    out: list[Module] = []
    i = 0
    while i < len(layers):
        layer = layers[i]
        if i in stems:
            consumer = layers[stems[i]]
            assert isinstance(consumer, PackedModule)  # bit_links links packed consumers only
            out.append(first_stage(layers[i : stems[i]], consumer))
            i = stems[i]
            continue
        if isinstance(layer, Flatten) and i + 1 in consumers and i - 1 in producers:
            i += 1
            continue
        if isinstance(layer, PackedConvolution) and (i in consumers or i in producers):
            out.append(bit_convolution(layer, i in consumers, producers[i][1] if i in producers else None))
        elif isinstance(layer, PackedFullyConnected) and i in consumers:
            stage, taken = bit_dense(layer, channels_into[i], layers[i + 1 :])
            out.append(stage)
            i += taken
        else:
            out.append(layer)
        i += 1
    return out


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
        raise ModelFileError(
            f"{path}: has no binary layer (QConvolution or QFullyConnected with act_bit=1 "
            f"and weight_bit=1, weight_method one of {', '.join(PACKABLE_WEIGHTS)}), so there is "
            "nothing to pack"
        )
    converted = convert_model(loaded.model)
    metadata = dict(loaded.metadata)
    metadata["converted_from"] = path.name
    return save_model(target, converted, loaded.input_shape, metadata=metadata, kind=BINARIZED)
