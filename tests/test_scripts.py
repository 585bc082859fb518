"""The runnable examples and benchmarks still run (smoke tests on tiny inputs; nothing is timed)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tinybnn.benchmarks.workers import format_table, paired_ratio, thread_environment

ROOT = Path(__file__).resolve().parents[1]


def test_train_mnist_example_runs(data_root, tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "train_mnist.py"),
            "--data",
            str(data_root),
            "--epochs",
            "1",
            "--out",
            str(tmp_path / "lenet.npz"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "epoch 1/1" in done.stdout and "test accuracy" in done.stdout
    accuracy = float(done.stdout.split("test accuracy")[1].split()[0])
    assert accuracy > 0.9
    assert (tmp_path / "lenet.npz").is_file()


def test_bench_infer_runs_on_a_few_images(data_root):
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "bench_infer.py"),
            "--data",
            str(data_root),
            "--threads",
            "1",
            "--repeats",
            "1",
            "--images",
            "200",
            "--batch-sizes",
            "100",
            "--no-torch",
            "--no-skylakex",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "packed [OpenBLAS" in done.stdout and "float path" in done.stdout


def test_bench_train_runs_on_a_few_images(data_root):
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "bench_train.py"),
            "--data",
            str(data_root),
            "--dataset",
            "mnist",
            "--models",
            "binary-lenet",
            "--threads",
            "1",
            "--repeats",
            "1",
            "--images",
            "300",
            "--no-torch",
            "--no-skylakex",
            "--float-path",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "s/epoch" in done.stdout and "x float path's time" in done.stdout
    table_rows = [line for line in done.stdout.splitlines() if "[OpenBLAS" in line]
    assert len(table_rows) == 2 and "tinybnn, float path" in table_rows[1]


def test_paired_ratio_is_the_median_of_per_repeat_ratios():
    seconds = {"tinybnn": [2.0, 3.0, 10.0], "PyTorch": [1.0, 2.0, 4.0]}
    assert paired_ratio(seconds, "tinybnn", "PyTorch") == "2.00"  # ratios 2.0, 1.5, 2.5
    assert paired_ratio(seconds, "PyTorch", "PyTorch") == ""
    assert paired_ratio(seconds, "tinybnn", "tinybnn, float path") == ""


def test_thread_environment_limits_every_library(monkeypatch):
    env = thread_environment(1, "SkylakeX")
    assert env["OPENBLAS_NUM_THREADS"] == env["NUMBA_NUM_THREADS"] == env["OMP_NUM_THREADS"] == "1"
    assert env["OPENBLAS_CORETYPE"] == "SkylakeX"
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")  # without a choice, the environment's stays
    assert thread_environment(2)["OPENBLAS_CORETYPE"] == "Haswell"
    monkeypatch.delenv("OPENBLAS_CORETYPE")
    assert "OPENBLAS_CORETYPE" not in thread_environment(2)


def test_torch_workers_do_not_inherit_tinybnns_thread_settings(monkeypatch):
    import tinybnn

    monkeypatch.setitem(tinybnn.THREAD_SETTINGS, "GOMP_SPINCOUNT", "30000")
    monkeypatch.setenv("GOMP_SPINCOUNT", "30000")
    assert thread_environment(2)["GOMP_SPINCOUNT"] == "30000"
    assert "GOMP_SPINCOUNT" not in thread_environment(2, tinybnn_settings=False)


def test_workers_decide_tinybnns_compiler_settings_themselves(monkeypatch):
    ours = {"NUMBA_CPU_FEATURES": "+avx512f,-prefer-256-bit"}
    monkeypatch.setattr("tinybnn.benchmarks.workers.COMPILER_SETTINGS", ours)
    monkeypatch.setenv("NUMBA_CPU_FEATURES", "+avx512f,-prefer-256-bit")
    assert "NUMBA_CPU_FEATURES" not in thread_environment(2)
    monkeypatch.setattr("tinybnn.benchmarks.workers.COMPILER_SETTINGS", {})  # the user's own setting stays
    assert thread_environment(2)["NUMBA_CPU_FEATURES"] == "+avx512f,-prefer-256-bit"


def test_format_table_aligns_columns():
    table = format_table(["a", "long name"], [[1, 2.5], ["xyz", 3]])
    lines = table.splitlines()
    assert len(lines) == 4 and len({len(line) for line in lines}) == 1


def test_latent_weights_script_runs_both_optimizers_and_draws(data_root, tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "latent_weights.py"),
            "--data",
            str(data_root),
            "--epochs",
            "1",
            "--train-limit",
            "100",
            "--test-limit",
            "50",
            "--work",
            str(tmp_path / "runs"),
            "--img",
            str(tmp_path / "img"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "adam conv flips" in done.stdout and "bop conv flips" in done.stdout
    assert sorted(p.name for p in (tmp_path / "img").iterdir()) == [
        "diagnostics_adam.png",
        "diagnostics_bop.png",
        "latent_weights.png",
    ]


def test_bench_diagnostics_runs_a_round(data_root):
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "bench_diagnostics.py"),
            "--data",
            str(data_root),
            "--rounds",
            "1",
            "--images",
            "100",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "median paired ratio with/without" in done.stdout and "inside the diagnostics" in done.stdout


@pytest.mark.parametrize(
    "given, expected",
    [
        ({}, {"GOMP_SPINCOUNT": "30000", "OPENBLAS_THREAD_TIMEOUT": "4"}),
        ({"OPENBLAS_THREAD_TIMEOUT": "20"}, {"GOMP_SPINCOUNT": "30000", "OPENBLAS_THREAD_TIMEOUT": "20"}),
        ({"GOMP_SPINCOUNT": "0"}, {"GOMP_SPINCOUNT": "0", "OPENBLAS_THREAD_TIMEOUT": "4"}),
        ({"OMP_WAIT_POLICY": "passive"}, {"GOMP_SPINCOUNT": None, "OPENBLAS_THREAD_TIMEOUT": "4"}),
    ],
)
def test_import_sets_short_spins_unless_the_user_chose(given, expected):
    """Importing tinybnn bounds both pools' spinning, and never overrides a user's setting."""
    ours = ("GOMP_SPINCOUNT", "OPENBLAS_THREAD_TIMEOUT", "OMP_WAIT_POLICY", "NUMBA_CPU_FEATURES", "NUMBA_CPU_NAME")
    env = {k: v for k, v in os.environ.items() if k not in ours}
    code = f"import json, os, tinybnn; print(json.dumps({{k: os.environ.get(k) for k in {sorted(expected)!r}}}))"
    done = subprocess.run([sys.executable, "-c", code], env={**env, **given}, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == expected


def host_has_avx512f() -> bool:
    import llvmlite.binding as llvm

    return "+avx512f" in llvm.get_host_cpu_features().flatten().split(",")


@pytest.mark.parametrize(
    "given, import_numba_first, expect_ours",
    [
        ({}, False, True),
        ({"NUMBA_CPU_NAME": "generic"}, False, False),
        ({"NUMBA_CPU_FEATURES": "+sse2"}, False, False),
        ({}, True, False),
    ],
)
def test_import_prefers_512_bit_vectors_unless_the_user_chose(given, import_numba_first, expect_ours):
    """On an AVX-512 host, importing tinybnn asks LLVM for 512-bit vectors; a user's Numba CPU setting, or a
    Numba imported before tinybnn, is left alone; Numba's own configuration then sees what was decided."""
    ours = ("NUMBA_CPU_FEATURES", "NUMBA_CPU_NAME")
    env = {k: v for k, v in os.environ.items() if k not in ours}
    first = "import numba; " if import_numba_first else ""
    code = (
        f"import json, os; {first}import tinybnn, numba.core.config as c; "
        "print(json.dumps([os.environ.get('NUMBA_CPU_FEATURES'), c.CPU_FEATURES, tinybnn.COMPILER_SETTINGS]))"
    )
    done = subprocess.run([sys.executable, "-c", code], env={**env, **given}, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    variable, numba_sees, settings = json.loads(done.stdout)
    if expect_ours and host_has_avx512f():
        assert variable.endswith(",-prefer-256-bit") and "+avx512f" in variable.split(",")
        assert numba_sees == variable and settings == {"NUMBA_CPU_FEATURES": variable}
    else:
        assert settings == {}
        assert variable == given.get("NUMBA_CPU_FEATURES")
