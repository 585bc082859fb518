"""Pictures of a model, drawn with Pillow: its filters and its training curves.

:func:`filters_image` draws every convolution's kernels as tiles, one panel
per layer, in the order the layers run:

- a **binary** layer (a QConvolution with ``weight_bit=1``, or the
  PackedConvolution it converts to) is drawn as the layer computes with it,
  ``sign(w)`` (sign(0) = +1): **white for +1, black for -1**, nothing else;
- a **float** layer (a Convolution, or a QConvolution with 32-bit weights)
  is drawn in grey levels scaled per layer, ``grey = 127.5 (1 + w / m)``
  with ``m = max |w|`` over the layer: black is -m, mid-grey 0, white +m;
- a **k-bit** layer (``weight_bit`` 2..31) is drawn the same way from its
  quantized weights, so its 2^k levels show as 2^k greys.

A layer with one input channel (the first layer of LeNet) shows its filters
as a block of tiles, 16 to a row; a layer with C input channels shows one
row of C tiles per filter (at most :data:`MAX_TILES` rows and columns). The
tiles sit on a blue-grey background (:data:`BACKGROUND`), a colour no
kernel pixel can take, so the space between tiles never mixes with them.

Each layer says what is drawn of it (:meth:`~tinybnn.layers.Module.drawn_filters`,
a :class:`~tinybnn.layers.module.Filters`); a layer without that method is
not a convolution here. The packed filters of a converted model are
unpacked from their layout (:mod:`tinybnn.gemm.bitconv`): ``weight_bits``
of shape (F, KH KW Cw), Cw = ceil(C / 64), read as (F, KH, KW, Cw) words
holding the bits of each pixel's C channels, least significant bit first,
bit 1 for +1. A trained model and the model converted from it therefore
give the same picture.

:func:`curves_image` draws the history that ``tinybnn train`` stores (one
dict per epoch: ``epoch``, ``loss``, ``train_accuracy``, ``test_loss``,
``test_accuracy``, ...) as two panels: the cross-entropy loss and the
accuracy per epoch, training and test, with labelled axes, tick values and a
legend.

:func:`save_png` writes a picture atomically (a temporary name, then a
rename), so a failed write never replaces a good file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .errors import ArgumentError
from .fileio import atomic_write
from .layers import Module

#: colour of the space around and between tiles (not a grey, so no kernel pixel has it)
BACKGROUND = (160, 185, 220)
WHITE = (255, 255, 255)
BLACK = (0, 0, 0)
#: at most this many filters (rows) and input channels (columns) are drawn per layer
MAX_TILES = 64
#: tiles per row for a layer with one input channel
TILES_PER_ROW = 16
#: the widest a grid of tiles may get before its tiles shrink, in pixels
MAX_GRID_WIDTH = 960
GAP = 2
MARGIN = 16

TRAIN_COLOUR = (31, 119, 180)
TEST_COLOUR = (255, 127, 14)
HISTORY_KEYS = ("epoch", "loss", "train_accuracy", "test_loss", "test_accuracy")


# --- text --------------------------------------------------------------------------
def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's built-in scalable font at ``size`` pixels (Pillow 10.1+)."""
    return ImageFont.load_default(size=size)


def text_size(
    draw: ImageDraw.ImageDraw, text: str, face: ImageFont.FreeTypeFont | ImageFont.ImageFont
) -> tuple[int, int]:
    left, top, right, bottom = draw.textbbox((0, 0), text, font=face)
    return int(right - left), int(bottom - top)  # whole pixels (the built-in font's box is)


# --- filters -------------------------------------------------------------------------
@dataclass
class FilterPanel:
    """The kernels of one convolution, as they are drawn.

    ``values`` has shape (F, C, KH, KW): ±1 for a binary layer, the (quantized)
    weights otherwise. ``kind`` is "binary", "float" or "k-bit".
    """

    name: str
    layer_type: str
    kind: str
    values: np.ndarray
    bits: int


def draws_filters(layer: Module) -> bool:
    """Whether ``layer`` declares filters to draw (:meth:`~tinybnn.layers.Module.drawn_filters`)."""
    return type(layer).drawn_filters is not Module.drawn_filters


