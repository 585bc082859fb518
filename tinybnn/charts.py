"""A two-panel PNG chart of speedups, drawn with Pillow (no plotting library), for ``tinybnn bench gemm``.

Like BMXNet's Figures 2 and 3: the speedup of each XNOR kernel over
``np.dot`` against the number of filters (left) and against the kernel size
(right). The y axis is logarithmic, so 0.5x, 1x and 30x all stay readable;
a dashed line marks 1x (as fast as ``np.dot``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw

from . import pictures
from .fileio import atomic_write

PALETTE = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
]


@dataclass
class Panel:
    """One panel: a title, an x label, x values and named series of y values (None: missing)."""

    title: str
    x_label: str
    x_values: list
    series: dict = field(default_factory=dict)
    log_x: bool = False


@dataclass
class SeriesStyle:
    color: tuple
    dashed: bool = False


def _nice_log_ticks(lo, hi):
    """Ticks 1, 2, 5 x 10^n covering [lo, hi]."""
    ticks = []
    for exponent in range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1):
        for mantissa in (1, 2, 5):
            value = mantissa * 10.0**exponent
            if lo <= value <= hi:
                ticks.append(value)
    return ticks


def _format_tick(value):
    return f"{value:g}x"


def draw_speedup_chart(panels, styles, path, title="", size=(1400, 620)) -> Path:
    """Draw ``panels`` side by side and save a PNG at ``path``; return the path.

    ``styles`` maps each series name to a :class:`SeriesStyle`; the legend
    lists them in that order. Missing points (None) break the line.
    """
    width, height = size
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    font = pictures.font(15)
    small = pictures.font(13)
    big = pictures.font(19)

    values = [v for p in panels for ys in p.series.values() for v in ys if v is not None and v > 0]
    y_lo = min(values + [1.0]) / 1.3
    y_hi = max(values + [1.0]) * 1.3
    ticks = _nice_log_ticks(y_lo, y_hi)

    top = 60
    legend_h = 28 * ((len(styles) + 2) // 3) + 10
    bottom = height - 70 - legend_h
    if title:
        tw, _ = pictures.text_size(draw, title, big)
        draw.text(((width - tw) / 2, 14), title, fill="black", font=big)

    panel_w = width / len(panels)
    for index, panel in enumerate(panels):
        left = index * panel_w + 90
        right = (index + 1) * panel_w - 30

        def to_y(v):
            return bottom - (math.log(v) - math.log(y_lo)) / (math.log(y_hi) - math.log(y_lo)) * (bottom - top)

        xs = panel.x_values
        if panel.log_x:
            xpos = [math.log(x) for x in xs]
        else:
            xpos = list(map(float, xs))
        x_min, x_max = min(xpos), max(xpos)
        span = (x_max - x_min) or 1.0

        def to_x(p):
            return left + 20 + (p - x_min) / span * (right - left - 40)

        # grid and y ticks
        for tick in ticks:
            y = to_y(tick)
            draw.line([(left, y), (right, y)], fill=(225, 225, 225), width=1)
            label = _format_tick(tick)
            tw, th = pictures.text_size(draw, label, small)
            draw.text((left - tw - 8, y - th / 2 - 2), label, fill="black", font=small)
        pictures.segment(draw, (left, to_y(1.0)), (right, to_y(1.0)), (120, 120, 120), dashed=True, width=1)
        # axes
        draw.line([(left, top), (left, bottom), (right, bottom)], fill="black", width=2)
        for x, p in zip(xs, xpos):
            X = to_x(p)
            draw.line([(X, bottom), (X, bottom + 6)], fill="black", width=2)
            label = str(x)
            tw, _ = pictures.text_size(draw, label, small)
            draw.text((X - tw / 2, bottom + 9), label, fill="black", font=small)
        tw, _ = pictures.text_size(draw, panel.x_label, font)
        draw.text(((left + right) / 2 - tw / 2, bottom + 30), panel.x_label, fill="black", font=font)
        tw, _ = pictures.text_size(draw, panel.title, font)
        draw.text(((left + right) / 2 - tw / 2, top - 26), panel.title, fill="black", font=font)
        y_label = "speedup over np.dot (log scale)"
        label_w, label_h = pictures.text_size(draw, y_label, small)
        label_img = Image.new("RGBA", (label_w + 4, label_h + 8), (255, 255, 255, 0))
        ImageDraw.Draw(label_img).text((2, 0), y_label, fill="black", font=small)
        rotated = label_img.rotate(90, expand=True)
        image.paste(rotated, (int(left - 80), int((top + bottom) / 2 - rotated.height / 2)), rotated)

        # series
        for name, style in styles.items():
            ys = panel.series.get(name)
            if not ys:
                continue
            points = [(to_x(p), to_y(y)) if y is not None and y > 0 else None for p, y in zip(xpos, ys)]
            for a, b in zip(points, points[1:]):
                if a is None or b is None:
                    continue
                pictures.segment(draw, a, b, style.color, dashed=style.dashed, width=3)
            for point in points:
                if point is not None:
                    x, y = point
                    draw.ellipse([x - 4, y - 4, x + 4, y + 4], fill=style.color)

    # legend, three entries per row
    legend_top = height - legend_h
    column_w = width / 3
    for index, (name, style) in enumerate(styles.items()):
        row, col = divmod(index, 3)
        x = col * column_w + 40
        y = legend_top + row * 28
        pictures.segment(draw, (x, y + 9), (x + 44, y + 9), style.color, dashed=style.dashed, width=3)
        draw.ellipse([x + 18, y + 5, x + 26, y + 13], fill=style.color)
        draw.text((x + 54, y), name, fill="black", font=font)

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as handle:  # never leave a half-written chart in place of a good one
        image.save(handle, format="PNG")
    return path


# --- quantizer curves (docs/quantizers.md) ----------------------------------------------------
FORWARD_COLOUR = (31, 119, 180)
BACKWARD_COLOUR = (214, 39, 40)


@dataclass
class CurvePanel:
    """One quantizer: its title, the x values, forward y and backward dy/dx (the estimator used)."""

    title: str
    x: list
    forward: list
    backward: list


def quantizer_curves_image(panels, columns: int = 3, panel_size=(420, 300), title: str = "") -> Image.Image:
    """A grid of panels, each with a quantizer's forward (blue) and backward (red, thinner) curve.

    The y axis of each panel spans both curves (ticks from :func:`tinybnn.pictures.nice_ticks`),
    the x axis the sampled inputs; a thin grey line marks y = 0.
    """
    rows = -(-len(panels) // columns)
    width, height = panel_size
    top = 44 if title else 0
    legend = 36
    image = Image.new("RGB", (columns * width, rows * height + top + legend), "white")
    draw = ImageDraw.Draw(image)
    face, small, big = pictures.font(15), pictures.font(12), pictures.font(18)
    if title:
        tw, _ = pictures.text_size(draw, title, big)
        draw.text(((columns * width - tw) / 2, 12), title, fill="black", font=big)
    for index, panel in enumerate(panels):
        left = (index % columns) * width + 52
        right = (index % columns + 1) * width - 16
        upper = top + (index // columns) * height + 30
        lower = top + (index // columns + 1) * height - 36
        values = [v for v in (*panel.forward, *panel.backward) if math.isfinite(v)]
        ticks = pictures.nice_ticks(min(values + [0.0]), max(values + [0.0]), 5)
        step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
        x_ticks = pictures.nice_ticks(min(panel.x), max(panel.x), 4)

        def to_x(v, x_ticks=x_ticks, left=left, right=right):
            return left + (v - x_ticks[0]) / (x_ticks[-1] - x_ticks[0]) * (right - left)

        def to_y(v, ticks=ticks, upper=upper, lower=lower):
            return lower - (v - ticks[0]) / (ticks[-1] - ticks[0]) * (lower - upper)

        for tick in ticks:
            y = to_y(tick)
            draw.line([(left, y), (right, y)], fill=(200, 200, 200) if tick == 0 else (236, 236, 236), width=1)
            label = pictures.format_tick(tick, step)
            lw, lh = pictures.text_size(draw, label, small)
            draw.text((left - 6 - lw, y - lh / 2 - 2), label, fill="black", font=small)
        for tick in x_ticks:
            x = to_x(tick)
            draw.line([(x, lower), (x, lower + 4)], fill="black", width=1)
            label = pictures.format_tick(tick, x_ticks[1] - x_ticks[0])
            lw, _ = pictures.text_size(draw, label, small)
            draw.text((x - lw / 2, lower + 6), label, fill="black", font=small)
        draw.line([(left, upper), (left, lower), (right, lower)], fill="black", width=1)
        tw, _ = pictures.text_size(draw, panel.title, face)
        draw.text(((left + right - tw) / 2, upper - 24), panel.title, fill="black", font=face)
        for ys, colour, thickness in ((panel.forward, FORWARD_COLOUR, 3), (panel.backward, BACKWARD_COLOUR, 2)):
            points = [(to_x(x), to_y(y)) for x, y in zip(panel.x, ys)]
            # a jump of a step function is drawn as a vertical line, the way the curve is read
            draw.line(points, fill=colour, width=thickness)
    x, y = 20, image.height - legend + 8
    for name, colour, thickness in (
        ("forward y = q(x)", FORWARD_COLOUR, 3),
        ("backward: the dy/dx it passes on (gradient of ones)", BACKWARD_COLOUR, 2),
    ):
        draw.line([(x, y + 8), (x + 40, y + 8)], fill=colour, width=thickness)
        draw.text((x + 48, y), name, fill="black", font=face)
        x += 48 + pictures.text_size(draw, name, face)[0] + 40
    return image
