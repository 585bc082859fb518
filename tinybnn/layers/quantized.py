"""Binary and k-bit layers: drop-in replacements for the float ones (BMXNet's Q-layers).

Papers: BMXNet, Yang, Fritzsche, Bartz and Meinel, "BMXNet: An Open-Source Binary Neural
Network Implementation Based on MXNet" (ACM Multimedia 2017, arXiv:1705.09864); binary
weights and activations trained by their latent float weights, Courbariaux et al.,
"Binarized Neural Networks" (2016, arXiv:1602.02830); the scaling factor alpha = mean |W_f|
and the XNOR-popcount dot, Rastegari, Ordonez, Redmon and Farhadi, "XNOR-Net" (ECCV 2016,
arXiv:1603.05279); k-bit layers, Zhou et al., "DoReFa-Net" (2016, arXiv:1606.06160).

A Q-layer keeps float ("latent") weights for training and, in every forward
pass, quantizes its input to ``act_bit`` bits and its weights to
``weight_bit`` bits (:mod:`tinybnn.autograd.quantize`), then runs the float
operation on the quantized values. With ``act_bit = weight_bit = 1`` a
convolution computes, for each output element, the ±1 dot product

    y = sum_k sign(x_k) sign(w_k) = K - 2 popcount(bits(x) XOR bits(w))

(the XNOR convention of docs/conventions.md: the same number the float path gives on ±1
values, not BMXNet's (K + dot) / 2), which is what makes the packed
inference path exact.

- **Speed**: with ``act_bit = weight_bit = 1`` the forward pass runs on packed
  bits with XNOR-popcount (:mod:`tinybnn.autograd.binary`), giving the same
  integers as the float operation on ±1 values; the backward pass uses the
  float GEMMs on ±1 values that the straight-through estimator needs.
- **Padding** of binary convolutions happens *after* binarization, with
  ``pad_value`` (±1, default +1), never 0: a 0 would be a third value that
  the packed bits cannot hold. k-bit (2..32) inputs are padded with 0.
- **Scaling** (XNOR-Net): ``scaling_factor=True`` multiplies output channel f
  by ``alpha_f = mean |W_f|`` over its C KH KW latent weights; the gradient
  flows into alpha as well.
- **Latent weights** of ``weight_bit=1`` layers are clipped to [-1, 1] after
  every optimizer step: the weight :class:`Parameter` carries the constraint
  ``clip=(-1, 1)`` and every optimizer applies it after updating. Outside
  [-1, 1] the straight-through estimator would pass no gradient anyway, so a
  weight that wandered there could never come back.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from ..autograd import Tensor, conv2d
from ..autograd.binary import binary_conv2d, binary_linear
from ..autograd.larq_quantizers import (
    ACTIVATION_QUANTIZERS,
    SIGN_FORWARD,
    WEIGHT_QUANTIZERS,
    quantize_by_name,
    quantize_weight_by_name,
)
from ..autograd.quantize import check_bits, quantize_activation, quantize_weight
from ..errors import ArgumentError, NotANumberError
from ..schema import Bool, Float, Int, Obj, Str
from .convolution import Convolution, check_pad_value
from .dense import FullyConnected
from ..gemm import pack_bits, packed_words
from ..gemm.bitconv import pack_filters
from .packed import PackedConvolution, PackedFullyConnected, folded_affine
from .module import Cost, Filters, Footprint, Module, bits_cost, elementwise, float_cost, register_layer

#: names of the 1-bit activation quantizers (tinybnn.autograd.quantize and tinybnn.autograd.larq_quantizers)
METHODS = SIGN_METHODS = tuple(ACTIVATION_QUANTIZERS)
BITS = Int(1, 32)
#: what a Q-layer's config adds to its float layer's
WEIGHT_METHODS = tuple(WEIGHT_QUANTIZERS)
#: 1-bit weight quantizers whose weights are sign(w), or alpha_f sign(w) (alpha folds into the scale);
#: a ste_tern or ste_heaviside weight has a 0 that bits cannot hold, so such a layer keeps its float path
PACKABLE_WEIGHTS = (*SIGN_FORWARD, "magnitude_aware_sign")
Q_FIELDS = {"act_bit": BITS, "weight_bit": BITS, "scaling_factor": Bool(), "weight_method": Str(WEIGHT_METHODS)}


def check_weight_method(weight_method: str, where: str) -> str:
    if weight_method not in WEIGHT_METHODS:
        raise ArgumentError(f"{where}: weight_method must be one of {WEIGHT_METHODS}, got {weight_method!r}")
    return weight_method


def with_weight_method(config: dict[str, Any], weight_method: str) -> dict[str, Any]:
    """``config`` with ``weight_method`` unless it is the default, so files and reprs of det_sign layers stay as
    they were."""
    return config if weight_method == "det_sign" else {**config, "weight_method": weight_method}


def quantized_weight(layer: "QConvolution | QFullyConnected") -> Tensor:
    """The layer's weights as its forward pass uses them: ``weight_method`` for 1 bit, DoReFa for 2..31."""
    assert layer.weight is not None  # built
    if layer.weight_bit == 1:
        return quantize_weight_by_name(layer.weight, layer.weight_method)
    return quantize_weight(layer.weight, layer.weight_bit)


