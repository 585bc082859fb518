"""Odd values, closed pipes, undecodable names, diverging runs: one line from the command line, never a traceback.

Every option value train refuses is refused before the data is read, with
status 2 and one line naming the option; a run that diverges ends with the
documented "the loss became nan" TrainingError and keeps its last good
checkpoint; NaN has no sign, so 1-bit activations and bit packing both
refuse it with NotANumberError.
"""

import contextlib
import io
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinybnn import training
from tinybnn.autograd import Tensor
from tinybnn.cli import main
from tinybnn.errors import ArgumentError, NotANumberError
from tinybnn.gemm import pack_bits
from tinybnn.layers import QActivation
from tinybnn.predict import SHIPPED_MODEL
from tinybnn.serialization import load_model, save_model

from .test_cli import tinybnn
from .test_interrupt import a_digit
from .test_outputs import binary_model


def run_cli(*args):
    """``tinybnn ARGS`` in this process: (status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main([str(a) for a in args])
    return status, out.getvalue(), err.getvalue()


# --- option values ----------------------------------------------------------------------
not_finite = st.sampled_from(["nan", "inf", "-inf"])
BAD_VALUES = st.one_of(
    st.tuples(st.just("--batch-size"), st.integers(max_value=0).map(str)),
    st.tuples(st.just("--epochs"), st.integers(max_value=0).map(str)),
    st.tuples(st.just("--train-limit"), st.integers(max_value=0).map(str)),
    st.tuples(st.just("--test-limit"), st.integers(max_value=0).map(str)),
    st.tuples(st.just("--seed"), st.integers(max_value=-1).map(str)),
    st.tuples(
        st.sampled_from(["--act-bit", "--weight-bit"]), st.integers().filter(lambda n: not 1 <= n <= 32).map(str)
    ),
    st.tuples(st.just("--lr"), st.floats(max_value=-1e-300).map(repr) | st.just("nan")),
    st.tuples(st.just("--momentum"), st.floats(allow_nan=True).filter(lambda m: not 0 <= m < 1).map(repr) | not_finite),
    st.tuples(st.just("--weight-decay"), st.floats(max_value=-1e-300).map(repr) | not_finite),
)


@settings(max_examples=80)
@given(option_value=BAD_VALUES)
def test_train_refuses_bad_values_before_reading_data(tmp_path_factory, option_value):
    option, value = option_value
    folder = tmp_path_factory.mktemp("bad")
    status, _, err = run_cli(
        "train", f"{option}={value}", "--optimizer", "sgd", "--data", folder / "no-data", "--out", folder / "m.npz"
    )
    assert status == 2 and err.count("\n") == 1, err
    assert err.startswith(f"tinybnn: error: {option} must "), err  # the option, not the missing data
    assert list(folder.iterdir()) == []


def test_resume_refuses_fewer_epochs_than_done(tmp_path):
    path = tmp_path / "run.ckpt.npz"
    from tinybnn.checkpoint import save_checkpoint
    from tinybnn.models import build_model
    from tinybnn.optim import Adam
    from tinybnn.recipe import RunSettings
    from tinybnn.training import TrainState
    from dataclasses import asdict

    model, shape = build_model("lenet", rng=np.random.default_rng(0))
    save_checkpoint(
        path,
        model,
        shape,
        Adam(model.parameters()),
        TrainState(epoch=3, rng_state=np.random.default_rng(0).bit_generator.state),
        asdict(RunSettings()),
    )
    before = path.read_bytes()
    status, _, err = run_cli("train", "--resume", path, "--epochs", "2", "--data", tmp_path / "no-data")
    assert status == 2 and f"--epochs 2: {path} has already done 3 epochs" in err
    assert path.read_bytes() == before and not (tmp_path / "run.npz").exists()


# --- diverging runs ---------------------------------------------------------------------
def test_an_infinite_learning_rate_ends_with_the_documented_training_error(mnist_dir, tmp_path):
    status, _, err = tinybnn(
        "train",
        "--model",
        "binary-lenet",
        "--lr",
        "inf",
        "--epochs",
        "2",
        "--train-limit",
        "300",
        "--test-limit",
        "100",
        "--data",
        mnist_dir.resolve(),
        "--out",
        tmp_path / "m.npz",
    )  # a real process: no warning on stderr either
    assert status == 2 and err.count("\n") == 1, err
    assert err.startswith("tinybnn: error: the loss became nan at batch ") and "lower the learning rate" in err
    assert "no sign to pack" not in err
    assert list(tmp_path.iterdir()) == []  # nothing finished, nothing saved


@pytest.mark.parametrize("when", ["forward", "after-the-last-step"])
def test_a_run_diverging_in_epoch_2_keeps_epoch_1s_checkpoint(mnist_dir, tmp_path, monkeypatch, when):
    real_epoch = training.train_epoch
    calls = []

    def diverging_epoch(model, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2 and when == "forward":
            model.parameters()[0].data[...] = np.nan  # the first convolution's weights
        result = real_epoch(model, *args, **kwargs)
        if len(calls) == 2 and when == "after-the-last-step":
            model.parameters()[-1].data[0] = np.nan
        return result

    monkeypatch.setattr(training, "train_epoch", diverging_epoch)
    status, _, err = run_cli(
        "train",
        "--model",
        "binary-lenet",
        "--epochs",
        "3",
        "--train-limit",
        "200",
        "--test-limit",
        "100",
        "--data",
        mnist_dir,
        "--out",
        tmp_path / "m.npz",
    )
    expected = {"forward": "the loss became nan at batch 1", "after-the-last-step": "the weights became nan"}[when]
    assert status == 2 and err.count("\n") == 1 and expected in err, err
    assert load_model(tmp_path / "m.ckpt.npz").metadata["checkpoint"]["epoch"] == 1
    assert not (tmp_path / "m.npz").exists()


# --- NaN has no sign ---------------------------------------------------------------------
@given(size=st.integers(1, 300), where=st.data(), dtype=st.sampled_from([np.float32, np.float64]))
def test_nan_is_refused_by_1_bit_activations_and_by_packing_alike(size, where, dtype):
    x = np.linspace(-1, 1, size).astype(dtype)
    x[where.draw(st.integers(0, size - 1))] = np.nan
    layer = QActivation(1)
    layer.name = "3"
    with pytest.raises(NotANumberError, match=r"layer 3 \(QActivation\): input contains NaN, which has no sign"):
        layer(Tensor(x.reshape(1, -1)))
    with pytest.raises(NotANumberError, match="NaN, which has no sign"):
        pack_bits(x)
    assert issubclass(NotANumberError, ArgumentError)
    assert np.isnan(QActivation(2)(Tensor(x)).data).any()  # k-bit activations pass NaN on


# --- output streams ------------------------------------------------------------------------
def test_a_closed_pipe_ends_predict_quietly(tmp_path):
    digit = a_digit(tmp_path)
    process = subprocess.Popen(
        [sys.executable, "-m", "tinybnn.cli", "predict", "--json", SHIPPED_MODEL, *[digit] * 800],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    first = process.stdout.readline()
    process.stdout.close()  # like `| head -1`
    err = process.stderr.read().decode()
    process.wait(timeout=300)
    assert first.startswith(b'{"file": ')
    assert process.returncode == 141 and err == "", err


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="file names are bytes on Linux only")
@pytest.mark.parametrize(
    "env",
    [
        {"PYTHONIOENCODING": "utf-8:strict"},
        {"PYTHONIOENCODING": "ascii:strict"},
        {"LC_ALL": "C", "PYTHONIOENCODING": ""},
    ],
)
def test_an_undecodable_file_name_is_printed_escaped(tmp_path, env):
    digit = a_digit(tmp_path)
    odd = os.fsencode(tmp_path) + b"/\xff\xe9.png"
    os.rename(digit, odd)
    missing = os.fsencode(tmp_path) + b"/gone\xff.png"
    done = subprocess.run(
        [sys.executable.encode(), b"-m", b"tinybnn.cli", b"predict", odd, missing],
        capture_output=True,
        env=dict(os.environ, **env),
        timeout=300,
    )
    out, err = done.stdout.decode("ascii"), done.stderr.decode("ascii")  # escaped: plain ASCII
    assert done.returncode == 2 and "Traceback" not in err, err
    assert "\\udcff\\udce9.png: " in out and out.count("\n") == 1
    assert "gone\\udcff.png: error:" in err and err.count("\n") == 1


# --- files that are not what they should be ------------------------------------------------
@pytest.mark.parametrize("command", [["summary"], ["convert"], ["predict"], ["show", "filters"]])
def test_a_folder_given_as_a_model_gets_one_line(tmp_path, command):
    folder = tmp_path / "folder.npz"
    folder.mkdir()
    extra = {"predict": ["x.png"], "show": [tmp_path / "out.png"]}.get(command[0], [])
    status, _, err = run_cli(*command, folder, *extra)
    assert status == 2 and err.count("\n") == 1 and "is a folder, not a model file" in err, err


def test_show_never_draws_over_its_model(tmp_path):
    model = tmp_path / "m.png"  # a model file under a picture's name
    save_model(model, binary_model(), (70,), metadata={"history": [{"epoch": 1}]})
    before = model.read_bytes()
    for picture in ("filters", "curves"):
        status, _, err = run_cli("show", picture, model, tmp_path / ".." / tmp_path.name / "m.png")
        assert status == 2 and "never writes over its own input" in err, err
    assert model.read_bytes() == before
