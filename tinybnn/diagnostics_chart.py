"""The picture of a training log's binary diagnostics (``tinybnn show diagnostics``), drawn with Pillow.

Four panels, one line per binary layer, against the epoch: the flip ratio of
the binary weights, the share of latent weights at the clipping bound, the
share of sign inputs outside the straight-through window, and the share of
+1 activations (the fields of :mod:`tinybnn.diagnostics`).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from PIL import Image

from .errors import ArgumentError
from .pictures import WHITE, draw_panel, draw_title

COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75)]
PANELS = [
    ("flip_ratio", "flip ratio of the binary weights", "share flipped per step"),
    ("at_bound", "latent weights at the clipping bound |w| = 1", "share of weights"),
    ("outside_window", "sign inputs outside the STE window (no gradient)", "share of inputs"),
    ("positive", "+1 among the binary activations", "share of activations"),
]


def diagnostics_rows(history: Any) -> tuple[list[int], dict[str, dict[str, list[float]]]]:
    """(epochs, {field: {"layer type": values per epoch}}) from a training history; NaN where missing.

    ArgumentError if no epoch holds diagnostics."""
    if not isinstance(history, (list, tuple)) or not any(isinstance(e, dict) and e.get("diagnostics") for e in history):
        raise ArgumentError("the training log holds no diagnostics (train with --diagnostics)")
    epochs = [int(entry["epoch"]) for entry in history]
    columns: dict[str, dict[str, list[float]]] = {field: {} for field, _, _ in PANELS}
    for index, entry in enumerate(history):
        for layer in entry.get("diagnostics") or []:
            name = f"{layer['layer']} {layer['type']}"
            for field, _, _ in PANELS:
                if field in layer:
                    columns[field].setdefault(name, [math.nan] * len(history))[index] = float(layer[field])
    return epochs, columns


def diagnostics_image(
    history: Sequence[dict[str, Any]], title: str = "", size: tuple[int, int] = (1300, 960)
) -> Image.Image:
    """The four diagnostics panels of ``history`` (the list ``tinybnn train --diagnostics`` stores)."""
    epochs, columns = diagnostics_rows(history)
    width, height = size
    image = Image.new("RGB", (width, height), WHITE)
    top = draw_title(image, title)
    half_w, half_h = width // 2, (height - top) // 2
    for index, (field, panel_title, y_label) in enumerate(PANELS):
        series = [
            (name, values, COLOURS[i % len(COLOURS)], i >= len(COLOURS))
            for i, (name, values) in enumerate(columns[field].items())
        ]
        finite = [v for _, values, _, _ in series for v in values if math.isfinite(v)]
        high = max(finite, default=1.0)
        y_range = (0.0, 1.0) if field != "flip_ratio" else (0.0, high if high > 0 else 1.0)
        left, upper = (index % 2) * half_w, top + (index // 2) * half_h
        box = (left, upper, left + half_w, upper + half_h)
        if not series:
            series = [("(no layer has this)", [math.nan] * len(epochs), COLOURS[0], False)]
        draw_panel(image, box, panel_title, y_label, epochs, series, y_range)
    return image
