"""Check a converted binary LeNet against its float path on every MNIST test digit.

    tinybnn train --model binary-lenet --epochs 15 --data ../shared/datasets --out binary-lenet.npz
    tinybnn convert binary-lenet.npz
    python scripts/check_conversion.py binary-lenet.npz --data ../shared/datasets

Runs the trained model on its float path (evaluation mode, binary layers as
float GEMMs on ±1 values: the obvious computation) and its converted twin
(1-bit layers on packed bits, BatchNorm folded) over the 10,000 test digits,
and prints: how many predictions differ (should be 0), the largest
difference of the logits relative to each image's largest logit (should be
below 1e-4), both accuracies, and both files' sizes.
"""
import argparse
import sys
from pathlib import Path

import numpy as np

from tinybnn.convert import binarized_path
from tinybnn.data import load_dataset, to_float_nchw
from tinybnn.layers import use_float_path
from tinybnn.serialization import load_model
from tinybnn.training import predict_logits


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="the trained (unconverted) binary LeNet")
    parser.add_argument("--converted", type=Path, help="default: binarized_<model> beside it")
    parser.add_argument("--data", help="folder with mnist-5k/ or mnist/ (default: $TINYBNN_DATA or the cache)")
    args = parser.parse_args()
    converted_path = args.converted or binarized_path(args.model)
    original = use_float_path(load_model(args.model, kind="float").model)
    converted = load_model(converted_path, kind="binarized").model
    data = load_dataset("mnist", data_dir=args.data, download=False)
    images, labels = to_float_nchw(data.test_images), data.test_labels

    a = predict_logits(original, images, 100)
    b = predict_logits(converted, images, 100)
    differ = int((a.argmax(axis=1) != b.argmax(axis=1)).sum())
    relative = float((np.abs(a - b) / np.abs(a).max(axis=1, keepdims=True)).max())
    print(f"test digits: {len(labels):,}")
    print(f"predictions that differ: {differ}")
    print(f"largest logit difference, relative to the image's largest logit: {relative:.2e}")
    print(f"accuracy: float path {(a.argmax(axis=1) == labels).mean():.4f}, "
          f"converted {(b.argmax(axis=1) == labels).mean():.4f}")
    print(f"file sizes: {args.model} {args.model.stat().st_size:,} bytes, "
          f"{converted_path} {converted_path.stat().st_size:,} bytes")
    return 0 if differ == 0 and relative < 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
