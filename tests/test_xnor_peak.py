"""The peak micro-benchmark's C kernel counts what it claims (nothing here is timed).

It needs a C compiler and a CPU with AVX-512 F and VPOPCNTDQ; without the
flags, the kernel must refuse with a sentence naming them.
"""

import shutil

import pytest

from tinybnn.benchmarks import xnor_peak
from tinybnn.benchmarks.xnor_peak import CHAINS, REQUIRED_FLAGS, STEP_A, STEP_B, PeakUnavailable, compile_library

HAS_FLAGS = all(flag in xnor_peak.cpu_flags() for flag in REQUIRED_FLAGS)


@pytest.mark.skipif(not HAS_FLAGS, reason="the CPU lacks AVX-512 VPOPCNTDQ (the refusal is tested below)")
def test_every_step_adds_the_popcount_of_a_xor_b_in_every_lane(tmp_path):
    if shutil.which("cc") is None:
        pytest.fail("no C compiler: the peak kernel is built with cc; put cc on PATH")
    lib = compile_library(tmp_path)
    assert lib.xnor_step_chains() == CHAINS
    per_step = 8 * bin(STEP_A ^ STEP_B).count("1")  # 8 lanes of 64 bits
    for iterations in (1, 3, 1000):
        assert lib.xnor_step_total(iterations) == iterations * CHAINS * per_step
    assert lib.xnor_step_seconds(10, 2) >= 0
    assert lib.xnor_step_seconds(10, 0) == -1.0


def test_a_cpu_without_the_flags_is_refused_with_their_names(tmp_path, monkeypatch):
    monkeypatch.setattr(xnor_peak, "cpu_flags", lambda: {"avx2", "avx512f"})
    with pytest.raises(PeakUnavailable, match="avx512_vpopcntdq"):
        compile_library(tmp_path)


def test_without_a_compiler_the_refusal_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(xnor_peak, "cpu_flags", lambda: set(REQUIRED_FLAGS))
    monkeypatch.setenv("CC", "")
    monkeypatch.setattr(xnor_peak.shutil, "which", lambda name: None)
    with pytest.raises(PeakUnavailable, match="no C compiler"):
        compile_library(tmp_path)
