"""Chapter 7's exercises (docs/tutorial/exercises/07_latent_weights.py), against tinybnn's Bop and diagnostics."""

import numpy as np

from tinybnn.autograd import Tensor
from tinybnn.diagnostics import BinaryDiagnostics
from tinybnn.layers import QActivation, Sequential
from tinybnn.optim_bop import bop_step_reference


def test_bop_step_matches_tinybnn(exercise):
    rng = np.random.default_rng(3)
    w = np.where(rng.random(12) < 0.5, -1.0, 1.0).astype(np.float32)
    m = rng.normal(0, 1e-3, 12).astype(np.float32)
    g = rng.normal(0, 1e-2, 12).astype(np.float32)
    w_before, m_before = w.copy(), m.copy()
    got_w, got_m = (np.asarray(a) for a in exercise.bop_step(w, m, g, 0.1, 1e-4))
    want_w, want_m = w.copy(), m.copy()
    flips = bop_step_reference(want_w, g, want_m, 0.1, 1e-4)
    assert np.array_equal(w, w_before) and np.array_equal(m, m_before), "bop_step must not change its inputs"
    assert np.allclose(got_m, want_m, rtol=1e-6, atol=1e-9), f"m: expected {want_m}, got {got_m}"
    assert np.array_equal(got_w, want_w), f"expected weights {want_w} ({flips} flips), got {got_w}"


def test_bop_flips_only_above_the_threshold(exercise):
    w = np.array([1.0, 1.0, -1.0, -1.0])
    got_w, _ = exercise.bop_step(w, np.zeros(4), np.array([0.4, 0.6, -0.6, 0.6]), 0.5, 0.25)
    want = [1.0, -1.0, 1.0, -1.0]  # w m = [0.2, 0.3, 0.3, -0.3] against tau = 0.25
    assert np.array_equal(np.asarray(got_w), want), f"expected {want}, got {np.asarray(got_w).tolist()}"


def test_steps_to_flip_counts_to_the_crossing(exercise):
    got = exercise.steps_to_flip(0.75, 0.5, 0.125)
    assert got == 13, f"0.75 falls by 0.0625 a step: 0 (still +1) after 12, -0.0625 after 13; got {got}"
    got = exercise.steps_to_flip(-1.0, -0.5, 0.5)
    assert got == 4, f"-1 rises by 0.25 a step and reaches 0 (+1) after 4 steps; got {got}"


def test_steps_to_flip_respects_the_clipping(exercise):
    got = exercise.steps_to_flip(0.9, -1.0, 0.5)
    assert got is None, f"a gradient pushing w up only pins it at the bound 1: it never flips; got {got}"
    got = exercise.steps_to_flip(0.9, -1.0, 0.5, max_steps=3)
    assert got is None, f"expected None, got {got}"


def test_cancelled_share_matches_the_diagnostics(exercise):
    x = np.array([[-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 3.0]], dtype=np.float32)
    net = Sequential(QActivation(grad_cancel=1.0))
    with BinaryDiagnostics(net) as diagnostics:
        net(Tensor(x))
        want = diagnostics.end_epoch()[0]["outside_window"]
    got = exercise.cancelled_share(x, 1.0)
    assert abs(got - want) < 1e-12, f"3 of 8 lie outside |x| <= 1 (|x| = 1 still passes): {want}, got {got}"
    got = exercise.cancelled_share(x, 0.4)
    assert abs(got - 7 / 8) < 1e-12, f"with grad_cancel 0.4, 7 of 8 lie outside (all but 0), got {got}"
