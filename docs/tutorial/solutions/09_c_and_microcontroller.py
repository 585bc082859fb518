"""Solutions of chapter 9's exercises (docs/tutorial/exercises/09_c_and_microcontroller.py)."""

import numpy as np

MASK64 = 0xFFFFFFFFFFFFFFFF


def popcount64(x):
    x = x - ((x >> 1) & 0x5555555555555555)
    x = (x & 0x3333333333333333) + ((x >> 2) & 0x3333333333333333)
    x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0F
    return ((x * 0x0101010101010101) & MASK64) >> 56


def static_ram_bytes(height, width, stages):
    total = 0
    for filters, kernel, pad, pool in stages:
        height = (height + 2 * pad - kernel + 1 - pool) // pool + 1
        width = (width + 2 * pad - kernel + 1 - pool) // pool + 1
        total += 8 * height * width * ((filters + 63) // 64)
    return total


def c_weight_array(name, signs):
    signs = np.asarray(signs)
    rows, k = signs.shape
    words = []
    for row in signs:
        for start in range(0, k, 64):
            words.append(sum(1 << j for j, s in enumerate(row[start : start + 64]) if s > 0))
    literals = [f"0x{w:016x}u" for w in words]
    lines = [", ".join(literals[i : i + 8]) for i in range(0, len(literals), 8)]
    body = ",\n    ".join(lines)
    return f"static const uint64_t {name}[{len(words)}] = {{\n    {body}\n}};\n"
