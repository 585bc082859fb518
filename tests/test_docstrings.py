"""The public API documents its math: docstring examples run, and help() shows the formulas."""

import doctest
import importlib
import pydoc

import pytest

# modules whose docstrings carry runnable examples (>>>), and how many examples each has at least
EXAMPLES = {
    "tinybnn.autograd.tensor": 4,
    "tinybnn.autograd.quantize": 10,
    "tinybnn.layers.quantized": 20,
    "tinybnn.layers.convolution": 3,
    "tinybnn.layers.dense": 3,
    "tinybnn.convert": 6,
}


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted >= EXAMPLES[name]


@pytest.mark.parametrize(
    "path, phrases",
    [
        (
            "tinybnn.layers.QConvolution",
            [
                "y[n, f, i, j] = sum_{c, u, v}",
                "sign(0) = +1",
                "K - 2 popcount(bits(patch of x) XOR bits(W_f))",
                "pad_value",
                "clip=(-1, 1)",
                "Parameters",
                ">>> layer = QConvolution(",
            ],
        ),
        ("tinybnn.layers.QFullyConnected", ["D - 2 popcount(bits(x_n) XOR bits(W_h))", "|W| <= 1"]),
        ("tinybnn.layers.QActivation", ["sign(0) = +1", "|x| <= grad_cancel", "2 - 2|x|", "DoReFa"]),
        ("tinybnn.layers.packed.PackedConvolution", ["dot * scale[f] + shift[f]", "(F, KH KW Cw)"]),
        ("tinybnn.layers.BatchNorm", ["gamma[c] (x - mu[c]) / sqrt(var[c] + eps) + beta[c]"]),
        ("tinybnn.convert.folded_affine", ["scale = alpha gamma / sqrt(running_var + eps)"]),
        ("tinybnn.autograd.Tensor", ["dy/dx_i = 4 x_i"]),
    ],
)
def test_help_shows_the_math(path, phrases):
    text = pydoc.render_doc(pydoc.locate(path), renderer=pydoc.plaintext)
    for phrase in phrases:
        assert phrase in text, f"help({path}) lacks {phrase!r}"
