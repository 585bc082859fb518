"""BMXNet's binary LeNet against the LeNet with modern binary blocks, trained in the same run.

    nice -n 10 python scripts/modern_blocks.py --data ../shared/datasets --out runs/modern-blocks

Trains ``binary-lenet`` and ``reactnet-lenet`` (Bi-Real Net's real-valued
shortcut, ReActNet's RSign and RPReLU; :func:`tinybnn.models.reactnet_lenet`)
with the same ``tinybnn train`` recipe (Adam, lr 1e-3, cosine schedule,
batch 100, seed 0) on the same data (full Fashion-MNIST by default), each
in a fresh process, both at once (``--one-at-a-time`` runs them one after
the other), and prints both test accuracies per epoch and at the end.
"""

import argparse
import subprocess
import sys
import threading
from pathlib import Path

from tinybnn.benchmarks.workers import format_table
from tinybnn.serialization import load_model

MODELS = ("binary-lenet", "reactnet-lenet")


def train_command(model: str, args: argparse.Namespace) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "tinybnn.cli",
        "train",
        "--model",
        model,
        "--dataset",
        args.dataset,
        "--epochs",
        str(args.epochs),
        "--seed",
        str(args.seed),
        "--out",
        str(args.out / f"{model}.npz"),
    ]
    if args.data:
        command += ["--data", args.data]
    if args.train_limit:
        command += ["--train-limit", str(args.train_limit)]
    if args.test_limit:
        command += ["--test-limit", str(args.test_limit)]
    return command


def relay(model: str, process: subprocess.Popen) -> None:
    """Print the process's lines as they come, prefixed by the model's name."""
    for line in process.stdout:
        print(f"[{model}] {line.rstrip()}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="folder with fashion-mnist/ (default: $TINYBNN_DATA or download)")
    parser.add_argument("--dataset", default="fashion-mnist", choices=["mnist", "fashion-mnist"])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-limit", type=int)
    parser.add_argument("--test-limit", type=int)
    parser.add_argument("--out", type=Path, default=Path("modern-blocks"), help="folder for the two model files")
    parser.add_argument("--one-at-a-time", action="store_true", help="train the models one after the other")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    failed = []
    running = []
    for model in MODELS:
        command = train_command(model, args)
        print("$ " + " ".join(command[1:]), flush=True)
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        thread = threading.Thread(target=relay, args=(model, process))
        thread.start()
        running.append((model, process, thread))
        if args.one_at_a_time:
            thread.join()
    for model, process, thread in running:
        thread.join()
        if process.wait() != 0:
            failed.append(model)
    if failed:
        sys.exit(f"training failed for {', '.join(failed)}")

    rows = []
    for model in MODELS:
        history = load_model(args.out / f"{model}.npz").metadata["history"]
        rows.append([model, *(f"{h['test_accuracy']:.4f}" for h in history)])
    print()
    print(
        f"{args.dataset}, {args.epochs} epochs, the tinybnn train recipe (Adam lr 1e-3, cosine, batch 100), "
        f"seed {args.seed}: test accuracy after each epoch"
    )
    print(format_table(["model", *(f"epoch {e + 1}" for e in range(args.epochs))], rows))


if __name__ == "__main__":
    main()
