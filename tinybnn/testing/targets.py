"""Loading a candidate kernel (Python or C), running it safely, and timing it once verified.

A target names a kernel:

* ``module:function`` (the current directory is searched first, like
  ``python -m``), or ``path/to/file.py:function``: a Python callable, run in
  this process with :func:`tinybnn.kernel_abi.call_python`'s arguments;
* ``path/to/lib.so:symbol`` with ``c=True``: a C function with its kind's
  signature, run in a child process (:class:`IsolatedCKernel`) while it is
  verified, so that a segfault, an abort or a hang is reported with the case
  that caused it instead of ending the caller.

Every kernel object is called as ``kernel(args) -> out`` with an ABI
argument dict. Bad targets (no such file, module, library or symbol; not a
callable; an unknown kind) raise :class:`tinybnn.errors.ArgumentError`.

For a benchmark: :func:`verified_kernel` loads a target, checks it (in the
child process for C) and returns an in-process kernel to time with
:func:`time_kernel`.
"""

from __future__ import annotations

import ctypes
import importlib
import importlib.util
import os
import signal
import subprocess
import sys
from multiprocessing.connection import Connection
from pathlib import Path

from tinybnn.errors import ArgumentError, TinyBNNError

from tinybnn.kernel_abi import KINDS, bind_c, call_c, call_python


class KernelCrashed(Exception):
    """The C kernel's process died (a signal such as SIGSEGV, or an exit) while running a case."""


class KernelHung(Exception):
    """The C kernel gave no answer within the timeout."""


class VerificationFailed(TinyBNNError):
    """A kernel given to a benchmark did not pass its check; the message is the report."""


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ArgumentError(f"unknown kernel kind {kind!r}; known: {', '.join(KINDS)}")
    return kind


class PythonKernel:
    """A Python callable with its kind's Python signature."""

    def __init__(self, kind: str, function, name: str):
        if not callable(function):
            raise ArgumentError(f"{name} is not callable (it is a {type(function).__name__})")
        self.kind, self.function, self.name = check_kind(kind), function, name

    def __call__(self, args: dict):
        return call_python(self.kind, self.function, args)

    def close(self) -> None:
        pass


class CKernel:
    """A C function loaded into this process (fast to call; a crash ends the process)."""

    def __init__(self, kind: str, library: str, symbol: str):
        self.kind, self.name = check_kind(kind), f"{library}:{symbol}"
        path = _library_path(library)
        try:
            self.function = getattr(ctypes.CDLL(path), symbol)
        except OSError as error:
            raise ArgumentError(f"{library}: cannot load the library: {error}") from None
        except AttributeError:
            raise ArgumentError(f"{library}: no symbol {symbol!r}") from None
        bind_c(kind, self.function)

    def __call__(self, args: dict):
        return call_c(self.kind, self.function, args)

    def close(self) -> None:
        pass


def _death(exitcode) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            return f"killed by signal {-exitcode} ({signal.Signals(-exitcode).name})"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exited with status {exitcode}"


