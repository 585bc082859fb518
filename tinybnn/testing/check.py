"""Checking a candidate kernel: enumerated edge cases first, then hypothesis, then the smallest failure.

:func:`run_check` runs the candidate on every enumerated edge case of its
kind (:mod:`tinybnn.testing.cases`), smallest first. If one fails, the
failing case is made smaller field by field (each size bisected down to the
smallest value that still fails, each fill pattern replaced by a simpler
one that still fails) and reported. If all pass, hypothesis draws cases
(:mod:`tinybnn.testing.strategies`) with :func:`hypothesis.find`, which
shrinks the first failure it meets to a minimal one.

A failure is any of: an output entry that differs from tinybnn's
reference, an output of the wrong type, shape or dtype, an exception, a
crash of the kernel's process (C kernels), or a hang (reported at once,
without shrinking, since every attempt would cost the timeout).
"""

from __future__ import annotations

import dataclasses
from random import Random

import numpy as np
from hypothesis import HealthCheck, Phase, find, settings
from hypothesis.errors import NoSuchExample

from .cases import KINDS
from .report import CheckReport, Failure
from .strategies import CASES
from .targets import KernelCrashed, KernelHung, PythonKernel, check_kind

MAX_SHRINK_CALLS = 400
"""Candidate runs allowed for making a failing edge case smaller."""


class _Hung(Exception):
    def __init__(self, failure: Failure):
        super().__init__(failure.error)
        self.failure = failure


class _Runner:
    """Runs the candidate on cases, counting them and remembering the largest."""

    def __init__(self, kind: str, kernel):
        self.kind, self.spec, self.kernel = kind, KINDS[kind], kernel
        self.cases, self.largest = 0, None

    def failure(self, case, label: str = "") -> Failure | None:
        """The candidate's failure on ``case``, or ``None`` when it agrees with the reference."""
        spec = self.spec
        floats = spec.operands(case)
        args = spec.args(case, floats)
        expected = spec.expected(case, floats, args)
        self.cases += 1
        if self.largest is None or spec.input_values(case) > spec.input_values(self.largest):
            self.largest = case

        def failed(**outcome):
            return Failure(case, label, floats, args, expected, spec.float_reference(case, floats), **outcome)

        try:
            obtained = self.kernel({n: (v.copy() if isinstance(v, np.ndarray) else v) for n, v in args.items()})
        except KernelHung as error:
            raise _Hung(failed(error=f"hung: {error}")) from None
        except KernelCrashed as error:
            return failed(error=f"crashed: {error}")
        except Exception as error:
            return failed(error=f"raised {type(error).__name__}: {error}")
        problem = _output_problem(obtained, expected)
        if problem:
            return failed(error=problem)
        if not np.array_equal(obtained, expected):
            return failed(obtained=obtained)
        return None


def _output_problem(obtained, expected: np.ndarray) -> str | None:
    if not isinstance(obtained, np.ndarray):
        return f"returned a {type(obtained).__name__}, not a NumPy array"
    if obtained.shape != expected.shape or obtained.dtype != expected.dtype:
        return (
            f"returned {obtained.dtype} of shape {obtained.shape}; expected {expected.dtype} of shape {expected.shape}"
        )
    return None


def _shrink(runner: _Runner, failure: Failure) -> Failure:
    """Make a failing case smaller: bisect each size, simplify each fill, while it still fails."""
    budget = runner.cases + MAX_SHRINK_CALLS
    original = failure
    spec = runner.spec

    def fails(case):
        if runner.cases >= budget or not spec.valid(case):
            return None
        return runner.failure(case)

    changed = True
    while changed and runner.cases < budget:
        changed = False
        for f in dataclasses.fields(failure.case):
            if "minimum" in f.metadata:
                low, high = f.metadata["minimum"], getattr(failure.case, f.name)
                while low < high and runner.cases < budget:  # smallest value that still fails
                    middle = (low + high) // 2
                    smaller = fails(dataclasses.replace(failure.case, **{f.name: middle}))
                    if smaller is None:
                        low = middle + 1
                    else:
                        failure, high, changed = smaller, middle, True
            elif "choices" in f.metadata:
                options = f.metadata["choices"]
                for option in options[: options.index(getattr(failure.case, f.name))]:
                    simpler = fails(dataclasses.replace(failure.case, **{f.name: option}))
                    if simpler is not None:
                        failure, changed = simpler, True
                        break
    failure.label = original.label if failure.case == original.case else "shrunk from " + original.label
    return failure


