"""Running benchmark workers in subprocesses and summarising their timings."""

from __future__ import annotations

import ctypes
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Hashable, Sequence, TypeVar

import numpy as np

from .. import COMPILER_SETTINGS, THREAD_SETTINGS
from ..data import to_float_nchw

Key = TypeVar("Key", bound=Hashable)

#: OpenBLAS's AVX-512 kernel (about 1.7x faster float GEMM on AVX-512 CPUs where
#: OpenBLAS picks the AVX2 one by default)
SKYLAKEX = "SkylakeX"
TORCH_WORKER = Path(__file__).with_name("torch_worker.py")


def thread_environment(threads: int, coretype: str | None = None, tinybnn_settings: bool = True) -> dict[str, str]:
    """The environment of a worker limited to ``threads`` threads in every library, with
    ``OPENBLAS_CORETYPE=coretype`` if given.

    ``tinybnn_settings=False`` removes the thread-pool settings tinybnn's import
    made (for PyTorch's worker, whose pool should run as PyTorch ships it).
    The compiler settings tinybnn's import made are always removed: each
    worker's tinybnn (a ``--before`` tree's too) decides them on its own
    import, so a baseline tree without them is timed without them.
    """
    env = dict(os.environ)
    for name in COMPILER_SETTINGS:
        env.pop(name, None)
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        env[name] = str(threads)
    if coretype:  # otherwise OpenBLAS runs as the environment has it (this machine sets Haswell)
        env["OPENBLAS_CORETYPE"] = coretype
    if not tinybnn_settings:
        for name in THREAD_SETTINGS:
            env.pop(name, None)
    return env


def run_worker(
    command: Sequence[str], env: dict[str, str], timeout: float = 3600, cwd: str | None = None
) -> dict[str, Any]:
    """Run a worker command (in folder ``cwd`` if given) and return the JSON object it prints last."""
    done = subprocess.run(list(command), capture_output=True, text=True, env=env, timeout=timeout, cwd=cwd)
    if done.returncode != 0:
        raise RuntimeError(f"benchmark worker {' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def tinybnn_worker(module: str, args: Sequence[str], threads: int, coretype: str | None = None) -> dict[str, Any]:
    return run_worker([sys.executable, "-m", module, "--worker", *args], thread_environment(threads, coretype))


def torch_worker(task: str, args: Sequence[str], threads: int) -> dict[str, Any]:
    return run_worker(
        [sys.executable, str(TORCH_WORKER), task, "--threads", str(threads), *args],
        thread_environment(threads, tinybnn_settings=False),
    )


def openblas_core() -> str:
    """The name of the kernel OpenBLAS uses in this process ("Haswell", "SkylakeX", ...)."""
    try:
        path = next(line.split()[-1] for line in open("/proc/self/maps") if "openblas" in line.lower())
        library = ctypes.CDLL(path)
    except (OSError, StopIteration):
        return "unknown"
    for name in (
        "scipy_openblas_get_corename64_",
        "scipy_openblas_get_corename",
        "openblas_get_corename64_",
        "openblas_get_corename",
    ):
        if hasattr(library, name):
            function = getattr(library, name)
            function.restype = ctypes.c_char_p
            return function().decode()
    return "unknown"


def torch_available() -> bool:
    """True if ``import torch`` works in a subprocess (checked without importing it here)."""
    return subprocess.run([sys.executable, "-c", "import torch"], capture_output=True).returncode == 0


def write_arrays(path: Path, images: np.ndarray, labels: np.ndarray) -> Path:
    """The images (uint8) and labels both sides of a benchmark read."""
    np.savez(path, images=images, labels=labels)
    return path


def load_images(path: str) -> tuple[np.ndarray, np.ndarray]:
    """write_arrays' file as float32 (N, 1, H, W) in [0, 1] and int64 labels."""
    with np.load(path) as arrays:
        return to_float_nchw(arrays["images"]), arrays["labels"].astype(np.int64)


def paired_runs(
    contenders: dict[Key, Callable[[], dict[str, Any]]], repeats: int, progress: Callable[[Key, dict[str, Any]], None]
) -> dict[Key, list[dict[str, Any]]]:
    """Run every contender once per repeat, back to back, so that their timings pair up."""
    results: dict[Key, list[dict[str, Any]]] = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, runner in contenders.items():
            results[name].append(runner())
            progress(name, results[name][-1])
    return results


def label(name: str, runs: list[dict[str, Any]]) -> str:
    """A contender's name with the OpenBLAS kernel its workers reported, if any."""
    core = runs[0].get("openblas") if runs else None
    return f"{name} [OpenBLAS {core}]" if core else name


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def paired_ratio(seconds: dict[str, list[float]], name: str, reference: str) -> str:
    """Median of the per-repeat ratios ``name / reference``, or "" if either is absent or they are the same."""
    if name == reference or reference not in seconds:
        return ""
    return f"{median([a / b for a, b in zip(seconds[name], seconds[reference])]):.2f}"


def format_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table with right-aligned columns."""
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
