"""Benchmarks comparing tinybnn with itself and with PyTorch (when installed).

Each benchmark runs every measurement in a fresh worker process, so that
thread counts (``OPENBLAS_NUM_THREADS``, ``NUMBA_NUM_THREADS``, torch's) and
``OPENBLAS_CORETYPE`` are set before NumPy loads, and alternates the
contenders within each repeat so that their ratios are paired: both sides of
a ratio ran within the same minute on the same machine.
"""
