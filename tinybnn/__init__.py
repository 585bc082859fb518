"""tinybnn: a small, readable, fully tested engine for binary neural networks.

Two thread pools share the cores while tinybnn trains: OpenBLAS's (float
GEMM, through NumPy) and Numba's OpenMP pool (our kernels). How long an idle
thread of a pool spins before it sleeps decides much of a training step's
time on 2 cores. Spinning long (the libraries' defaults, milliseconds) keeps
a pool's threads on the very cores the other pool needs next: a LeNet step
took 130 ms that way. Sleeping at once is no better on a virtual machine,
where waking a sleeping thread costs about 80 us (an empty parallel loop took
73-104 us with ``OMP_WAIT_POLICY=passive``, 4-21 us spinning), and a step
runs dozens of parallel loops. So, unless you set them yourself, importing
tinybnn has Numba's threads spin for a few tenths of a millisecond, long
enough to catch the next loop of a step, and OpenBLAS's sleep at once (its
threads spinning after a 1000 x 10 product made a batch of 1 on 2 threads
0.68x as fast as on 1 thread; sleeping, 1.09x):

    GOMP_SPINCOUNT=30000             (Numba's OpenMP threads; libgomp counts
                                      about 100,000 spins a millisecond)
    OPENBLAS_THREAD_TIMEOUT=4        (OpenBLAS threads: 2^4 cycles)

An ``OMP_WAIT_POLICY`` of yours is left to work as you meant it: then
``GOMP_SPINCOUNT`` is not set. OpenBLAS reads its variable when NumPy is
first imported, so import tinybnn before NumPy (the ``tinybnn`` command
does), or export it in the shell. :data:`THREAD_SETTINGS` lists what was set
here.

One more setting concerns the compiler. On CPUs with AVX-512, LLVM (which
compiles Numba's kernels) is tuned by default to prefer 256-bit vectors (a
choice made for early AVX-512 cores, which lowered their clock for 512-bit
instructions; not measured here). On this round's
Intel Xeon (detected as Rocket Lake; AVX-512 with VPOPCNTDQ) the 512-bit
kernels ran the packed LeNet's first stage 1.4x and its binary convolution
1.9x faster at batch 1. So where the CPU has AVX-512F, importing tinybnn sets
``NUMBA_CPU_FEATURES`` to the host's own features plus ``-prefer-256-bit``,
unless you set ``NUMBA_CPU_FEATURES`` or ``NUMBA_CPU_NAME`` yourself, or
imported Numba before tinybnn (then Numba has read its configuration
already). Only the vector width changes: no float reduction is reordered
(the kernels use no fast-math reassociation), and Numba's cache keeps
kernels compiled for other features apart. :data:`COMPILER_SETTINGS` lists
what was set.
"""

import os as _os

#: environment variables tinybnn set because the user had not (see the module docstring)
THREAD_SETTINGS = {}
# (variable, value, the user's variables that leave it unset)
for _name, _value, _preempted_by in (
    ("GOMP_SPINCOUNT", "30000", ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")),
    ("OPENBLAS_THREAD_TIMEOUT", "4", ("OPENBLAS_THREAD_TIMEOUT",)),
):
    if not any(name in _os.environ for name in _preempted_by):
        _os.environ[_name] = THREAD_SETTINGS[_name] = _value


def host_cpu_features() -> str | None:
    """The host CPU's features as LLVM names them (``+avx2,+avx512f,-sse4a,...``), or None
    where this platform has no host feature detection."""
    try:
        import llvmlite.binding as llvm

        return llvm.get_host_cpu_features().flatten()
    except Exception:  # no host feature detection on this platform
        return None


def _wide_vector_features() -> str | None:
    """The host's LLVM feature string with 512-bit vectors preferred, or None where the CPU lacks AVX-512F."""
    features = host_cpu_features()
    if features is None or "+avx512f" not in features.split(","):  # unknown: leave LLVM's defaults
        return None
    return features + ",-prefer-256-bit"


#: environment variables for Numba's compiler tinybnn set because the user had not (see the module docstring)
COMPILER_SETTINGS = {}
if not any(name in _os.environ for name in ("NUMBA_CPU_FEATURES", "NUMBA_CPU_NAME")):
    import sys as _sys

    if "numba" not in _sys.modules:
        _features = _wide_vector_features()
        if _features is not None:
            _os.environ["NUMBA_CPU_FEATURES"] = COMPILER_SETTINGS["NUMBA_CPU_FEATURES"] = _features

__version__ = "0.1.0"
