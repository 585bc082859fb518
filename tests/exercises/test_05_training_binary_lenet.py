"""Chapter 5's exercises (docs/tutorial/exercises/05_training_binary_lenet.py), against tinybnn's BatchNorm."""

import numpy as np

from tinybnn.autograd import Tensor
from tinybnn.layers import BatchNorm


def test_sgd_step_clips_to_plus_minus_one(exercise):
    w = np.array([0.95, -0.5, 0.0, -0.99], dtype=np.float32)
    g = np.array([-1.0, 1.0, 0.5, 2.0], dtype=np.float32)
    before = w.copy()
    got = np.asarray(exercise.sgd_step_with_clipping(w, g, 0.1))
    want = np.array([1.0, -0.6, -0.05, -1.0], dtype=np.float32)
    assert np.array_equal(w, before), "the step must not change the weights it was given"
    assert np.allclose(got, want), f"expected {want}, got {got}"


def test_flip_ratio_counts_sign_changes_with_sign_of_zero_plus_one(exercise):
    before = np.array([0.0, -0.1, 0.0, 0.5, -0.5, 0.2, -0.3, 0.9])
    after = np.array([-0.1, 0.0, 0.3, 0.4, 0.5, 0.1, -0.2, 1.0])
    got = exercise.flip_ratio(before, after)
    assert abs(got - 3 / 8) < 1e-12, f"3 of these 8 weights flip (0 -> -0.1, -0.1 -> 0, -0.5 -> 0.5), got {got}"


def test_folded_batchnorm_gives_the_same_outputs(exercise):
    rng = np.random.default_rng(7)
    bn = BatchNorm(eps=1e-3)
    bn(Tensor(rng.normal(2.0, 3.0, size=(16, 4)).astype(np.float32)))  # builds it, moves the running statistics
    bn.gamma.data[:] = [0.5, -1.0, 2.0, 1.5]
    bn.beta.data[:] = [0.1, 0.0, -0.3, 1.0]
    bn.eval()
    x = rng.normal(size=(5, 4)).astype(np.float32)
    want = bn(Tensor(x)).data
    scale, shift = exercise.fold_batchnorm(bn.gamma.data, bn.beta.data, bn.running_mean, bn.running_var, bn.eps)
    got = np.asarray(scale) * x + np.asarray(shift)
    assert np.asarray(scale).shape == (4,), f"one scale per channel, got shape {np.asarray(scale).shape}"
    assert np.allclose(got, want, rtol=1e-5, atol=1e-5), f"scale x + shift gives {got[0]}, the BatchNorm {want[0]}"
