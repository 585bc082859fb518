"""A picture of a recorded autograd graph, drawn with Pillow (graphviz is not a dependency).

:func:`graph_layout` walks the graph that the Functions of
:mod:`tinybnn.autograd` record behind a tensor (``history.function``,
``history.inputs``, the walk of :mod:`tinybnn.autograd.graph`) and places it
in columns, left to right, in the order the forward pass computed it:

- every **tensor** is a box holding its name (when ``names`` gives one), its
  value (a scalar, or the shape of an array) and its gradient, d root / d
  tensor (:func:`node_gradients`; of the sum of root's elements when root is
  not a scalar); inputs that need no gradient (constants) are boxes in grey;
- every **Function** call is a box of its own, in another colour, between the
  tensors it read and the tensor it made;
- every **edge** is an arrow in the direction of the forward pass, from an
  input to the Function, and from the Function to its output; the backward
  pass walks them against the arrows.

A node's column is one more than the largest column among the nodes it was
made from (leaves are in column 0), so every arrow points to the right; within
a column the nodes keep the order of a depth-first walk from the root that
visits inputs in argument order, so the same graph always gives the same
picture, pixel for pixel. :func:`evaluate_expression` builds the graph of a
small arithmetic expression (``tinybnn show graph``).
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from PIL import Image, ImageDraw

from .autograd import Tensor
from .autograd.graph import topological_sort, unbroadcast
from .autograd.quantize import det_sign
from .errors import ArgumentError
from .pictures import font, text_size

VALUE_FILL = (222, 235, 247)
CONSTANT_FILL = (230, 230, 230)
FUNCTION_FILL = (255, 224, 178)
OUTLINE = (40, 40, 40)
ARROW = (90, 90, 90)
PAPER = (255, 255, 255)
PADDING = 8
COLUMN_GAP = 56
ROW_GAP = 18
PASS_HEIGHT = 6  # the slot an arrow takes in a column it passes
MARGIN = 20
FONT_SIZE = 15


@dataclass
class GraphNode:
    """One box: a tensor (``kind`` "value" or "constant") or a Function call (``kind`` "function")."""

    kind: str
    lines: list[str]
    column: int = 0
    box: tuple[int, int, int, int] = (0, 0, 0, 0)


@dataclass
class GraphLayout:
    """The boxes, the arrows (index of the source node, index of the target node), the points each
    arrow passes through (``routes``, in the order of ``edges``) and the picture's size."""

    nodes: list[GraphNode] = field(default_factory=list)
    edges: list[tuple[int, int]] = field(default_factory=list)
    routes: list[list[tuple[float, float]]] = field(default_factory=list)
    size: tuple[int, int] = (0, 0)


def describe(array: np.ndarray) -> str:
    if array.size == 1:
        return f"{float(array.reshape(-1)[0]):.4g}"
    return "shape " + "x".join(str(n) for n in array.shape)


def node_gradients(root: Any) -> dict[int, np.ndarray]:
    """d(sum of root)/d(node) for every node of the graph behind ``root`` that requires a gradient, by id.

    The engine's own walk (:func:`tinybnn.autograd.graph.backpropagate`) keeps
    the gradients of leaves only; the picture shows every node's, so this is
    the same walk, in the same order, keeping them all (it calls each
    Function's ``backward`` once more; the graph is left as it was).
    """
    grads = {id(root): np.ones_like(root.data)}
    with np.errstate(all="ignore"):
        return _walk(root, grads)


