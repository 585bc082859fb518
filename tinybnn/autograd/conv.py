"""2-D convolution as im2col + GEMM, in NCHW layout.

For an input ``x`` of shape (N, C, H, W), weights ``w`` of shape
(F, C, KH, KW), stride (sh, sw) and padding (ph, pw)::

    OH = (H + 2 ph - KH) // sh + 1,   OW = (W + 2 pw - KW) // sw + 1
    y[n, f, i, j] = b[f] + sum_{c, u, v} w[f, c, u, v] * xp[n, c, i sh + u, j sw + v]

where ``xp`` is ``x`` padded with ``pad_value`` (0 for float layers; binary
layers pad their ±1 input with ±1, never 0, so that the packed path is exact). ``im2col`` lays the patches
out as rows of a matrix ``cols`` of shape (N OH OW, C KH KW), in the same
(c, u, v) order as ``w.reshape(F, -1)``, so that the convolution is one GEMM::

    y = w.reshape(F, -1) @ cols^T        (F, N OH OW), then viewed as (N, F, OH, OW)

Backward: with ``G`` the upstream gradient laid out as (F, N OH OW),
``dW = G @ cols``, ``db = sum G``, ``dcols = G^T @ W`` and ``dx = col2im(dcols)``,
which adds every patch gradient back where the patch came from.

The convolution is two kernels with two backends each (:mod:`.backends`):
``conv_forward_reference`` and ``conv_backward_reference`` are these formulas
in NumPy (on ``im2col_reference`` and ``col2im_reference``, the obvious
versions); ``conv_forward_fast`` and ``conv_backward_fast`` give the same
results a few images at a time: the input copied once channel-last
(N, H, W, C), so that the patch columns can run in (u, v, c) order and a
patch row is KH contiguous runs of KW C values (:func:`im2col_channels_last`),
the filters permuted to the same order, each chunk's patches built into one
small scratch matrix that stays in cache for the GEMMs that read it (the
whole matrix never exists; the backward pass builds them again), the bias
folded into the GEMM, and a col2im that adds C contiguous values at a time
(:func:`col2im_channels_last`); with more than one thread, each thread of
our own takes a share of the images, with OpenBLAS on one thread
(:mod:`tinybnn.blas_threads`), so that every chunk stays in its core's cache.
Where Numba compiles for AVX-512, a float32 forward with 32 filters or more
skips the patches altogether (:func:`conv_forward_direct`). The Numba kernels are in :mod:`.kernels`;
``im2col`` and ``col2im`` are the same kernels in the reference's
(c, u, v) order.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Protocol

import numba
import numpy as np

from .. import blas_threads, host_cpu_features
from ..errors import ArgumentError, ShapeError
from ..workspace import empty
from . import kernels
from .backends import SUMMED_IN_ANOTHER_ORDER, kernel
from .function import Context, Function


def pair(value: int | tuple[int, int], name: str = "value") -> tuple[int, int]:
    """(v, v) for an int, the pair itself for a pair; refuse anything else."""
    if isinstance(value, (int, np.integer)):
        return int(value), int(value)
    try:
        first, second = value
        return int(first), int(second)
    except (TypeError, ValueError):
        raise ArgumentError(f"{name} must be an int or a pair of ints, got {value!r}") from None


def output_size(size: int, kernel: int, stride: int, pad: int) -> int:
    """Number of kernel positions along one axis: (size + 2 pad - kernel) // stride + 1."""
    return (size + 2 * pad - kernel) // stride + 1


def pad_input(x: np.ndarray, pad: tuple[int, int], value: float = 0.0) -> np.ndarray:
    """x (N, C, H, W) with ``pad`` rows/columns of ``value`` on each side."""
    ph, pw = pad
    if ph == 0 and pw == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)


def im2col_reference(
    x: np.ndarray,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    pad: tuple[int, int] = (0, 0),
    pad_value: float = 0.0,
) -> np.ndarray:
    """Patches of x (N, C, H, W) as a (N OH OW, C KH KW) matrix, the obvious way:
    pad, view every window with ``sliding_window_view``, keep every stride-th, copy."""
    n, c = x.shape[:2]
    kh, kw = kernel
    sh, sw = stride
    xp = pad_input(x, pad, pad_value)
    windows = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(2, 3))
    windows = windows[:, :, ::sh, ::sw]  # (N, C, OH, OW, KH, KW)
    oh, ow = windows.shape[2:4]
    return windows.transpose(0, 2, 3, 1, 4, 5).reshape(n * oh * ow, c * kh * kw)


