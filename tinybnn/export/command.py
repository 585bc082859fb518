"""The ``tinybnn export`` command: ``tinybnn export c MODEL --out DIR [--board mps2-an386] [--force]``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_parser(commands: Any) -> None:
    """Add ``export`` (with ``c``) to the subcommands of the ``tinybnn`` parser."""
    p = commands.add_parser(
        "export",
        help="write a converted model as a standalone C program",
        description="Export a model file off Python.",
    )
    targets = p.add_subparsers(dest="target", metavar="TARGET")
    targets.required = True
    c = targets.add_parser(
        "c",
        help="one C99 source and header, no heap, for a microcontroller",
        description="Write DIR/tinybnn_model.c and .h (the network, weights as const arrays, one entry point "
        "tinybnn_predict) and DIR/main.c (classifies PGM or raw images). Takes a converted "
        "binary model (tinybnn convert) or a trained one; refuses layers it cannot write, "
        "naming them.",
    )
    c.add_argument("model", type=Path, help="a model file: converted (tinybnn convert) or trained binary")
    c.add_argument("--out", type=Path, required=True, metavar="DIR", help="the folder to write (created if missing)")
    c.add_argument(
        "--board",
        choices=["mps2-an386"],
        help="also write DIR/BOARD/: startup code, linker script and a main for that Cortex-M board",
    )
    c.add_argument("--force", action="store_true", help="overwrite files in DIR that tinybnn did not generate")
    c.set_defaults(handler=command_export_c)


def command_export_c(args: argparse.Namespace) -> int:
    from .c_source import static_ram, weight_bytes
    from .writer import export_c

    written, plan = export_c(args.model, args.out, force=args.force, board=args.board)
    print(f"{args.model}: {len(plan.middle) + 2} stages -> {', '.join(str(p) for p in written)}")
    print(
        f"weights {weight_bytes(plan):,} bytes (const), static RAM {static_ram(plan):,} bytes "
        f"(+ the {plan.input_hw[0] * plan.input_hw[1]}-byte image)"
    )
    return 0
