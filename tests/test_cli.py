"""The command line: the train command end to end, and one-line errors with status 2."""

import subprocess
import sys

import numpy as np
import pytest

from tinybnn.cli import main
from tinybnn.serialization import load_model


def tinybnn(*args, env=None, cwd=None):
    """Run ``python -m tinybnn.cli ARGS`` in a subprocess; return (status, stdout, stderr)."""
    done = subprocess.run(
        [sys.executable, "-m", "tinybnn.cli", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=600,
    )
    return done.returncode, done.stdout, done.stderr


def test_train_on_real_mnist(mnist_dir, tmp_path, capsys):
    out = tmp_path / "model.npz"
    status = main(
        [
            "train",
            "--model",
            "binary-lenet",
            "--data",
            str(mnist_dir),
            "--epochs",
            "2",
            "--train-limit",
            "600",
            "--test-limit",
            "500",
            "--out",
            str(out),
        ]
    )
    printed = capsys.readouterr().out
    assert status == 0
    epoch_lines = [line for line in printed.splitlines() if line.startswith("epoch")]
    assert len(epoch_lines) == 2
    assert all("test accuracy" in line and "images/s" in line for line in epoch_lines)
    loaded = load_model(out)
    assert loaded.metadata["training"]["model"] == "binary-lenet"
    assert len(loaded.metadata["history"]) == 2
    assert (tmp_path / "model.ckpt.npz").is_file()


def test_resume_continues_to_the_same_weights(mnist_dir, tmp_path, capsys):
    common = [
        "--model",
        "lenet",
        "--data",
        str(mnist_dir),
        "--train-limit",
        "300",
        "--test-limit",
        "100",
        "--schedule",
        "constant",
    ]
    assert main(["train", *common, "--epochs", "2", "--out", str(tmp_path / "straight.npz")]) == 0
    assert main(["train", *common, "--epochs", "1", "--out", str(tmp_path / "part.npz")]) == 0
    assert (
        main(
            [
                "train",
                "--resume",
                str(tmp_path / "part.ckpt.npz"),
                "--epochs",
                "2",
                "--data",
                str(mnist_dir),
                "--out",
                str(tmp_path / "part.npz"),
            ]
        )
        == 0
    )
    assert "resuming" in capsys.readouterr().out
    a = load_model(tmp_path / "straight.npz").model.state_dict()
    b = load_model(tmp_path / "part.npz").model.state_dict()
    assert all(np.array_equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--epochs", "0"], "--epochs must be at least 1"),
        (["train", "--model", "vgg"], "invalid choice: 'vgg'"),
        (["train", "--resume", "missing.ckpt.npz"], "missing.ckpt.npz: no such model file"),
        (["train", "--data", "no-such-folder"], "--data no-such-folder: no such folder"),
        (["train", "--out", "no/such/folder/m.npz"], "the folder"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_bad_input_gets_one_line_and_status_2(args, message, tmp_path):
    status, _, err = tinybnn(*args, cwd=tmp_path)
    assert status == 2, err
    assert len(err.strip().splitlines()) == 1, err
    assert message in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # nothing written, nothing created


def test_bad_bit_width_is_refused_by_name(mnist_dir, tmp_path):
    status, _, err = tinybnn("train", "--act-bit", "0", "--data", mnist_dir, "--out", tmp_path / "m.npz")
    assert status == 2 and "--act-bit must be an integer from 1 to 32, got 0" in err
    assert len(err.strip().splitlines()) == 1


def test_help_works():
    status, out, _ = tinybnn("train", "--help")
    assert status == 0 and "--resume" in out and "--data" in out
