"""Exercises of chapter 9: C and a microcontroller.

Write each function below in place of its ``raise NotImplementedError``,
then check them (how to work on a copy: docs/tutorial/exercises/README.md):

    python -m pytest -q -m exercises tests/exercises/test_09_c_and_microcontroller.py
"""


def popcount64(x):
    """The number of 1 bits of the 64-bit word ``x`` (a Python int, 0 <= x < 2**64), as an int.

    Write it as the exported C file does when no compiler builtin is at hand:
    with shifts, masks, additions and one multiplication only (no ``bin``, no
    ``int.bit_count``, no loop over the 64 bits). Add neighbouring bits in
    pairs (mask 0x5555...), the pairs in nibbles (0x3333...), the nibbles in
    bytes (0x0f0f...), then sum the eight bytes into the top one by
    multiplying by 0x0101010101010101 and shifting right by 56. Python's ints
    do not wrap as C's ``uint64_t`` does: keep the product to 64 bits with
    ``& 0xffffffffffffffff``.

    >>> popcount64(0xff00000000000001)
    9
    """
    raise NotImplementedError("exercise 9.1: a portable popcount of a 64-bit word")


def static_ram_bytes(height, width, stages):
    """The bytes of static RAM the streamed C program keeps: every stage's packed output.

    The image is ``height x width``; ``stages`` lists the convolution stages
    in order (the first on the image, then the binary convolutions; not the
    dense layer, which writes no bits), each as ``(filters, kernel, pad, pool)``:
    a square ``kernel`` at stride 1 with ``pad`` pixels on each side, then a
    ``pool x pool`` max pooling at stride ``pool``. A convolution makes an
    ``n + 2 pad - kernel + 1`` wide output of an ``n`` wide input, the pooling
    ``(m - pool) // pool + 1`` of an ``m`` wide one. Each pooled pixel is kept
    as ``ceil(filters / 64)`` uint64 words of 8 bytes. An int.

    >>> static_ram_bytes(28, 28, [(64, 5, 0, 2), (64, 5, 0, 2)])  # the LeNet: 12x12 + 4x4 words
    1280
    """
    raise NotImplementedError("exercise 9.2: the static RAM of a streamed network")


def c_weight_array(name, signs):
    """The C text the exporter writes for a binary layer's weights: ``signs`` packed, as a const array.

    ``signs`` is a 2-D array of +1 and -1, one filter per row, ``k`` values a
    row. Pack each row into ``ceil(k / 64)`` uint64 words: value ``j`` goes to
    bit ``j % 64`` of word ``j // 64``, the bit is 1 for +1 and 0 for -1, the
    unused bits of the last word are 0. Return, for the words of all rows in
    order, row after row, exactly::

        static const uint64_t NAME[N] = {
            0x0000000000000005u, 0x...u, ... (8 words a line, ", " between them)
            0x...u
        };

    that is ``"static const uint64_t " + name + f"[{N}] = {{\\n    "``, the
    lines joined by ``",\\n    "``, then ``"\\n};\\n"``; every word as
    ``0x`` and 16 lower-case hex digits and ``u``.

    >>> print(c_weight_array("w", [[1, -1, 1]]), end="")
    static const uint64_t w[1] = {
        0x0000000000000005u
    };
    """
    raise NotImplementedError("exercise 9.3: pack +-1 rows into the exporter's C array text")
