"""Solutions of chapter 8's exercises (docs/tutorial/exercises/08_explorer.py)."""

import numpy as np


def first_maximum(window):
    row, column = np.unravel_index(int(np.argmax(window)), window.shape)
    return [int(row), int(column)]


def output_by_hand(patch_bits, filter_bits, scale, shift):
    popcount = int(np.count_nonzero(patch_bits != filter_bits))
    dot = patch_bits.size - 2 * popcount
    return popcount, dot, np.float32(dot * np.float64(scale) + np.float64(shift))