def filter_panel(name: str, layer: Module) -> FilterPanel:
    """What :func:`filters_image` draws for the convolution ``layer`` (called ``name``): what the
    layer declares (:meth:`~tinybnn.layers.Module.drawn_filters`)."""
    kind_name = type(layer).__name__
    filters = layer.drawn_filters()
    if filters is None:
        raise ArgumentError(f"layer {name} ({kind_name}) is not a built convolution")
    return FilterPanel(name, kind_name, filters.kind, filters.values, filters.bits)


def convolutions(model: Module) -> list[tuple[str, Module]]:
    """(name, layer) of every convolution in ``model``, in the order ``named_modules`` lists them."""
    return [(name, m) for name, m in model.named_modules() if draws_filters(m)]


def filter_panels(model: Module, layer: str | None = None) -> list[FilterPanel]:
    """One :class:`FilterPanel` per convolution of ``model``, or only the one called ``layer``.

    ``layer`` is a layer's name as ``tinybnn summary`` prints it ("4", or
    "3.body.0" inside a residual block). Raises ArgumentError if the model has
    no convolution, or ``layer`` names none.
    """
    found = convolutions(model)
    names = ", ".join(name for name, _ in found) or "none"
    if layer is not None:
        modules = dict(model.named_modules())
        if layer not in modules or layer == "":
            raise ArgumentError(f"--layer {layer}: no such layer (convolutions: {names})")
        if not draws_filters(modules[layer]):
            raise ArgumentError(
                f"--layer {layer}: layer {layer} is a {type(modules[layer]).__name__}, "
                f"not a convolution (convolutions: {names})"
            )
        found = [(layer, modules[layer])]
    if not found:
        raise ArgumentError("the model has no convolution to draw")
    return [filter_panel(name, module) for name, module in found]


def tile_colours(panel: FilterPanel) -> np.ndarray:
    """RGB uint8 colours (F, C, KH, KW, 3) of the panel's kernel pixels."""
    values = panel.values.astype(np.float64)
    if panel.kind == "binary":
        grey = np.where(values >= 0, 255, 0).astype(np.uint8)
    else:
        largest = float(np.abs(values).max())
        scaled = values / largest if largest > 0 else np.zeros_like(values)
        grey = np.clip(np.rint(127.5 * (1.0 + scaled)), 0, 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=-1)


