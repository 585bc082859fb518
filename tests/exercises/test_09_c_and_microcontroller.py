"""Chapter 9's exercises (docs/tutorial/exercises/09_c_and_microcontroller.py), against tinybnn.export."""

from types import SimpleNamespace

import numpy as np

from tinybnn.export.c_source import c_array, static_ram, word_literal
from tinybnn.gemm.bitpack import pack_bits_numpy
from tinybnn.gemm.xnor import popcount_table


def test_popcount64_counts_the_bits_of_every_word(exercise):
    rng = np.random.default_rng(91)
    words = np.concatenate(
        [
            np.array([0, 1, 2**63, 2**64 - 1, 0x5555555555555555, 0xFF00000000000001], dtype=np.uint64),
            np.uint64(1) << np.arange(64, dtype=np.uint64),
            rng.integers(0, 2**64, size=200, dtype=np.uint64, endpoint=False),
        ]
    )
    want = popcount_table(words)
    for word, count in zip(words, want):
        got = exercise.popcount64(int(word))
        assert got == count, f"popcount64(0x{int(word):016x}) should be {count}, got {got}"


def _stage(filters, kernel, pad, pool):
    """A fused stage as tinybnn.export.c_source.geometries reads it."""
    return SimpleNamespace(
        num_filter=filters,
        kernel=(kernel, kernel),
        stride=(1, 1),
        pad=(pad, pad),
        pool_kernel=(pool, pool),
        pool_stride=(pool, pool),
    )


def test_static_ram_bytes_matches_the_exporter(exercise):
    cases = [
        (28, 28, [(64, 5, 0, 2), (64, 5, 0, 2)]),  # the shipped LeNet: 1,280 bytes
        (28, 28, [(20, 5, 0, 2), (50, 5, 0, 2)]),
        (28, 28, [(32, 3, 1, 2), (128, 3, 1, 2), (65, 3, 1, 2)]),
        (32, 24, [(100, 5, 2, 3)]),
    ]
    for height, width, stages in cases:
        plan = SimpleNamespace(
            input_hw=(height, width), first=_stage(*stages[0]), middle=[_stage(*s) for s in stages[1:]]
        )
        want = static_ram(plan)
        got = exercise.static_ram_bytes(height, width, stages)
        assert got == want, f"a {height}x{width} image through {stages} keeps {want} bytes, got {got}"


def test_c_weight_array_is_the_exporters_text(exercise):
    rng = np.random.default_rng(93)
    for rows, k in ((1, 3), (2, 64), (3, 65), (4, 200)):
        signs = np.where(rng.random((rows, k)) < 0.5, -1, 1)
        want = c_array("uint64_t", "s1_weight", pack_bits_numpy(signs), word_literal)
        got = exercise.c_weight_array("s1_weight", signs)
        assert isinstance(got, str), f"{rows} rows of {k} signs: expected the C text, got {type(got).__name__}"
        for number, (w, g) in enumerate(zip(want.splitlines() + [""], got.splitlines() + [""]), start=1):
            assert g == w, f"{rows} rows of {k} signs, line {number}: expected {w!r}, got {g!r}"
        assert got == want, f"{rows} rows of {k} signs: expected {want!r}, got {got!r}"
