"""Microseconds per image: the exported C LeNet (native build, one thread) beside tinybnn's packed model.

    python scripts/bench_export_c.py --data ../shared/datasets

Both contenders classify the same real MNIST test digits one at a time
(batch 1, one thread: ``NUMBA_NUM_THREADS=1`` and one OpenBLAS thread for
Python). Each repeat runs each contender in a fresh process, back to back,
so their timings pair up (wall time, and the process's CPU time, which other
processes on a shared machine disturb less); inside a process, a warm-up pass over the digits
(Numba's compiled kernels loaded, caches warm), then ``--passes`` timed
passes, of which the median counts. The table gives the median over repeats
and the median of the per-repeat ratios. The C program is built with
``cc -std=c99 -O2 -march=native`` (``--cflags``) from ``tinybnn export c``'s
files and a small timing loop (this script's ``TIMER_C``).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SHIPPED = Path(__file__).resolve().parent.parent / "tinybnn" / "assets" / "binarized_lenet_mnist.npz"

TIMER_C = r"""
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "tinybnn_model.h"

static uint8_t images[%(N)d][TINYBNN_INPUT_SIZE];

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

int main(int argc, char **argv)
{
    FILE *file = fopen(argv[1], "rb");
    static double seconds[64], cpu[64];
    int passes = argc < 3 ? 0 : atoi(argv[2]), p, i, sum = 0;
    float logits[TINYBNN_CLASSES];
    if (file == NULL || passes < 1 || passes > 64 || fread(images, 1, sizeof images, file) != sizeof images) return 2;
    fclose(file);
    for (i = 0; i < %(N)d; i++) sum += tinybnn_predict(images[i], logits);  /* warm-up */
    for (p = 0; p < passes; p++) {
        double start = now();
        clock_t cpu_start = clock();
        for (i = 0; i < %(N)d; i++) sum += tinybnn_predict(images[i], logits);
        seconds[p] = now() - start;
        cpu[p] = (double)(clock() - cpu_start) / CLOCKS_PER_SEC;
    }
    printf("{\"sum\": %%d, \"seconds\": [", sum);
    for (p = 0; p < passes; p++) printf("%%s%%.9f", p ? ", " : "", seconds[p]);
    printf("], \"cpu\": [");
    for (p = 0; p < passes; p++) printf("%%s%%.9f", p ? ", " : "", cpu[p]);
    printf("]}\n");
    return 0;
}
"""


def python_worker(model_path: str, digits_path: str, passes: int) -> None:
    """One fresh process: the packed model at batch 1, warm-up then timed passes; prints JSON."""
    from tinybnn.autograd import Tensor, no_grad
    from tinybnn.benchmarks.workers import openblas_core
    from tinybnn.convert import fuse_layers
    from tinybnn.data.mnist import to_float_nchw
    from tinybnn.layers import Sequential
    from tinybnn.serialization import load_model

    model = Sequential(*fuse_layers(list(load_model(model_path).model.layers))).eval()
    x = to_float_nchw(np.load(digits_path))
    singles = [Tensor(x[i : i + 1]) for i in range(len(x))]
    total = 0
    with no_grad():
        for image in singles:  # warm-up
            total += int(model(image).data.argmax())
        seconds, cpu = [], []
        for _ in range(passes):
            start, cpu_start = time.perf_counter(), time.process_time()
            for image in singles:
                total += int(model(image).data.argmax())
            seconds.append(time.perf_counter() - start)
            cpu.append(time.process_time() - cpu_start)
    print(json.dumps({"sum": total, "seconds": seconds, "cpu": cpu, "openblas": openblas_core()}))


def cpu_name() -> str:
    try:
        return next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="the folder holding mnist-5k/")
    parser.add_argument("--model", default=str(SHIPPED))
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--passes", type=int, default=5, help="timed passes per process (1..64)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cflags", default="-std=c99 -O2 -march=native")
    parser.add_argument("--worker", nargs=3, metavar=("MODEL", "DIGITS", "PASSES"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        python_worker(args.worker[0], args.worker[1], int(args.worker[2]))
        return 0
    from tinybnn.benchmarks.workers import format_table, median, run_worker, thread_environment
    from tinybnn.data.mnist import load_folder
    from tinybnn.export.writer import export_c

    digits = load_folder("mnist", Path(args.data) / "mnist-5k").test_images[: args.images]
    with tempfile.TemporaryDirectory() as folder:
        where = Path(folder)
        export_c(args.model, where, measure=False)
        (where / "timer.c").write_text(TIMER_C % {"N": len(digits)})
        subprocess.run(
            ["cc", *args.cflags.split(), "timer.c", "tinybnn_model.c", "-lm", "-o", "timer"], cwd=where, check=True
        )
        digits.tofile(where / "digits.raw")
        np.save(where / "digits.npy", digits)
        env = thread_environment(1)
        contenders = {
            "C (cc " + args.cflags + ")": [str(where / "timer"), str(where / "digits.raw"), str(args.passes)],
            "tinybnn packed (Python, batch 1)": [
                sys.executable,
                __file__,
                "--data",
                args.data,
                "--worker",
                args.model,
                str(where / "digits.npy"),
                str(args.passes),
            ],
        }
        per_image: dict[str, list[float]] = {name: [] for name in contenders}
        cpu_per_image: dict[str, list[float]] = {name: [] for name in contenders}
        sums = {}
        for repeat in range(args.repeats):
            order = list(contenders) if repeat % 2 == 0 else list(reversed(contenders))
            for name in order:
                result = run_worker(contenders[name], env)
                per_image[name].append(median(result["seconds"]) / len(digits) * 1e6)
                cpu_per_image[name].append(median(result["cpu"]) / len(digits) * 1e6)
                sums.setdefault(name, result["sum"])
                if "openblas" in result:
                    sums["openblas"] = result["openblas"]
    predicted = {name: sums[name] for name in contenders}
    if len(set(predicted.values())) != 1:
        print(f"the contenders' predictions differ: {predicted}", file=sys.stderr)
        return 1
    reference = "C (cc " + args.cflags + ")"

    def ratio(times: dict[str, list[float]], name: str) -> str:
        return f"{median([a / b for a, b in zip(times[name], times[reference])]):.2f}"

    rows = [
        (
            name,
            f"{median(per_image[name]):.1f}",
            ratio(per_image, name),
            f"{median(cpu_per_image[name]):.1f}",
            ratio(cpu_per_image, name),
        )
        for name in contenders
    ]
    print(
        f"{cpu_name()}, {platform.machine()}; one thread; {len(digits)} MNIST test digits one at a time; "
        f"{args.repeats} paired repeats of {args.passes} passes; Python's OpenBLAS kernel: {sums.get('openblas')}"
    )
    print(format_table(["contender", "wall us/image", "x C (wall)", "CPU us/image", "x C (CPU)"], rows))
    print(
        "medians over repeats; ratios: median of the per-repeat ratios; CPU: the process's CPU time "
        "(less disturbed than wall time on a shared machine)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
