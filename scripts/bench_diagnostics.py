"""What ``tinybnn train --diagnostics`` costs: epoch time with and without, paired, in the same run.

    nice -n 10 python scripts/bench_diagnostics.py --data ../shared/datasets --rounds 5 --images 1000

Each round trains the binary LeNet for two epochs twice, in fresh processes,
with and without ``--diagnostics`` (the order alternates from round to
round); the first epoch is the warm-up (Numba's compiled kernels load), the
second epoch's training time (``seconds`` in the log, evaluation excluded)
is the measurement. Prints the median seconds of each and the median of the
per-round ratios with/without. On a busy machine the epochs vary more than
the cost, so it also measures the cost directly: one epoch in this process
with every call of the diagnostics timed, as a share of the epoch's time.
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tinybnn.data import load_dataset, to_float_nchw
from tinybnn.diagnostics import BinaryDiagnostics
from tinybnn.models import lenet
from tinybnn.optim import Adam
from tinybnn.serialization import load_model
from tinybnn.training import train_epoch


def epoch_seconds(args: argparse.Namespace, folder: Path, diagnostics: bool, optimizer: str) -> float:
    out = folder / f"{'d' if diagnostics else 'p'}.npz"
    command = [
        sys.executable,
        "-m",
        "tinybnn.cli",
        "train",
        "--epochs",
        "2",
        "--train-limit",
        str(args.images),
        "--test-limit",
        "100",
        "--optimizer",
        optimizer,
        "--out",
        str(out),
        "--force",
    ]
    command += ["--data", args.data] if args.data else []
    command += ["--diagnostics"] if diagnostics else []
    subprocess.run(command, check=True, capture_output=True, text=True)
    return load_model(out).metadata["history"][1]["seconds"]


def timed_share(args: argparse.Namespace) -> tuple[float, float]:
    """(seconds inside the diagnostics, seconds of the whole epoch) for one epoch after a warm-up epoch."""
    data = load_dataset("mnist", data_dir=args.data, log=lambda line: None)
    images, labels = to_float_nchw(data.train_images[: args.images]), data.train_labels[: args.images]
    rng = np.random.default_rng(0)
    model = lenet(binary=True, rng=rng).build((1, 28, 28))
    optimizer = Adam(model.parameters())
    spent = [0.0]
    with BinaryDiagnostics(model) as diagnostics:
        for _, layer in diagnostics.layers.items():
            observe = layer.observer

            def timed(*a, observe=observe):
                start = time.perf_counter()
                observe(*a)
                spent[0] += time.perf_counter() - start

            layer.observer = timed
        for _warm in (True, False):
            spent[0] = 0.0
            start = time.perf_counter()
            train_epoch(model, optimizer, images, labels, 100, rng)
            t = time.perf_counter()
            diagnostics.end_epoch()
            spent[0] += time.perf_counter() - t
            total = time.perf_counter() - start
    return spent[0], total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="folder with mnist-5k/ or mnist/ (default: $TINYBNN_DATA or download)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--images", type=int, default=1000, help="training images per epoch")
    parser.add_argument("--optimizer", default="adam", choices=["adam", "bop"])
    args = parser.parse_args()
    plain, watched, ratios = [], [], []
    with tempfile.TemporaryDirectory() as folder:
        for round_ in range(args.rounds):
            order = (False, True) if round_ % 2 == 0 else (True, False)
            seconds = {d: epoch_seconds(args, Path(folder), d, args.optimizer) for d in order}
            plain.append(seconds[False])
            watched.append(seconds[True])
            ratios.append(seconds[True] / seconds[False])
            print(
                f"round {round_ + 1}: without {seconds[False]:.2f} s, with {seconds[True]:.2f} s, "
                f"ratio {ratios[-1]:.3f}",
                flush=True,
            )
    print(
        f"median epoch: without {statistics.median(plain):.2f} s, with {statistics.median(watched):.2f} s; "
        f"median paired ratio with/without {statistics.median(ratios):.3f} ({args.rounds} rounds, "
        f"{args.images} images, {args.optimizer})"
    )
    inside, total = timed_share(args)
    print(f"one epoch in-process: {inside:.3f} s of {total:.2f} s inside the diagnostics ({100 * inside / total:.2f}%)")


if __name__ == "__main__":
    main()
