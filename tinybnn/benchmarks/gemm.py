"""``tinybnn bench gemm``: time every registered GEMM at BMXNet's and LeNet's shapes.

How a convolution maps to a GEMM here (BMXNet's terms): ``M`` = number of
filters (the packed weights are ``a_packed``, ``(M, Kw)``), ``K`` = input
channels x kernel height x kernel width, ``N`` = batch x output positions
(the packed im2col patches are ``b_packed``, ``(N, Kw)``). The result is
``(filters, batch*positions)``.

Shapes:

* BMXNet Figure 2: 256 input channels, 5x5 kernels (K = 6400), N = 6400
  columns (e.g. batch 200 x 32 output positions), filters swept 16..256;
* BMXNet Figure 3: 64 filters, 256 channels, kernel size swept 1..7
  (K = 256 k^2), N = 6400;
* LeNet (BMXNet's binary MNIST model, batch 100): the binary convolution
  (64 filters, 64 channels x 5x5 -> K = 1600, 8x8 outputs -> N = 6400) and
  the binary fully connected layer (1000 units, K = 64*4*4 = 1024, N = 100).

What is timed: one call of each implementation on prepared operands
(float32 ``A (M, K)`` and ``B (K, N)`` for float kernels; operands packed
beforehand, padded to a multiple of 8 words, for XNOR kernels), after a
warm-up call that also compiles; the median over repeats. Throughput is
``2*M*N*K / time`` in GOPS for every kernel (one multiply and one add per
term, whether float or binary). Packing the activations is timed separately
("pack B") and reported as its own line and as ``xnor_parallel + pack``.

OpenBLAS reads ``OPENBLAS_NUM_THREADS`` and ``OPENBLAS_CORETYPE`` only when
NumPy is imported, so ``np.dot`` is timed in child processes, one per
baseline: ``env`` keeps this environment's ``OPENBLAS_CORETYPE`` (if any), and
``SkylakeX`` forces OpenBLAS's AVX-512 kernels. Both get
``OPENBLAS_NUM_THREADS=--threads``; the Numba kernels get
``numba.set_num_threads(--threads)``.

``--peak`` times nothing else: it measures the practical peak of the
512-bit XOR-popcount-add step (:mod:`tinybnn.benchmarks.xnor_peak`, C
compiled at run time) and ``xnor_parallel`` at :data:`PEAK_SHAPE` as a
fraction of it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinybnn.errors import ArgumentError

TARGETS = (
    # (label, (M, K, N), minimum speedup of xnor_parallel over np.dot float32)
    ("BMXNet 64 filters 256ch 5x5", (64, 6400, 6400), 20.0),
    ("LeNet binary conv2", (64, 1600, 6400), 8.0),
)
FILTERS = (16, 32, 64, 128, 256)
KERNEL_SIZES = (1, 2, 3, 4, 5, 6, 7)
N_COLUMNS = 6400
CHANNELS = 256
BASELINES = ("env", "SkylakeX")
SUITES = ("all", "filters", "kernel", "lenet", "targets")


@dataclass(frozen=True)
class Shape:
    """One GEMM problem: ``(M, K) x (K, N)``, with where it comes from."""

    label: str
    group: str  # "filters", "kernel", "lenet"
    m: int
    k: int
    n: int
    x: int | None = None  # the swept value, for the chart

    @property
    def ops(self) -> int:
        return 2 * self.m * self.n * self.k


def shapes_for(suite: str, quick: bool = False) -> list[Shape]:
    """The shapes of a suite (``all``, ``filters``, ``kernel``, ``lenet``, ``targets``)."""
    filters = (16, 64, 256) if quick else FILTERS
    kernels = (1, 3, 5, 7) if quick else KERNEL_SIZES
    out = []
    if suite in ("all", "filters"):
        out += [Shape(f"filters={f} (256ch 5x5)", "filters", f, CHANNELS * 25, N_COLUMNS, f) for f in filters]
    if suite in ("all", "kernel"):
        out += [
            Shape(f"kernel={s}x{s} (64 filters 256ch)", "kernel", 64, CHANNELS * s * s, N_COLUMNS, s) for s in kernels
        ]
    if suite in ("all", "lenet"):
        out += [
            Shape("LeNet conv2 (binary)", "lenet", 64, 1600, 6400),
            Shape("LeNet fc1 (binary)", "lenet", 1000, 1024, 100),
        ]
    if suite == "targets":
        out += [Shape(label, "target", *mkn) for label, mkn, _ in TARGETS]
    return out


# ----------------------------------------------------------------------------
# timing
# ----------------------------------------------------------------------------


def sample(fn, args, seconds: float, min_calls: int = 1) -> list:
    """Wall times of repeated calls ``fn(*args)``: at least ``min_calls``, until ``seconds`` have passed."""
    times = []
    start = time.perf_counter()
    while len(times) < min_calls or time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - t0)
    return times


# The np.dot baseline runs in a child process that imports nothing but NumPy,
# so that the OPENBLAS_* variables set for it take effect. It answers
# requests on stdin, one JSON line each, so that its timings can be
# interleaved with the parent's: every round times each kernel and each
# baseline once, and machine noise hits them alike.
_NUMPY_CHILD = r"""
import ctypes, json, os, sys, time
import numpy as np

