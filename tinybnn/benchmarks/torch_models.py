"""The same LeNets in PyTorch, for side-by-side benchmarks (imported only in workers).

The binary network binarizes as BinaryNet.pytorch does: sign in the forward
pass (sign(0) = +1 here too), the straight-through estimator (gradient where
|x| <= 1) in the backward pass, float convolution / matmul on the ±1 values,
latent weights clipped to [-1, 1] after each step.
"""
from __future__ import annotations

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


def lenet(binary: bool = False) -> nn.Sequential:
    """SPEC.md's LeNet (binary middle layers if asked), as in tinybnn.models.lenet."""
    conv = BinaryConv2d(64, 64, 5, bias=False) if binary else nn.Conv2d(64, 64, 5)
    dense = BinaryLinear(1024, 1000, bias=False) if binary else nn.Linear(1024, 1000)
    return nn.Sequential(
        nn.Conv2d(1, 64, 5), nn.Tanh(), nn.MaxPool2d(2, 2), nn.BatchNorm2d(64),
        conv, nn.BatchNorm2d(64), nn.MaxPool2d(2, 2),
        nn.Flatten(), dense, nn.BatchNorm1d(1000), nn.Tanh(),
        nn.Linear(1000, 10),
    )


def clip_latent_weights(model: nn.Sequential) -> None:
    with torch.no_grad():
        for module in model:
            if isinstance(module, (BinaryConv2d, BinaryLinear)):
                module.weight.clamp_(-1, 1)
