"""tinybnn: a small, readable, fully tested engine for binary neural networks.

Two thread pools share the cores while tinybnn trains: OpenBLAS's (float
GEMM, through NumPy) and Numba's OpenMP pool (our kernels). By default each
keeps its threads spinning for a while after its work, on the very cores the
other pool needs next; a LeNet training step on 2 cores took 130 ms that way
and 63 ms with both pools told to sleep at once. So, unless you set them
yourself, importing tinybnn sets

    OMP_WAIT_POLICY=passive          (Numba's OpenMP threads sleep when idle)
    OPENBLAS_THREAD_TIMEOUT=4        (OpenBLAS threads sleep after 2^4 cycles)

OpenBLAS reads its variable when NumPy is first imported, so import tinybnn
before NumPy (the ``tinybnn`` command does), or export it in the shell.
:data:`THREAD_SETTINGS` lists what was set here.
"""

import os as _os

#: environment variables tinybnn set because the user had not (see the module docstring)
THREAD_SETTINGS = {}
for _name, _value in (("OMP_WAIT_POLICY", "passive"), ("OPENBLAS_THREAD_TIMEOUT", "4")):
    if _name not in _os.environ:
        _os.environ[_name] = THREAD_SETTINGS[_name] = _value

__version__ = "0.1.0"
