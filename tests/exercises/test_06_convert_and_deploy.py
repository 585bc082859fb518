"""Chapter 6's exercises (docs/tutorial/exercises/06_convert_and_deploy.py), against tinybnn.convert."""

import numpy as np

from tinybnn.autograd import Tensor
from tinybnn.convert import folded_affine
from tinybnn.layers import BatchNorm, QFullyConnected


def test_folded_scale_shift_matches_the_converter(exercise):
    rng = np.random.default_rng(8)
    layer = QFullyConnected(3, act_bit=1, weight_bit=1, scaling_factor=True)
    bn = BatchNorm()
    x = Tensor(rng.normal(size=(8, 6)).astype(np.float32))
    bn(layer(x))
    bn.gamma.data[:] = [1.5, -0.5, 2.0]
    bn.beta.data[:] = [0.2, -0.1, 0.0]
    bn.eval()
    want = folded_affine(layer, bn)
    alpha = np.abs(layer.weight.data.astype(np.float64)).mean(axis=1)
    bias = layer.bias.data if layer.bias is not None else np.zeros(3, dtype=np.float32)
    got = exercise.folded_scale_shift(alpha, bias, bn.gamma.data, bn.beta.data, bn.running_mean, bn.running_var, bn.eps)
    for name, g, w in zip(("scale", "shift"), got, want):
        assert np.allclose(g, w, rtol=1e-6, atol=1e-7), f"{name}: expected {w}, got {g}"


def test_dot_threshold_decides_every_dot_like_the_sign(exercise):
    rng = np.random.default_rng(9)
    dots = np.arange(-64, 65)
    for scale, shift in [(0.5, 1.0), (0.25, -3.0), (2.0, 0.0), *zip(rng.uniform(0.01, 1, 20), rng.normal(0, 5, 20))]:
        t = exercise.dot_threshold(scale, shift)
        want = scale * dots + shift >= 0
        wrong = dots[(dots >= t) != want]
        assert wrong.size == 0, f"scale {scale}, shift {shift}: threshold {t} decides dot = {wrong[0]} wrongly"


def test_packed_weight_bytes(exercise):
    for filters, k, want in ((64, 1600, 12800), (1000, 1024, 128000), (10, 65, 160), (1, 1, 8)):
        got = exercise.packed_weight_bytes(filters, k)
        assert got == want, f"{filters} rows of {k} bits take {want} bytes, got {got}"