def channel_scale(weight: Tensor) -> Tensor:
    """XNOR-Net's alpha: mean |W| over every axis but the first, one per output channel."""
    return weight.abs().mean(axis=tuple(range(1, weight.ndim)))


def contains_nan(a: np.ndarray) -> bool:
    """True if a float array holds a NaN (one pass: NaN propagates through ``min``)."""
    return a.dtype.kind == "f" and a.size > 0 and bool(np.isnan(a.min()))


@register_layer
class QActivation(Module):
    """Quantize activations to ``act_bit`` bits (BMXNet's QActivation), elementwise.

    Forward, for ``act_bit`` = k::

        k = 1:       y = sign(x) = +1 if x >= 0 else -1          (sign(0) = +1)
        2 <= k < 32: y = round(clip(x, 0, 1) (2^k - 1)) / (2^k - 1)     (DoReFa)
        k = 32:      y = x

    Backward (straight-through estimators), with g = dL/dy:

    - k = 1, ``method="det_sign"`` (default): ``dL/dx = g`` where
      ``|x| <= grad_cancel`` (default 1.0), 0 elsewhere, the derivative of
      hardtanh; ``method="approx_sign"`` (Bi-Real Net): ``g (2 - 2|x|)``
      inside [-1, 1], 0 outside; Larq's "swish_sign", "magnitude_aware_sign",
      "ste_tern" (threshold 0.05), "ste_tern_twn" (threshold 0.7 mean|x|) and
      "ste_heaviside" (0/1 output) as :mod:`tinybnn.autograd.larq_quantizers`
      defines them, ``grad_cancel`` their straight-through window;
    - 2 <= k < 32: ``g`` where 0 <= x <= 1, straight through the rounding.

    Parameters: ``act_bit`` 1..32 (default 1), ``grad_cancel`` > 0,
    ``method`` one of :data:`METHODS`. No weights.

    NaN has no sign: with ``act_bit=1`` an input holding NaN raises
    ``NotANumberError`` (an ``ArgumentError``) naming the layer, as packing
    NaN into bits does (:func:`tinybnn.gemm.pack_bits`); k-bit and 32-bit
    activations pass NaN on.

    >>> import numpy as np
    >>> from tinybnn.autograd import Tensor
    >>> x = Tensor(np.array([-1.5, -0.5, 0.0, 0.5, 1.5], dtype=np.float32), requires_grad=True)
    >>> y = QActivation(act_bit=1)(x)
    >>> y.data
    array([-1., -1.,  1.,  1.,  1.], dtype=float32)
    >>> y.sum().backward()
    >>> x.grad
    array([0., 1., 1., 1., 0.], dtype=float32)
    >>> QActivation(act_bit=2)(Tensor(np.array([-0.2, 0.2, 0.5, 2.0], dtype=np.float32))).data.round(4)
    array([0.    , 0.3333, 0.6667, 1.    ], dtype=float32)
    """

    def __init__(self, act_bit: int = 1, grad_cancel: float = 1.0, method: str = "det_sign"):
        super().__init__()
        self.act_bit = check_bits(act_bit, "act_bit", "QActivation")
        if method not in METHODS:
            raise ArgumentError(f"QActivation: method must be one of {METHODS}, got {method!r}")
        if not grad_cancel > 0:
            raise ArgumentError(f"QActivation: grad_cancel must be positive, got {grad_cancel!r}")
        self.grad_cancel = float(grad_cancel)
        self.method = method
        #: tinybnn.diagnostics: called with (layer, input) in every forward pass
        self.observer: Callable[..., None] | None = None

    config_schema = Obj(optional={"act_bit": BITS, "grad_cancel": Float(0.0), "method": Str(METHODS)})

    @classmethod
    def footprint(cls, config, input_shape, footprint_of) -> Footprint:
        return elementwise(input_shape)

    def forward(self, x: Tensor) -> Tensor:
        if self.act_bit == 1 and contains_nan(x.data):
            raise NotANumberError(f"{self.label()}: input contains NaN, which has no sign")
        if self.observer is not None:
            self.observer(self, x.data)
        if self.act_bit == 1:
            return quantize_by_name(x, self.method, self.grad_cancel)
        return quantize_activation(x, self.act_bit, self.grad_cancel)

    def config(self) -> dict[str, Any]:
        return {"act_bit": self.act_bit, "grad_cancel": self.grad_cancel, "method": self.method}


