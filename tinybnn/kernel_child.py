"""The child process that runs a C kernel, so that a crash or a hang cannot take the caller down.

Started by :class:`tinybnn.testing.targets.IsolatedCKernel` as::

    python -m tinybnn.kernel_child READ_FD WRITE_FD KIND LIBRARY SYMBOL

It imports only NumPy, ctypes and :mod:`tinybnn.kernel_abi` (so a restart
after a crash is quick), loads the shared library, binds the symbol to its
kind's signature, answers ``("ready", None)`` or ``("error", message)`` on
WRITE_FD, then for every ABI argument dict read from READ_FD sends back
``("ok", out)`` or ``("raised", message)``, until it reads ``None`` or the
pipe closes. The two pipes are its own (multiprocessing connections), not
stdin and stdout, so a kernel that prints cannot garble them; its stdout is
the caller's stderr. A segfault or an abort kills only this process; the
caller sees the pipe close and reports the signal with the case it sent.
"""

from __future__ import annotations

import ctypes
import sys
from multiprocessing.connection import Connection

from tinybnn.kernel_abi import bind_c, call_c


def serve(receive: Connection, send: Connection, kind: str, library: str, symbol: str) -> None:
    try:
        function = getattr(ctypes.CDLL(library), symbol)
        bind_c(kind, function)
    except (OSError, AttributeError) as error:
        send.send(("error", str(error)))
        return
    send.send(("ready", None))
    while True:
        try:
            args = receive.recv()
        except EOFError:
            return
        if args is None:
            return
        try:
            send.send(("ok", call_c(kind, function, args)))
        except Exception as error:  # a bad argument conversion, reported with its case
            send.send(("raised", f"{type(error).__name__}: {error}"))


def main(argv: list[str]) -> int:
    read_fd, write_fd, kind, library, symbol = argv
    serve(Connection(int(read_fd), writable=False), Connection(int(write_fd), readable=False), kind, library, symbol)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
