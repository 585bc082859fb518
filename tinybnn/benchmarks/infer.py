"""Inference speed: the converted binary LeNet against its float path and PyTorch.

    python scripts/bench_infer.py --data ../shared/datasets
    tinybnn bench infer --data ../shared/datasets --threads 2 --batch-sizes 100,1

Contenders, each timed over the MNIST test images in a fresh worker process
after warm-up batches:

- ``packed``: the binary LeNet converted as ``tinybnn convert`` does: three fused stages
  with bits flowing between them (the float first block as one direct convolution writing
  bits, the binary convolution with exact integer thresholds, the binary dense layer with
  its BatchNorm, tanh and classifier);
- ``packed unfused``: the same converted without fusing (``convert_model(model, fuse=False)``:
  1-bit layers on packed bits, XNOR-popcount, BatchNorm folded, floats between layers);
- ``unconverted``: the same binary LeNet as trained, in evaluation mode (its binary
  layers run XNOR-popcount forward passes too, on latent weights packed per call);
- ``float path``: the same binary LeNet with :func:`tinybnn.layers.use_float_path`
  (its binary layers as float GEMMs on ±1 values, the obvious computation);
- ``tinybnn float``: the float LeNet;
- ``PyTorch float`` (when installed): the float LeNet in PyTorch, ``inference_mode``.

Weights are random (seeded; speed does not depend on them) unless ``--model``
gives a trained binary LeNet. tinybnn's contenders run with OpenBLAS as the
environment has it and again with ``OPENBLAS_CORETYPE=SkylakeX`` (float GEMMs
about 1.7x faster on AVX-512 machines whose OpenBLAS picks AVX2). Each repeat
runs every contender back to back; the table gives median milliseconds per
batch, images per second, and the median paired speed-up of ``packed`` (with
the same OpenBLAS kernel) over each other contender.
"""

from __future__ import annotations

import argparse
import json
import sys
from functools import partial
import tempfile
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from .workers import (
    SKYLAKEX,
    format_table,
    label,
    load_images,
    median,
    openblas_core,
    paired_ratio,
    paired_runs,
    tinybnn_worker,
    torch_available,
    torch_worker,
    write_arrays,
)

MODULE = "tinybnn.benchmarks.infer"

CONTENDERS = ("packed", "packed unfused", "unconverted", "float path", "tinybnn float")
WARMUP_BATCHES = 5


def build(contender: str, model_file: str | None, seed: int):
    from ..convert import convert_model
    from ..layers import use_float_path
    from ..models import build_model
    from ..serialization import load_model

    if contender == "tinybnn float":
        model, _ = build_model("lenet", rng=np.random.default_rng(seed))
    elif model_file:
        model = load_model(model_file, kind="float").model
    else:
        model, _ = build_model("binary-lenet", rng=np.random.default_rng(seed))
    model.eval()
    if contender == "float path":
        use_float_path(model)
    if contender.startswith("packed"):
        return convert_model(model, fuse=contender == "packed")
    return model


def time_tinybnn(contender: str, images: np.ndarray, batch_size: int, model_file: str | None, seed: int) -> float:
    from ..autograd import Tensor, no_grad

    model = build(contender, model_file, seed)
    with no_grad():
        for _ in range(WARMUP_BATCHES):
            model(Tensor(images[:batch_size]))
        start = time.perf_counter()
        for i in range(0, len(images), batch_size):
            model(Tensor(images[i : i + batch_size]))
        return time.perf_counter() - start


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="tinybnn bench infer", description=__doc__.splitlines()[0])
    p.add_argument("--data", help="folder with mnist-5k/ or mnist/ (default: $TINYBNN_DATA or the cache)")
    p.add_argument("--model", help="a trained binary LeNet file (default: random weights)")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--batch-sizes", default="100,1")
    p.add_argument("--images", type=int, default=10000, help="test images per timed pass (batch 1 uses a fifth)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-torch", action="store_true", help="skip PyTorch even if it is installed")
    p.add_argument("--no-skylakex", action="store_true", help="skip the OPENBLAS_CORETYPE=SkylakeX variants")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--arrays", help=argparse.SUPPRESS)
    p.add_argument("--contender", help=argparse.SUPPRESS)
    p.add_argument("--batch-size", type=int, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    if args.worker:
        images, _ = load_images(args.arrays)
        seconds = time_tinybnn(args.contender, images, args.batch_size, args.model, args.seed)
        print(json.dumps({"seconds": seconds, "images": len(images), "openblas": openblas_core()}))
        return 0

    from ..data import load_dataset

    data = load_dataset("mnist", data_dir=args.data, download=False)
    with_torch = not args.no_torch and torch_available()
    print(
        f"inference benchmark: MNIST test images, {args.repeats} repeats; median per batch, "
        "median of paired speed-ups"
        + ("" if with_torch else " (--no-torch)" if args.no_torch else " (PyTorch not installed)")
    )
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for batch_size in [int(b) for b in args.batch_sizes.split(",")]:
            count = args.images if batch_size > 1 else max(1, args.images // 5)
            arrays = write_arrays(
                Path(folder) / f"images{batch_size}.npz", data.test_images[:count], data.test_labels[:count]
            )
            common = ["--arrays", str(arrays), "--batch-size", str(batch_size), "--seed", str(args.seed)]
            trained = ["--model", args.model] if args.model else []
            for threads in [int(t) for t in args.threads.split(",")]:
                contenders = {}
                for coretype in [None] + ([] if args.no_skylakex else [SKYLAKEX]):
                    for name in CONTENDERS:
                        key = name if coretype is None else f"{name}, SkylakeX"
                        contenders[key] = partial(
                            tinybnn_worker, MODULE, [*common, *trained, "--contender", name], threads, coretype
                        )
                if with_torch:
                    contenders["PyTorch float"] = partial(torch_worker, "infer", common, threads)
                runs = paired_runs(
                    contenders,
                    args.repeats,
                    lambda name, result: print(
                        f"  batch {batch_size:>3}  {threads} thread(s)  {name:24} {result['seconds']:7.3f} s",
                        flush=True,
                    ),
                )
                seconds = {name: [r["seconds"] for r in results] for name, results in runs.items()}
                batches = -(-count // batch_size)
                for name, values in seconds.items():
                    reference = "packed, SkylakeX" if name.endswith("SkylakeX") else "packed"
                    rows.append(
                        [
                            batch_size,
                            threads,
                            label(name, runs[name]),
                            f"{1000 * median(values) / batches:.3f}",
                            f"{count / median(values):,.0f}",
                            paired_ratio(seconds, name, reference),
                        ]
                    )
    print()
    print(format_table(["batch", "threads", "implementation", "ms/batch", "images/s", "packed is x faster"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