from tinybnn.errors import ArgumentError

def corename():
    try:
        path = [l.split()[-1] for l in open('/proc/self/maps') if 'openblas' in l.lower()][0]
        lib = ctypes.CDLL(path)
        for name in ('scipy_openblas_get_corename64_', 'scipy_openblas_get_corename',
                     'openblas_get_corename64_', 'openblas_get_corename'):
            if hasattr(lib, name):
                f = getattr(lib, name)
                f.restype = ctypes.c_char_p
                return f().decode()
    except Exception:
        pass
    return 'unknown'

print(json.dumps({'corename': corename(), 'coretype_env': os.environ.get('OPENBLAS_CORETYPE'),
                  'threads_env': os.environ.get('OPENBLAS_NUM_THREADS')}), flush=True)
A = B = None
for line in sys.stdin:
    request = json.loads(line)
    if 'shape' in request:
        m, k, n = request['shape']
        rng = np.random.default_rng(0)
        A = rng.standard_normal((m, k), dtype=np.float32)
        B = rng.standard_normal((k, n), dtype=np.float32)
        np.dot(A, B)
        print(json.dumps({'ok': True}), flush=True)
    else:
        times = []
        start = time.perf_counter()
        while len(times) < request['min_calls'] or time.perf_counter() - start < request['seconds']:
            t0 = time.perf_counter()
            np.dot(A, B)
            times.append(time.perf_counter() - t0)
        # OpenBLAS's idle workers spin for about 0.1 s after a call; let them
        # go to sleep before the parent times its own kernels.
        time.sleep(request['quiet'])
        print(json.dumps({'times': times}), flush=True)
