"""Two backends for the autograd's kernels: ``reference`` (plain NumPy, reads as the math) and ``fast``.

Every op of the autograd (sign and its straight-through estimator, tanh,
convolution, binary convolution and dense, pooling, batch norm) is written
once, as a :class:`~tinybnn.autograd.function.Function`, on top of a few
*kernels*. Each kernel is a :class:`Kernel`: a pair of functions with one
signature,

- ``reference``: the formula in a few lines of NumPy, the one to read;
- ``fast``: the same result by Numba kernels (:mod:`.kernels`), scratch
  memory from the workspace and memory-order tricks, the one that runs.

The pair is declared where the reference is defined (``sign`` in
:mod:`.quantize`, ``conv_forward`` in :mod:`.conv` ...), so each fast kernel
sits next to its twin, and :data:`KERNELS` lists them all for the tests,
which check that the twins agree: exactly for signs, masks, bits and
integers, within the tolerance a kernel states (:attr:`Kernel.tolerance`)
for float results, whose sums run in another order.

The backend is chosen in one place::

    with tinybnn.autograd.backend("reference"):   # for the block, then back
        loss.backward()
    tinybnn.autograd.backend("fast")              # from now on (a plain setter)

or by the environment variable ``TINYBNN_BACKEND`` (``reference`` or
``fast``; any other value is refused when tinybnn.autograd is imported, and
again whenever it is read); without either, ``fast``. A Function records the backend of its
forward pass in its context, and its backward runs on the same backend
(:func:`tinybnn.autograd.graph.backpropagate`), since the two backends may
keep different things for the backward (the fast convolution keeps a
column of ones for the bias).
"""

from __future__ import annotations

import contextvars
import os
from dataclasses import dataclass
from typing import Any, Callable, Generic, TypeVar

from ..errors import ArgumentError

NAMES = ("reference", "fast")
ENVIRONMENT_VARIABLE = "TINYBNN_BACKEND"
DEFAULT = "fast"

_chosen: contextvars.ContextVar[str | None] = contextvars.ContextVar("tinybnn_backend", default=None)


def _check(name: Any, what: str) -> str:
    if name not in NAMES:
        raise ArgumentError(f"{what} must be 'reference' or 'fast', got {name!r}")
    return name


def active_backend() -> str:
    """The backend kernels run on now: the one set by :func:`backend`, else ``$TINYBNN_BACKEND``, else fast."""
    chosen = _chosen.get()
    if chosen is not None:
        return chosen
    from_environment = os.environ.get(ENVIRONMENT_VARIABLE)
    if from_environment is None or from_environment == "":
        return DEFAULT
    return _check(from_environment, f"the environment variable {ENVIRONMENT_VARIABLE}")


class backend:
    """Select the backend ``name`` ("reference" or "fast") now; as a context manager, only for the block.

    ``backend("reference")`` on its own sets it for the rest of the thread (or
    until the next call); ``with backend("reference"):`` restores the previous
    choice when the block ends, also on an exception.
    """

    def __init__(self, name: str):
        self.name = _check(name, "backend's argument name")
        self._token = _chosen.set(self.name)

    def __enter__(self) -> backend:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        _chosen.reset(self._token)


F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Tolerance:
    """|fast - reference| <= atol + rtol |reference|, for float32 results (float64: the same bounds hold)."""

    rtol: float
    atol: float


#: exact agreement (signs, masks, bits, integers, copies)
EXACT = None
#: the same formula evaluated in another order or with a temporary less: a few float32 ulps
FEW_ULPS = Tolerance(rtol=1e-6, atol=1e-6)
#: sums taken in another order (GEMM blocks, col2im patch by patch, float64 statistics), for
#: values of order 1 and sums of up to a few hundred terms, in float32
SUMMED_IN_ANOTHER_ORDER = Tolerance(rtol=1e-5, atol=1e-5)


@dataclass(frozen=True)
class Kernel(Generic[F]):
    """One computation, twice: ``reference`` (plain NumPy) and ``fast``, called by the active backend.

    Both take the same arguments and return the same values: exactly when
    ``tolerance`` is None, otherwise within it.
    """

    name: str
    reference: F
    fast: F
    tolerance: Tolerance | None = EXACT

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        implementation = self.fast if active_backend() == "fast" else self.reference
        return implementation(*args, **kwargs)


#: every kernel, by name, in the order the modules declare them
KERNELS: dict[str, Kernel] = {}


def kernel(name: str, reference: F, fast: F, tolerance: Tolerance | None = EXACT) -> Kernel[F]:
    """Declare (and register in :data:`KERNELS`) the kernel ``name`` with its two implementations."""
    if name in KERNELS and KERNELS[name].reference.__module__ != reference.__module__:
        raise ValueError(
            f"kernel {name!r} is declared twice ({KERNELS[name].reference.__module__}, {reference.__module__})"
        )
    KERNELS[name] = twin = Kernel(name, reference, fast, tolerance)
    return twin


active_backend()  # a misspelt $TINYBNN_BACKEND is refused at import, before any work is done
