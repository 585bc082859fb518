"""tinybnn bench train --before: a baseline source tree timed in the same rounds (smoke test; nothing is timed)."""

import subprocess
import sys
from pathlib import Path

import pytest

from tinybnn.benchmarks.train import main
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