"""


class NumpyBaseline:
    """A child process timing ``np.dot`` float32 under one OpenBLAS configuration.

    ``name`` is ``"env"`` (this environment's ``OPENBLAS_CORETYPE``, if any)
    or an OpenBLAS core type to force, e.g. ``"SkylakeX"``.
    """

    def __init__(self, name: str, threads: int):
        env = dict(os.environ)
        env["OPENBLAS_NUM_THREADS"] = str(threads)
        if name != "env":
            env["OPENBLAS_CORETYPE"] = name
        self.name = name
        self.process = subprocess.Popen(
            [sys.executable, "-c", _NUMPY_CHILD],
            env=env,
            text=True,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self.info = self._read()

    def _read(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the np.dot baseline process {self.name!r} stopped (exit status {self.process.wait()})")
        return json.loads(line)

    def _ask(self, request: dict) -> dict:
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        return self._read()

    def set_shape(self, m: int, k: int, n: int) -> None:
        """Make the operands (and warm up np.dot) for a new shape."""
        self._ask({"shape": [m, k, n]})

    def sample(self, seconds: float, min_calls: int = 1) -> list:
        return self._ask({"seconds": seconds, "min_calls": min_calls, "quiet": 0.25})["times"]

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            self.process.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ----------------------------------------------------------------------------
# the benchmark
# ----------------------------------------------------------------------------


def _operands(shape: Shape, seed: int = 0):
    from tinybnn.gemm.bitpack import pack_bits

    rng = np.random.default_rng(seed)
    A = rng.standard_normal((shape.m, shape.k), dtype=np.float32)
    # Activations as the packed inference path will have them: im2col rows
    # (N, K), contiguous along K. The float kernels get B = that, transposed
    # and made contiguous, (K, N).
    B_rows = rng.standard_normal((shape.n, shape.k), dtype=np.float32)
    B = np.ascontiguousarray(B_rows.T)
    a_packed = pack_bits(A, axis=1, pad_words_to=8)
    b_packed = pack_bits(B_rows, axis=1, pad_words_to=8)
    return A, B, B_rows, a_packed, b_packed


def run(
    shapes: list[Shape],
    impl_names: list[str],
    threads: int,
    budget: float,
    baselines=BASELINES,
    rounds: int = 5,
    log=print,
    user_kernel=None,
) -> dict:
    """Time every implementation on every shape; return a JSON-able dict of medians.

    For each shape, every implementation (and every np.dot baseline) is
    called once to warm up, then ``rounds`` rounds each time every one of
    them for ``budget / rounds`` seconds (at least one call), so that all of
    them see the same machine load; the median over all calls is kept.

    ``user_kernel``: an XNOR GEMM already verified by
    :func:`tinybnn.testing.verified_kernel`, timed as ``USER_KERNEL`` on the
    same operands through its ABI (rows of ceil(K / 64) words, unpadded).
    """
    import numba

    from tinybnn.gemm.bitpack import pack_bits
    from tinybnn.gemm.registry import REGISTRY

    numba.set_num_threads(threads)
    results = {"shapes": [], "baselines": {}, "rounds": rounds, "budget": budget}
    children = [NumpyBaseline(b, threads) for b in baselines]
    try:
        for child in children:
            results["baselines"][child.name] = child.info
        for shape in shapes:
            log(f"timing {shape.label}: M={shape.m} K={shape.k} N={shape.n} ...")
            A, B, B_rows, a_packed, b_packed = _operands(shape)
            calls = {}
            for name in impl_names:
                impl = REGISTRY[name]
                if name == "numpy":
                    continue  # timed in the child processes, one per OpenBLAS baseline
                if impl.max_ops is not None and shape.ops > impl.max_ops:
                    continue
                args = (A, B) if impl.kind == "float" else (a_packed, b_packed, shape.k)
                calls[name] = (impl.function, args)
            calls["pack B"] = (lambda x: pack_bits(x, axis=1, pad_words_to=8), (B_rows,))
            if user_kernel is not None:
                words = -(-shape.k // 64)
                abi = {
                    "a": np.ascontiguousarray(a_packed[:, :words]),
                    "b": np.ascontiguousarray(b_packed[:, :words]),
                    "m": shape.m,
                    "n": shape.n,
                    "words": words,
                    "k": shape.k,
                }
                calls[USER_KERNEL] = (user_kernel, (abi,))
            for child in children:
                child.set_shape(shape.m, shape.k, shape.n)
            samples = {name: [] for name in calls}
            samples.update({f"numpy[{child.name}]": [] for child in children})
            for fn, args in calls.values():
                fn(*args)  # warm up: compilation, page faults
            for _ in range(rounds):
                for name, (fn, args) in calls.items():
                    samples[name] += sample(fn, args, budget / rounds)
                for child in children:
                    samples[f"numpy[{child.name}]"] += child.sample(budget / rounds)
            times = {name: None for name in impl_names if name != "numpy"}
            times.update({name: statistics.median(ts) for name, ts in samples.items()})
            results["shapes"].append(
                {
                    "label": shape.label,
                    "group": shape.group,
                    "m": shape.m,
                    "k": shape.k,
                    "n": shape.n,
                    "x": shape.x,
                    "ops": shape.ops,
                    "times": times,
                    "calls": {name: len(ts) for name, ts in samples.items()},
                }
            )
            del A, B, B_rows, a_packed, b_packed
    finally:
        for child in children:
            child.close()
    return results


USER_KERNEL = "your kernel"


def user_kernel_lines(results: dict) -> list[str]:
    """One line per shape: the user's kernel's median time against xnor_parallel's, same rounds."""
    lines = []
    for row in results["shapes"]:
        mine, ours = row["times"].get(USER_KERNEL), row["times"].get("xnor_parallel")
        if mine is not None and ours is not None:
            lines.append(
                f"{row['label']}: your kernel takes {mine / ours:.2f}x xnor_parallel's time "
                f"({row['ops'] / mine / 1e9:.1f} against {row['ops'] / ours / 1e9:.1f} GOPS)"
            )
    return lines


def _fmt_row(cells, widths):
    return "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))


def format_report(results: dict, baselines=BASELINES) -> str:
    """The tables: per shape, each implementation's median time, GOPS and speedups over np.dot."""
    lines = []
    header = ["implementation", "median ms", "GOPS"] + [f"x np.dot[{b}]" for b in baselines]
    widths = [26, 10, 9] + [16] * len(baselines)
    for row in results["shapes"]:
        lines.append("")
        lines.append(f"== {row['label']}: M={row['m']} K={row['k']} N={row['n']} (2MNK = {row['ops'] / 1e9:.2f} G)")
        lines.append(_fmt_row(header, widths))
        base_times = {b: row["times"][f"numpy[{b}]"] for b in baselines}
        entries = list(row["times"].items())
        if "xnor_parallel" in row["times"] and row["times"]["xnor_parallel"] is not None:
            entries.append(("xnor_parallel + pack B", row["times"]["xnor_parallel"] + row["times"]["pack B"]))
        for name, t in entries:
            if t is None:
                lines.append(_fmt_row([name, "skipped", "(too slow)"] + [""] * len(baselines), widths))
                continue
            if name == "pack B":
                lines.append(_fmt_row([name + " (N,K)->bits", f"{t * 1e3:.3f}", "-"] + ["-"] * len(baselines), widths))
                continue
            speedups = [f"{base_times[b] / t:.2f}x" for b in baselines]
            lines.append(_fmt_row([name, f"{t * 1e3:.3f}", f"{row['ops'] / t / 1e9:.1f}"] + speedups, widths))
    return "\n".join(lines)


def check_targets(results: dict, baselines=BASELINES) -> list[str]:
    """One line per target: the measured speedup of xnor_parallel against each baseline, met or not."""
    lines = []
    for label, (m, k, n), minimum in TARGETS:
        row = next((r for r in results["shapes"] if (r["m"], r["k"], r["n"]) == (m, k, n)), None)
        if row is None or row["times"].get("xnor_parallel") is None:
            continue
        t = row["times"]["xnor_parallel"]
        for b in baselines:
            speedup = row["times"][f"numpy[{b}]"] / t
            verdict = "met" if speedup >= minimum else "NOT met"
            lines.append(
                f"target {label} (M={m} K={k} N={n}): xnor_parallel {speedup:.1f}x "
                f"np.dot[{b}] float32, target {minimum:g}x: {verdict}"
            )
    return lines


def environment_report(threads: int, results: dict) -> str:
    import numba

    cpu = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    flags = ""
    try:
        text = open("/proc/cpuinfo").read()
        flags = "avx512_vpopcntdq" if "avx512_vpopcntdq" in text else "no avx512_vpopcntdq"
    except OSError:
        pass
    parts = [
        f"CPU: {cpu} ({os.cpu_count()} logical CPUs, {flags}); {platform.python_implementation()} "
        f"{platform.python_version()}, numpy {np.__version__}, numba {numba.__version__}",
        f"threads: numba.set_num_threads({threads}) (threading layer "
        f"{numba.threading_layer()}); np.dot in child processes with OPENBLAS_NUM_THREADS={threads}",
    ]
    for name, info in results["baselines"].items():
        parts.append(
            f"baseline np.dot[{name}] (child process): OPENBLAS_CORETYPE="
            f"{info['coretype_env'] or '(unset)'}, OPENBLAS_NUM_THREADS={info['threads_env']}, "
            f"OpenBLAS core in use: {info['corename']}"
        )
    parts.append(
        f"XNOR operands packed beforehand, padded to a multiple of 8 words; GOPS = 2*M*N*K / "
        f"median time over {results['rounds']} interleaved rounds, "
        f"~{results['budget']:g} s of calls per implementation and shape"
    )
    return "\n".join(parts)


def build_chart(results: dict, path, threads: int, baselines=BASELINES):
    """The two-panel PNG (speedup vs filters, vs kernel size) of every XNOR kernel, per baseline."""
    from tinybnn.charts import PALETTE, Panel, SeriesStyle, draw_speedup_chart
    from tinybnn.gemm.registry import impl_names

    xnor = [n for n in impl_names("xnor") if any(n in r["times"] for r in results["shapes"])]

    def label(name, baseline):
        core = results["baselines"].get(baseline, {}).get("corename")
        shown = baseline if core in (None, "unknown", baseline) else f"{baseline}: {core}"
        return f"{name} vs np.dot[{shown}]"

    styles = {}
    for i, name in enumerate(xnor):
        for j, b in enumerate(baselines):
            styles[label(name, b)] = SeriesStyle(PALETTE[i % len(PALETTE)], dashed=j > 0)
    panels = []
    for group, title, x_label, log_x in (
        ("filters", "Speedup vs number of filters (256 channels, 5x5, N=6400)", "number of filters (M)", True),
        ("kernel", "Speedup vs kernel size (64 filters, 256 channels, N=6400)", "kernel size (k x k)", False),
    ):
        rows = [r for r in results["shapes"] if r["group"] == group]
        if not rows:
            continue
        panel = Panel(title, x_label, [r["x"] for r in rows], log_x=log_x)
        for name in xnor:
            for b in baselines:
                panel.series[label(name, b)] = [
                    r["times"][f"numpy[{b}]"] / r["times"][name] if r["times"].get(name) else None for r in rows
                ]
        panels.append(panel)
    if not panels:
        return None
    return draw_speedup_chart(panels, styles, path, title=f"XNOR GEMM speedup over np.dot float32 ({threads} threads)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tinybnn bench gemm",
        description="Time every registered GEMM (float and XNOR) at BMXNet's and LeNet's shapes; "
        "print median GOPS and speedups over np.dot float32, and draw a PNG chart.",
    )
    parser.add_argument(
        "--threads", type=int, default=2, help="Numba threads and OPENBLAS_NUM_THREADS for np.dot (default 2)"
    )
    parser.add_argument(
        "--suite", choices=SUITES, default="all", help="which shapes: all (default), filters, kernel, lenet, targets"
    )
    parser.add_argument(
        "--impls", default=None, help="comma-separated implementation names (default: every registered one)"
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=1.0,
        help="seconds of calls per implementation and shape, spread over the rounds (default 1.0)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="interleaved rounds per shape; each implementation is called at least once per round (default 5)",
    )
    parser.add_argument(
        "--baselines",
        default=",".join(BASELINES),
        help="np.dot baselines: 'env' (this environment's OPENBLAS_CORETYPE) and/or "
        "OpenBLAS core types to force, e.g. SkylakeX, Haswell (default env,SkylakeX)",
    )
    parser.add_argument("--quick", action="store_true", help="fewer points in the sweeps")
    parser.add_argument("--chart", default="gemm_speedup.png", help="PNG to write (default gemm_speedup.png)")
    parser.add_argument("--no-chart", action="store_true", help="do not draw the chart")
    parser.add_argument("--json", default=None, help="also save the raw results to this JSON file")
    parser.add_argument(
        "--peak",
        action="store_true",
        help="only measure the CPU's practical peak of the 512-bit XOR-popcount-add step (C, "
        "compiled with cc) and xnor_parallel's binary TOPS at M=64, K=6400, N=6400 against it",
    )
    yours = parser.add_mutually_exclusive_group()
    yours.add_argument(
        "--kernel",
        metavar="TARGET",
        help="also time your XNOR GEMM, module:function or path/file.py:function taking "
        "(a, b, k) (docs/verify.md), verified against tinybnn's reference first",
    )
    yours.add_argument(
        "--c", metavar="LIB.so:SYMBOL", help="also time your C XNOR GEMM (the ABI of docs/verify.md), verified first"
    )
    return parser


def verified_user_kernel(args):
    """The user's kernel, verified (None if none was given); a kernel that fails is reported, not timed."""
    spec = args.c or args.kernel
    if spec is None:
        return None
    try:
        from tinybnn.testing import verified_kernel
        from tinybnn.testing.targets import VerificationFailed
    except ImportError as error:  # hypothesis is in the test extra
        raise ArgumentError(
            f"--kernel and --c verify the kernel with hypothesis ({error}): pip install 'tinybnn[test]'"
        ) from None
    try:
        return verified_kernel(spec, "xnor-gemm", c=args.c is not None)
    except VerificationFailed as failure:
        print(f"{spec}: not timed, it does not agree with tinybnn's reference:\n{failure}")
        return False


PEAK_SHAPE = (64, 6400, 6400)


def peak_report(threads: int, rounds: int) -> int:
    """``--peak``: the step's practical peak per core and ``xnor_parallel`` at :data:`PEAK_SHAPE` against
    ``threads`` times it. Rounds alternate the peak kernel (one core, then ``threads`` cores at once) and
    the GEMM, so load hits them alike; the best of each is kept (load only slows a kernel down)."""
    import numba

    from tinybnn.benchmarks.xnor_peak import OPS_PER_STEP, PeakUnavailable, compile_library, cpu_model, measure_peak
    from tinybnn.gemm.bitpack import pack_bits
    from tinybnn.gemm.xnor import xnor_parallel

    m, k, n = PEAK_SHAPE
    numba.set_num_threads(threads)
    rng = np.random.default_rng(0)
    a = pack_bits(rng.standard_normal((m, k), dtype=np.float32), axis=1, pad_words_to=8)
    b = pack_bits(rng.standard_normal((n, k), dtype=np.float32), axis=1, pad_words_to=8)
    xnor_parallel(a, b, k)  # compile, page faults
    one, many, gemm = [], [], []
    with tempfile.TemporaryDirectory() as folder:
        try:
            library = compile_library(Path(folder))
        except PeakUnavailable as why:
            print(f"peak not measured: {why}")
            return 1
        for _ in range(rounds):
            one.append(measure_peak(1, seconds=0.3, repeats=3, library=library)["tops"])
            if threads > 1:
                many.append(measure_peak(threads, seconds=0.3, repeats=3, library=library)["tops"])
            gemm.append(2 * m * n * k / min(sample(xnor_parallel, (a, b, k), 0.3, min_calls=3)) / 1e12)
    per_core = max(one)
    print(
        f"{cpu_model()}, {threads} thread(s); one step = 512-bit vpxorq + vpopcntq + vpaddq = "
        f"{OPS_PER_STEP} binary ops; best of {rounds} rounds"
    )
    print(f"practical peak, 1 core:           {per_core:6.2f} binary TOPS")
    if threads > 1:
        print(
            f"practical peak, {threads} cores at once:  {max(many):6.2f} binary TOPS "
            f"({max(many) / per_core:.2f}x one core)"
        )
    best = max(gemm)
    print(
        f"xnor_parallel M={m} K={k} N={n}: {best:6.2f} binary TOPS = {100 * best / (threads * per_core):.0f}% of "
        f"{threads} x the 1-core peak"
        + (f", {100 * best / max(many):.0f}% of the measured {threads}-core peak" if threads > 1 else "")
    )
    return 0


def main(argv=None) -> int:
    """Entry point of ``tinybnn bench gemm`` and ``scripts/bench_gemm.py``; returns the exit status."""
    import numba

    from tinybnn.gemm.registry import REGISTRY

    parser = build_parser()
    args = parser.parse_args(argv)
    if not 1 <= args.threads <= numba.config.NUMBA_NUM_THREADS:
        parser.error(
            f"--threads must be between 1 and {numba.config.NUMBA_NUM_THREADS} (NUMBA_NUM_THREADS), got {args.threads}"
        )
    if args.budget <= 0:
        parser.error(f"--budget must be positive, got {args.budget}")
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1, got {args.rounds}")
    names = list(REGISTRY) if args.impls is None else [n.strip() for n in args.impls.split(",") if n.strip()]
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        parser.error(f"unknown implementation(s) {', '.join(unknown)}; known: {', '.join(REGISTRY)}")
    baselines = tuple(b.strip() for b in args.baselines.split(",") if b.strip())
    if not baselines:
        parser.error("--baselines needs at least one baseline")

    if args.peak:
        return peak_report(args.threads, args.rounds)
    user_kernel = verified_user_kernel(args)
    if user_kernel is False:
        return 1
    shapes = shapes_for(args.suite, args.quick)
    log = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    results = run(
        shapes, names, args.threads, args.budget, baselines, rounds=args.rounds, log=log, user_kernel=user_kernel
    )
    results["threads"] = args.threads
    print(environment_report(args.threads, results))
    print(format_report(results, baselines))
    print()
    for line in check_targets(results, baselines) + user_kernel_lines(results):
        print(line)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    if not args.no_chart:
        path = build_chart(results, args.chart, args.threads, baselines)
        if path is not None:
            print(f"chart written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
