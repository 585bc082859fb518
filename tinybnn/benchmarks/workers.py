"""Running benchmark workers in subprocesses and summarising their timings."""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from typing import Any, Sequence

#: OpenBLAS's AVX-512 kernel (about 1.7x faster float GEMM on AVX-512 CPUs where
#: OpenBLAS picks the AVX2 one by default)
SKYLAKEX = "SkylakeX"


def thread_environment(threads: int, coretype: str | None = None) -> dict[str, str]:
    """The environment of a worker limited to ``threads`` threads in every library."""
    env = dict(os.environ)
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        env[name] = str(threads)
    env.pop("OPENBLAS_CORETYPE", None)
    if coretype:
        env["OPENBLAS_CORETYPE"] = coretype
    return env


def run_worker(module: str, args: Sequence[str], threads: int, coretype: str | None = None,
               timeout: float = 3600) -> dict[str, Any]:
    """Run ``python -m module --worker ARGS`` and return the JSON it prints last."""
    done = subprocess.run([sys.executable, "-m", module, "--worker", *args], capture_output=True, text=True,
                          env=thread_environment(threads, coretype), timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"benchmark worker {module} {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def torch_available() -> bool:
    """True if ``import torch`` works in a worker (checked without importing it here)."""
    done = subprocess.run([sys.executable, "-c", "import torch"], capture_output=True)
    return done.returncode == 0


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def format_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table with right-aligned columns."""
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