@register_layer
class QConvolution(Convolution):
    """Binary or k-bit 2-D convolution (NCHW), a drop-in replacement for :class:`Convolution`.

    Forward, for input x (N, C, H, W) and latent weights W (F, C, KH, KW),
    stride (sh, sw) and padding (ph, pw)::

        OH = (H + 2 ph - KH) // sh + 1,   OW = (W + 2 pw - KW) // sw + 1
        y[n, f, i, j] = sum_{c, u, v} q_w(W)[f, c, u, v] * xp[n, c, i sh + u, j sw + v]  [* alpha_f]  [+ b_f]

    - ``q_a``, ``q_w``: the input quantized to ``act_bit`` bits and the
      weights to ``weight_bit`` bits (:mod:`tinybnn.autograd.quantize`):
      sign for 1 bit (sign(0) = +1), DoReFa for 2..31, identity for 32;
    - ``xp``: ``q_a(x)`` padded with ``pad_value`` (+1 or -1) when the input
      is 1-bit, so padding happens after binarization and never with 0 (0 is
      not a ±1 value, and the packed path could not hold it); padded with 0
      when the input has 2 or more bits (0 is a level of DoReFa's grid);
    - ``alpha_f = mean |W_f|`` over the C KH KW latent weights of filter f,
      only with ``scaling_factor=True`` (XNOR-Net); ``b`` only with
      ``no_bias=False``.

    With ``act_bit = weight_bit = 1`` every output is the ±1 dot product of
    K = C KH KW terms, computed by XNOR-popcount on packed bits
    (:func:`tinybnn.autograd.binary.binary_conv2d`)::

        y = K - 2 popcount(bits(patch of x) XOR bits(W_f))     (bit 1 for +1, 0 for -1)

    the very integer the float convolution gives on ±1 values (not BMXNet's
    (K + y) / 2).

    Backward: straight-through estimators, ``dL/dx`` passes where |x| <= 1
    and ``dL/dW`` where |W| <= 1 (1 bit), or straight through the rounding
    (k bits). The latent weights of a ``weight_bit=1`` layer carry
    ``clip=(-1, 1)``, which every optimizer applies after each step. A
    BatchNorm usually follows; :func:`tinybnn.convert.convert_model` packs
    the layer and folds that BatchNorm into a :class:`PackedConvolution`.

    Parameters
    ----------
    kernel : int or (KH, KW)
    num_filter : F, the number of output channels
    stride, pad : int or pair (stride >= 1, pad >= 0); default 1 and 0
    act_bit, weight_bit : bits of the input and of the weights, 1..32 (default 1: binary)
    scaling_factor : multiply output channel f by alpha_f (default False)
    pad_value : +1 (default) or -1, the value binary padding uses
    weight_method : the 1-bit weight quantizer, "det_sign" (default, the XNOR
        path) or any other of :data:`WEIGHT_METHODS` (Larq's, see
        :mod:`tinybnn.autograd.larq_quantizers`; "magnitude_aware_sign" scales
        filter f by mean |W_f|), which runs the float path
    no_bias : True (default) for no bias b, since a BatchNorm follows
    weight_init : "kaiming" (default) or "xavier"; ``rng`` draws the weights

    C is taken from the first input (deferred initialization, as in MXNet).

    A 1-bit QConvolution equals the float convolution of sign(x) and
    sign(W), padded with +1; its outputs are odd here, since K = 27:

    >>> import numpy as np
    >>> from tinybnn.autograd import Tensor, conv2d
    >>> layer = QConvolution(kernel=3, num_filter=2, pad=1, rng=np.random.default_rng(0))
    >>> x = Tensor(np.random.default_rng(1).standard_normal((1, 3, 4, 4)).astype(np.float32))
    >>> y = layer(x)
    >>> y.shape, layer.weight.shape, layer.weight.clip
    ((1, 2, 4, 4), (2, 3, 3, 3), (-1.0, 1.0))
    >>> def sign(a):
    ...     return np.where(a >= 0, 1.0, -1.0).astype(np.float32)
    >>> expected = conv2d(Tensor(sign(x.data)), Tensor(sign(layer.weight.data)), pad=1, pad_value=1.0)
    >>> bool(np.array_equal(y.data, expected.data)), bool(np.all(y.data % 2 == 1))
    (True, True)
    >>> y.data[0, 0, 0]
    array([-1.,  3., -1.,  1.], dtype=float32)
    """

    def __init__(
        self,
        kernel,
        num_filter: int,
        stride=1,
        pad=0,
        act_bit: int = 1,
        weight_bit: int = 1,
        scaling_factor: bool = False,
        pad_value: float = 1.0,
        no_bias: bool = True,
        weight_init: str = "kaiming",
        rng: np.random.Generator | None = None,
        weight_method: str = "det_sign",
    ):
        super().__init__(kernel, num_filter, stride=stride, pad=pad, no_bias=no_bias, weight_init=weight_init, rng=rng)
        self.act_bit = check_bits(act_bit, "act_bit", "QConvolution")
        self.weight_bit = check_bits(weight_bit, "weight_bit", "QConvolution")
        self.weight_method = check_weight_method(weight_method, "QConvolution")
        self.scaling_factor = bool(scaling_factor)
        self.pad_value = check_pad_value(pad_value)
        self.xnor = True  # False: the float path (see use_float_path)
        #: tinybnn.diagnostics: called with (layer, input) in every forward pass
        self.observer: Callable[..., None] | None = None

    config_schema = Obj(
        Convolution.config_schema.required,
        {**Convolution.config_schema.optional, **Q_FIELDS, "pad_value": Float(-1.0, 1.0)},
    )

    def create_parameters(self, channels: int) -> None:
        super().create_parameters(channels)
        assert self.weight is not None
        if self.weight_bit == 1:
            self.weight.clip = (-1.0, 1.0)

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        assert self.weight is not None
        if self.observer is not None:
            self.observer(self, x.data)
        if self.xnor and self.act_bit == 1 and self.weight_bit == 1 and self.weight_method == "det_sign":
            # XNOR-popcount forward, same numbers
            y = binary_conv2d(x, self.weight, stride=self.stride, pad=self.pad, pad_value=self.pad_value)
        else:
            xq = quantize_activation(x, self.act_bit)
            wq = quantized_weight(self)
            y = conv2d(xq, wq, stride=self.stride, pad=self.pad, pad_value=self.pad_value if self.act_bit == 1 else 0.0)
        if self.scaling_factor:
            y = y * channel_scale(self.weight).reshape(1, -1, 1, 1)
        return y if self.bias is None else y + self.bias.reshape(1, -1, 1, 1)

    packs_input_norm = True  # its packed twin packs (x - mean) / std * gamma + beta itself
    packs_pool = True  # and takes the max pooling after it in its epilogue

    def computes_on_bits(self) -> bool:
        return self.act_bit == 1 and self.weight_bit == 1

    def packable(self) -> bool:
        return self.computes_on_bits() and self.weight_method in PACKABLE_WEIGHTS

    def cost(self, x: Tensor, y: Tensor, after_binary: bool) -> Cost:
        """1-bit: stored as KH KW ceil(C / 64) words per filter plus a float32 scale and shift per filter
        once converted, binary multiply-accumulates; otherwise as a float convolution."""
        assert self.weight is not None
        macs = self.weight.size * math.prod(y.shape[2:])
        if not self.computes_on_bits():
            return float_cost(self, macs, bits=self.weight_bit)
        params = sum(p.size for _, p in self.named_parameters())
        words = self.kernel[0] * self.kernel[1] * packed_words(x.shape[1])
        return bits_cost(y.shape[1], words, params, params, 2 * y.shape[1], macs)

    def packed(self, bn: Any = None, input_bn: Any = None, pool: Any = None) -> Module:
        """A :class:`~tinybnn.layers.packed.PackedConvolution` with ``sign(W)`` packed, alpha, the bias and
        ``bn`` folded into its scale and shift, ``input_bn`` into its input packing, ``pool`` into its
        epilogue."""

        assert self.weight is not None
        weight = self.weight.data
        packed = PackedConvolution(
            self.kernel,
            self.num_filter,
            channels=weight.shape[1],
            stride=self.stride,
            pad=self.pad,
            pad_value=self.pad_value,
            input_norm=input_bn is not None,
            pool_kernel=None if pool is None else pool.kernel,
            pool_stride=None if pool is None else pool.stride,
        )
        assert packed.weight_bits is not None and packed.scale is not None and packed.shift is not None
        packed.weight_bits[...] = pack_filters(weight, pad_words_to=1)
        if input_bn is not None:  # the very numbers the BatchNorm kernel computes with
            packed.input_mean[...] = input_bn.running_mean
            packed.input_inv_std[...] = 1.0 / np.sqrt(input_bn.running_var.astype(np.float64) + input_bn.eps)
            packed.input_gamma[...] = input_bn.gamma.data
            packed.input_beta[...] = input_bn.beta.data
        packed.scale[...], packed.shift[...] = folded_affine(self, bn)
        return packed

    def drawn_filters(self) -> Filters | None:
        """1-bit weights as the layer computes with them, sign(w); k-bit ones quantized; else float."""
        if self.weight is None:
            return None
        weight = self.weight.data
        if self.weight_bit == 1:
            return Filters("binary", np.where(weight >= 0, 1.0, -1.0).astype(np.float32), 1)
        if self.weight_bit < 32:
            return Filters("k-bit", quantize_weight(Tensor(weight), self.weight_bit).data, self.weight_bit)
        return Filters("float", weight.copy(), 32)

    def config(self) -> dict[str, Any]:
        config = super().config()
        config.update(
            act_bit=self.act_bit,
            weight_bit=self.weight_bit,
            scaling_factor=self.scaling_factor,
            pad_value=self.pad_value,
        )
        return with_weight_method(config, self.weight_method)


