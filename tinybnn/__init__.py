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

__version__ = "0.1.0"
