"""Ctrl-C, for real: a SIGINT at any moment ends a command with one line and status 130.

Training first finishes its batch, then says what was saved and the exact
command that resumes; the checkpoint it names loads, and that command
continues the run. A second Ctrl-C ends at once, still with one line.
"""

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.terminal import sigint_as_at_a_terminal
from tinybnn.predict import SHIPPED_MODEL
from tinybnn.serialization import load_model

TRAIN = [
    "train",
    "--model",
    "binary-lenet",
    "--epochs",
    "40",
    "--train-limit",
    "300",
    "--test-limit",
    "200",
    "--out",
    "run.npz",
]


def start(args, cwd):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, "-m", "tinybnn.cli", *map(str, args)],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=sigint_as_at_a_terminal,
    )


def wait_for_line(process, prefix):
    """Read stdout until a line starts with ``prefix`` (the process is then past that point)."""
    for line in process.stdout:
        if line.startswith(prefix):
            return
    raise AssertionError(f"the process ended before printing {prefix!r}: {process.stderr.read()}")


def interrupt(process, times=1, gap=0.05):
    for i in range(times):
        if i:
            time.sleep(gap)
        process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=300)
    return process.returncode, err


def assert_one_interrupted_line(status, err):
    assert status == 130, err
    assert err.count("\n") == 1 and err.startswith("tinybnn: interrupted"), err
    assert "Traceback" not in err and "SystemError" not in err


def check_what_it_says_was_saved(err, folder):
    """The checkpoint the line names loads and holds the epoch it says."""
    if "holds epoch" not in err:
        assert "nothing was saved" in err or err == "tinybnn: interrupted\n", err
        assert not (folder / "run.ckpt.npz").exists()
        return None
    said = re.fullmatch(r"tinybnn: interrupted; (\S+) holds epoch (\d+) of 40; continue with: (.*)\n", err)
    assert said, err
    checkpoint = load_model(folder / said[1])
    assert checkpoint.metadata["checkpoint"]["epoch"] == int(said[2])
    return shlex.split(said[3])


@pytest.mark.parametrize("delay", [0.0, 0.4, 1.1, 1.9, 2.6, 3.7, 5.3])
def test_ctrl_c_during_training_prints_one_line_and_keeps_the_checkpoint(mnist_dir, tmp_path, delay):
    process = start([*TRAIN, "--data", mnist_dir.resolve()], tmp_path)
    wait_for_line(process, "training ")
    time.sleep(delay)
    status, err = interrupt(process)
    assert_one_interrupted_line(status, err)
    check_what_it_says_was_saved(err, tmp_path)
    assert not (tmp_path / "run.npz").exists()


def test_a_second_ctrl_c_ends_at_once_with_one_line(mnist_dir, tmp_path):
    process = start([*TRAIN, "--data", mnist_dir.resolve()], tmp_path)
    wait_for_line(process, "epoch   2/")  # printed before its checkpoint is written: epoch 1's surely is
    status, err = interrupt(process, times=2)
    assert_one_interrupted_line(status, err)
    assert "holds epoch" in err
    check_what_it_says_was_saved(err, tmp_path)


def test_the_printed_command_resumes_the_run(mnist_dir, tmp_path):
    process = start([*TRAIN, "--data", mnist_dir.resolve()], tmp_path)
    wait_for_line(process, "epoch   1/")
    status, err = interrupt(process)
    assert_one_interrupted_line(status, err)
    command = check_what_it_says_was_saved(err, tmp_path)
    assert command[:4] == ["tinybnn", "train", "--resume", "run.ckpt.npz"] and "--data" in command
    done = int(re.search(r"holds epoch (\d+)", err)[1])
    resumed = subprocess.run(
        [sys.executable, "-m", "tinybnn.cli", *command[1:], "--epochs", str(done + 1)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming run.ckpt.npz after epoch {done}" in resumed.stdout
    assert load_model(tmp_path / "run.ckpt.npz").metadata["checkpoint"]["epoch"] == done + 1
    assert len(load_model(tmp_path / "run.npz").metadata["history"]) == done + 1


READY = "import sys, tinybnn.cli; print('ready'); sys.exit(tinybnn.cli.main(sys.argv[1:]))"


def a_digit(folder: Path) -> Path:
    from PIL import Image, ImageDraw

    image = Image.new("L", (60, 60), 255)
    ImageDraw.Draw(image).line([(30, 8), (30, 52)], fill=0, width=6)
    image.save(folder / "one.png")
    return folder / "one.png"


@pytest.mark.parametrize("command", ["predict", "summary", "convert"])
def test_ctrl_c_in_other_commands_prints_one_line(tmp_path, command):
    digit = a_digit(tmp_path)
    args = {
        "predict": [SHIPPED_MODEL, *[digit] * 3000],
        "summary": [SHIPPED_MODEL],
        "convert": [SHIPPED_MODEL, "--out", tmp_path / "never.npz"],
    }[command]
    statuses = []
    for delay in (0.2, 0.6):  # after Python has started and loaded tinybnn.cli
        process = subprocess.Popen(
            [sys.executable, "-c", READY, command, *map(str, args)],
            cwd=tmp_path,
            text=True,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            preexec_fn=sigint_as_at_a_terminal,
        )
        assert process.stdout.readline() == "ready\n"
        time.sleep(delay)
        status, err = interrupt(process)
        statuses.append(status)
        if status == 130:
            assert_one_interrupted_line(status, err)
        else:  # it finished first (convert refuses an already converted model); a signal that lands
            # after main() has returned and restored Python's handler ends the exiting process by SIGINT
            assert status in (0, 2, -signal.SIGINT) and "Traceback" not in err and err.count("\n") <= 1, err
    if command == "predict":  # 3,000 images take seconds; summary and convert may end sooner
        assert 130 in statuses
    assert not (tmp_path / "never.npz").exists()