def col2im_reference(
    cols: np.ndarray,
    x_shape: tuple[int, int, int, int],
    kernel: tuple[int, int],
    stride: tuple[int, int],
    pad: tuple[int, int] = (0, 0),
) -> np.ndarray:
    """The adjoint of :func:`im2col_reference`: add each patch row back where it came
    from, one strided add per kernel position, then drop the padding."""
    n, c, h, w = x_shape
    kh, kw = kernel
    sh, sw = stride
    ph, pw = pad
    hp, wp = h + 2 * ph, w + 2 * pw
    oh, ow = output_size(h, kh, sh, ph), output_size(w, kw, sw, pw)
    patches = cols.reshape(n, oh, ow, c, kh, kw).transpose(0, 3, 4, 5, 1, 2)
    out = np.zeros((n, c, hp, wp), dtype=cols.dtype)
    for u in range(kh):
        for v in range(kw):
            out[:, :, u : u + sh * oh : sh, v : v + sw * ow : sw] += patches[:, :, u, v]
    return out[:, :, ph : ph + h, pw : pw + w]


def check_conv_shapes(
    x_shape: tuple, w_shape: tuple, pad: tuple[int, int], stride: tuple[int, int], where: str = "conv2d"
) -> tuple[int, int]:
    """Validate a convolution's shapes; return (OH, OW)."""
    if len(x_shape) != 4:
        raise ShapeError(f"{where}: expected input of shape (N, C, H, W), got {tuple(x_shape)}")
    if len(w_shape) != 4:
        raise ShapeError(f"{where}: expected weights of shape (F, C, KH, KW), got {tuple(w_shape)}")
    if x_shape[1] != w_shape[1]:
        raise ShapeError(
            f"{where}: input has {x_shape[1]} channels, weights expect {w_shape[1]} "
            f"(input {tuple(x_shape)}, weights {tuple(w_shape)})"
        )
    if min(stride) < 1:
        raise ArgumentError(f"{where}: stride must be positive, got {stride}")
    if min(pad) < 0:
        raise ArgumentError(f"{where}: padding must be >= 0, got {pad}")
    kh, kw = w_shape[2:]
    hp, wp = x_shape[2] + 2 * pad[0], x_shape[3] + 2 * pad[1]
    if kh > hp or kw > wp:
        raise ShapeError(
            f"{where}: kernel {kh}x{kw} is larger than the padded input {hp}x{wp} "
            f"(input {tuple(x_shape)}, padding {pad})"
        )
    return output_size(x_shape[2], kh, stride[0], pad[0]), output_size(x_shape[3], kw, stride[1], pad[1])


@dataclass(frozen=True)
class ConvGeometry:
    """The shapes and settings of one convolution: input (N, C, H, W), weights (F, C, KH, KW),
    stride, padding and the value padded with. :meth:`of` checks them."""

    x_shape: tuple[int, int, int, int]
    w_shape: tuple[int, int, int, int]
    stride: tuple[int, int]
    pad: tuple[int, int]
    pad_value: float = 0.0

    @classmethod
    def of(
        cls,
        x_shape: tuple,
        w_shape: tuple,
        stride: int | tuple[int, int],
        pad: int | tuple[int, int],
        pad_value: float = 0.0,
        where: str = "conv2d",
    ) -> ConvGeometry:
        """The geometry of a convolution of these shapes, refused with a clear error if they do not fit."""
        stride, pad = pair(stride, "stride"), pair(pad, "pad")
        check_conv_shapes(x_shape, w_shape, pad, stride, where)
        return cls(tuple(x_shape), tuple(w_shape), stride, pad, float(pad_value))  # type: ignore[arg-type]

    @property
    def kernel(self) -> tuple[int, int]:
        return self.w_shape[2], self.w_shape[3]

    @property
    def out_hw(self) -> tuple[int, int]:
        """(OH, OW)."""
        return (
            output_size(self.x_shape[2], self.w_shape[2], self.stride[0], self.pad[0]),
            output_size(self.x_shape[3], self.w_shape[3], self.stride[1], self.pad[1]),
        )

    @property
    def positions(self) -> int:
        """OH OW: the patch rows of one image."""
        oh, ow = self.out_hw
        return oh * ow


