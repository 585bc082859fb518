"""Regenerate the binarized LeNet that ships with tinybnn (tinybnn/assets/).

    python scripts/train_shipped_model.py --data ../shared/datasets

Trains the binary LeNet on MNIST exactly as the README's main command does
(15 epochs, Adam, cosine schedule, seed 0) and converts it straight into the
package, where ``tinybnn predict`` finds it. The training is deterministic,
so the same data gives the same file.
"""

import argparse
import sys
import tempfile
from pathlib import Path

from tinybnn.cli import main as tinybnn
from tinybnn.predict import SHIPPED_MODEL


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="folder with mnist/ or mnist-5k/ (default: $TINYBNN_DATA or download)")
    parser.add_argument("--epochs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        trained = Path(folder) / "lenet_mnist.npz"
        command = [
            "train",
            "--model",
            "binary-lenet",
            "--dataset",
            "mnist",
            "--epochs",
            str(args.epochs),
            "--seed",
            "0",
            "--out",
            str(trained),
        ]
        if args.data:
            command += ["--data", args.data]
        SHIPPED_MODEL.parent.mkdir(exist_ok=True)
        if tinybnn(command) or tinybnn(["convert", str(trained), "--out", str(SHIPPED_MODEL)]):
            return 1
    print(f"wrote {SHIPPED_MODEL} ({SHIPPED_MODEL.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