class IsolatedCKernel:
    """A C function run in a child process (:mod:`tinybnn.kernel_child`), restarted after a crash.

    Calls raise :class:`KernelCrashed` when the child dies (``str`` says the
    signal) and :class:`KernelHung` when no answer comes within ``timeout``
    seconds (the child is then killed). The child gets its own two pipes and
    prints (the kernel's stdout) to this process's stderr.
    """

    STARTUP_TIMEOUT = 60.0

    def __init__(self, kind: str, library: str, symbol: str, timeout: float = 10.0):
        # the child and its two pipe ends, set by _start and cleared by _kill together
        self._process: subprocess.Popen[bytes] | None = None
        self._send: Connection | None = None
        self._receive_end: Connection | None = None
        self.kind, self.name, self.timeout = check_kind(kind), f"{library}:{symbol}", float(timeout)
        self.library, self.symbol = _library_path(library), symbol
        self._display = library
        self._start()

    def _start(self) -> None:
        to_child, from_parent = os.pipe()
        to_parent, from_child = os.pipe()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [_PACKAGE_ROOT, env.get("PYTHONPATH")]))
        try:
            self._process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tinybnn.kernel_child",
                    str(to_child),
                    str(from_child),
                    self.kind,
                    self.library,
                    self.symbol,
                ],
                pass_fds=(to_child, from_child),
                stdin=subprocess.DEVNULL,
                stdout=sys.__stderr__.fileno() if sys.__stderr__ is not None else subprocess.DEVNULL,
                env=env,
            )
        finally:
            os.close(to_child)
            os.close(from_child)
        self._send = Connection(from_parent, readable=False)
        self._receive_end = Connection(to_parent, writable=False)
        try:
            status, message = self._receive(self.STARTUP_TIMEOUT)
        except (KernelCrashed, KernelHung) as error:
            raise ArgumentError(f"{self._display}: the library could not be loaded: {error}") from None
        if status == "error":
            self.close()
            if "undefined symbol" in message:
                raise ArgumentError(f"{self._display}: no symbol {self.symbol!r}")
            raise ArgumentError(f"{self._display}: cannot load the library: {message}")

    def _receive(self, timeout: float):
        assert self._process is not None and self._receive_end is not None  # called on a started child
        if not self._receive_end.poll(timeout):
            self._kill()
            raise KernelHung(f"no answer within {timeout:g} s (a hang?); the child process was killed")
        try:
            return self._receive_end.recv()
        except (EOFError, ConnectionError):
            try:
                code = self._process.wait(5)
            except subprocess.TimeoutExpired:
                code = None
            self._kill()
            raise KernelCrashed(f"the kernel's process was {_death(code)}") from None

    def _kill(self) -> None:
        if self._process is not None:
            if self._process.poll() is None:
                self._process.kill()
            self._process.wait()
        for end in (self._send, self._receive_end):
            if end is not None:
                end.close()
        self._process = self._send = self._receive_end = None

    def __call__(self, args: dict):
        if self._process is None:
            self._start()
        assert self._send is not None  # set by _start
        try:
            self._send.send(args)
        except (BrokenPipeError, ConnectionError):
            pass  # the child died: _receive says how
        status, value = self._receive(self.timeout)
        if status == "raised":
            raise RuntimeError(value)
        return value

    def close(self) -> None:
        """Ask the child to stop, then make sure it has."""
        if self._process is not None and self._process.poll() is None:
            assert self._send is not None  # set with _process
            try:
                self._send.send(None)
                self._process.wait(2)
            except (BrokenPipeError, ConnectionError, OSError, subprocess.TimeoutExpired):
                pass
        self._kill()

    def __del__(self):
        self.close()


_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent.parent)  # the folder holding tinybnn/


def _library_path(library: str) -> str:
    path = Path(library)
    if not path.is_file():
        raise ArgumentError(f"{library}: no such library file")
    return str(path.resolve())


def _split(spec: str, what: str) -> tuple[str, str]:
    where, sep, name = spec.rpartition(":")
    if not sep or not where or not name:
        raise ArgumentError(f"target {spec!r} must be {what}")
    return where, name


def load_python_function(spec: str):
    """The callable named by ``module:function`` or ``path/to/file.py:function``."""
    where, name = _split(spec, "module:function or path/to/file.py:function")
    try:
        if where.endswith(".py") or os.sep in where or "/" in where:
            path = Path(where)
            if not path.is_file():
                raise ArgumentError(f"{where}: no such Python file")
            module_spec = importlib.util.spec_from_file_location(path.stem, path)
            if module_spec is None or module_spec.loader is None:  # a file name without a Python suffix
                raise ArgumentError(f"{where}: importing it failed: no loader for this file name")
            module = importlib.util.module_from_spec(module_spec)
            module_spec.loader.exec_module(module)
        else:
            if os.getcwd() not in sys.path:
                sys.path.insert(0, os.getcwd())
            module = importlib.import_module(where)
    except ModuleNotFoundError as error:
        raise ArgumentError(f"{where}: no such module ({error})") from None
    except TinyBNNError:
        raise
    except Exception as error:
        raise ArgumentError(f"{where}: importing it failed: {type(error).__name__}: {error}") from None
    if not hasattr(module, name):
        raise ArgumentError(f"{where} has no attribute {name!r}")
    return getattr(module, name)


def load_target(spec: str, kind: str, c: bool = False, timeout: float = 10.0):
    """A kernel object for ``spec``: :class:`PythonKernel`, or :class:`IsolatedCKernel` when ``c``."""
    check_kind(kind)
    if c:
        library, symbol = _split(spec, "path/to/lib.so:symbol")
        return IsolatedCKernel(kind, library, symbol, timeout)
    return PythonKernel(kind, load_python_function(spec), spec)
