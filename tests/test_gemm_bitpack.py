"""Bit packing: the fast Numba packer against the obvious NumPy one, round trips, conventions, errors."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from .strategies import float_arrays, pad_multiples, reduction_lengths, sizes, with_layout

from tinybnn.errors import ArgumentError, ShapeError
from tinybnn.gemm import (
    WORD_BITS,
    binary_sign,
    pack_bits,
    pack_bits_numpy,
    packed_words,
    unpack_bits,
)

PACKERS = [pack_bits, pack_bits_numpy]


@st.composite
def arrays_and_axis(draw):
    ndim = draw(st.integers(1, 3))
    axis = draw(st.integers(-ndim, ndim - 1))
    shape = [draw(sizes(4)) for _ in range(ndim)]
    shape[axis] = draw(reduction_lengths(200))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    return draw(float_arrays(tuple(shape), dtype)), axis


@given(arrays_and_axis(), pad_multiples())
def test_fast_packer_equals_obvious_packer(x_axis, pad):
    x, axis = x_axis
    fast = pack_bits(x, axis=axis, pad_words_to=pad)
    slow = pack_bits_numpy(x, axis=axis, pad_words_to=pad)
    assert fast.dtype == slow.dtype == np.uint64
    assert fast.shape == slow.shape
    np.testing.assert_array_equal(fast, slow)


@given(arrays_and_axis(), pad_multiples(), st.sampled_from(PACKERS))
def test_unpack_of_pack_is_sign(x_axis, pad, packer):
    x, axis = x_axis
    packed = packer(x, axis=axis, pad_words_to=pad)
    k = x.shape[axis]
    np.testing.assert_array_equal(unpack_bits(packed, k, axis=axis), binary_sign(x))


@given(arrays_and_axis(), pad_multiples(), st.sampled_from(PACKERS))
def test_layout_moves_packed_axis_last_with_zero_tail(x_axis, pad, packer):
    x, axis = x_axis
    k = x.shape[axis]
    packed = packer(x, axis=axis, pad_words_to=pad)
    rest = tuple(s for i, s in enumerate(x.shape) if i != axis % x.ndim)
    kw = packed_words(k, pad)
    assert packed.shape == rest + (kw,)
    words = (k + WORD_BITS - 1) // WORD_BITS
    assert kw % pad == 0 and words <= kw < words + pad
    # Bits at positions >= k are zero: in the last partial word and in every padding word.
    full, rem = divmod(k, WORD_BITS)
    if rem:
        assert not np.any(packed[..., full] >> np.uint64(rem))
    assert not np.any(packed[..., full + (rem > 0) :])


@given(st.data())
def test_packing_ignores_memory_layout(data):
    shape = (data.draw(sizes(6)), data.draw(reduction_lengths(150)))
    x = data.draw(float_arrays(shape, np.float32, layout="C"))
    for layout in ("F", "strided", "reversed"):
        view = with_layout(x, layout)
        for axis in (0, 1):
            np.testing.assert_array_equal(pack_bits(view, axis=axis), pack_bits(x, axis=axis))


@pytest.mark.parametrize("packer", PACKERS)
def test_bits_are_lsb_first_one_for_plus_one(packer):
    #        bit: 0    1    2    3     4
    x = np.array([1.0, -1.0, 0.0, -2.0, -0.0])
    # +1 at bits 0, 2 (zero is +1) and 4 (-0.0 is +1 too): 0b10101
    np.testing.assert_array_equal(packer(x), np.array([0b10101], dtype=np.uint64))


@pytest.mark.parametrize("packer", PACKERS)
def test_bit_64_starts_the_second_word(packer):
    x = -np.ones(130)
    x[0] = x[63] = x[64] = x[129] = 1.0
    expected = np.array([1 | (1 << 63), 1, 1 << 1], dtype=np.uint64)
    np.testing.assert_array_equal(packer(x), expected)


@pytest.mark.parametrize("packer", PACKERS)
def test_integer_inputs_pack_by_sign(packer):
    x = np.array([[3, 0, -5], [-1, 7, 0]], dtype=np.int16)
    np.testing.assert_array_equal(packer(x, axis=1), np.array([[0b011], [0b110]], dtype=np.uint64))
    np.testing.assert_array_equal(packer(x, axis=0), np.array([[0b01], [0b11], [0b10]], dtype=np.uint64))


@pytest.mark.parametrize("packer", PACKERS)
def test_infinities_have_signs(packer):
    np.testing.assert_array_equal(packer(np.array([np.inf, -np.inf])), np.array([1], np.uint64))


def test_packed_words():
    assert packed_words(1) == 1
    assert packed_words(64) == 1
    assert packed_words(65) == 2
    assert packed_words(1600) == 25
    assert packed_words(1600, 8) == 32
    assert packed_words(6400, 8) == 104
    assert packed_words(512, 8) == 8


def test_binary_sign():
    x = np.array([-2.5, -0.0, 0.0, 1e-30, np.inf], dtype=np.float32)
    s = binary_sign(x)
    assert s.dtype == np.float32
    np.testing.assert_array_equal(s, [-1, 1, 1, 1, 1])
    assert binary_sign(np.array([3, -3])).dtype == np.float64


@pytest.mark.parametrize("packer", PACKERS)
@pytest.mark.parametrize(
    "bad, error, words",
    [
        (np.array([1.0, np.nan]), ArgumentError, "NaN"),
        (np.array([True, False]), ArgumentError, "dtype bool"),
        (np.array([1 + 1j]), ArgumentError, "complex"),
        (np.array(["a"]), ArgumentError, "dtype"),
        (np.float64(1.0), ShapeError, "0-d"),
        (np.zeros((3, 0)), ShapeError, "empty axis"),
    ],
)
def test_bad_inputs_are_refused(packer, bad, error, words):
    with pytest.raises(error, match=words):
        packer(bad)


@pytest.mark.parametrize("packer", PACKERS)
def test_bad_arguments_are_refused(packer):
    x = np.ones((2, 3))
    with pytest.raises(ArgumentError, match="axis 2 is out of range"):
        packer(x, axis=2)
    with pytest.raises(ArgumentError, match="axis must be an int"):
        packer(x, axis=0.0)
    with pytest.raises(ArgumentError, match="pad_words_to must be >= 1"):
        packer(x, pad_words_to=0)


def test_errors_are_value_errors():
    with pytest.raises(ValueError):
        pack_bits(np.array([np.nan]))


def test_unpack_refuses_bad_input():
    with pytest.raises(ArgumentError, match="uint64"):
        unpack_bits(np.zeros(2, dtype=np.int64), 10)
    with pytest.raises(ShapeError, match="fewer than the 2"):
        unpack_bits(np.zeros((3, 1), dtype=np.uint64), 65)
    with pytest.raises(ArgumentError, match="k must be >= 1"):
        unpack_bits(np.zeros((3, 1), dtype=np.uint64), 0)
    with pytest.raises(ArgumentError, match="out of range"):
        unpack_bits(np.zeros((3, 1), dtype=np.uint64), 5, axis=3)


def test_unpack_ignores_padding_words_and_restores_axis():
    x = np.where(np.arange(70 * 3).reshape(70, 3) % 3 == 0, 1.0, -1.0)
    packed = pack_bits(x, axis=0, pad_words_to=8)
    assert packed.shape == (3, 8)
    out = unpack_bits(packed, 70, axis=0, dtype=np.float64)
    assert out.shape == (70, 3) and out.dtype == np.float64
    np.testing.assert_array_equal(out, x)
