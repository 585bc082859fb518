"""PyTorch's side of the benchmarks: the same LeNets, timed the same way.

Run by path (``python torch_worker.py train|infer ...``) by the benchmark
drivers, never imported: it must not import tinybnn, whose import changes
thread settings (see ``tinybnn/__init__.py``) that would then apply to
PyTorch's OpenMP pool too. It reads the images from the ``.npz`` file the
driver wrote, so both sides see the same bytes, and prints one JSON line.

The binary network binarizes as BinaryNet.pytorch does: sign in the forward
pass (sign(0) = +1, as in tinybnn), the straight-through estimator (gradient
where |x| <= 1) in the backward pass, float convolution / matmul on the ±1
values, latent weights clipped to [-1, 1] after each step.
"""

import argparse
import json
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


class SignSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.where(x >= 0, 1.0, -1.0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (x.abs() <= 1).to(grad.dtype)


class BinaryConv2d(nn.Conv2d):
    def forward(self, x):
        return F.conv2d(SignSTE.apply(x), SignSTE.apply(self.weight), None, self.stride, self.padding)


class BinaryLinear(nn.Linear):
    def forward(self, x):
        return F.linear(SignSTE.apply(x), SignSTE.apply(self.weight))


def lenet(binary: bool) -> nn.Sequential:
    """BMXNet's LeNet, as tinybnn.models.lenet builds it."""
    conv = BinaryConv2d(64, 64, 5, bias=False) if binary else nn.Conv2d(64, 64, 5)
    dense = BinaryLinear(1024, 1000, bias=False) if binary else nn.Linear(1024, 1000)
    return nn.Sequential(
        nn.Conv2d(1, 64, 5),
        nn.Tanh(),
        nn.MaxPool2d(2, 2),
        nn.BatchNorm2d(64),
        conv,
        nn.BatchNorm2d(64),
        nn.MaxPool2d(2, 2),
        nn.Flatten(),
        dense,
        nn.BatchNorm1d(1000),
        nn.Tanh(),
        nn.Linear(1000, 10),
    )


def clip_latent_weights(model: nn.Sequential) -> None:
    with torch.no_grad():
        for module in model:
            if isinstance(module, (BinaryConv2d, BinaryLinear)):
                module.weight.clamp_(-1, 1)


def load(path: str):
    with np.load(path) as arrays:
        images = torch.from_numpy(arrays["images"].astype(np.float32)[:, None] / np.float32(255))
        return images, torch.from_numpy(arrays["labels"].astype(np.int64))


def time_training_epoch(
    model: nn.Sequential, binary: bool, images, labels, batch_size: int, seed: int, warmup: int
) -> float:
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step(x, y):
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if binary:
            clip_latent_weights(model)

    full = max(1, len(images) // batch_size)
    for i in range(warmup):
        start = (i % full) * batch_size
        step(images[start : start + batch_size], labels[start : start + batch_size])
    order = torch.from_numpy(np.random.default_rng(seed).permutation(len(images)))
    started = time.perf_counter()
    for i in range(0, len(images), batch_size):
        index = order[i : i + batch_size]
        step(images[index], labels[index])
    return time.perf_counter() - started


def time_inference(model: nn.Sequential, images, batch_size: int, warmup: int) -> float:
    model.eval()
    with torch.inference_mode():
        for _ in range(warmup):
            model(images[:batch_size])
        start = time.perf_counter()
        for i in range(0, len(images), batch_size):
            model(images[i : i + batch_size])
        return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("task", choices=["train", "infer"])
    p.add_argument("--arrays", required=True)
    p.add_argument("--model", default="lenet", choices=["lenet", "binary-lenet"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--warmup", type=int, default=5)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    binary = args.model == "binary-lenet"
    model = lenet(binary)
    images, labels = load(args.arrays)
    if args.task == "train":
        seconds = time_training_epoch(model, binary, images, labels, args.batch_size, args.seed, args.warmup)
    else:
        seconds = time_inference(model, images, args.batch_size, args.warmup)
    print(json.dumps({"seconds": seconds, "images": len(images), "torch": torch.__version__}))


if __name__ == "__main__":
    main()