def _walk(root: Any, grads: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
    for node in topological_sort(root):
        grad = grads.get(id(node))
        if grad is None or node.history is None:
            continue
        history = node.history
        input_grads = history.function.backward(history.ctx, grad)
        for parent, parent_grad in zip(
            history.inputs, input_grads if isinstance(input_grads, tuple) else (input_grads,)
        ):
            if parent_grad is not None and parent.requires_grad:
                parent_grad = unbroadcast(np.asarray(parent_grad), parent.shape)
                grads[id(parent)] = grads[id(parent)] + parent_grad if id(parent) in grads else parent_grad
    return grads


def value_lines(tensor: Any, name: str | None, grad: np.ndarray | None) -> list[str]:
    lines = [name] if name else []
    lines.append(f"data {describe(tensor.data)}")
    if grad is not None:
        lines.append(f"grad {describe(grad)}")
    return lines


def graph_nodes(root: Any, names: dict[str, Any]) -> GraphLayout:
    """The nodes and edges of the graph behind ``root``, in depth-first post-order (inputs first)."""
    label = {id(t): name for name, t in names.items()}
    grads = node_gradients(root) if root.requires_grad else {}
    layout = GraphLayout()
    index: dict[int, int] = {}  # id(tensor) -> its node
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:  # iterative post-order, so deep graphs do not hit the recursion limit
        tensor, inputs_done = stack.pop()
        if id(tensor) in index:
            continue
        history = tensor.history
        if history is not None and not inputs_done:
            stack.append((tensor, True))
            stack.extend((t, False) for t in reversed(history.inputs) if id(t) not in index)
            continue
        kind = "value" if tensor.requires_grad else "constant"
        node = GraphNode(kind, value_lines(tensor, label.get(id(tensor)), grads.get(id(tensor))))
        if history is not None:
            layout.nodes.append(GraphNode("function", [history.function.__name__]))
            function = len(layout.nodes) - 1
            layout.edges.extend((index[id(t)], function) for t in history.inputs)
            layout.nodes.append(node)
            layout.edges.append((function, len(layout.nodes) - 1))
        else:
            layout.nodes.append(node)
        index[id(tensor)] = len(layout.nodes) - 1
    return layout


def graph_layout(root: Any, names: dict[str, Any] | None = None) -> GraphLayout:
    """Place the graph behind the tensor ``root`` in columns (see the module docstring).

    ``names`` maps names to tensors of the graph (``{"x": x, "y": y}``); their
    boxes show them. An arrow that skips columns passes each of them at a
    height of its own (a slot in that column, as in Sugiyama's layered
    drawing), so it never runs under a box; within a column, boxes and slots
    are ordered by the mean height of what leads into them (the barycentre
    heuristic), ties broken by the order of the walk.
    """
    layout = graph_nodes(root, names or {})
    nodes = layout.nodes
    incoming: dict[int, list[int]] = {}
    for source, target in layout.edges:
        incoming.setdefault(target, []).append(source)
    for i, node in enumerate(nodes):  # post-order: a node's sources come before it
        node.column = 1 + max((nodes[s].column for s in incoming.get(i, [])), default=-1)
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    face = font(FONT_SIZE)
    line_height = text_size(draw, "Ag", face)[1] + 4
    sizes = [
        (
            max(text_size(draw, line, face)[0] for line in node.lines) + 2 * PADDING,
            len(node.lines) * line_height + 2 * PADDING,
        )
        for node in nodes
    ]
    columns = 1 + max(node.column for node in nodes)
    # slots: ("node", i) or ("pass", edge, column); what leads into each slot
    slots: list[list[tuple]] = [[] for _ in range(columns)]
    for i, node in enumerate(nodes):
        slots[node.column].append(("node", i))
    feeds: dict[tuple, list[tuple]] = {("node", i): [] for i in range(len(nodes))}
    for e, (source, target) in enumerate(layout.edges):
        previous: tuple = ("node", source)
        for c in range(nodes[source].column + 1, nodes[target].column):
            slots[c].append(("pass", e, c))
            feeds[("pass", e, c)] = [previous]
            previous = ("pass", e, c)
        feeds[("node", target)].append(previous)
    height = {slot: sizes[slot[1]][1] if slot[0] == "node" else PASS_HEIGHT for column in slots for slot in column}
    widths = [max(sizes[s[1]][0] for s in column if s[0] == "node") for column in slots]
    stacks = [sum(height[s] + ROW_GAP for s in column) - ROW_GAP for column in slots]
    total_height = max(stacks)
    centre: dict[tuple, float] = {}
    layout.routes = []
    x = MARGIN
    lefts = []
    for c, column in enumerate(slots):
        rank = {slot: k for k, slot in enumerate(column)}
        if c > 0:
            column.sort(key=lambda s: (sum(centre[f] for f in feeds[s]) / max(1, len(feeds[s])), rank[s]))
        y = MARGIN + (total_height - stacks[c]) / 2
        for slot in column:
            centre[slot] = y + height[slot] / 2
            if slot[0] == "node":
                w, h = sizes[slot[1]]
                left = x + (widths[c] - w) // 2
                nodes[slot[1]].box = (int(left), int(y), int(left + w), int(y + h))
            y += height[slot] + ROW_GAP
        lefts.append(x)
        x += widths[c] + COLUMN_GAP
    for e, (source, target) in enumerate(layout.edges):
        a, b = nodes[source].box, nodes[target].box
        route = [(float(a[2]), (a[1] + a[3]) / 2)]
        for c in range(nodes[source].column + 1, nodes[target].column):
            route += [(float(lefts[c]), centre[("pass", e, c)]), (float(lefts[c] + widths[c]), centre[("pass", e, c)])]
        route.append((float(b[0] - 1), (b[1] + b[3]) / 2))
        layout.routes.append(route)
    layout.size = (x - COLUMN_GAP + MARGIN, int(total_height) + 2 * MARGIN)
    return layout


def arrow(draw: ImageDraw.ImageDraw, route: list[tuple[float, float]]) -> None:
    """A polyline through ``route`` with a filled head at its end."""
    draw.line(route, fill=ARROW, width=2, joint="curve")
    (x0, y0), end = route[-2], route[-1]
    angle = math.atan2(end[1] - y0, end[0] - x0)
    head = [end] + [(end[0] - 11 * math.cos(angle + s), end[1] - 11 * math.sin(angle + s)) for s in (0.4, -0.4)]
    draw.polygon(head, fill=ARROW)


def graph_image(root: Any, names: dict[str, Any] | None = None, layout: GraphLayout | None = None) -> Image.Image:
    """The picture of the graph behind ``root`` (laid out by :func:`graph_layout` unless given)."""
    layout = layout or graph_layout(root, names)
    image = Image.new("RGB", layout.size, PAPER)
    draw = ImageDraw.Draw(image)
    face = font(FONT_SIZE)
    line_height = text_size(draw, "Ag", face)[1] + 4
    for route in layout.routes:
        arrow(draw, route)
    fills = {"value": VALUE_FILL, "constant": CONSTANT_FILL, "function": FUNCTION_FILL}
    for node in layout.nodes:
        draw.rounded_rectangle(
            node.box, radius=10 if node.kind == "function" else 3, fill=fills[node.kind], outline=OUTLINE, width=2
        )
        for k, line in enumerate(node.lines):
            width = text_size(draw, line, face)[0]
            left = (node.box[0] + node.box[2] - width) // 2
            draw.text((left, node.box[1] + PADDING + k * line_height), line, fill=OUTLINE, font=face)
    return image


# --- small expressions (tinybnn show graph) ----------------------------------------
FUNCTIONS: dict[str, Callable[[Any], Any]] = {
    "tanh": lambda t: t.tanh(),
    "exp": lambda t: t.exp(),
    "log": lambda t: t.log(),
    "relu": lambda t: t.relu(),
    "sigmoid": lambda t: t.sigmoid(),
    "sign": det_sign,
}
OPERATORS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
}


