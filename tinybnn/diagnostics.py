"""Diagnostics of binary training: what the signs do, per binary layer and per epoch.

While a :class:`BinaryDiagnostics` is attached to a model, every forward pass
in training mode of a binary layer reports what it sees, and
:meth:`BinaryDiagnostics.end_epoch` turns one epoch of reports into one entry
per layer (the training log stores it under ``"diagnostics"``):

- ``flip_ratio`` (a Q-layer with 1-bit weights): the share of its binarized
  weights sign(w) that changed sign since the previous step, averaged over
  the epoch's steps (Larq's definition). One training forward sees the
  weights the previous step left, so comparing consecutive forwards (and the
  last one with the weights at the epoch's end) counts every step once;
- ``at_bound`` (same layers): the share of latent weights at the clipping
  bound, |w| >= 1, averaged over the steps. A latent weight there gets no
  gradient from the straight-through estimator's other side and stays until
  the gradient pulls it back; under Bop every weight is ±1, so it is 1;
- ``outside_window`` (a layer that takes the sign of its input: a 1-bit
  QActivation, or a Q-layer with ``act_bit = 1``): the share of its inputs
  with |x| > grad_cancel, where the straight-through estimator cancels the
  gradient, over all the inputs of the epoch. A Q-layer whose first input is
  already all ±1 (a QActivation before it took the sign, as in the binary
  LeNet) reports none: that QActivation's numbers are its numbers;
- ``positive``: the share of +1 among those binary activations, sign(0) = +1.

Evaluation passes (``model.eval()``) are not counted; nothing a layer
computes is changed, so a run with diagnostics gives the same weights as one
without.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from .layers import Module, QActivation, QConvolution, QFullyConnected

#: the numbers one layer's entry may carry, each a share in [0, 1]
FIELDS = ("flip_ratio", "at_bound", "outside_window", "positive")


@dataclass
class LayerCounts:
    """What one binary layer saw during the current epoch."""

    name: str
    kind: str
    weights: bool  # 1-bit weights: flip_ratio, at_bound
    inputs: bool  # takes the sign of its input: outside_window, positive
    window: float = 1.0
    check_inputs: bool = False  # a Q-layer: look once whether its inputs are already ±1
    steps: int = 0
    flips: int = 0
    bound: int = 0
    weight_forwards: int = 0
    weight_size: int = 0
    seen: int = 0
    outside: int = 0
    plus: int = 0
    previous: np.ndarray | None = None  # sign bits (w >= 0) at the last training forward

    def observe_weights(self, w: np.ndarray) -> None:
        signs = w >= 0
        if self.previous is not None:
            self.flips += int(np.count_nonzero(signs != self.previous))
            self.steps += 1
        self.previous = signs
        self.bound += int(np.count_nonzero(np.abs(w) >= 1.0))
        self.weight_forwards += 1
        self.weight_size = w.size

    def observe_inputs(self, x: np.ndarray) -> None:
        self.seen += x.size
        self.outside += int(np.count_nonzero(np.abs(x) > self.window))
        self.plus += int(np.count_nonzero(x >= 0))

    def summary(self, w: np.ndarray | None) -> dict[str, Any]:
        """This epoch's entry (``w``: the weights at its end, to count the last step's flips); then reset."""
        if self.weights and w is not None and self.previous is not None:
            self.flips += int(np.count_nonzero((w >= 0) != self.previous))
            self.steps += 1
        entry: dict[str, Any] = {"layer": self.name, "type": self.kind}
        if self.weights and self.steps:
            entry["flip_ratio"] = self.flips / (self.steps * self.weight_size)
        if self.weights and self.weight_forwards:
            entry["at_bound"] = self.bound / (self.weight_forwards * self.weight_size)
        if self.inputs and self.seen:
            entry["outside_window"] = self.outside / self.seen
            entry["positive"] = self.plus / self.seen
        self.steps = self.flips = self.bound = self.weight_forwards = self.seen = self.outside = self.plus = 0
        self.previous = None  # the next forward sees these same weights: it starts the next count
        return entry


BinaryLayer = QActivation | QConvolution | QFullyConnected


def binary_layers(model: Module) -> list[tuple[str, BinaryLayer]]:
    """(path, layer) of every layer that takes a sign: 1-bit QActivations and Q-layers with 1-bit weights or inputs."""
    found: list[tuple[str, BinaryLayer]] = []
    for name, module in model.named_modules():
        if isinstance(module, QActivation) and module.act_bit == 1:
            found.append((name, module))
        elif isinstance(module, (QConvolution, QFullyConnected)) and 1 in (module.act_bit, module.weight_bit):
            found.append((name, module))
    return found


class BinaryDiagnostics:
    """Counts flips, saturation and sign statistics of ``model``'s binary layers while attached.

    Use as a context manager (``with BinaryDiagnostics(model) as d: ...``)
    or with :meth:`attach` and :meth:`detach`; call :meth:`end_epoch` after
    each training epoch for its entries.
    """

    def __init__(self, model: Module):
        self.model = model
        self.counts: dict[str, LayerCounts] = {}
        self.layers: dict[str, BinaryLayer] = {}
        for name, layer in binary_layers(model):
            if isinstance(layer, QActivation):
                counts = LayerCounts(name, "QActivation", weights=False, inputs=True, window=layer.grad_cancel)
            else:
                counts = LayerCounts(
                    name,
                    type(layer).__name__,
                    weights=layer.weight_bit == 1,
                    inputs=layer.act_bit == 1,
                    check_inputs=layer.act_bit == 1,
                )
            self.counts[name], self.layers[name] = counts, layer

    @staticmethod
    def observe(counts: LayerCounts, layer: Any, x: np.ndarray) -> None:
        """What a binary layer's forward pass reports, with its input (counted in training mode only)."""
        if not layer.training:
            return
        if counts.inputs and counts.seen == 0 and counts.check_inputs and np.all(np.abs(x) == 1):
            counts.inputs = False  # signs taken before it: the layer that took them reports them
        counts.check_inputs = False
        if counts.inputs:
            counts.observe_inputs(x)
        if counts.weights:
            counts.observe_weights(layer.weight.data)

    def attach(self) -> "BinaryDiagnostics":
        for name, layer in self.layers.items():
            layer.observer = partial(self.observe, self.counts[name])
        return self

    def detach(self) -> None:
        for layer in self.layers.values():
            layer.observer = None

    def __enter__(self) -> "BinaryDiagnostics":
        return self.attach()

    def __exit__(self, *exc: Any) -> None:
        self.detach()

    def end_epoch(self) -> list[dict[str, Any]]:
        """One entry per binary layer for the epoch just trained, and a fresh count for the next."""
        return [
            counts.summary(self.weights_of(name) if counts.weights else None) for name, counts in self.counts.items()
        ]

    def weights_of(self, name: str) -> np.ndarray:
        layer = self.layers[name]
        assert not isinstance(layer, QActivation) and layer.weight is not None  # only Q-layers count weights
        return layer.weight.data


def diagnostics_line(entries: list[dict[str, Any]]) -> str:
    """One log line: each field's value per layer, e.g. ``flips 4:0.0012 7:0.0003``."""
    parts = []
    for field, label in zip(FIELDS, ("flips", "at bound", "outside window", "+1")):
        values = [f"{entry['layer']}:{entry[field]:.4g}" for entry in entries if field in entry]
        if values:
            parts.append(f"{label} {' '.join(values)}")
    return "  binary layers: " + ", ".join(parts)
