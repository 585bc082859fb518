"""tinybnn bench train --before: a baseline source tree timed in the same rounds (smoke test; nothing is timed)."""

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinybnn.benchmarks.workers import write_arrays
from tinybnn.benchmarks.train import before_worker, main
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
