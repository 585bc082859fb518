"""Where a training step's time goes: seconds per epoch in each op's forward and backward, and the optimizer.

    OPENBLAS_NUM_THREADS=2 NUMBA_NUM_THREADS=2 python scripts/profile_train.py --model lenet --batches 60

Times ``--batches`` training steps (batch 100, Adam, Fashion-MNIST) after 5
untimed ones (Numba compilation), wrapping every Function's forward and
backward with a timer, and scales the sums to a 600-batch epoch. The timers
add a little overhead per op; use the totals to rank costs, and
``tinybnn bench train`` for speed.
"""

from __future__ import annotations

import argparse
import collections
import time

import tinybnn  # noqa: F401 (first: its thread settings must be in place when NumPy loads OpenBLAS)
import numpy as np

from tinybnn.autograd import Tensor, softmax_cross_entropy
from tinybnn.autograd.function import Function
from tinybnn.data import load_dataset, to_float_nchw
from tinybnn.models import build_model
from tinybnn.optim import Adam
from tinybnn.workspace import Workspace

WARMUP = 5


def timed_functions(totals: dict[str, float]) -> None:
    """Make every Function's forward and backward add its seconds to totals["Name.fwd" / "Name.bwd"]."""
    apply = Function.apply.__func__

    def timed(name, method):
        def run(*args, **kwargs):
            start = time.perf_counter()
            result = method(*args, **kwargs)
            totals[name] += time.perf_counter() - start
            return result

        return staticmethod(run)

    def timed_apply(cls, *inputs, **params):
        if "_profiled" not in vars(cls):
            cls.forward = timed(cls.__name__ + ".fwd", cls.forward)
            cls.backward = timed(cls.__name__ + ".bwd", cls.backward)
            cls._profiled = True
        return apply(cls, *inputs, **params)

    Function.apply = classmethod(timed_apply)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="lenet", choices=["lenet", "binary-lenet"])
    p.add_argument("--batches", type=int, default=60)
    p.add_argument("--data", default="../shared/datasets")
    args = p.parse_args()
    data = load_dataset("fashion-mnist", data_dir=args.data, download=False)
    count = (args.batches + WARMUP) * 100
    x, y = to_float_nchw(data.train_images[:count]), data.train_labels[:count].astype(np.int64)
    model, _ = build_model(args.model, rng=np.random.default_rng(0))
    optimizer = Adam(model.parameters(), lr=1e-3)
    memory = Workspace("training step")
    ops: dict[str, float] = collections.defaultdict(float)
    timed_functions(ops)

    def step(i: int) -> np.ndarray:
        images, labels = x[i * 100 : (i + 1) * 100], y[i * 100 : (i + 1) * 100]
        with memory.use():
            t0 = time.perf_counter()
            loss = softmax_cross_entropy(model(Tensor(images)), labels)
            t1 = time.perf_counter()
            optimizer.zero_grad()
            loss.backward()
            t2 = time.perf_counter()
            optimizer.step()
            return np.array([t1 - t0, time.perf_counter() - t2, t2 - t1])

    for i in range(WARMUP):
        step(i)
    ops.clear()
    phases = sum(step(WARMUP + i) for i in range(args.batches))
    scale = 600 / args.batches
    print(
        f"{args.model}, seconds per 600-batch epoch from {args.batches} batches: forward {phases[0] * scale:.1f}, "
        f"backward {phases[2] * scale:.1f}, optimizer {phases[1] * scale:.1f}"
    )
    for name, seconds in sorted(ops.items(), key=lambda item: -item[1]):
        if seconds * scale >= 0.05:
            print(f"  {name:28} {seconds * scale:7.2f}")


if __name__ == "__main__":
    main()
