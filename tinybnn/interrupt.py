"""Ctrl-C that ends in one line, never in a traceback.

Python turns SIGINT into a ``KeyboardInterrupt`` raised wherever the main
thread happens to be. Inside a Numba kernel that surfaces as ``SystemError:
CPUDispatcher(...) returned a result with an exception set``; inside a write
it can leave half a buffer. So the ``tinybnn`` command never lets SIGINT
raise:

- :func:`exit_on_interrupt` (every command but ``bench``): SIGINT prints one
  line and ends the process at once with status 130. Files are written under
  a temporary name and renamed (:mod:`tinybnn.fileio`), so this loses no
  file; the next write of the same file removes the temporary one.
- :class:`StopRequest` (training): the first SIGINT only sets a flag that
  the training loop reads at every batch boundary; the loop then raises
  :class:`Interrupted` with a message saying what was saved and how to
  resume. A second SIGINT ends at once, with that same one line.

Neither installs anything where SIGINT is ignored (``nohup``, a shell's
background job), so that stays ignored. Both restore the previous handler
when they end, except when they end by
an interrupt: then further Ctrl-Cs are ignored while the process exits (a
late one would otherwise raise during the exit).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from typing import Callable, Iterator

EXIT_STATUS = 130  # 128 + SIGINT, what a shell reports for a process Ctrl-C ended


class Interrupted(KeyboardInterrupt):
    """Ctrl-C stopped the work at a safe point; the message says what was kept."""


def exit_now(message: str) -> None:
    """Write ``tinybnn: <message>`` as one line to stderr and end the process with status 130."""
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    with contextlib.suppress(OSError):
        os.write(2, f"tinybnn: {message}\n".encode("utf-8", "backslashreplace"))
    os._exit(EXIT_STATUS)


@contextlib.contextmanager
def _handling_sigint(handler: Callable) -> Iterator[None]:
    if (
        threading.current_thread() is not threading.main_thread()  # signals reach only the main thread
        or signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    ):  # nohup, a background job: keep ignoring
        yield
        return
    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    except KeyboardInterrupt:
        # the process is ending because of Ctrl-C: one more must not raise while it exits
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        raise
    except BaseException:
        signal.signal(signal.SIGINT, previous)
        raise
    signal.signal(signal.SIGINT, previous)


def exit_on_interrupt(message: str = "interrupted") -> contextlib.AbstractContextManager:
    """While active, Ctrl-C ends the process at once with one line and status 130."""
    return _handling_sigint(lambda signum, frame: exit_now(message))


class StopRequest:
    """While active, the first Ctrl-C sets :attr:`requested`; the second ends at once.

    ``farewell()`` gives the one line the second Ctrl-C prints (what was saved)."""

    def __init__(self, farewell: Callable[[], str]):
        self.farewell = farewell
        self.requested = False
        self._handling = _handling_sigint(self._handle)

    def _handle(self, signum, frame) -> None:
        if self.requested:
            exit_now(self.farewell())
        self.requested = True

    def __enter__(self) -> "StopRequest":
        self._handling.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._handling.__exit__(*exc)
