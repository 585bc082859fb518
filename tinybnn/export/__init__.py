"""Exporting a converted binary network off Python: one C99 file that runs on a microcontroller.

:func:`export_c` (``tinybnn export c MODEL --out DIR``) writes the network as
``tinybnn_model.c`` / ``tinybnn_model.h`` with one entry point,
``int tinybnn_predict(const uint8_t image[28*28], float logits[10])`` for
the LeNet, computing what the fused Python stages compute
(:mod:`tinybnn.layers.fused`), as a stream: the first block a pooled pixel
at a time straight into packed bits, each binary convolution writing bits,
the binary dense layer a hidden unit at a time added into the classifier.
Which networks it takes: :mod:`tinybnn.export.plan`; the C text:
:mod:`tinybnn.export.c_source`; docs/export.md has the sizes on a Cortex-M4.
"""

from __future__ import annotations

__all__ = ["export_c", "fused_stages"]


def __getattr__(name: str):  # lazily: ``tinybnn --help`` imports the command module only, not NumPy's users
    if name == "export_c":
        from .writer import export_c

        return export_c
    if name == "fused_stages":
        from .plan import fused_stages

        return fused_stages
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
