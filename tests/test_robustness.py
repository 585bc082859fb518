"""A machine's faults and a user's mistakes cost no data: killed writers, NaN losses."""

import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tinybnn import training
from tinybnn.cli import main
from tinybnn.errors import TrainingError
from tinybnn.serialization import load_model

WRITER = """
import sys
from tinybnn.layers import FullyConnected, Sequential
from tinybnn.serialization import save_model
model = Sequential(FullyConnected(1500, rng=None)).build((1500,))    # a 9 MB file
step = 0
while True:
    model.layers[0].weight.data[...] = step
    save_model(sys.argv[1], model, (1500,), metadata={"step": step})
    print(step, flush=True)
    step += 1
"""


@pytest.mark.parametrize("delay", [0.0, 0.05, 0.13, 0.31])
def test_a_writer_killed_mid_write_leaves_the_previous_file_loadable(tmp_path, delay):
    path = tmp_path / "checkpoint.npz"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        writer.stdout.readline()  # one complete file exists
        time.sleep(delay)
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    loaded = load_model(path)
    step = loaded.metadata["step"]
    assert np.all(loaded.model.layers[0].weight.data == step)
    leftovers = [p.name for p in tmp_path.iterdir() if p != path]
    assert all(name.startswith(".checkpoint.npz.") and name.endswith(".tmp") for name in leftovers)


def test_a_nan_loss_exits_2_and_keeps_the_last_checkpoint(mnist_dir, tmp_path, monkeypatch, capsys):
    real_epoch = training.train_epoch
    calls = []

    def diverging_epoch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise TrainingError(
                "the loss became nan at batch 3: lower the learning rate (--lr); the last checkpoint is kept"
            )
        return real_epoch(*args, **kwargs)

    monkeypatch.setattr(training, "train_epoch", diverging_epoch)
    out = tmp_path / "model.npz"
    status = main(
        [
            "train",
            "--model",
            "lenet",
            "--data",
            str(mnist_dir),
            "--epochs",
            "3",
            "--train-limit",
            "200",
            "--test-limit",
            "100",
            "--out",
            str(out),
        ]
    )
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and "loss became nan" in err
    checkpoint = load_model(tmp_path / "model.ckpt.npz")
    assert checkpoint.metadata["checkpoint"]["epoch"] == 1
    assert not out.exists()
