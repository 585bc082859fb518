"""Solutions of chapter 6's exercises (docs/tutorial/exercises/06_convert_and_deploy.py)."""

import math

import numpy as np


def folded_scale_shift(alpha, bias, gamma, beta, mean, var, eps):
    factor = np.asarray(gamma, dtype=np.float64) / np.sqrt(np.asarray(var, dtype=np.float64) + eps)
    scale = np.asarray(alpha, dtype=np.float64) * factor
    shift = (np.asarray(bias, dtype=np.float64) - mean) * factor + beta
    return scale.astype(np.float32), shift.astype(np.float32)


def dot_threshold(scale, shift):
    t = math.ceil(-float(shift) / float(scale))
    while float(scale) * (t - 1) + float(shift) >= 0:  # the division may round up past the edge
        t -= 1
    while float(scale) * t + float(shift) < 0:
        t += 1
    return t


def packed_weight_bytes(filters, k):
    return filters * ((k + 63) // 64) * 8
