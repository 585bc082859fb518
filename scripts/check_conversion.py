"""Check a converted binary LeNet against its float path on every MNIST test digit.

    tinybnn train --model binary-lenet --epochs 15 --data ../shared/datasets --out binary-lenet.npz
    tinybnn convert binary-lenet.npz
    python scripts/check_conversion.py binary-lenet.npz --data ../shared/datasets

Runs the trained model on its float path (evaluation mode, binary layers as
float GEMMs on ±1 values: the obvious computation) and its converted twin
(1-bit layers on packed bits, BatchNorm folded) over the 10,000 test digits,
and prints: how many predictions differ (should be 0), the largest
difference of the logits relative to each image's largest logit (should be
below 1e-4), both accuracies, and both files' sizes. The same for the
unfused packed twin (``convert_model(model, fuse=False)``), and, when the
converted model starts with a fused float first stage, how many of its
output bits differ from the signs the float path computes (a float decision
on a differently summed convolution: see docs/thresholds.md).
"""

import argparse
import sys
from pathlib import Path

import numpy as np

from tinybnn.autograd import Tensor, no_grad
from tinybnn.convert import binarized_path, convert_model
from tinybnn.gemm.bitconv import pack_channels
from tinybnn.layers.fused import ConvolutionToBits
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
    print(f"test digits: {len(labels):,}")
    ok = True
    unfused = convert_model(load_model(args.model, kind="float").model, fuse=False)
    for name, model in [("converted", converted), ("unfused packed twin", unfused)]:
        b = predict_logits(model, images, 100)
        differ = int((a.argmax(axis=1) != b.argmax(axis=1)).sum())
        relative = float((np.abs(a - b) / np.abs(a).max(axis=1, keepdims=True)).max())
        print(
            f"{name}: predictions that differ from the float path: {differ}; largest logit difference, "
            f"relative to the image's largest logit: {relative:.2e}; "
            f"accuracy {(b.argmax(axis=1) == labels).mean():.4f}"
        )
        ok = ok and differ == 0 and relative < 1e-4
    print(f"accuracy: float path {(a.argmax(axis=1) == labels).mean():.4f}")
    if isinstance(converted.layers[0], ConvolutionToBits):
        first_stage_bits(original, converted.layers[0], images)
    print(
        f"file sizes: {args.model} {args.model.stat().st_size:,} bytes, "
        f"{converted_path} {converted_path.stat().st_size:,} bytes"
    )
    return 0 if ok else 1


def first_stage_bits(original, stage, images) -> None:
    """Bits of the fused first stage against the float path's signs after its first four layers."""
    differ = total = 0
    with no_grad():
        for i in range(0, len(images), 500):
            x = Tensor(images[i : i + 500])
            expected = x
            for layer in original.layers[:4]:
                expected = layer(expected)
            got = stage(x).data
            differ += int(np.unpackbits((got ^ pack_channels(expected.data)).view(np.uint8)).sum())
            total += expected.data.size
    print(f"first stage: {differ:,} of {total:,} bits differ from the float path's signs")


if __name__ == "__main__":
    sys.exit(main())
