"""Benchmark every registered GEMM; the same as ``tinybnn bench gemm``.

    PYTHONPATH=. python scripts/bench_gemm.py --threads 2 --chart docs/img/gemm_speedup.png

See ``python scripts/bench_gemm.py --help`` and :mod:`tinybnn.gemm.benchmark`.
np.dot is timed in child processes, so OPENBLAS_* variables need not be set
here; the options choose the OpenBLAS baselines.
"""
import sys

from tinybnn.gemm.benchmark import main

if __name__ == "__main__":
    sys.exit(main())
