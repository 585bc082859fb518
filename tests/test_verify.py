"""C kernels through the ABI, built with the system C compiler; crashes and hangs; `tinybnn verify`'s exit codes.

These tests need ``cc`` on PATH (CI has it): without it they fail, saying so,
rather than skip.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tinybnn.cli import main
from tinybnn.errors import ArgumentError
from tinybnn.testing import check_pack_bits, check_xnor_gemm, load_target, time_kernel, verified_kernel
from tinybnn.testing.cases import GemmCase
from tinybnn.testing.targets import VerificationFailed

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "docs" / "examples"
WRONG = Path(__file__).resolve().parent / "kernels" / "wrong_kernels.c"


def compile_library(source: Path, directory: Path) -> Path:
    compiler = shutil.which("cc")
    if compiler is None:
        pytest.fail("no C compiler: these tests build kernels with `cc -O2 -shared -fPIC`; put cc on PATH")
    library = directory / (source.stem + ".so")
    subprocess.run([compiler, "-O2", "-shared", "-fPIC", str(source), "-o", str(library)], check=True, timeout=120)
    return library


@pytest.fixture(scope="module")
def libraries(tmp_path_factory):
    directory = tmp_path_factory.mktemp("kernels")
    return {
        source.stem: compile_library(source, directory)
        for source in (EXAMPLES / "xnor_gemm.c", EXAMPLES / "xnor_gemm_tail_bug.c", WRONG)
    }


def c_kernel(libraries, name, symbol, kind="xnor-gemm", timeout=10.0):
    return load_target(f"{libraries[name]}:{symbol}", kind, c=True, timeout=timeout)


def checked(check, kernel, **options):
    try:
        return check(kernel, examples=40, **options)
    finally:
        kernel.close()


def test_the_documented_c_kernel_passes(libraries):
    report = checked(check_xnor_gemm, c_kernel(libraries, "xnor_gemm", "xnor_gemm"))
    assert report.ok, report


def test_a_correct_c_packing_passes(libraries):
    report = checked(check_pack_bits, c_kernel(libraries, "wrong_kernels", "pack_bits", "pack-bits"))
    assert report.ok, report


def test_the_tail_bit_bug_of_the_docs_is_caught_at_k_1(libraries):
    report = checked(check_xnor_gemm, c_kernel(libraries, "xnor_gemm_tail_bug", "xnor_gemm"))
    case = report.failure.case
    assert (case.m, case.n, case.k) == (1, 1, 1)
    assert "obtained 127" in report


def test_c_rows_skipped_leave_entries_unwritten(libraries):
    report = checked(check_xnor_gemm, c_kernel(libraries, "wrong_kernels", "xnor_rows_skipped"))
    assert (report.failure.case.m, report.failure.case.n) == (1, 1)
    assert "never written" in report


def test_c_16_bit_accumulator_fails_only_past_32767(libraries):
    case = checked(check_xnor_gemm, c_kernel(libraries, "wrong_kernels", "xnor_acc16")).failure.case
    assert case.k > 32767 and (case.m, case.n) == (1, 1)


def test_c_sign_of_zero_taken_as_minus_one(libraries):
    case = checked(check_pack_bits, c_kernel(libraries, "wrong_kernels", "pack_sign0", "pack-bits")).failure.case
    assert (case.rows, case.k, case.fill_x) == (1, 1, "zeros")


def test_a_segfault_is_reported_with_its_smallest_case(libraries):
    report = checked(check_xnor_gemm, c_kernel(libraries, "wrong_kernels", "xnor_crash"))
    assert "killed by signal 11 (SIGSEGV)" in report.failure.error
    assert report.failure.case.k == 65 and (report.failure.case.m, report.failure.case.n) == (1, 1)


def test_an_abort_is_reported_and_the_kernel_restarted(libraries):
    report = checked(check_xnor_gemm, c_kernel(libraries, "wrong_kernels", "xnor_abort"))
    assert "SIGABRT" in report.failure.error
    assert report.failure.case.n == 3 and report.failure.case.m == 1
    assert report.cases > 2  # the cases before the abort ran in the same child, shrinking in new ones


def test_a_hang_is_bounded_by_the_timeout(libraries):
    report = checked(check_xnor_gemm, c_kernel(libraries, "wrong_kernels", "xnor_hang", timeout=1.0))
    assert report.failure.error.startswith("hung: no answer within 1 s")
    assert report.cases == 1


def test_bad_c_targets_are_argument_errors(libraries, tmp_path):
    with pytest.raises(ArgumentError, match="no symbol 'missing'"):
        c_kernel(libraries, "wrong_kernels", "missing")
    with pytest.raises(ArgumentError, match="no such library file"):
        load_target(f"{tmp_path / 'none.so'}:f", "xnor-gemm", c=True)
    not_a_library = tmp_path / "text.so"
    not_a_library.write_text("hello")
    with pytest.raises(ArgumentError, match="cannot load the library"):
        load_target(f"{not_a_library}:f", "xnor-gemm", c=True)
    with pytest.raises(ArgumentError, match="unknown kernel kind"):
        load_target(f"{libraries['xnor_gemm']}:xnor_gemm", "gemm", c=True)


def test_a_benchmark_times_only_a_verified_kernel(libraries):
    kernel = verified_kernel(f"{libraries['xnor_gemm']}:xnor_gemm", "xnor-gemm", c=True, examples=20)
    assert time_kernel(kernel, "xnor-gemm", GemmCase(8, 8, 256, "random", "random"), repeats=2) > 0
    with pytest.raises(VerificationFailed, match="smallest failing case"):
        verified_kernel(f"{libraries['xnor_gemm_tail_bug']}:xnor_gemm", "xnor-gemm", c=True, examples=20)


# --- the command line ---------------------------------------------------------------------------
def test_verify_exit_0_with_one_summary_line(libraries, capsys):
    assert main(["verify", "xnor-gemm", "--c", f"{libraries['xnor_gemm']}:xnor_gemm", "--examples", "30"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and ": OK, " in out and "largest: m=2 n=3 k=32831" in out


def test_verify_exit_1_with_the_smallest_case(libraries, capsys):
    status = main(["verify", "xnor-gemm", "--c", f"{libraries['xnor_gemm_tail_bug']}:xnor_gemm"])
    out = capsys.readouterr().out
    assert status == 1
    assert "case: m=1 n=1 k=1" in out and "entries differ" in out


def test_verify_python_targets(tmp_path, capsys):
    assert main(["verify", "xnor-gemm", "tinybnn.gemm:xnor_parallel", "--examples", "20"]) == 0
    kernel_file = tmp_path / "my_kernel.py"
    kernel_file.write_text(
        "import numpy as np\n"
        "def pack(x):\n"
        "    from tinybnn.gemm import pack_bits_numpy\n"
        "    return pack_bits_numpy(np.where(x > 0, 1.0, -1.0))\n"
    )
    assert main(["verify", "pack-bits", f"{kernel_file}:pack", "--seed", "1"]) == 1
    assert "case: rows=1 k=1 fill_x=zeros" in capsys.readouterr().out


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["xnor-gemm", "--c", "/no/such/lib.so:f"], "no such library file"),
        (["xnor-gemm", "tinybnn.gemm:no_such_kernel"], "has no attribute 'no_such_kernel'"),
        (["xnor-gemm", "no_such_module_xyz:f"], "no such module"),
        (["xnor-gemm", "tinybnn.gemm:WORD_BITS"], "is not callable"),
        (["xnor-gemm", "missing_file.py:f"], "no such Python file"),
        (["xnor-gemm"], "needs exactly one kernel"),
        (["xnor-gemm", "tinybnn.gemm:xnor_naive", "--examples", "-1"], "--examples must be >= 0"),
    ],
)
def test_verify_bad_usage_is_one_line_and_status_2(arguments, message, capsys):
    assert main(["verify", *arguments]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_verify_unknown_kind_is_status_2(libraries):
    done = subprocess.run(
        [sys.executable, "-m", "tinybnn.cli", "verify", "gemm", "tinybnn.gemm:xnor_naive"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "invalid choice: 'gemm'" in done.stderr and done.stderr.count("\n") == 1


def test_verify_symbol_missing_is_status_2(libraries, capsys):
    assert main(["verify", "xnor-gemm", "--c", f"{libraries['wrong_kernels']}:missing"]) == 2
    assert "no symbol 'missing'" in capsys.readouterr().err


def test_a_script_without_a_main_guard_can_check_a_c_kernel(libraries, tmp_path):
    # the child process must not re-run the caller's script (as multiprocessing's spawn would)
    script = tmp_path / "script.py"
    script.write_text(
        "from tinybnn.testing import check_xnor_gemm, load_target\n"
        f"kernel = load_target({str(libraries['xnor_gemm']) + ':xnor_gemm'!r}, 'xnor-gemm', c=True)\n"
        "report = check_xnor_gemm(kernel, examples=10)\n"
        "kernel.close()\n"
        "print('checked', report.ok)\n"
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert done.stdout == "checked True\n", done.stderr


def test_what_a_c_kernel_prints_does_not_garble_the_pipe(tmp_path):
    source = tmp_path / "noisy.c"
    source.write_text(
        (EXAMPLES / "xnor_gemm.c")
        .read_text()
        .replace("#include <stdint.h>", "#include <stdint.h>\n#include <stdio.h>")
        .replace(
            "    for (int64_t i = 0; i < m; i++) {",
            '    printf("xnor_gemm m=%ld\\n", (long)m); fflush(stdout);\n    for (int64_t i = 0; i < m; i++) {',
            1,
        )
    )
    library = compile_library(source, tmp_path)
    report = checked(check_xnor_gemm, load_target(f"{library}:xnor_gemm", "xnor-gemm", c=True))
    assert report.ok, report


def test_the_docs_show_what_the_examples_print(libraries):
    page = (ROOT / "docs" / "verify.md").read_text()
    for library in ("xnor_gemm", "xnor_gemm_tail_bug"):
        kernel = c_kernel(libraries, library, "xnor_gemm")
        try:
            report = check_xnor_gemm(kernel)  # the command's defaults: 200 examples, seed 0
        finally:
            kernel.close()
        for line in report.replace(str(libraries[library]), f"./{library}.so").splitlines():
            assert line in page, f"docs/verify.md lacks the line {line!r}"


# --- tinybnn bench gemm --c / --kernel: verified, then timed beside xnor_parallel ---------------
BENCH = [
    "bench",
    "gemm",
    "--suite",
    "lenet",
    "--impls",
    "xnor_parallel",
    "--baselines",
    "env",
    "--budget",
    "0.05",
    "--rounds",
    "1",
    "--no-chart",
]


def test_bench_gemm_times_a_verified_c_kernel_beside_xnor_parallel(libraries, capsys):
    assert main([*BENCH, "--c", f"{libraries['xnor_gemm']}:xnor_gemm"]) == 0
    out = capsys.readouterr().out
    assert out.count("\nyour kernel ") == 2  # a table line for each LeNet shape
    assert "LeNet conv2 (binary): your kernel takes " in out and "x xnor_parallel's time" in out


def test_bench_gemm_times_a_python_kernel_given_as_module_function(capsys):
    assert main([*BENCH, "--kernel", "tinybnn.gemm:xnor_naive"]) == 0
    assert "LeNet fc1 (binary): your kernel takes " in capsys.readouterr().out


def test_bench_gemm_refuses_to_time_a_wrong_kernel_and_shows_its_minimal_case(libraries, capsys):
    assert main([*BENCH, "--c", f"{libraries['xnor_gemm_tail_bug']}:xnor_gemm"]) == 1
    out = capsys.readouterr().out
    assert "not timed, it does not agree" in out and "case: m=1 n=1 k=1" in out
    assert "your kernel" not in out and "GOPS" not in out


def test_bench_gemm_with_a_missing_symbol_is_one_line_and_status_2(libraries, capsys):
    assert main([*BENCH, "--c", f"{libraries['xnor_gemm']}:no_such_symbol"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no symbol 'no_such_symbol'" in err
