"""Chapter 4's exercises (docs/tutorial/exercises/04_binary_convolution.py), against tinybnn.autograd.conv."""

import numpy as np

from tinybnn.autograd import Tensor
from tinybnn.autograd.conv import conv2d, im2col_reference, output_size

CASES = [((28, 5, 1, 0)), (12, 5, 1, 2), (7, 3, 2, 1), (8, 2, 2, 0), (5, 5, 3, 0)]


def test_output_size(exercise):
    for case in CASES:
        got, want = exercise.output_size(*case), output_size(*case)
        assert got == want, f"output_size(size, kernel, stride, pad = {case}) is {want}, got {got}"


def test_im2col_matches_the_reference(exercise):
    x = np.random.default_rng(5).normal(size=(2, 3, 6, 7)).astype(np.float32)
    for kernel, stride, pad, value in (((3, 3), (1, 1), (0, 0), 0.0), ((2, 3), (2, 1), (1, 2), 1.0)):
        want = im2col_reference(x, kernel, stride, pad, value)
        got = np.asarray(exercise.im2col(x, kernel, stride, pad, value))
        assert got.shape == want.shape, (
            f"kernel {kernel} stride {stride} pad {pad}: shape {want.shape}, got {got.shape}"
        )
        assert np.array_equal(got, want), f"kernel {kernel} stride {stride} pad {pad}: the patches differ"


def test_binary_conv2d_pads_with_plus_or_minus_one(exercise):
    rng = np.random.default_rng(6)
    x = rng.normal(size=(2, 3, 5, 5)).astype(np.float32)
    x[0, 0, 0, :2] = 0.0
    w = rng.normal(size=(4, 3, 3, 3)).astype(np.float32)
    bx, bw = np.where(x >= 0, 1.0, -1.0).astype(np.float32), np.where(w >= 0, 1.0, -1.0).astype(np.float32)
    for value in (1.0, -1.0):
        want = conv2d(Tensor(bx), Tensor(bw), stride=1, pad=1, pad_value=value).data
        got = np.asarray(exercise.binary_conv2d(x, w, (1, 1), (1, 1), value))
        assert got.shape == want.shape, f"pad_value {value}: expected shape {want.shape}, got {got.shape}"
        assert np.array_equal(got, want), (
            f"pad_value {value}: at output [0, 0, 0, :3] expected {want[0, 0, 0, :3]}, got {got[0, 0, 0, :3]}"
        )
