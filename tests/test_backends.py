"""The backend switch, the gradients of every op on the reference backend, and LeNet on both backends.

Gradients: every differentiable op against central differences in float64
(gradcheck's defaults: eps 1e-6, atol 1e-6, rtol 1e-4) on the reference
backend, inputs kept 1e-3 away from kinks and ties; straight-through
gradients, which no difference quotient gives, against their formulas.

Training: three SGD steps of the binary LeNet from one seed on each backend
give the same bits of binarized weights and activations, and float results
within rtol = atol = 1e-5 (float32 sums in another order, carried through
three steps and batch norm). SGD, not Adam: a gradient that is 0 in exact
arithmetic comes out of float32 sums as 0 on one backend and 1e-10 on the
other, and Adam, dividing by sqrt(v) + 1e-8, turns that into a step of
lr / 100, enough to flip the sign of a latent weight that sits near 0;
SGD moves it by lr 1e-10.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

import tinybnn.autograd as autograd
from tinybnn.autograd import (
    Tensor,
    active_backend,
    approx_sign,
    avg_pool2d,
    backend,
    batch_norm,
    binary_conv2d,
    binary_linear,
    conv2d,
    det_sign,
    gradcheck,
    hardtanh,
    max_pool2d,
    softmax_cross_entropy,
)
from tinybnn.autograd.backends import ENVIRONMENT_VARIABLE, Kernel
from tinybnn.autograd.conv import im2col_reference
from tinybnn.autograd.quantize import quantize_activation, quantize_weight
from tinybnn.errors import ArgumentError
from tinybnn.layers import QActivation, QConvolution, QFullyConnected, unfused
from tinybnn.models import lenet
from tinybnn.optim import SGD
from tinybnn.training import train_epoch

from .test_training import toy_data

WHICH = Kernel("which", lambda: "reference", lambda: "fast")


@pytest.fixture(autouse=True)
def no_backend_from_the_environment(monkeypatch):
    monkeypatch.delenv(ENVIRONMENT_VARIABLE, raising=False)


def test_fast_by_default_and_reference_inside_the_block():
    assert active_backend() == "fast" and WHICH() == "fast"
    with backend("reference") as chosen:
        assert chosen.name == "reference" and WHICH() == "reference"
        with backend("fast"):
            assert WHICH() == "fast"
        assert WHICH() == "reference"
    assert WHICH() == "fast"


def test_the_block_restores_the_previous_backend_after_an_exception():
    with pytest.raises(KeyError), backend("reference"):
        raise KeyError("boom")
    assert active_backend() == "fast"


def test_a_plain_call_sets_the_backend_until_the_next_one():
    with backend("fast"):  # restores whatever the plain calls leave
        backend("reference")
        assert WHICH() == "reference"
        backend("fast")
        assert WHICH() == "fast"


def test_the_environment_variable_chooses_and_an_explicit_choice_wins(monkeypatch):
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, "reference")
    assert WHICH() == "reference"
    with backend("fast"):
        assert WHICH() == "fast"


def test_unknown_names_are_refused_naming_the_argument_or_the_variable(monkeypatch):
    with pytest.raises(ArgumentError, match=r"backend's argument name must be 'reference' or 'fast', got 'slow'"):
        backend("slow")
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, "Fast")
    with pytest.raises(ArgumentError, match=r"environment variable TINYBNN_BACKEND must be .* got 'Fast'"):
        WHICH()


def test_the_environment_variable_reaches_a_fresh_process():
    code = "import tinybnn.autograd as a; print(a.active_backend())"
    env = {**os.environ, ENVIRONMENT_VARIABLE: "reference"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "reference"


def test_a_backward_runs_on_the_backend_of_its_forward():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)

    def gradients(forward_on, backward_on):
        tensors = [Tensor(a, requires_grad=True) for a in (x, w, b)]
        with backend(forward_on):
            y = conv2d(*tensors, pad=1)  # the fast forward keeps a column of ones the reference does not
        with backend(backward_on):
            (y * y).sum().backward()
        return [t.grad for t in tensors]

    for forward_on in ("reference", "fast"):
        expected = gradients(forward_on, forward_on)
        for got, want in zip(gradients(forward_on, "fast" if forward_on == "reference" else "reference"), expected):
            assert got.tobytes() == want.tobytes()


# ---- gradients on the reference backend ---------------------------------------------------


def leaf(array):
    return Tensor(np.array(array, dtype=np.float64), requires_grad=True)


def distinct(shape, seed, spacing=1e-2):
    """Values at least ``spacing`` apart (no ties for max, no kinks within eps)."""
    rng = np.random.default_rng(seed)
    values = (rng.permutation(int(np.prod(shape))) - np.prod(shape) / 2 + 0.5) * spacing
    return values.reshape(shape)


def normal(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape)


OPS = {
    "conv2d with bias, stride 2, padding 1": (
        lambda x, w, b: conv2d(x, w, b, stride=2, pad=1),
        [normal((2, 2, 5, 5), 0), normal((3, 2, 3, 3), 1), normal(3, 2)],
    ),
    "conv2d, 1x3 kernel": (
        lambda x, w: conv2d(x, w, stride=(1, 2)),
        [normal((1, 2, 4, 6), 3), normal((2, 2, 1, 3), 4)],
    ),
    "max_pool2d 2x2/2": (lambda x: max_pool2d(x, 2), [distinct((2, 2, 4, 4), 5)]),
    "max_pool2d 3x3/2, overlapping": (lambda x: max_pool2d(x, 3, 2), [distinct((1, 2, 5, 5), 6)]),
    "avg_pool2d": (lambda x: avg_pool2d(x, 2, 1), [normal((1, 2, 3, 4), 7)]),
    "batch_norm, training": (
        lambda x, g, b: batch_norm(x, g, b, np.zeros(3), np.ones(3), training=True),
        [normal((4, 3, 2, 2), 8), normal(3, 9), normal(3, 10)],
    ),
    "batch_norm, evaluation": (
        lambda x, g, b: batch_norm(x, g, b, normal(3, 11), np.full(3, 0.7), training=False),
        [normal((4, 3), 12), normal(3, 13), normal(3, 14)],
    ),
    "tanh": (lambda x: x.tanh(), [normal((3, 4), 15)]),
    "sigmoid": (lambda x: x.sigmoid(), [normal((3, 4), 16)]),
    "relu": (lambda x: x.relu(), [distinct((3, 4), 17, 0.1)]),
    "hardtanh": (lambda x: hardtanh(x), [distinct((3, 5), 18, 0.15)]),
    "exp, log": (lambda x: (x.exp() + 1.0).log(), [normal((3, 4), 19)]),
    "matmul": (lambda a, b: a @ b, [normal((3, 4), 20), normal((4, 2), 21)]),
    "softmax cross-entropy": (lambda z: softmax_cross_entropy(z, np.array([0, 2, 1])), [normal((3, 4), 22)]),
    "add, sub, mul, div, pow, neg": (
        lambda a, b: -((a * b - a / (b * b + 1.0)) ** 3 + (a - b)),
        [normal((3, 4), 23), normal((1, 4), 24)],
    ),
    "sum, mean, max, reshape, transpose, abs": (
        lambda a: a.reshape(4, 3).transpose(1, 0).abs().max(axis=1) * a.sum(axis=0).mean(),
        [distinct((3, 4), 25, 0.1)],
    ),
}


@pytest.mark.parametrize("name", sorted(OPS))
def test_gradients_on_the_reference_backend(name):
    fn, arrays = OPS[name]
    with backend("reference"):
        assert gradcheck(fn, [leaf(a) for a in arrays])


def weighted_gradients(fn, *arrays, seed=0):
    """The gradients of L = sum(r * fn(inputs)) for fixed random r, and r, on the reference backend."""
    tensors = [leaf(a) for a in arrays]
    with backend("reference"):
        y = fn(*tensors)
        r = np.random.default_rng(seed).standard_normal(y.shape)
        (y * Tensor(r)).sum().backward()
    return [t.grad for t in tensors], r


def test_straight_through_gradients_follow_their_formulas():
    x = normal(50, 30) * 1.5
    x[:3] = [-1.0, 0.0, 1.0]  # the edges of the box pass
    (dx,), g = weighted_gradients(lambda t: det_sign(t, 0.7), x)
    assert np.array_equal(dx, g * (np.abs(x) <= 0.7))
    (dx,), g = weighted_gradients(approx_sign, x)
    assert np.array_equal(dx, g * np.maximum(2 - 2 * np.abs(x), 0))
    (dx,), g = weighted_gradients(lambda t: quantize_activation(t, 2), x)
    assert np.array_equal(dx, g * ((x >= 0) & (x <= 1)))
    (dw,), g = weighted_gradients(lambda t: quantize_weight(t, 3), x)
    t = np.tanh(x)
    np.testing.assert_allclose(dw, g * (1 - t * t) / np.abs(t).max(), rtol=1e-12)


def test_binary_layers_gradients_are_the_straight_through_formulas():
    x, w = normal((2, 3, 5, 5), 31) * 1.2, normal((4, 3, 3, 3), 32) * 1.2
    (dx, dw), r = weighted_gradients(lambda a, b: binary_conv2d(a, b, pad=1, pad_value=-1.0, grad_cancel=0.8), x, w)
    cols = im2col_reference(np.where(x >= 0, 1.0, -1.0), (3, 3), (1, 1), (1, 1), -1.0)
    g = r.transpose(1, 0, 2, 3).reshape(4, -1)
    np.testing.assert_allclose(dw, (g @ cols).reshape(w.shape) * (np.abs(w) <= 1), rtol=1e-12, atol=1e-12)
    composition, _ = weighted_gradients(lambda a, b: conv2d(det_sign(a, 0.8), det_sign(b), pad=1, pad_value=-1.0), x, w)
    assert np.array_equal(dx, composition[0]) and np.array_equal(dw, composition[1])

    x, w = normal((3, 70), 33), normal((5, 70), 34)
    (dx, dw), g = weighted_gradients(lambda a, b: binary_linear(a, b, grad_cancel=0.9), x, w)
    sx, sw = np.where(x >= 0, 1.0, -1.0), np.where(w >= 0, 1.0, -1.0)
    np.testing.assert_allclose(dx, (g @ sw) * (np.abs(x) <= 0.9), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dw, (g.T @ sx) * (np.abs(w) <= 1), rtol=1e-12, atol=1e-12)


# ---- the binary LeNet on both backends -----------------------------------------------------


def train_a_few_steps(name):
    x, y = toy_data(n=60)
    rng = np.random.default_rng(7)
    # the fused first block (tinybnn.layers.fusion, the fast backend's training op) sums in another order,
    # so a sign near 0 may differ: it is compared with the plain layers in tests/test_fast_conv.py; here
    # both backends run the same layers, kernel by kernel
    with backend(name), unfused():
        model = lenet(binary=True, rng=rng).build((1, 28, 28))
        loss, accuracy = train_epoch(model, SGD(model.parameters(), lr=0.1, momentum=0.9), x, y, 20, rng)  # 3 steps
        model.eval()
        activations, h = [], Tensor(x[:20])
        with autograd.no_grad():
            for layer in model:
                h = layer(h)
                if isinstance(layer, QActivation):
                    activations.append(h.data.copy())
    binary = [f"{i}.weight" for i, layer in enumerate(model) if isinstance(layer, (QConvolution, QFullyConnected))]
    return model.state_dict(), binary, activations, h.data, loss, accuracy


def test_the_binary_lenet_trains_to_the_same_bits_on_both_backends():
    reference, fast = train_a_few_steps("reference"), train_a_few_steps("fast")
    (state_r, binary_weights, activations_r, logits_r, loss_r, accuracy_r) = reference
    (state_f, _, activations_f, logits_f, loss_f, accuracy_f) = fast
    assert state_r.keys() == state_f.keys() and len(binary_weights) == 2
    for name in binary_weights:
        assert np.array_equal(state_r[name] >= 0, state_f[name] >= 0), name
    for name in state_r:
        np.testing.assert_allclose(state_f[name], state_r[name], rtol=1e-5, atol=1e-5, err_msg=name)
    assert len(activations_r) == 2
    for got, want in zip(activations_f, activations_r):
        assert set(np.unique(want)) == {-1.0, 1.0} and np.array_equal(got, want)
    np.testing.assert_allclose(logits_f, logits_r, rtol=1e-5, atol=1e-5)
    assert loss_f == pytest.approx(loss_r, rel=1e-5) and accuracy_f == accuracy_r


def test_the_command_line_refuses_an_unknown_backend_in_one_line(tmp_path):
    from PIL import Image

    image = tmp_path / "digit.png"
    Image.new("L", (28, 28)).save(image)
    env = {**os.environ, ENVIRONMENT_VARIABLE: "slow"}
    run = subprocess.run(
        [sys.executable, "-m", "tinybnn.cli", "predict", str(image)], env=env, capture_output=True, text=True
    )
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.splitlines() == [
        "tinybnn: error: the environment variable TINYBNN_BACKEND must be 'reference' or 'fast', got 'slow'"
    ]
