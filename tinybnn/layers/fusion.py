"""Running a Sequential's layers, with LeNet's first block fused for speed.

LeNet (LeCun, Bottou, Bengio, Haffner, "Gradient-based learning applied to
document recognition" (Proc. IEEE 1998) opens with a small convolution,
a squashing function and a subsampling; BMXNet's binary LeNet (Yang et al.,
ACM MM 2017) keeps that block in float.

``Convolution -> Activation("tanh") -> Pooling("max", 2x2, stride 2)`` with a
bias and a small kernel (C KH KW at most
:data:`~tinybnn.autograd.fast_conv.MAX_DIRECT_K`) runs as one op,
:func:`tinybnn.autograd.fast_conv.conv_tanh_max_pool`: a direct convolution
pooled before it leaves the cache, and a backward pass over the pooled
positions only. The layers, their parameters and the model file stay as they
are; only the computation is shared. ``with unfused(): ...`` runs every layer
on its own (the plain composition), for comparisons, and so does the
reference backend (``tinybnn.autograd.backend("reference")``). The fusion is a
training op: under ``no_grad`` (evaluation, prediction) the layers run one
by one, so a model's float path, which the converter's integer thresholds
are checked against, sums its first convolution as before.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Iterator, Sequence

import numpy as np

from ..autograd import Tensor, is_grad_enabled
from ..autograd.backends import active_backend
from ..autograd.fast_conv import conv_tanh_max_pool, fits_direct
from .activation import Activation
from .convolution import Convolution
from . import module
from .module import Module
from .pooling import Pooling

_state = threading.local()


@contextlib.contextmanager
def unfused() -> Iterator[None]:
    """Run the block with every layer on its own (no fused ops)."""
    previous = getattr(_state, "disabled", False)
    _state.disabled = True
    try:
        yield
    finally:
        _state.disabled = previous


def fusable_block(layers: Sequence[Module], i: int, x: Tensor) -> bool:
    """True if layers[i:i + 3] are a biased small-kernel Convolution, tanh and 2x2 / 2 max pooling
    that the fused op computes for the input ``x``."""
    if getattr(_state, "disabled", False) or i + 3 > len(layers) or active_backend() != "fast":
        return False  # the reference backend runs every layer as its plain formula
    if not is_grad_enabled():
        return False  # inference runs the plain layers: the float path that conversion is checked against
    conv, act, pool = layers[i : i + 3]
    if not (type(conv) is Convolution and type(act) is Activation and type(pool) is Pooling):
        return False
    if act.act_type != "tanh" or pool.pool_type != "max" or pool.global_pool:
        return False
    if pool.kernel != (2, 2) or pool.stride != (2, 2) or conv.no_bias:
        return False
    if x.ndim != 4 or x.dtype not in (np.float32, np.float64):
        return False
    conv.check_input(x)  # creates the parameters on first use, checks the shapes
    assert conv.weight is not None
    (kh, kw), (sh, sw), (ph, pw) = conv.kernel, conv.stride, conv.pad
    oh, ow = (x.shape[2] + 2 * ph - kh) // sh + 1, (x.shape[3] + 2 * pw - kw) // sw + 1
    return oh >= 2 and ow >= 2 and fits_direct(x.shape, conv.weight.shape)


def run_layers(layers: Sequence[Module], x: Tensor) -> Tensor:
    """y = f_n(... f_1(x)), with fusable blocks computed by their fused op."""
    i = 0
    while i < len(layers):
        if fusable_block(layers, i, x):
            conv = layers[i]
            assert isinstance(conv, Convolution)
            x = conv_tanh_max_pool(x, conv.weight, conv.bias, stride=conv.stride, pad=conv.pad)
            i += 3
        else:
            x = layers[i](x)
            i += 1
    return x


module.RUNNER[0] = run_layers
