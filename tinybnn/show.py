"""``tinybnn show``: pictures of a model file, written as PNG.

::

    tinybnn show filters MODEL OUT.png [--layer N]    every convolution's kernels (tinybnn.pictures)
    tinybnn show curves MODEL_OR_CHECKPOINT OUT.png   loss and accuracy per epoch, from the training log
    tinybnn show graph OUT.png [--expression E] [--at x=2 ...]   the autograd graph of E (tinybnn.graph_picture)
    tinybnn show diagnostics MODEL_OR_CHECKPOINT OUT.png   binary layers' flips, saturation, signs per epoch

``filters`` works on a trained model file and on a converted one (binary
kernels in black and white, float kernels in grey). ``curves`` reads the
history that ``tinybnn train`` stores in the model file's metadata
(``"history"``) or in a checkpoint's (``"checkpoint"`` -> ``"history"``); a
converted file keeps the history of the model it came from.

The picture is written to a temporary name and renamed into place. Bad
input raises :class:`~tinybnn.errors.ArgumentError` or
:class:`~tinybnn.errors.ModelFileError`, which the command line prints as
one line with exit status 2; an existing OUT.png is then left as it was.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .errors import ArgumentError, ModelFileError


DEFAULT_EXPRESSION = "(x * y + x) * y"


def add_parser(commands: Any) -> None:
    """Add ``show`` (with ``filters``, ``curves`` and ``graph``) to the subcommands of the ``tinybnn`` parser."""
    p = commands.add_parser(
        "show",
        help="draw a model's filters or training curves as PNG",
        description="Draw pictures of a model file as PNG.",
    )
    pictures = p.add_subparsers(dest="picture", metavar="PICTURE")
    pictures.required = True
    filters = pictures.add_parser(
        "filters",
        help="every convolution's kernels as tiles",
        description="Draw every convolution's kernels, one panel per layer: binary kernels as sign(w) "
        "in black (-1) and white (+1), float kernels in grey levels scaled per layer.",
    )
    filters.add_argument("model", type=Path, help="a model file (trained or converted)")
    filters.add_argument("out", type=Path, metavar="OUT.png", help="the PNG to write")
    filters.add_argument(
        "--layer", metavar="N", help="draw only this convolution, named as tinybnn summary names it (e.g. 4)"
    )
    filters.set_defaults(handler=command_show_filters)
    curves = pictures.add_parser(
        "curves",
        help="loss and accuracy per epoch from the training log",
        description="Draw the training loss and accuracy per epoch stored in a model file or checkpoint.",
    )
    curves.add_argument("model", type=Path, metavar="MODEL_OR_CHECKPOINT")
    curves.add_argument("out", type=Path, metavar="OUT.png", help="the PNG to write")
    curves.set_defaults(handler=command_show_curves)
    graph = pictures.add_parser(
        "graph",
        help="the autograd graph of a small expression",
        description="Draw the graph that tinybnn's autograd records for a small expression, after its backward "
        "pass: every tensor with its value and gradient, every Function, arrows in the direction of "
        "the forward pass.",
    )
    graph.add_argument("out", type=Path, metavar="OUT.png", help="the PNG to write")
    graph.add_argument(
        "--expression",
        default=DEFAULT_EXPRESSION,
        help=f"numbers, names, + - * / ** NUMBER, tanh exp log relu sigmoid sign (default {DEFAULT_EXPRESSION!r})",
    )
    graph.add_argument(
        "--at",
        nargs="+",
        metavar="NAME=NUMBER",
        help="the values of the names (default x=2, y=-3 and 1 for any other name)",
    )
    graph.set_defaults(handler=command_show_graph)
    diagnostics = pictures.add_parser(
        "diagnostics",
        help="binary layers' flip ratio, saturation and signs per epoch (train --diagnostics)",
        description="Draw the binary diagnostics per layer and epoch that tinybnn train --diagnostics stores: "
        "the weights' flip ratio, latent weights at the clipping bound, sign inputs outside the "
        "straight-through window, +1 activations.",
    )
    diagnostics.add_argument("model", type=Path, metavar="MODEL_OR_CHECKPOINT")
    diagnostics.add_argument("out", type=Path, metavar="OUT.png", help="the PNG to write")
    diagnostics.set_defaults(handler=command_show_diagnostics)


def check_out(out: Path, model: Path | None) -> None:
    """OUT must be a .png name in an existing folder, and not MODEL itself (checked before any work)."""
    from .outputs import refuse_inputs

    refuse_inputs(out, [model] if model is not None else [], option="OUT.png")
    if out.suffix.lower() != ".png":
        raise ArgumentError(f"{out}: pictures are written as PNG; give a file name ending in .png")
    if not out.absolute().parent.is_dir():
        raise ArgumentError(f"{out}: the folder {out.absolute().parent} does not exist")
    if out.is_dir():
        raise ArgumentError(f"{out}: is a folder; give a file name ending in .png")


def write(image: Any, out: Path) -> None:
    from .pictures import save_png

    try:
        save_png(image, out)
    except OSError as error:
        raise ArgumentError(f"{out}: cannot write the picture ({error.strerror or error})") from None


def command_show_filters(args: argparse.Namespace) -> int:
    from .pictures import filter_panels, panels_image
    from .serialization import load_model

    check_out(args.out, args.model)
    loaded = load_model(args.model)
    try:
        panels = filter_panels(loaded.model, args.layer)
        kind = "converted" if loaded.kind == "binarized" else "trained"
        image = panels_image(panels, title=f"filters of {args.model.name} ({kind} model file)")
    except ArgumentError as error:
        raise ArgumentError(f"{args.model}: {error}") from None
    write(image, args.out)
    layers = ", ".join(
        f"layer {p.name} {p.layer_type} {p.kind} {p.values.shape[0]}x{p.values.shape[1]} "
        f"{p.values.shape[2]}x{p.values.shape[3]}"
        for p in panels
    )
    print(f"wrote {args.out}: {layers} ({image.width}x{image.height} pixels)")
    return 0


def training_history(metadata: dict, path: Path) -> list:
    """The per-epoch history of a model file (``history``) or a checkpoint (``checkpoint.history``)."""
    history = metadata.get("history")
    checkpoint = metadata.get("checkpoint")
    if history is None and isinstance(checkpoint, dict):
        history = checkpoint.get("history")
    if not history:
        raise ModelFileError(
            f"{path}: holds no training history (model files written by tinybnn train, "
            "their checkpoints and their converted files do)"
        )
    return history


def command_show_curves(args: argparse.Namespace) -> int:
    from .pictures import check_history, curves_image
    from .serialization import load_model

    check_out(args.out, args.model)
    loaded = load_model(args.model)
    history = training_history(loaded.metadata, args.model)
    try:
        rows = check_history(history)
    except ArgumentError as error:
        raise ModelFileError(f"{args.model}: damaged training history: {error}") from None
    training = loaded.metadata.get("training") or (loaded.metadata.get("checkpoint") or {}).get("run") or {}
    model_name = training.get("model") if isinstance(training, dict) else None
    title = f"{args.model.name}" + (f" ({model_name})" if isinstance(model_name, str) else "")
    image = curves_image(rows, title=title)
    write(image, args.out)
    last = rows[-1]
    print(
        f"wrote {args.out}: {len(rows)} epoch{'s' * (len(rows) != 1)}, final loss {last['loss']:.4f}, "
        f"final test accuracy {last['test_accuracy']:.4f} ({image.width}x{image.height} pixels)"
    )
    return 0


def command_show_graph(args: argparse.Namespace) -> int:
    from .graph_picture import evaluate_expression, graph_image, graph_layout, parse_values

    check_out(args.out, None)
    root, leaves = (
        evaluate_expression(args.expression, parse_values(args.at), strict=True)
        if args.at
        else evaluate_expression(args.expression, {"x": 2.0, "y": -3.0}, strict=False)
    )
    layout = graph_layout(root, {**leaves, "out": root})
    image = graph_image(root, layout=layout)
    write(image, args.out)
    functions = sum(node.kind == "function" for node in layout.nodes)
    print(
        f"wrote {args.out}: {len(layout.nodes) - functions} tensors, {functions} functions, "
        f"{args.expression} = {root.item():.6g} ({image.width}x{image.height} pixels)"
    )
    return 0


def command_show_diagnostics(args: argparse.Namespace) -> int:
    from .diagnostics_chart import diagnostics_image
    from .serialization import load_model

    check_out(args.out, args.model)
    loaded = load_model(args.model)
    history = training_history(loaded.metadata, args.model)  # its schema was checked on load
    try:
        image = diagnostics_image(history, title=f"binary diagnostics of {args.model.name}")
    except ArgumentError as error:
        raise ModelFileError(f"{args.model}: {error}") from None
    write(image, args.out)
    layers = {entry["layer"] for epoch in history for entry in epoch.get("diagnostics") or []}
    print(
        f"wrote {args.out}: {len(history)} epoch{'s' * (len(history) != 1)}, {len(layers)} binary layers "
        f"({image.width}x{image.height} pixels)"
    )
    return 0
