"""What a check returns: passed, or the smallest failing case, in readable text.

:class:`CheckReport` *is* its text (a ``str``), so ``assert report.ok, report``
in pytest prints the whole report, and ``bool(report)`` is ``report.ok``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinybnn.kernel_abi import SENTINEL
from .cases import Case, fields_text

MAX_LISTED = 8
"""Differing entries listed one by one (the count says how many there are)."""


@dataclass
class Failure:
    """One failing case: what went in, what was expected, what came out (or what went wrong).

    ``obtained`` is the candidate's output when it had the right shape and
    dtype; ``error`` says what happened otherwise (an exception, a crash, a
    hang, a wrong shape or dtype).
    """

    case: Case
    label: str
    floats: dict
    args: dict
    expected: np.ndarray
    float_reference: np.ndarray
    obtained: np.ndarray | None = None
    error: str | None = None

    def differing(self) -> np.ndarray:
        """Indices (one row per entry) where obtained differs from expected."""
        if self.obtained is None:
            return np.zeros((0, self.expected.ndim), dtype=np.int64)
        return np.argwhere(self.obtained != self.expected)


class CheckReport(str):
    """The result of a check; a ``str`` holding its readable text.

    Attributes: ``ok``; ``kind``; ``target`` (the candidate's name);
    ``cases`` (cases run, edge and generated, shrinking included);
    ``largest`` (the largest case's shapes); ``failure`` (a
    :class:`Failure` or ``None``).
    """

    ok: bool
    kind: str
    target: str
    cases: int
    largest: str
    failure: Failure | None

    def __new__(cls, kind: str, target: str, cases: int, largest: str, failure: Failure | None, reference: str = ""):
        text = (
            summary_line(kind, target, cases, largest)
            if failure is None
            else failure_text(kind, target, cases, failure, reference)
        )
        self = super().__new__(cls, text)
        self.ok = failure is None
        self.kind, self.target, self.cases, self.largest, self.failure = kind, target, cases, largest, failure
        return self

    def __bool__(self) -> bool:
        return self.ok

    def __repr__(self) -> str:
        return str.__str__(self)


def summary_line(kind: str, target: str, cases: int, largest: str) -> str:
    return f"{kind} {target}: OK, {cases} cases agree with tinybnn's reference; largest: {largest}"


def _array_text(name: str, array: np.ndarray, indent: str = "    ") -> str:
    if array.dtype == np.uint64:
        body = np.array2string(
            array, threshold=64, edgeitems=2, max_line_width=110, formatter={"int": lambda v: f"0x{int(v):016x}"}
        )
    else:
        body = np.array2string(array, threshold=64, edgeitems=3, max_line_width=110)
    body = body.replace("\n", "\n" + indent + " " * (len(name) + 3))
    return f"{indent}{name} = {body}"


def _describe_array(name: str, array) -> str:
    if isinstance(array, np.ndarray):
        return f"{name} {array.dtype} {array.shape}"
    return f"{name} {array!r}"


def failure_text(kind: str, target: str, cases: int, failure: Failure, reference: str) -> str:
    """The readable text of a failure: case, inputs, expected, obtained, and the entries that differ."""
    lines = [
        f"{kind} {target}: FAILED after {cases} cases; smallest failing case:",
        f"  case: {fields_text(failure.case)}" + (f"  ({failure.label})" if failure.label else ""),
    ]
    arrays = [(n, v) for n, v in failure.args.items() if isinstance(v, np.ndarray)]
    scalars = [f"{n}={v}" for n, v in failure.args.items() if not isinstance(v, np.ndarray)]
    lines.append("  arguments: " + ", ".join([_describe_array(n, v) for n, v in arrays] + scalars))
    lines.append("  inputs:")
    for name, value in arrays:
        lines.append(_array_text(name, value))
    for name, value in failure.floats.items():
        if value is not failure.args.get(name):
            lines.append(_array_text(f"{name} (floats; their signs are packed above)", value))
    lines.append(f"  expected ({reference}):")
    lines.append(_array_text("out", failure.expected))
    if failure.error is not None:
        lines.append(f"  obtained: {failure.error}")
        return "\n".join(lines)
    assert failure.obtained is not None  # no error: the candidate's output was kept
    lines.append("  obtained:")
    lines.append(_array_text("out", failure.obtained))
    where = failure.differing()
    lines.append(f"  {len(where)} of {failure.expected.size} entries differ:")
    sentinel = SENTINEL.get(failure.expected.dtype)
    for index in where[:MAX_LISTED]:
        lines.append("    " + _entry_text(failure, tuple(int(i) for i in index), sentinel))
    if len(where) > MAX_LISTED:
        lines.append(f"    ... and {len(where) - MAX_LISTED} more")
    return "\n".join(lines)


def _entry_text(failure: Failure, index: tuple, sentinel) -> str:
    assert failure.obtained is not None  # only entries of an output that was kept differ
    expected, obtained = failure.expected[index], failure.obtained[index]
    where = "out[" + ", ".join(map(str, index)) + "]"
    unwritten = " (never written: the checker's fill value)" if obtained == sentinel else ""
    if failure.expected.dtype != np.uint64:
        return (
            f"{where}: expected {int(expected)}, obtained {int(obtained)}{unwritten}, "
            f"float reference {float(failure.float_reference[index]):g}"
        )
    # a packed word: name the bits that differ and the values they are the signs of
    row, word = index[:-1], index[-1]
    diff = int(expected) ^ int(obtained)
    bits = [b for b in range(64) if diff >> b & 1]
    values = failure.floats["x"][row]
    ts = [word * 64 + b for b in bits]
    shown = ", ".join(
        f"t={t}: x={float(values[t])!r} sign {failure.float_reference[row][t]:+g}"
        if t < values.shape[-1]
        else f"t={t}: a tail bit (must be 0)"
        for t in ts[:4]
    )
    more = f", ... ({len(ts)} bits)" if len(ts) > 4 else ""
    return (
        f"{where}: expected 0x{int(expected):016x}, obtained 0x{int(obtained):016x}{unwritten}; "
        f"bits {bits[:4]}{'...' if len(bits) > 4 else ''} differ ({shown}{more})"
    )
