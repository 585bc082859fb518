"""The practical peak of the 512-bit XOR-popcount-add step on this CPU, measured.

An XNOR GEMM's inner step, for 512 bits of a row of A and of a row of B, is::

    acc = acc + popcount64x8(a XOR b)        vpxorq, vpopcntq, vpaddq (AVX-512 F + VPOPCNTDQ)

and counts as 512 multiply-adds, 1024 binary operations (the ``2 M N K``
convention of ``tinybnn bench gemm``). Its practical peak per core is how
many of these steps a core retires per second when nothing else limits it:
no loads, no stores, no dependency but the additions. The C kernel below,
compiled with the system's ``cc`` at run time, runs ``CHAINS`` independent
chains of the three instructions as inline assembly on register operands
(so the compiler can neither hoist nor merge them), in a loop of
``iterations`` rounds; the best of several timed calls gives steps per
second. With ``threads`` > 1 the same loop runs on that many POSIX threads
at once (one per core on a machine with as many cores).

The measure exists only where the CPU has ``avx512f`` and
``avx512_vpopcntdq`` (``/proc/cpuinfo``) and a C compiler is found;
otherwise :func:`measure_peak` raises :class:`PeakUnavailable` saying which.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

#: independent accumulator chains per thread: enough to cover the instructions' latencies
CHAINS = 12
REQUIRED_FLAGS = ("avx512f", "avx512_vpopcntdq")
#: the two words every step XORs (in all 8 lanes); each step adds popcount(A ^ B) to every lane
STEP_A, STEP_B = 0x0123456789ABCDEF, 0x5555AAAA3333CCCC
BITS_PER_STEP = 512
OPS_PER_STEP = 2 * BITS_PER_STEP

_SOURCE = r"""
#include <immintrin.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>

#define CHAINS %(chains)d

static void run(long iterations, uint64_t *sink) {
    __m512i a = _mm512_set1_epi64(%(a)#xULL), b = _mm512_set1_epi64(%(b)#xULL);
%(declare)s
    for (long i = 0; i < iterations; i++) {
%(body)s
    }
    __m512i total = _mm512_setzero_si512();
%(total)s
    *sink = (uint64_t)_mm512_reduce_add_epi64(total);
}

struct job { long iterations; uint64_t sink; };

static void *work(void *arg) { struct job *j = arg; run(j->iterations, &j->sink); return 0; }

/* Seconds for `threads` threads to run `iterations` rounds of CHAINS steps each, all at once. */
double xnor_step_seconds(long iterations, int threads) {
    pthread_t ids[64];
    struct job jobs[64];
    struct timespec t0, t1;
    if (threads < 1 || threads > 64) return -1.0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int t = 0; t < threads; t++) {
        jobs[t].iterations = iterations;
        if (t > 0) pthread_create(&ids[t], 0, work, &jobs[t]);
    }
    work(&jobs[0]);
    for (int t = 1; t < threads; t++) pthread_join(ids[t], 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (t1.tv_sec - t0.tv_sec) + 1e-9 * (t1.tv_nsec - t0.tv_nsec);
}

int xnor_step_chains(void) { return CHAINS; }

/* The sum of all chains' counts after `iterations` rounds, to check the kernel counts what it should. */
uint64_t xnor_step_total(long iterations) { uint64_t sink; run(iterations, &sink); return sink; }
"""

# acc is read and written by vpaddq: an in-out operand, so the chain is a real dependency
_STEP = (
    '        __asm__ volatile ("vpxorq %%[b], %%[a], %%[x]\\n\\tvpopcntq %%[x], %%[x]\\n\\t'
    'vpaddq %%[x], %%[acc], %%[acc]" : [x] "=&v"(x), [acc] "+v"(acc%(c)d) : [a] "v"(a), [b] "v"(b));'
)


class PeakUnavailable(RuntimeError):
    """The peak cannot be measured here (CPU flags or C compiler missing)."""


def cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none)."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def source(chains: int = CHAINS) -> str:
    declare = "    __m512i x;\n" + "".join(f"    __m512i acc{c} = _mm512_setzero_si512();\n" for c in range(chains))
    body = "\n".join(_STEP % {"c": c} for c in range(chains))
    total = "".join(f"    total = _mm512_add_epi64(total, acc{c});\n" for c in range(chains))
    return _SOURCE % {"chains": chains, "declare": declare, "body": body, "total": total, "a": STEP_A, "b": STEP_B}


def compile_library(folder: Path, chains: int = CHAINS) -> ctypes.CDLL:
    """Compile the step kernel with ``cc -O2 -mavx512f -mavx512vpopcntdq -pthread`` into ``folder``."""
    missing = [flag for flag in REQUIRED_FLAGS if flag not in cpu_flags()]
    if missing:
        raise PeakUnavailable(f"this CPU lacks {', '.join(missing)}: the 512-bit XOR-popcount step cannot run here")
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise PeakUnavailable("no C compiler (cc) found: the peak micro-benchmark is compiled at run time")
    c_file, library = folder / "xnor_peak.c", folder / "xnor_peak.so"
    c_file.write_text(source(chains))
    done = subprocess.run(
        [
            compiler,
            "-O2",
            "-mavx512f",
            "-mavx512vpopcntdq",
            "-pthread",
            "-shared",
            "-fPIC",
            "-o",
            str(library),
            str(c_file),
        ],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise PeakUnavailable(f"{compiler} could not compile the peak kernel: {done.stderr.strip()[-500:]}")
    lib = ctypes.CDLL(str(library))
    lib.xnor_step_seconds.argtypes = [ctypes.c_long, ctypes.c_int]
    lib.xnor_step_seconds.restype = ctypes.c_double
    lib.xnor_step_chains.restype = ctypes.c_int
    lib.xnor_step_total.argtypes = [ctypes.c_long]
    lib.xnor_step_total.restype = ctypes.c_uint64
    return lib


def measure_peak(threads: int = 1, seconds: float = 0.5, repeats: int = 7, library: ctypes.CDLL | None = None) -> dict:
    """Steps per second and binary TOPS of ``threads`` cores running the step at once: the best of
    ``repeats`` calls of about ``seconds / repeats`` each (the best, since load only slows it).
    ``library``: one :func:`compile_library` made (else it is compiled here, in a temporary folder)."""
    if library is None:
        with tempfile.TemporaryDirectory() as folder:
            return measure_peak(threads, seconds, repeats, compile_library(Path(folder)))
    chains = library.xnor_step_chains()
    iterations = 1 << 16
    while library.xnor_step_seconds(iterations, threads) < seconds / repeats / 4:
        iterations *= 2
    best = min(library.xnor_step_seconds(iterations, threads) for _ in range(repeats))
    steps = iterations * chains * threads / best
    return {
        "threads": threads,
        "chains": chains,
        "steps_per_s": steps,
        "tops": steps * OPS_PER_STEP / 1e12,
        "tops_per_core": steps * OPS_PER_STEP / 1e12 / threads,
        "cpu": cpu_model(),
    }
