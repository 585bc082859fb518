"""The picture of an autograd graph (tinybnn.graph_picture, ``tinybnn show graph``): every node drawn,
arrows in the direction of the forward pass, gradients of every node, the same bytes every time."""

import io
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tinybnn.autograd import Tensor
from tinybnn.errors import ArgumentError
from tinybnn.graph_picture import (
    CONSTANT_FILL,
    FUNCTION_FILL,
    OUTLINE,
    VALUE_FILL,
    evaluate_expression,
    graph_image,
    graph_layout,
    node_gradients,
    parse_values,
)

EXPRESSIONS = ["(x * y + x) * y", "sign(w) * x + b", "tanh(x * 2 + y) - x ** 2", "x * x"]


def layout_of(text, values=None):
    root, leaves = evaluate_expression(text, values or {"x": 2.0, "y": -3.0}, strict=False)
    return root, leaves, graph_layout(root, {**leaves, "out": root})


def png(image):
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("text", EXPRESSIONS)
def test_every_tensor_and_function_is_a_box_of_its_own(text):
    root, leaves, layout = layout_of(text)
    image = graph_image(root, layout=layout)
    assert image.size == layout.size
    functions = [n for n in layout.nodes if n.kind == "function"]
    assert len(layout.nodes) - len(functions) == len(functions) + len(leaves) + sum(
        n.kind == "constant" for n in layout.nodes
    )  # a tensor per call, plus the leaves and the constants
    boxes = [n.box for n in layout.nodes]
    for i, (x0, y0, x1, y1) in enumerate(boxes):
        assert 0 <= x0 < x1 <= image.width and 0 <= y0 < y1 <= image.height
        assert image.getpixel((x0, (y0 + y1) // 2)) == OUTLINE  # its frame is drawn
        fill = {"value": VALUE_FILL, "constant": CONSTANT_FILL, "function": FUNCTION_FILL}[layout.nodes[i].kind]
        assert image.getpixel((x0 + 4, (y0 + y1) // 2)) == fill  # and filled (the text keeps off the edges)
        for a0, b0, a1, b1 in boxes[i + 1 :]:
            assert x1 <= a0 or a1 <= x0 or y1 <= b0 or b1 <= y0, "two boxes overlap"


@pytest.mark.parametrize("text", EXPRESSIONS)
def test_arrows_run_from_inputs_to_functions_to_outputs_left_to_right(text):
    root, _, layout = layout_of(text)
    kinds = [n.kind for n in layout.nodes]
    for (source, target), route in zip(layout.edges, layout.routes, strict=True):
        assert (kinds[source] == "function") != (kinds[target] == "function"), "arrows join tensors and functions"
        a, b = layout.nodes[source].box, layout.nodes[target].box
        assert layout.nodes[source].column < layout.nodes[target].column
        assert route[0][0] == a[2] and route[-1][0] == b[0] - 1, "an arrow leaves its source and ends at its target"
        xs = [x for x, _ in route]
        assert xs == sorted(xs), "an arrow never runs backwards"
    root_node = next(i for i, n in enumerate(layout.nodes) if n.lines[0] == "out")
    assert all(source != root_node for source, _ in layout.edges), "nothing leaves the result"
    assert layout.nodes[root_node].column == max(n.column for n in layout.nodes)


def test_an_arrow_that_skips_columns_passes_beside_the_boxes():
    root, _, layout = layout_of("(x * y + x) * y")
    for route in layout.routes:
        for (x0, y), (x1, _) in zip(route[1:-1:2], route[2:-1:2]):
            for node in layout.nodes:
                bx0, by0, bx1, by1 = node.box
                assert not (bx0 < x1 and x0 < bx1 and by0 <= y <= by1), "a long arrow runs under a box"


def test_a_value_used_twice_has_two_arrows_and_the_summed_gradient():
    root, leaves, layout = layout_of("x * x", {"x": 3.0})
    x_node = next(i for i, n in enumerate(layout.nodes) if n.lines[0] == "x")
    assert sum(source == x_node for source, _ in layout.edges) == 2
    assert layout.nodes[x_node].lines == ["x", "data 3", "grad 6"]


def test_the_gradients_shown_are_the_engines_and_the_differences():
    root, leaves = evaluate_expression("tanh(x * 2 + y) - x ** 2", {"x": 0.3, "y": -0.1})
    grads = node_gradients(root)
    root.backward()
    for name, leaf in leaves.items():
        assert np.allclose(grads[id(leaf)], leaf.grad), name
    u = Tensor(np.array(0.2), requires_grad=True)
    v = (u * u).tanh()
    inner = v.history.inputs[0]
    assert np.isclose(node_gradients(v)[id(inner)], 1 - np.tanh(0.04) ** 2)


def test_the_same_graph_gives_the_same_bytes():
    first = [png(graph_image(*layout_of(text)[:1])) for text in EXPRESSIONS]
    second = [png(graph_image(*layout_of(text)[:1])) for text in EXPRESSIONS]
    assert first == second


def test_expressions_are_arithmetic_only():
    for text, message in (
        ("__import__('os')", "only numbers"),
        ("x.data", "only numbers"),
        ("x +", "cannot read"),
        ("2 * 3", "uses no name"),
        ("x ** y", "only numbers"),
        ("1 / 0 + x", "cannot compute"),
        ("x" * 201, "at most 200"),
    ):
        with pytest.raises(ArgumentError, match=message):
            evaluate_expression(text, {})
    with pytest.raises(ArgumentError, match="does not use"):
        evaluate_expression("x", {"q": 1.0})
    assert parse_values(["x=2", "y=-3.5"]) == {"x": 2.0, "y": -3.5}
    for bad in ("x", "2=3", "x=two"):
        with pytest.raises(ArgumentError, match="NAME=NUMBER"):
            parse_values([bad])


def run(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "tinybnn.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=120
    )


def test_show_graph_writes_the_picture_and_says_what_it_drew(tmp_path):
    done = run("show", "graph", "g.png", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("wrote g.png: 5 tensors, 3 functions, (x * y + x) * y = 12 (")
    assert Image.open(tmp_path / "g.png").format == "PNG"
    done = run("show", "graph", "g.png", "--expression", "x +", cwd=tmp_path)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1 and "cannot read" in done.stderr
    done = run("show", "graph", "g.txt", cwd=tmp_path)
    assert done.returncode == 2 and "PNG" in done.stderr