def as_nchw(y: np.ndarray, geometry: ConvGeometry) -> np.ndarray:
    """The GEMM's (F, N OH OW) result viewed as (N, F, OH, OW) (channel-major in memory, no copy)."""
    return y.reshape(geometry.w_shape[0], geometry.x_shape[0], *geometry.out_hw).transpose(1, 0, 2, 3)


def gradient_rows(grad: np.ndarray) -> np.ndarray:
    """A gradient (N, F, OH, OW) as the matrix G (F, N OH OW) of the backward formulas."""
    return grad.transpose(1, 0, 2, 3).reshape(grad.shape[1], -1)


# ---- reference backend: the formulas of the module docstring ------------------------------


def conv_forward_reference(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None, geometry: ConvGeometry
) -> tuple[np.ndarray, np.ndarray]:
    """(y, cols): y = W (F, K) @ cols^T + b as (N, F, OH, OW), cols = im2col(x) kept for the backward."""
    cols = im2col_reference(x, geometry.kernel, geometry.stride, geometry.pad, geometry.pad_value)
    y = w.reshape(w.shape[0], -1) @ cols.T
    if b is not None:
        y = y + b.reshape(-1, 1)
    return as_nchw(y, geometry), cols


def conv_backward_reference(
    grad: np.ndarray, cols: np.ndarray, w: np.ndarray, geometry: ConvGeometry, needs: tuple[bool, bool, bool]
) -> tuple[np.ndarray | None, ...]:
    """(dx, dW, db) for the upstream gradient (N, F, OH, OW), ``None`` where ``needs`` says no:
    with G (F, N OH OW), dW = G @ cols, db = sum of G's rows, dx = col2im(G^T @ W)."""
    need_x, need_w, need_b = needs
    g = gradient_rows(grad)
    w2 = w.reshape(w.shape[0], -1)
    grad_x = (
        col2im_reference(g.T @ w2, geometry.x_shape, geometry.kernel, geometry.stride, geometry.pad) if need_x else None
    )
    grad_w = (g @ cols).reshape(w.shape) if need_w else None
    grad_b = g.sum(axis=1) if need_b else None
    return grad_x, grad_w, grad_b


# ---- fast backend: the Numba im2col / col2im, the bias in the GEMM, a backward in chunks --------