def grid_shape(panel: FilterPanel) -> tuple[int, int, int, int]:
    """(rows, columns, filters drawn, channels drawn) of the panel's grid of tiles."""
    f, c = panel.values.shape[:2]
    f, c = min(f, MAX_TILES), min(c, MAX_TILES)
    if c == 1:
        columns = min(f, TILES_PER_ROW)
        return -(-f // columns), columns, f, 1
    return f, c, f, c


def tile_scale(panel: FilterPanel) -> int:
    """Screen pixels per kernel pixel: as large as fits MAX_GRID_WIDTH, from 1 to 8."""
    _, columns, _, _ = grid_shape(panel)
    kw = panel.values.shape[3]
    return max(1, min(8, (MAX_GRID_WIDTH // columns - GAP) // kw))


def kernel_grid(panel: FilterPanel, scale: int | None = None) -> np.ndarray:
    """The panel's tiles as an RGB uint8 array (H, W, 3) on the :data:`BACKGROUND` colour.

    Each kernel pixel becomes a ``scale`` x ``scale`` square; tiles are
    separated (and surrounded) by :data:`GAP` pixels of background.
    """
    scale = tile_scale(panel) if scale is None else scale
    rows, columns, f, c = grid_shape(panel)
    kh, kw = panel.values.shape[2:]
    th, tw = kh * scale, kw * scale
    colours = tile_colours(panel)[:f, :c]
    colours = colours.repeat(scale, axis=2).repeat(scale, axis=3)  # (f, c, th, tw, 3)
    grid = np.empty((rows * (th + GAP) + GAP, columns * (tw + GAP) + GAP, 3), dtype=np.uint8)
    grid[...] = BACKGROUND
    for index in range(f * c):
        if c == 1:
            row, column, tile = index // columns, index % columns, colours[index, 0]
        else:
            row, column, tile = index // c, index % c, colours[index // c, index % c]
        y, x = GAP + row * (th + GAP), GAP + column * (tw + GAP)
        grid[y : y + th, x : x + tw] = tile
    return grid


def panel_caption(panel: FilterPanel) -> list[str]:
    """Two lines saying what the panel shows and how to read its colours."""
    f, c, kh, kw = panel.values.shape
    what = (
        f"layer {panel.name}: {panel.layer_type}, {f} filter{'s' * (f != 1)} x {c} input "
        f"channel{'s' * (c != 1)}, {kh}x{kw}"
    )
    if panel.kind == "binary":
        what += ", 1-bit weights sign(w): white +1, black -1"
    else:
        largest = float(np.abs(panel.values).max())
        label = "float weights" if panel.kind == "float" else f"{panel.bits}-bit weights"
        what += f", {label} in grey: black {-largest:.3g}, mid-grey 0, white {largest:.3g}"
    if c == 1:
        layout = f"{TILES_PER_ROW} filters to a row"
    else:
        layout = "one row per filter, one column per input channel"
    cut = [f"first {MAX_TILES} of {n} {what_}" for n, what_ in ((f, "filters"), (c, "channels")) if n > MAX_TILES]
    if cut:
        layout += " (" + "; ".join(cut) + ")"
    return [what, layout]


def filters_image(model: Module, layer: str | None = None, title: str = "") -> Image.Image:
    """Every convolution's kernels as tiles, one labelled panel per layer (see the module docstring).

    Works on a trained model and on a converted one. ``layer`` draws only the
    convolution of that name; ``title`` goes on top.
    """
    return panels_image(filter_panels(model, layer), title)


def panels_image(panels: Sequence[FilterPanel], title: str = "") -> Image.Image:
    """:func:`filters_image`'s picture of panels already built by :func:`filter_panels`."""
    grids = [kernel_grid(panel) for panel in panels]
    captions = [panel_caption(panel) for panel in panels]
    face, big = font(14), font(17)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    line_h = text_size(probe, "Ag", face)[1] + 6
    title_h = text_size(probe, "Ag", big)[1] + 14 if title else 0
    text_w = max(text_size(probe, line, face)[0] for lines in captions for line in lines)
    width = 2 * MARGIN + max(max(g.shape[1] for g in grids), text_w, text_size(probe, title, big)[0])
    height = MARGIN + title_h + sum(2 * line_h + 4 + g.shape[0] + MARGIN for g in grids)
    image = Image.new("RGB", (width, height), WHITE)
    draw = ImageDraw.Draw(image)
    y = MARGIN
    if title:
        draw.text((MARGIN, y), title, fill=BLACK, font=big)
        y += title_h
    for grid, lines in zip(grids, captions):
        for line in lines:
            draw.text((MARGIN, y), line, fill=BLACK, font=face)
            y += line_h
        y += 4
        image.paste(Image.fromarray(grid, "RGB"), (MARGIN, y))
        y += grid.shape[0] + MARGIN
    return image


# --- training curves --------------------------------------------------------------
def check_history(history: Any) -> list[dict[str, float]]:
    """The history as a list of {key: float}; ArgumentError naming what is wrong."""
    if not isinstance(history, (list, tuple)) or not history:
        raise ArgumentError("the training history is empty: nothing to draw")
    checked = []
    for index, entry in enumerate(history):
        if not isinstance(entry, dict):
            raise ArgumentError(f"training history entry {index} is a {type(entry).__name__}, not a dict")
        row = {}
        for key in HISTORY_KEYS:
            value = entry.get(key)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ArgumentError(f"training history entry {index} has no number {key!r} (got {value!r})")
            row[key] = float(value)
        checked.append(row)
    return checked


def nice_step(span: float, target: int = 5) -> float:
    """A tick step of 1, 2, 2.5 or 5 times a power of ten giving about ``target`` ticks over ``span``."""
    raw = span / max(target, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    for mantissa in (1.0, 2.0, 2.5, 5.0, 10.0):
        if mantissa * power >= raw:
            return mantissa * power
    return 10.0 * power  # pragma: no cover


def nice_ticks(low: float, high: float, target: int = 5) -> list[float]:
    """Tick values from a multiple of the step at or below ``low`` to one at or above ``high``."""
    if not high > low:
        high = low + 1.0
    step = nice_step(high - low, target)
    first = math.floor(low / step + 1e-9) * step
    ticks = [first]
    while ticks[-1] < high - 1e-9 * step:
        ticks.append(first + len(ticks) * step)
    return [round(t, 10) for t in ticks]


def format_tick(value: float, step: float) -> str:
    """``value`` with as many decimals as the tick step needs (0.25 -> 2, 0.1 -> 1, 5 -> 0)."""
    decimals = next((d for d in range(7) if abs(step * 10**d - round(step * 10**d)) < 1e-6), 6)
    return f"{value:.{decimals}f}"


def segment(
    draw: ImageDraw.ImageDraw,
    a: tuple[float, float],
    b: tuple[float, float],
    fill: tuple,
    dashed: bool = False,
    width: int = 3,
) -> None:
    """A line from ``a`` to ``b``, solid or dashed (7 pixels drawn, 5 skipped)."""
    if not dashed:
        draw.line([a, b], fill=fill, width=width)
        return
    (x0, y0), (x1, y1) = a, b
    length = math.hypot(x1 - x0, y1 - y0)
    position = 0.0
    while position < length:
        end = min(position + 7.0, length)
        draw.line(
            [
                (x0 + (x1 - x0) * position / length, y0 + (y1 - y0) * position / length),
                (x0 + (x1 - x0) * end / length, y0 + (y1 - y0) * end / length),
            ],
            fill=fill,
            width=width,
        )
        position = end + 5.0


def draw_panel(
    image: Image.Image,
    box: tuple[int, int, int, int],
    title: str,
    y_label: str,
    epochs: Sequence[float],
    series: Sequence[tuple[str, Sequence[float], tuple, bool]],
    y_range: tuple[float, float],
) -> None:
    """One panel of :func:`curves_image`: axes with ticks and labels, lines with markers, a legend."""
    draw = ImageDraw.Draw(image)
    face, small = font(15), font(13)
    left, top, right, bottom = box
    plot_left, plot_right = left + 78, right - 12
    plot_top, plot_bottom = top + 34, bottom - 92

    tw, _ = text_size(draw, title, face)
    draw.text(((plot_left + plot_right - tw) / 2, top + 6), title, fill=BLACK, font=face)

    ticks = nice_ticks(*y_range)
    y_low, y_high = ticks[0], ticks[-1]
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0

    def to_y(value: float) -> float:
        return plot_bottom - (value - y_low) / (y_high - y_low) * (plot_bottom - plot_top)

    last = max(epochs)
    x_low, x_high = (0.5, 1.5) if last <= 1 else (1 - 0.04 * (last - 1), last + 0.04 * (last - 1))

    def to_x(epoch: float) -> float:
        return plot_left + (epoch - x_low) / (x_high - x_low) * (plot_right - plot_left)

    for tick in ticks:
        y = to_y(tick)
        draw.line([(plot_left, y), (plot_right, y)], fill=(228, 228, 228), width=1)
        label = format_tick(tick, step)
        lw, lh = text_size(draw, label, small)
        draw.line([(plot_left - 5, y), (plot_left, y)], fill=BLACK, width=1)
        draw.text((plot_left - 9 - lw, y - lh / 2 - 3), label, fill=BLACK, font=small)
    x_step = max(1, int(nice_step(max(last - 1, 1), 8)))
    for epoch in range(1, int(last) + 1):
        if (epoch - 1) % x_step and epoch != int(last):
            continue
        x = to_x(epoch)
        draw.line([(x, plot_bottom), (x, plot_bottom + 5)], fill=BLACK, width=1)
        lw, _ = text_size(draw, str(epoch), small)
        draw.text((x - lw / 2, plot_bottom + 8), str(epoch), fill=BLACK, font=small)
    draw.line([(plot_left, plot_top), (plot_left, plot_bottom), (plot_right, plot_bottom)], fill=BLACK, width=2)

    lw, _ = text_size(draw, "epoch", face)
    draw.text(((plot_left + plot_right - lw) / 2, plot_bottom + 28), "epoch", fill=BLACK, font=face)
    lw, lh = text_size(draw, y_label, face)
    label_image = Image.new("RGBA", (lw + 4, lh + 10), (255, 255, 255, 0))
    ImageDraw.Draw(label_image).text((2, 0), y_label, fill=BLACK, font=face)
    rotated = label_image.rotate(90, expand=True)
    image.paste(rotated, (left + 4, int((plot_top + plot_bottom - rotated.height) / 2)), rotated)

    for _, values, colour, is_dashed in series:
        points = [(to_x(e), to_y(v)) if math.isfinite(v) else None for e, v in zip(epochs, values)]
        for a, b in zip(points, points[1:]):
            if a is not None and b is not None:
                segment(draw, a, b, colour, is_dashed)
        for point in points:
            if point is not None:
                draw.ellipse([point[0] - 4, point[1] - 4, point[0] + 4, point[1] + 4], fill=colour)

    x = plot_left
    legend_y = plot_bottom + 58
    for name, _, colour, is_dashed in series:
        segment(draw, (x, legend_y + 9), (x + 40, legend_y + 9), colour, is_dashed)
        draw.ellipse([x + 16, legend_y + 5, x + 24, legend_y + 13], fill=colour)
        draw.text((x + 48, legend_y), name, fill=BLACK, font=small)
        x += 48 + text_size(draw, name, small)[0] + 30


def draw_title(image: Image.Image, title: str) -> int:
    """Write ``title`` centred at the top of ``image``; returns the height it takes (0 without a title)."""
    if not title:
        return 0
    draw = ImageDraw.Draw(image)
    big = font(17)
    tw, th = text_size(draw, title, big)
    draw.text(((image.width - tw) / 2, 10), title, fill=BLACK, font=big)
    return th + 16


def curves_image(
    history: Sequence[dict[str, Any]], size: tuple[int, int] = (1200, 480), title: str = ""
) -> Image.Image:
    """Loss and accuracy per epoch, training and test, as a two-panel picture of ``size``.

    ``history`` is the list of per-epoch dicts that ``tinybnn train`` stores
    (keys ``epoch``, ``loss``, ``train_accuracy``, ``test_loss``,
    ``test_accuracy``; others are ignored). Training is drawn solid in blue,
    test dashed in orange. The loss axis starts at 0; the accuracy axis ends
    at 1 (or at the best accuracy, rounded up to a tick).
    """
    rows = check_history(history)
    width, height = size
    if width < 400 or height < 260:
        raise ArgumentError(f"curves_image: size must be at least 400x260, got {width}x{height}")
    image = Image.new("RGB", (width, height), WHITE)
    top = draw_title(image, title)
    epochs = [row["epoch"] for row in rows]

    def column(key: str) -> list[float]:
        return [row[key] for row in rows]

    losses = [v for key in ("loss", "test_loss") for v in column(key) if math.isfinite(v)]
    accuracies = [v for key in ("train_accuracy", "test_accuracy") for v in column(key) if math.isfinite(v)]
    loss_high = max(losses, default=1.0) or 1.0
    accuracy_low = min(accuracies, default=0.0)
    accuracy_high = min(1.0, max(accuracies, default=1.0))
    if accuracy_high - accuracy_low < 0.05:
        accuracy_low = max(0.0, accuracy_high - 0.05)
    half = width // 2
    draw_panel(
        image,
        (0, top, half, height),
        "loss per epoch",
        "cross-entropy loss",
        epochs,
        [("training loss", column("loss"), TRAIN_COLOUR, False), ("test loss", column("test_loss"), TEST_COLOUR, True)],
        (0.0, loss_high),
    )
    draw_panel(
        image,
        (half, top, width, height),
        "accuracy per epoch",
        "accuracy",
        epochs,
        [
            ("training accuracy", column("train_accuracy"), TRAIN_COLOUR, False),
            ("test accuracy", column("test_accuracy"), TEST_COLOUR, True),
        ],
        (accuracy_low, accuracy_high),
    )
    return image


# --- files ---------------------------------------------------------------------------
def save_png(image: Image.Image, path: str | Path) -> Path:
    """Write ``image`` to ``path`` as PNG, atomically (temporary name, then rename)."""
    path = Path(path)
    with atomic_write(path) as handle:
        image.save(handle, format="PNG", optimize=True)
    return path