@register_layer
class QFullyConnected(FullyConnected):
    """Binary or k-bit fully connected layer, a drop-in replacement for :class:`FullyConnected`.

    Forward, for input x (N, D) (a larger rank is flattened to (N, D)) and
    latent weights W (num_hidden, D)::

        y[n, h] = sum_d q_a(x)[n, d] * q_w(W)[h, d]   [* alpha_h]   [+ b_h]

    with ``q_a``, ``q_w`` as in :class:`QConvolution` (sign for 1 bit, sign(0)
    = +1; DoReFa for 2..31; identity for 32) and ``alpha_h = mean |W_h|``
    with ``scaling_factor=True``. With ``act_bit = weight_bit = 1`` each
    output is the ±1 dot product ``D - 2 popcount(bits(x_n) XOR bits(W_h))``,
    computed by XNOR-popcount (:func:`tinybnn.autograd.binary.binary_linear`).
    Backward: ``dL/dx`` passes where |x| <= 1 and ``dL/dW`` where |W| <= 1;
    latent weights of ``weight_bit=1`` layers are clipped to [-1, 1] after
    every optimizer step. D is taken from the first input. ``weight_method``
    picks the 1-bit weight quantizer as in :class:`QConvolution`.

    >>> import numpy as np
    >>> from tinybnn.autograd import Tensor
    >>> layer = QFullyConnected(2, rng=np.random.default_rng(0))
    >>> x = Tensor(np.array([[0.5, -1.0, 2.0, 0.0]], dtype=np.float32))
    >>> layer(x).data                        # 4 - 2 * (number of sign disagreements)
    array([[0., 2.]], dtype=float32)
    >>> np.where(layer.weight.data >= 0, 1, -1)
    array([[ 1, -1, -1, -1],
           [ 1,  1,  1,  1]])
    """

    def __init__(
        self,
        num_hidden: int,
        act_bit: int = 1,
        weight_bit: int = 1,
        scaling_factor: bool = False,
        no_bias: bool = True,
        weight_init: str = "kaiming",
        rng: np.random.Generator | None = None,
        weight_method: str = "det_sign",
    ):
        super().__init__(num_hidden, no_bias=no_bias, weight_init=weight_init, rng=rng)
        self.act_bit = check_bits(act_bit, "act_bit", "QFullyConnected")
        self.weight_bit = check_bits(weight_bit, "weight_bit", "QFullyConnected")
        self.weight_method = check_weight_method(weight_method, "QFullyConnected")
        self.scaling_factor = bool(scaling_factor)
        self.xnor = True  # False: the float path (see use_float_path)
        #: tinybnn.diagnostics: called with (layer, input) in every forward pass
        self.observer: Callable[..., None] | None = None

    config_schema = Obj(FullyConnected.config_schema.required, {**FullyConnected.config_schema.optional, **Q_FIELDS})

    def create_parameters(self, features: int) -> None:
        super().create_parameters(features)
        assert self.weight is not None
        if self.weight_bit == 1:
            self.weight.clip = (-1.0, 1.0)

    def forward(self, x: Tensor) -> Tensor:
        x = self.flat_input(x)
        assert self.weight is not None
        if self.observer is not None:
            self.observer(self, x.data)
        if self.xnor and self.act_bit == 1 and self.weight_bit == 1 and self.weight_method == "det_sign":
            y = binary_linear(x, self.weight)  # XNOR-popcount forward, same numbers
        else:
            y = quantize_activation(x, self.act_bit) @ quantized_weight(self).T
        if self.scaling_factor:
            y = y * channel_scale(self.weight)
        return y if self.bias is None else y + self.bias

    def computes_on_bits(self) -> bool:
        return self.act_bit == 1 and self.weight_bit == 1

    def packable(self) -> bool:
        return self.computes_on_bits() and self.weight_method in PACKABLE_WEIGHTS

    def cost(self, x: Tensor, y: Tensor, after_binary: bool) -> Cost:
        """1-bit: stored as ceil(D / 64) words per output plus a float32 scale and shift per output
        once converted, binary multiply-accumulates; otherwise as a float dense layer."""
        assert self.weight is not None
        if not self.computes_on_bits():
            return float_cost(self, self.weight.size, bits=self.weight_bit)
        params = sum(p.size for _, p in self.named_parameters())
        return bits_cost(y.shape[1], packed_words(x.data[0].size), params, params, 2 * y.shape[1], self.weight.size)

    def packed(self, bn: Any = None, input_bn: Any = None, pool: Any = None) -> Module:
        """A :class:`~tinybnn.layers.packed.PackedFullyConnected` with ``sign(W)`` packed and alpha, the
        bias and ``bn`` folded into its scale and shift."""

        assert self.weight is not None
        packed = PackedFullyConnected(self.num_hidden, features=self.weight.shape[1])
        assert packed.weight_bits is not None and packed.scale is not None and packed.shift is not None
        packed.weight_bits[...] = pack_bits(self.weight.data, axis=-1)
        packed.scale[...], packed.shift[...] = folded_affine(self, bn)
        return packed

    def config(self) -> dict[str, Any]:
        config = super().config()
        config.update(act_bit=self.act_bit, weight_bit=self.weight_bit, scaling_factor=self.scaling_factor)
        return with_weight_method(config, self.weight_method)


def use_float_path(model: Module, enabled: bool = True) -> Module:
    """Make every 1-bit Q-layer of ``model`` run its float path (or, with ``enabled=False``,
    its XNOR path again); returns ``model``.

    The float path is the obvious computation, ``conv2d(det_sign(x), det_sign(w))``
    as float GEMMs on ±1 values; the XNOR path (the default) gives the same
    numbers from packed bits. The float path is the reference to check a binary
    kernel against, and the baseline that shows what packing buys. It is a
    runtime choice, not stored in model files.
    """
    for _, module in model.named_modules():
        if isinstance(module, (QConvolution, QFullyConnected)):
            module.xnor = not enabled
    return model
