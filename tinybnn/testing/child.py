"""The child process that runs a C kernel, so that a crash or a hang cannot take the caller down.

:func:`serve` loads the shared library, binds the symbol to its kind's
signature (:mod:`tinybnn.testing.abi`), answers ``("ready", None)`` or
``("error", message)``, then for every argument dict it receives sends back
``("ok", out)`` or ``("raised", message)``, until it receives ``None`` or
the pipe closes. A segfault or an abort in the kernel kills only this
process; :class:`tinybnn.testing.targets.IsolatedCKernel` notices and reports
the signal with the case it was running.
"""
from __future__ import annotations

import ctypes

from .abi import bind_c, call_c


def serve(conn, kind: str, library: str, symbol: str) -> None:
    try:
        function = getattr(ctypes.CDLL(library), symbol)
        bind_c(kind, function)
    except (OSError, AttributeError) as error:
        conn.send(("error", str(error)))
        return
    conn.send(("ready", None))
    while True:
        try:
            args = conn.recv()
        except EOFError:
            return
        if args is None:
            return
        try:
            conn.send(("ok", call_c(kind, function, args)))
        except Exception as error:  # a bad argument conversion, reported with its case
            conn.send(("raised", f"{type(error).__name__}: {error}"))