def run_check(
    kind: str, kernel, examples: int = 200, seed: int = 0, edge_cases: bool = True, name: str | None = None
) -> CheckReport:
    """Check ``kernel`` (a Python callable or a kernel from :func:`~tinybnn.testing.targets.load_target`).

    ``examples``: hypothesis cases to draw after the edge cases; ``seed``: of
    hypothesis's random choices (the same seed, the same cases);
    ``edge_cases=False`` skips the enumerated cases.
    """
    check_kind(kind)
    if not hasattr(kernel, "close"):
        kernel = PythonKernel(kind, kernel, name or str(getattr(kernel, "__qualname__", repr(kernel))))
    name = name or kernel.name
    runner = _Runner(kind, kernel)
    reference = runner.spec.reference_name
    try:
        failure = _edge_failure(runner) if edge_cases else None
        if failure is None and examples > 0:
            failure = _hypothesis_failure(runner, examples, seed)
    except _Hung as hung:
        failure = hung.failure
    largest = runner.spec.shape_text(runner.largest) if runner.largest is not None else "no case run"
    return CheckReport(kind, name, runner.cases, largest, failure, reference)


def _edge_failure(runner: _Runner) -> Failure | None:
    cases = sorted(runner.spec.edge_cases(), key=lambda item: runner.spec.input_values(item[1]))
    for label, case in cases:
        failure = runner.failure(case, "edge case: " + label)
        if failure is not None:
            if failure.error is not None and failure.error.startswith("hung"):
                return failure
            return _shrink(runner, failure)
    return None


def _hypothesis_failure(runner: _Runner, examples: int, seed: int) -> Failure | None:
    search = settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=False,
        suppress_health_check=list(HealthCheck),
        phases=(Phase.generate, Phase.shrink),
    )
    try:
        minimal = find(
            CASES[runner.kind](), lambda case: runner.failure(case) is not None, settings=search, random=Random(seed)
        )
    except NoSuchExample:
        return None
    return runner.failure(minimal, "generated by hypothesis, shrunk")


def check_xnor_gemm(fn, examples: int = 200, seed: int = 0, edge_cases: bool = True) -> CheckReport:
    """Check an XNOR GEMM ``fn(a, b, k) -> out`` (int32 (m, n), ``out[i, j] = k - 2 popcount(a[i] XOR b[j])``).

    ``fn`` may also be a C kernel from ``load_target(spec, "xnor-gemm", c=True)``.
    Returns a :class:`~tinybnn.testing.report.CheckReport`: ``assert report.ok, report``.
    """
    return run_check("xnor-gemm", fn, examples=examples, seed=seed, edge_cases=edge_cases)


def check_pack_bits(fn, examples: int = 200, seed: int = 0, edge_cases: bool = True) -> CheckReport:
    """Check a packing ``fn(x) -> out``: x float32 (rows, k), out uint64 (rows, ceil(k / 64)), bit 1 where x >= 0."""
    return run_check("pack-bits", fn, examples=examples, seed=seed, edge_cases=edge_cases)


def check_binary_conv2d(fn, examples: int = 200, seed: int = 0, edge_cases: bool = True) -> CheckReport:
    """Check a binary convolution ``fn(x, w, c, stride, pad, pad_value) -> out`` int32 (n, f, oh, ow).

    x (n, h, wd, ceil(c / 64)) and w (f, kh, kw, ceil(c / 64)) uint64 hold
    each pixel's channel signs (:mod:`tinybnn.kernel_abi`).
    """
    return run_check("binary-conv2d", fn, examples=examples, seed=seed, edge_cases=edge_cases)


def check_binary_dense(fn, examples: int = 200, seed: int = 0, edge_cases: bool = True) -> CheckReport:
    """Check a binary dense layer ``fn(x, w) -> out``: x float32 (n, d), w uint64 (h, ceil(d / 64)),
    out int32 (n, h)."""
    return run_check("binary-dense", fn, examples=examples, seed=seed, edge_cases=edge_cases)
