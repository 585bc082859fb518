"""tinybnn bench train --before: a baseline source tree timed in the same rounds (smoke test; nothing is timed)."""

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinybnn.benchmarks.workers import write_arrays
from tinybnn.benchmarks.train import before_worker, check_imported_package, main
from tinybnn.errors import ArgumentError

ROOT = Path(__file__).resolve().parents[1]


def test_before_adds_a_paired_column_for_the_baseline_tree(data_root):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tinybnn.benchmarks.train",
            "--data",
            str(data_root),
            "--dataset",
            "mnist",
            "--models",
            "lenet",
            "--threads",
            "1",
            "--repeats",
            "1",
            "--images",
            "200",
            "--no-torch",
            "--no-skylakex",
            "--before",
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    assert "x before's time" in done.stdout
    rows = [line for line in done.stdout.splitlines() if "[OpenBLAS" in line]
    assert len(rows) == 2 and "tinybnn, before" in rows[1]


def test_before_refuses_a_folder_without_the_package(tmp_path):
    with pytest.raises(ArgumentError, match="no tinybnn/__init__.py"):
        main(["--before", str(tmp_path), "--no-torch"])


def test_the_baseline_worker_imports_the_baseline_tree_not_the_current_folder(tmp_path, monkeypatch):
    """``python -m`` puts the current folder ahead of PYTHONPATH: run from this repository, a worker
    given only PYTHONPATH would time this tree's package instead of the baseline's."""
    baseline = tmp_path / "baseline"
    shutil.copytree(ROOT / "tinybnn", baseline / "tinybnn", ignore=shutil.ignore_patterns("__pycache__"))
    images = np.random.default_rng(0).integers(0, 256, (100, 28, 28), dtype=np.uint8)
    arrays = write_arrays(tmp_path / "images.npz", images, np.arange(100) % 10)
    monkeypatch.chdir(ROOT)
    args = ["--arrays", str(arrays), "--batch-size", "100", "--seed", "0", "--model", "lenet"]
    result = before_worker(str(baseline), args, threads=1)
    assert Path(result["package"]) == baseline / "tinybnn"


def test_a_baseline_that_imports_another_tree_is_refused(tmp_path, monkeypatch):
    """Whatever puts another tinybnn first on the path, the baseline's timing is not used."""
    calls = []

    def fake_worker(command, env, cwd=None):
        calls.append(command)
        return {"package": str(ROOT / "tinybnn"), "seconds": 1.0}

    monkeypatch.setattr("tinybnn.benchmarks.train.run_worker", fake_worker)
    with pytest.raises(RuntimeError, match="imported tinybnn from .*, not that tree"):
        before_worker(str(tmp_path), ["--model", "lenet"], threads=1)
    assert len(calls) == 1 and "-c" in calls[0]  # refused before anything was timed


def test_the_check_accepts_the_baseline_trees_own_package(tmp_path):
    check_imported_package(str(tmp_path), str(tmp_path / "tinybnn"))
    with pytest.raises(RuntimeError, match="not that tree"):
        check_imported_package(str(tmp_path), str(tmp_path / "other" / "tinybnn"))
