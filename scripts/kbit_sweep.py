"""Test accuracy of the LeNet for act_bit = weight_bit = k, on MNIST.

    python scripts/kbit_sweep.py --data ../shared/datasets --epochs 15

Trains ``lenet(binary=True, act_bit=k, weight_bit=k)`` for k in 1, 2, 4, 8, 32
(32 bits: the Q-layers do not quantize) with the same seed and recipe as
``tinybnn train`` (Adam, lr 1e-3, cosine schedule, batch 100) and prints a
table of the final test accuracies.
"""

import argparse
import time

import numpy as np

from tinybnn.benchmarks.workers import format_table
from tinybnn.data import load_dataset, to_float_nchw
from tinybnn.models import lenet
from tinybnn.optim import Adam, CosineLR
from tinybnn.training import fit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="folder with mnist-5k/ or mnist/ (default: $TINYBNN_DATA or download)")
    parser.add_argument("--dataset", default="mnist", choices=["mnist", "fashion-mnist"])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--bits", default="1,2,4,8,32")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    data = load_dataset(args.dataset, data_dir=args.data)
    train = to_float_nchw(data.train_images), data.train_labels
    test = to_float_nchw(data.test_images), data.test_labels
    rows = []
    for bits in [int(b) for b in args.bits.split(",")]:
        rng = np.random.default_rng(args.seed)
        model = lenet(binary=True, act_bit=bits, weight_bit=bits, rng=rng).build((1, 28, 28))
        optimizer = Adam(model.parameters(), lr=1e-3)
        start = time.perf_counter()
        state = fit(
            model,
            optimizer,
            CosineLR(1e-3, args.epochs),
            train,
            test,
            args.epochs,
            100,
            rng,
            log=lambda line, bits=bits: print(f"[{bits:>2} bits] {line}", flush=True),
        )
        rows.append(
            [
                bits,
                bits,
                f"{state.history[-1]['test_accuracy']:.4f}",
                f"{max(h['test_accuracy'] for h in state.history):.4f}",
                f"{time.perf_counter() - start:.0f}",
            ]
        )
    print()
    print(
        f"LeNet on {data.name} ({len(train[0]):,} training images, {len(test[0]):,} test images), "
        f"{args.epochs} epochs, Adam + cosine, seed {args.seed}"
    )
    print(format_table(["act_bit", "weight_bit", "test accuracy", "best over epochs", "seconds"], rows))


if __name__ == "__main__":
    main()