def parse_values(assignments: list[str]) -> dict[str, float]:
    """``["x=2", "y=-3.5"]`` -> {"x": 2.0, "y": -3.5}."""
    values = {}
    for item in assignments:
        name, equals, number = item.partition("=")
        try:
            if not equals or not name.isidentifier():
                raise ValueError
            values[name] = float(number)
        except ValueError:
            raise ArgumentError(f"--at: expected NAME=NUMBER, got {item!r}") from None
    return values


def evaluate_expression(text: str, values: dict[str, float], strict: bool = True) -> tuple[Tensor, dict[str, Tensor]]:
    """The tensor of ``text`` (numbers, names, ``+ - * / **``, unary minus and the functions of
    :data:`FUNCTIONS`), each name a float64 scalar leaf that requires a gradient (its value from
    ``values``, else 1.0); and the leaves by name. ``strict``: a name of
    ``values`` that the expression does not use is an error."""
    if len(text) > 200:
        raise ArgumentError(f"the expression is {len(text)} characters long; at most 200")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as error:
        raise ArgumentError(f"cannot read the expression {text!r}: {error.msg}") from None
    leaves: dict[str, Tensor] = {}

    def visit(node: ast.AST) -> Any:
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            return float(node.value)
        if isinstance(node, ast.Name):
            if node.id not in leaves:
                leaves[node.id] = Tensor(np.array(values.get(node.id, 1.0)), requires_grad=True)
            return leaves[node.id]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -visit(node.operand)
        if (
            isinstance(node, ast.BinOp)
            and isinstance(node.op, ast.Pow)
            and isinstance(node.right, ast.Constant)
            and isinstance(node.right.value, (int, float))
            and not isinstance(node.right.value, bool)
        ):
            return visit(node.left) ** float(node.right.value)
        if isinstance(node, ast.BinOp) and type(node.op) in OPERATORS:
            return OPERATORS[type(node.op)](visit(node.left), visit(node.right))
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in FUNCTIONS
            and len(node.args) == 1
            and not node.keywords
        ):
            return FUNCTIONS[node.func.id](visit(node.args[0]))
        raise ArgumentError(
            f"the expression {text!r} has {ast.unparse(node)!r}: only numbers, names, "
            f"+ - * / ** NUMBER and {', '.join(FUNCTIONS)}(...) are allowed"
        )

    unknown = sorted(set(values) - {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)})
    if unknown and strict:
        raise ArgumentError(f"--at names {', '.join(unknown)}, which the expression does not use")
    with np.errstate(all="ignore"):
        try:
            result = visit(tree.body)
        except (OverflowError, ZeroDivisionError) as error:
            raise ArgumentError(f"cannot compute the expression {text!r}: {error}") from None
    if not isinstance(result, Tensor):
        raise ArgumentError(f"the expression {text!r} uses no name, so it has no graph")
    return result, leaves
