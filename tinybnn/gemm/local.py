"""Scratch arrays on a compiled kernel's stack, so that LLVM keeps them in registers.

A Numba kernel's ``np.empty`` allocates on the heap, through Numba's
runtime; LLVM cannot tell that such an array is private to the loop, so an
accumulator kept there is loaded and stored at every step. An array placed
on the stack (``alloca``, in the entry block of the function that uses it)
is known to be private: once its loops are unrolled, LLVM's scalar
replacement keeps its elements in vector registers. Each thread running a
kernel has its own stack, so such scratch is safe under concurrent calls.

:func:`register_block` returns a float32 ``(ROWS, COLUMNS)`` C-contiguous
array of that kind, :func:`word_block` a uint64 ``(WORD_ROWS, COLUMNS)`` one
(:func:`stack_tile` makes them; no reference count; it lives until the kernel returns).
It is for small accumulator tiles only: a kernel that calls it twice gets
two arrays, and one call inside a loop gives the same array every iteration.
"""

from __future__ import annotations

from numba import types
from numba.core import cgutils
from numba.extending import intrinsic
from numba.np.arrayobj import make_array, populate_array

#: the tile's shape: 4 rows (e.g. pixels of a pooling window) of 64 float32 (four 512-bit vectors each):
#: 16 vector accumulators, half of AVX-512's 32 registers, enough independent chains to hide FMA latency
ROWS, COLUMNS = 4, 64


def stack_tile(dtype, rows: int, columns: int):
    """An intrinsic returning a (rows, columns) C-contiguous array of Numba type ``dtype`` on the stack of
    the calling kernel, uninitialized."""
    array_type = types.Array(dtype, 2, "C")
    itemsize = dtype.bitwidth // 8

    @intrinsic
    def tile(typingctx):
        def codegen(context, builder, signature, args):
            def intp(value):
                return context.get_constant(types.intp, value)

            data = cgutils.alloca_once(builder, context.get_value_type(dtype), size=intp(rows * columns))
            array = make_array(array_type)(context, builder)
            populate_array(
                array,
                data=data,
                shape=[intp(rows), intp(columns)],
                strides=[intp(itemsize * columns), intp(itemsize)],
                itemsize=intp(itemsize),
                meminfo=None,
            )
            return array._getvalue()

        return array_type(), codegen

    return tile


#: a (ROWS, COLUMNS) float32 tile
register_block = stack_tile(types.float32, ROWS, COLUMNS)
#: a (WORD_ROWS, COLUMNS) uint64 tile: 2 rows of 64 counters, 16 vectors of 8 uint64
WORD_ROWS = 2
word_block = stack_tile(types.uint64, WORD_ROWS, COLUMNS)
