"""The stack ``tinybnn_predict`` needs, measured by the compiler (``-fstack-usage``).

GCC's ``-fstack-usage`` writes, per function of an object file, the bytes
its frame takes (``file.c:line:col:name  bytes  static``). The model's
functions are ``tinybnn_predict`` and the stages it calls one after the
other (at ``-O2`` GCC inlines them, each being called once), so the deepest
chain is ``tinybnn_predict``'s frame plus the largest other frame: an upper
bound, exact when the stages are inlined. The C library's leaf functions it
calls (``tanhf``, ``fmaf`` where there is no instruction for it, a
popcount helper) are not compiled here and come on top; the emulated board
(docs/export.md) measures the whole stack by painting it.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

#: the compiler and flags of a Cortex-M4 build (the board the tests emulate)
CORTEX_M4 = [
    "arm-none-eabi-gcc",
    "-std=c99",
    "-O2",
    "-mcpu=cortex-m4",
    "-mthumb",
    "-mfloat-abi=hard",
    "-mfpu=fpv4-sp-d16",
]


def parse_stack_usage(text: str) -> dict[str, int]:
    """{function: frame bytes} from a ``.su`` file's text."""
    frames = {}
    for line in text.splitlines():
        fields = line.split("\t")
        if len(fields) >= 2 and fields[1].strip().isdigit():
            frames[fields[0].rsplit(":", 1)[-1]] = int(fields[1])
    return frames


def predict_stack(frames: dict[str, int]) -> int:
    """``tinybnn_predict``'s frame plus the largest frame of the functions it calls."""
    others = [size for name, size in frames.items() if name != "tinybnn_predict"]
    return frames.get("tinybnn_predict", 0) + max(others, default=0)


def measure_stack(model_c: str, header_h: str, command: list[str], timeout: float = 300) -> tuple[int, dict[str, int]]:
    """(stack bytes of tinybnn_predict, frames) of the model's source text compiled by ``command``."""
    with tempfile.TemporaryDirectory() as folder:
        where = Path(folder)
        (where / "tinybnn_model.c").write_text(model_c)
        (where / "tinybnn_model.h").write_text(header_h)
        subprocess.run(
            [*command, "-fstack-usage", "-c", "tinybnn_model.c", "-o", "tinybnn_model.o"],
            check=True,
            capture_output=True,
            timeout=timeout,
            cwd=folder,
        )
        frames = parse_stack_usage((where / "tinybnn_model.su").read_text())
    return predict_stack(frames), frames
