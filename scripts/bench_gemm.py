"""Benchmark every registered GEMM; the same as ``tinybnn bench gemm``.

    python scripts/bench_gemm.py --threads 2 --chart docs/img/gemm_speedup.png

See ``python scripts/bench_gemm.py --help`` and :mod:`tinybnn.benchmarks.gemm`.
np.dot is timed in child processes, so OPENBLAS_* variables need not be set
here; ``--baselines`` chooses the OpenBLAS configurations to compare with.
"""

import sys
from pathlib import Path

try:
    from tinybnn.benchmarks.gemm import main
except ImportError:  # run from a source checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tinybnn.benchmarks.gemm import main

if __name__ == "__main__":
    sys.exit(main())