def im2col(
    x: np.ndarray,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    pad: tuple[int, int] = (0, 0),
    pad_value: float = 0.0,
    ones_column: bool = False,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Same result as :func:`im2col_reference`, by the Numba kernel (into ``out`` if given);
    with ``ones_column`` one more column of ones, so that a bias rides along in the GEMM."""
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, pad
    rows = n * output_size(h, kh, sh, ph) * output_size(w, kw, sw, pw)
    out = empty((rows, c * kh * kw + ones_column), x.dtype) if out is None else out
    return kernels.im2col_into(x, kh, kw, sh, sw, ph, pw, x.dtype.type(pad_value), out)


def col2im(
    cols: np.ndarray,
    x_shape: tuple[int, int, int, int],
    kernel: tuple[int, int],
    stride: tuple[int, int],
    pad: tuple[int, int] = (0, 0),
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Same result as :func:`col2im_reference`, by the Numba kernel (into ``out`` if given)."""
    n, c, h, w = x_shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, pad
    out = empty(x_shape, cols.dtype) if out is None else out
    return kernels.col2im_from(np.ascontiguousarray(cols), n, c, h, w, kh, kw, sh, sw, ph, pw, out)


def channel_rows(grad: np.ndarray) -> np.ndarray:
    """:func:`gradient_rows` as a C-contiguous matrix, without a copy when it can be.

    A free view when ``grad`` already lies in memory as (F, N, OH, OW), as
    gradients coming back into a convolution usually do (they take the layout
    of its output); otherwise a copy into a scratch array. Being C-contiguous
    either way, G gives the GEMMs the same layout, hence the same bits. It may
    share memory with ``grad``: read it, never write into it.
    """
    rows = grad.transpose(1, 0, 2, 3)
    shape = (rows.shape[0], int(np.prod(rows.shape[1:])))
    if rows.flags.c_contiguous:
        return rows.reshape(shape)
    g = empty(shape, grad.dtype)
    g.reshape(rows.shape)[...] = rows
    return g


def channels_last(
    x: np.ndarray,
    signs: bool = False,
    out: np.ndarray | None = None,
    pad: tuple[int, int] = (0, 0),
    pad_value: float = 0.0,
) -> np.ndarray:
    """x (N, C, H, W), in any layout, copied to a C-contiguous (N, H, W, C) array (into ``out`` if
    given); with ``signs``, sign(x) (+1 where x >= 0, -1 elsewhere) instead of x; with ``pad``
    (ph, pw), (N, H + 2 ph, W + 2 pw, C) with ``pad_value`` around the image."""
    n, c, h, w = x.shape
    ph, pw = pad
    out = empty((n, h + 2 * ph, w + 2 * pw, c), x.dtype) if out is None else out
    return kernels.channels_last_into(x, signs, ph, pw, x.dtype.type(pad_value), out)


def im2col_channels_last(
    x: np.ndarray,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    pad: tuple[int, int] = (0, 0),
    pad_value: float = 0.0,
    ones_column: bool = False,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """The patches of a channel-last x (N, H, W, C) as a (N OH OW, KH KW C) matrix whose columns
    run in (u, v, c) order: :func:`im2col_reference`'s rows with their columns permuted from
    (c, u, v). A patch row is then KH runs of KW C values that lie side by side in x, copied
    whole. With ``ones_column`` one more column of ones (a bias input). ``out``, if given, must be
    C-contiguous (the kernel copies runs of its flat memory)."""
    x = np.ascontiguousarray(x)
    n, h, w, c = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, pad
    rows = n * output_size(h, kh, sh, ph) * output_size(w, kw, sw, pw)
    out = empty((rows, kh * kw * c + ones_column), x.dtype) if out is None else out
    if not out.flags.c_contiguous:
        raise ArgumentError(f"im2col_channels_last: out must be C-contiguous, got strides {out.strides}")
    return kernels.im2col_channels_last_into(x, kh, kw, sh, sw, ph, pw, x.dtype.type(pad_value), out)


def col2im_channels_last(
    cols: np.ndarray,
    x_shape: tuple[int, int, int, int],
    kernel: tuple[int, int],
    stride: tuple[int, int],
    pad: tuple[int, int] = (0, 0),
    out: np.ndarray | None = None,
) -> np.ndarray:
    """The adjoint of :func:`im2col_channels_last`: each patch row of ``cols`` (columns in (u, v, c)
    order) added back where it came from, into an (N, C, H, W) C-contiguous array; padding dropped."""
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, pad
    out = empty(x_shape, cols.dtype) if out is None else out
    return kernels.col2im_channels_last_from(cols, x_shape[2], x_shape[3], kh, kw, sh, sw, ph, pw, out)


def weights_channels_last(w: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """Filters (F, C, KH, KW) as the (F, KH KW C) matrix that multiplies :func:`im2col_channels_last`'s
    columns, with the bias as one more column when ``b`` is given."""
    f = w.shape[0]
    if b is None:
        return np.ascontiguousarray(w.transpose(0, 2, 3, 1)).reshape(f, -1)
    weights = empty((f, w[0].size + 1), w.dtype)
    weights[:, :-1].reshape(f, w.shape[2], w.shape[3], w.shape[1])[...] = w.transpose(0, 2, 3, 1)
    weights[:, -1] = b
    return weights


def weights_from_channels_last(m: np.ndarray, w_shape: tuple[int, ...]) -> np.ndarray:
    """The inverse of :func:`weights_channels_last` (without a bias column): (F, KH KW C) back to
    (F, C, KH, KW), C-contiguous."""
    f, c, kh, kw = w_shape
    return np.ascontiguousarray(m.reshape(f, kh, kw, c).transpose(0, 3, 1, 2))


class Patches(Protocol):
    """What :func:`backward_in_chunks` reads the im2col matrix through: the rows of images n0..n1,
    columns in :func:`im2col_channels_last`'s (u, v, c) order (``rows_into``: into a ``scratch``
    matrix of the caller's, for threads that each build their own)."""

    #: how many images' rows to ask for at a time
    per_chunk: int
    #: how many columns a row has
    columns: int

    def rows(self, n0: int, n1: int) -> np.ndarray: ...

    def scratch(self) -> np.ndarray: ...

    def rows_into(self, n0: int, n1: int, out: np.ndarray) -> np.ndarray: ...


#: bytes of im2col matrix a pass works on at a time on one thread (a few images; stays in cache)
CHUNK_BYTES = 4 << 20
#: how much larger a chunk is when OpenBLAS must split each chunk's GEMM across its threads (when
#: :mod:`tinybnn.blas_threads` cannot split the batch instead): the GEMM must be large enough for
#: OpenBLAS to split (LeNet's second convolution, batch 100, 2 threads: an epoch's Conv2d forward +
#: backward 31.5 s with 4 MB chunks, 22.6 s with 64 MB, one chunk per batch)
PARALLEL_CHUNK_FACTOR = 16


def images_per_chunk(geometry: ConvGeometry, columns: int, itemsize: int) -> int:
    """How many images' patch rows (``columns`` wide) make about CHUNK_BYTES (times
    PARALLEL_CHUNK_FACTOR when each chunk's GEMM runs on OpenBLAS's threads), at least one."""
    blas_splits_chunks = numba.get_num_threads() > 1 and not blas_threads.available()
    chunk_bytes = CHUNK_BYTES * (PARALLEL_CHUNK_FACTOR if blas_splits_chunks else 1)
    return max(1, chunk_bytes // (geometry.positions * columns * itemsize))


class ChannelsLastPatches:
    """The im2col rows of x (or of sign(x), with ``signs``) for a few images at a time.

    x is copied once, channel-last (:func:`channels_last`, 4% of the matrix's
    size for a 5x5 kernel); :meth:`rows` builds the patch rows of images n0..n1
    (:func:`im2col_channels_last`, with a ones column if ``ones_column``) into
    one scratch matrix reused chunk after chunk (the first chunk is the
    largest), so that a chunk's patches are still in cache when the GEMM that
    reads them runs, and the whole matrix is never in memory. The forward pass
    and the backward pass each build the rows they need. Threads that share
    the work (:mod:`tinybnn.blas_threads`) each build theirs into a
    :meth:`scratch` matrix of their own with :meth:`rows_into`.
    """

    def __init__(
        self,
        x: np.ndarray,
        geometry: ConvGeometry,
        ones_column: bool = False,
        signs: bool = False,
        padded_images: np.ndarray | None = None,
    ):
        # padded_images: x already copied channel-last with its padding (by the direct forward)
        self.images = channels_last(x, signs) if padded_images is None else padded_images
        self.pad = geometry.pad if padded_images is None else (0, 0)
        self.geometry, self.ones_column = geometry, ones_column
        self.columns = x.shape[1] * geometry.kernel[0] * geometry.kernel[1] + ones_column
        self.per_chunk = images_per_chunk(geometry, self.columns, x.itemsize)
        self.cols: np.ndarray | None = None
        self.built: tuple[int, int] | None = None  # the images whose rows self.cols holds

    def scratch(self) -> np.ndarray:
        """A matrix large enough for one chunk's rows."""
        rows = min(self.per_chunk, self.images.shape[0]) * self.geometry.positions
        return empty((rows, self.columns), self.images.dtype)

    def rows_into(self, n0: int, n1: int, out: np.ndarray) -> np.ndarray:
        """The patch rows of images n0..n1, built into the first rows of ``out``."""
        geometry = self.geometry
        return im2col_channels_last(
            self.images[n0:n1],
            geometry.kernel,
            geometry.stride,
            self.pad,
            geometry.pad_value,
            self.ones_column,
            out=out[: (n1 - n0) * geometry.positions],
        )

    def rows(self, n0: int, n1: int) -> np.ndarray:
        count = (n1 - n0) * self.geometry.positions
        if self.built == (n0, n1) and self.cols is not None:  # a single chunk: the forward's rows, unchanged
            return self.cols[:count]
        if self.cols is None or self.cols.shape[0] < count:
            self.cols = empty((count, self.columns), self.images.dtype)
        self.built = (n0, n1)
        return self.rows_into(n0, n1, self.cols)


def chunks(start: int, stop: int, per_chunk: int) -> list[tuple[int, int]]:
    """start..stop cut into runs of ``per_chunk`` images (the last may be shorter)."""
    return [(n0, min(stop, n0 + per_chunk)) for n0 in range(start, stop, per_chunk)]


def backward_in_chunks(
    g: np.ndarray, patches: Patches, weights: np.ndarray, geometry: ConvGeometry, need_x: bool, need_w: bool
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(col2im(G^T @ W), G @ cols) for G (F, N OH OW) and W (F, K), a few images at a time.

    ``patches.rows(n0, n1)`` gives the im2col rows of images n0..n1 (with a
    ones column if there is a bias), and W's columns follow the same (u, v, c)
    order (:func:`weights_channels_last`). Working on chunks of about
    CHUNK_BYTES keeps each chunk's patches and their gradient in cache between
    the GEMM that makes them and the one (or col2im) that reads them; the
    weight gradient is summed chunk by chunk, and one scratch matrix holds each
    chunk's patch gradient in turn. With more than one thread the images are
    split into one contiguous share per thread (:mod:`tinybnn.blas_threads`):
    each thread sums its share's weight gradient chunk by chunk, and the
    shares' sums are added in order, so the result depends on the thread
    count but not on timing. Convolutions of float and of binary layers both
    go through here, so their gradients agree bit for bit.
    """
    x_shape = geometry.x_shape
    n, positions = x_shape[0], geometry.positions
    per_chunk, f = patches.per_chunk, weights.shape[0]
    threads = blas_threads.threads_to_split(n)
    shares = blas_threads.split_ranges(n, threads)
    grad_x = empty(x_shape, g.dtype) if need_x else None
    rows_scratch = [patches.scratch() for _ in shares] if need_w and threads > 1 else None
    sums = [empty((f, patches.columns), g.dtype) for _ in shares] if need_w else None
    product_scratch = empty((len(shares), f, patches.columns), g.dtype) if need_w else None
    dcols_scratch = empty((len(shares), min(n, per_chunk) * positions, weights.shape[1]), g.dtype) if need_x else None

    def backward_share(share: int, start: int, stop: int) -> None:
        for index, (n0, n1) in enumerate(chunks(start, stop, per_chunk)):
            g_chunk = g[:, n0 * positions : n1 * positions]
            if need_w:
                rows = patches.rows(n0, n1) if rows_scratch is None else patches.rows_into(n0, n1, rows_scratch[share])
                if index == 0:
                    np.matmul(g_chunk, rows, out=sums[share])
                else:
                    np.add(sums[share], np.matmul(g_chunk, rows, out=product_scratch[share]), out=sums[share])
            if need_x:
                dcols = np.matmul(g_chunk.T, weights, out=dcols_scratch[share, : g_chunk.shape[1]])
                col2im_channels_last(
                    dcols, (n1 - n0, *x_shape[1:]), geometry.kernel, geometry.stride, geometry.pad, out=grad_x[n0:n1]
                )

    if threads > 1:
        blas_threads.run_split(backward_share, shares)
    else:
        backward_share(0, 0, n)
    if not need_w:
        return grad_x, None
    for share_sum in sums[1:]:
        np.add(sums[0], share_sum, out=sums[0])
    return grad_x, sums[0]


#: the fewest filters for which :func:`conv_forward_fast` convolves directly: the direct kernel's
#: tile is 64 filters wide, and with fewer than half of them it multiplies mostly zeros
DIRECT_MIN_FILTERS = 32


def compiles_for_avx512() -> bool:
    """Whether Numba compiles for AVX-512F here, as Numba decides it: the CPU features it
    was configured with (``NUMBA_CPU_FEATURES``, which tinybnn sets on such CPUs), else,
    unless it was given another CPU by name, the host's. A named CPU without features
    counts as no: its features are not known here."""
    features = numba.config.CPU_FEATURES
    if features is None and numba.config.CPU_NAME is None:
        features = host_cpu_features()
    return features is not None and "+avx512f" in features.split(",")


#: the direct kernel's (6 x 64) float32 tile is 24 vector registers of AVX-512's 32; with AVX2's
#: 16 it spills, and LeNet's second convolution ran at half the GEMM path's speed (AMD EPYC,
#: 2 threads: 31 ms a batch against 16 ms), so it is taken only where the tile fits
DIRECT_TILE_FITS = compiles_for_avx512()


def uses_direct_convolution(x: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> bool:
    """Whether :func:`conv_forward_fast` takes :func:`conv_forward_direct` for these arrays:
    on a CPU whose registers hold its tile (:data:`DIRECT_TILE_FITS`), float32 throughout (the
    kernel's tile is float32) and at least DIRECT_MIN_FILTERS filters."""
    float32 = x.dtype == np.float32 and w.dtype == np.float32 and (b is None or b.dtype == np.float32)
    return DIRECT_TILE_FITS and float32 and w.shape[0] >= DIRECT_MIN_FILTERS


def direct_filter_tiles(w: np.ndarray, b: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """The filters as :func:`.kernels.conv_direct_into` reads them: (blocks, KH KW C, 64)
    tiles of 64 filters each, taps in (u, v, c) order, and the bias as (blocks, 64); the
    last block is padded with zero filters."""
    f = w.shape[0]
    width = kernels.DIRECT_FILTERS
    blocks = -(-f // width)
    matrix = weights_channels_last(w)
    tiles = empty((blocks, matrix.shape[1], width), np.float32)
    bias = np.zeros((blocks, width), np.float32)
    for block in range(blocks):
        start, stop = block * width, min(f, (block + 1) * width)
        tiles[block, :, : stop - start] = matrix[start:stop].T
        tiles[block, :, stop - start :] = 0.0
        if b is not None:
            bias[block, : stop - start] = b[start:stop]
    return tiles, bias


@functools.lru_cache(maxsize=64)
def direct_offsets(
    kh: int, kw: int, c: int, padded_width: int, oh: int, ow: int, sh: int, sw: int
) -> tuple[np.ndarray, np.ndarray]:
    """Where :func:`.kernels.conv_direct_into` reads in one padded channel-last image: the
    offset of every tap (u, v, c) from a window's corner, and of every output pixel's
    window corner from the image's start, both in elements. Kept per geometry, read-only."""
    u, v, channel = np.meshgrid(np.arange(kh), np.arange(kw), np.arange(c), indexing="ij")
    taps = ((u * padded_width + v) * c + channel).reshape(-1)
    i, j = np.meshgrid(np.arange(oh), np.arange(ow), indexing="ij")
    pixels = ((i * sh * padded_width + j * sw) * c).reshape(-1)
    taps.flags.writeable = False
    pixels.flags.writeable = False
    return taps, pixels


def conv_forward_direct(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None, geometry: ConvGeometry
) -> tuple[np.ndarray, ChannelsLastPatches]:
    """:func:`conv_forward_reference` without a patch matrix, for float32 arrays: x copied
    channel-last with its padding, then every output summed tap by tap straight from it
    (:func:`.kernels.conv_direct_into`), 6 pixels x 64 filters at a time in registers.

    im2col + GEMM writes a patch matrix KH KW times the size of the input (41 MB for LeNet's
    second convolution at batch 100) and reads it back from memory; this reads the 3.7 MB
    input. On an Intel Xeon with AVX-512, LeNet's second convolution, Fashion-MNIST training on
    2 threads: an epoch's Conv2d forward took 7.2 s through the patch matrix and 5.7 s this way
    (:data:`DIRECT_TILE_FITS` says where it is taken).
    Returns the patches for the backward pass, which builds their rows from the padded copy."""
    f, c, kh, kw = w.shape
    n = x.shape[0]
    (oh, ow), (sh, sw) = geometry.out_hw, geometry.stride
    images = channels_last(x, pad=geometry.pad, pad_value=geometry.pad_value)
    padded_width = images.shape[2]
    tiles, bias = direct_filter_tiles(w, b)
    taps, pixels = direct_offsets(kh, kw, c, padded_width, oh, ow, sh, sw)
    y = empty((f, n * oh * ow), np.float32)
    kernels.conv_direct_into(images, tiles, taps, pixels, bias, y.reshape(f, n, oh * ow))
    patches = ChannelsLastPatches(x, geometry, ones_column=b is not None, padded_images=images)
    return as_nchw(y, geometry), patches


def conv_forward_fast(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None, geometry: ConvGeometry
) -> tuple[np.ndarray, ChannelsLastPatches]:
    """:func:`conv_forward_reference` by :func:`conv_forward_direct` where
    :func:`uses_direct_convolution` says so; otherwise a few images at a time: the patch rows of each chunk
    (:class:`ChannelsLastPatches`, columns in (u, v, c) order) times the filters in the same
    order, with the bias as the weight of one more input column that is always 1,
    ``[W | b] @ [cols | 1]^T``, so adding it costs no pass over the output. Each chunk is
    multiplied as ``[cols | 1] @ [W | b]^T`` (chunk rows x F) and copied transposed into
    its columns of the (F, N OH OW) output: OpenBLAS runs that shape faster (LeNet's second
    convolution, 9 images a chunk, 1 thread: 1.04 ms against 1.29 ms); with more than one
    thread, each thread takes a share of the images (:mod:`tinybnn.blas_threads`). Returns the
    patches (which rebuild their rows for the backward pass) in place of the matrix."""
    if uses_direct_convolution(x, w, b):
        return conv_forward_direct(x, w, b, geometry)
    f, n, positions = w.shape[0], x.shape[0], geometry.positions
    patches = ChannelsLastPatches(x, geometry, ones_column=b is not None)
    weights = weights_channels_last(w, b)
    y = empty((f, n * positions), np.result_type(weights, x))
    threads = blas_threads.threads_to_split(n)
    shares = blas_threads.split_ranges(n, threads)
    rows_scratch = [patches.scratch() for _ in shares] if threads > 1 else None
    chunk_rows = min(n, patches.per_chunk) * positions
    products = empty((len(shares), chunk_rows, f), y.dtype)

    def forward_share(share: int, start: int, stop: int) -> None:
        for n0, n1 in chunks(start, stop, patches.per_chunk):
            rows = patches.rows(n0, n1) if rows_scratch is None else patches.rows_into(n0, n1, rows_scratch[share])
            product = np.matmul(rows, weights.T, out=products[share, : rows.shape[0]])
            y[:, n0 * positions : n1 * positions] = product.T

    if threads > 1:
        blas_threads.run_split(forward_share, shares)
    else:
        forward_share(0, 0, n)
    return as_nchw(y, geometry), patches


def conv_backward_fast(
    grad: np.ndarray, patches: Patches, w: np.ndarray, geometry: ConvGeometry, needs: tuple[bool, bool, bool]
) -> tuple[np.ndarray | None, ...]:
    """:func:`conv_backward_reference` by :func:`backward_in_chunks` on the forward pass's
    :class:`ChannelsLastPatches`; the bias gradient is the last column of ``G @ [cols | 1]``,
    the weights' GEMM."""
    need_x, need_w, need_b = needs
    k = w[0].size
    grad_x, full = backward_in_chunks(
        channel_rows(grad), patches, weights_channels_last(w), geometry, need_x, need_w or need_b
    )
    grad_w = weights_from_channels_last(full[:, :k], w.shape) if need_w else None
    grad_b = full[:, k].copy() if need_b else None
    return grad_x, grad_w, grad_b


conv_forward = kernel("conv_forward", conv_forward_reference, conv_forward_fast, SUMMED_IN_ANOTHER_ORDER)
conv_backward = kernel("conv_backward", conv_backward_reference, conv_backward_fast, SUMMED_IN_ANOTHER_ORDER)


class Conv2d(Function):
    """y = conv(x, w) + b (see the module docstring for the formulas).

    The output (N, F, OH, OW) is the GEMM's (F, N OH OW) seen through a
    transposed view, so that its (OH, OW) planes are contiguous (channel-major).
    """

    @staticmethod
    def forward(
        ctx: Context,
        x: np.ndarray,
        w: np.ndarray,
        b: np.ndarray | None = None,
        stride=(1, 1),
        pad=(0, 0),
        pad_value: float = 0.0,
    ) -> np.ndarray:
        geometry = ConvGeometry.of(x.shape, w.shape, stride, pad, pad_value)
        y, patches = conv_forward(x, w, b, geometry)
        ctx.save_for_backward(patches, w)
        ctx.geometry = geometry
        return y

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> tuple:
        patches, w = ctx.saved_values
        with_bias = len(ctx.needs_input_grad) == 3
        need_x, need_w, need_b = (*ctx.needs_input_grad, False)[:3]
        grad_x, grad_w, grad_b = conv_backward(grad, patches, w, ctx.geometry, (need_x, need_w, need_b))
        return (grad_x, grad_w, grad_b) if with_bias else (grad_x, grad_w)


def conv2d(x, w, b=None, stride=1, pad=0, pad_value: float = 0.0):
    """Differentiable 2-D convolution of tensors (NCHW); ``b`` may be None."""
    if b is None:
        return Conv2d.apply(x, w, stride=stride, pad=pad, pad_value=pad_value)
    return Conv2d.apply(x, w, b, stride=stride, pad=pad, pad_value=pad_value)
