"""Diagnostics of binary training: the four shares by hand, the Larq flip ratio, the log, the picture, the CLI."""

import subprocess
import sys

import numpy as np
import pytest

from tinybnn.autograd import Tensor
from tinybnn.cli import main
from tinybnn.diagnostics import BinaryDiagnostics, binary_layers
from tinybnn.diagnostics_chart import diagnostics_image
from tinybnn.errors import ArgumentError
from tinybnn.headers import EPOCH
from tinybnn.layers import FullyConnected, QActivation, QFullyConnected, Sequential
from tinybnn.models import lenet
from tinybnn.optim import Adam, CosineLR
from tinybnn.schema import SchemaError, validate
from tinybnn.serialization import load_model, save_model
from tinybnn.training import fit

from .test_training import toy_data


def f32(values):
    return np.array(values, dtype=np.float32)


def test_the_four_shares_against_a_hand_count():
    net = Sequential(QActivation(grad_cancel=1.0), QFullyConnected(2, rng=np.random.default_rng(0))).build((3,))
    dense = dict(net.named_modules())["1"]
    dense.weight.data[...] = f32([[1.0, -0.5, 0.2], [-1.0, 0.0, 0.7]])  # 2 of 6 at |w| = 1
    x = Tensor(f32([[-2.0, -0.5, 0.0], [0.5, 1.0, 3.0]]))  # |x| > 1: 2 of 6; x >= 0: 4 of 6
    with BinaryDiagnostics(net) as diagnostics:
        net.train()
        net(x)
        dense.weight.data[0, 1] = 0.25  # step 1 flips 1 of 6 signs; now 2 of 6 at the bound
        net(x)
        net.eval()
        net(x)  # evaluation is not counted
        dense.weight.data[1, 0] = 1.0  # step 2 flips another (w = -1 -> +1: still at the bound)
        dense.weight.data[1, 1] = -0.1  # and one more (sign(0) = +1 -> -1)
        entries = diagnostics.end_epoch()
    assert entries == [
        {"layer": "0", "type": "QActivation", "outside_window": 4 / 12, "positive": 8 / 12},
        {"layer": "1", "type": "QFullyConnected", "flip_ratio": 3 / (2 * 6), "at_bound": 4 / 12},
    ]
    assert all(layer.observer is None for _, layer in binary_layers(net))  # detached on exit


def test_a_q_layer_on_float_inputs_reports_its_own_signs_and_a_new_epoch_starts_afresh():
    net = Sequential(QFullyConnected(2, rng=np.random.default_rng(0)), FullyConnected(2)).build((4,))
    with BinaryDiagnostics(net) as diagnostics:
        net(Tensor(f32([[0.5, -3.0, 2.0, 0.0]])))
        first = diagnostics.end_epoch()
        net(Tensor(f32([[0.5, 0.5, 0.5, 0.5]])))
        second = diagnostics.end_epoch()
    assert first[0]["outside_window"] == 0.5 and first[0]["positive"] == 0.75
    assert first[0]["flip_ratio"] == 0.0  # one step (the end of the epoch): nothing changed
    assert second[0]["outside_window"] == 0.0 and second[0]["positive"] == 1.0


def test_flip_ratio_is_larqs_definition_and_diagnostics_change_nothing():
    """The flip ratio equals the share of sign changes per optimizer step, counted around each step,
    averaged over the epoch; the weights come out the same as without diagnostics."""
    x, y = toy_data()

    def train(with_diagnostics):
        rng = np.random.default_rng(0)
        model = lenet(binary=True, rng=rng).build((1, 28, 28))
        optimizer = Adam(model.parameters(), lr=1e-2)
        conv = dict(model.named_modules())["5"]
        shares = []
        plain_step = optimizer.step

        def step():
            before = conv.weight.data >= 0
            plain_step()
            shares.append(np.mean(before != (conv.weight.data >= 0)))

        optimizer.step = step
        if with_diagnostics:
            with BinaryDiagnostics(model) as diagnostics:
                state = fit(
                    model,
                    optimizer,
                    CosineLR(1e-2, 2),
                    (x, y),
                    (x[:20], y[:20]),
                    2,
                    20,
                    rng,
                    log=lambda line: None,
                    diagnostics=diagnostics,
                )
        else:
            state = fit(
                model, optimizer, CosineLR(1e-2, 2), (x, y), (x[:20], y[:20]), 2, 20, rng, log=lambda line: None
            )
        return model.state_dict(), state.history, shares

    weights, history, shares = train(True)
    plain_weights, plain_history, _ = train(False)
    assert all(np.array_equal(weights[k], plain_weights[k]) for k in weights)
    assert "diagnostics" not in plain_history[0]
    for epoch, steps in zip(history, (shares[:3], shares[3:])):  # 60 images in batches of 20
        validate(epoch, EPOCH)
        conv = next(entry for entry in epoch["diagnostics"] if entry["layer"] == "5")
        assert conv["flip_ratio"] == pytest.approx(np.mean(steps), rel=1e-12) and conv["flip_ratio"] > 0
        assert [entry["layer"] for entry in epoch["diagnostics"]] == ["4", "5", "9", "10"]
    assert set(history[0]["diagnostics"][0]) == {"layer", "type", "outside_window", "positive"}


@pytest.mark.parametrize(
    "bad",
    [
        {"layer": "1", "type": "QConvolution", "flip_ratio": 1.5},
        {"layer": "1", "type": "QConvolution", "positive": -0.1},
        {"layer": "1", "flip_ratio": 0.1},
        {"layer": "1", "type": "QConvolution", "speed": 0.1},
    ],
)
def test_the_header_schema_refuses_a_forged_entry(bad):
    epoch = {
        "epoch": 1,
        "loss": 0.1,
        "train_accuracy": 0.9,
        "test_loss": 0.1,
        "test_accuracy": 0.9,
        "seconds": 1.0,
        "images_per_second": 10.0,
        "lr": 1e-3,
        "diagnostics": [bad],
    }
    with pytest.raises(SchemaError, match="diagnostics"):
        validate(epoch, EPOCH)


def history_with_diagnostics(epochs=3):
    return [
        {
            "epoch": e,
            "loss": 0.1,
            "train_accuracy": 0.9,
            "test_loss": 0.1,
            "test_accuracy": 0.9,
            "seconds": 1.0,
            "images_per_second": 10.0,
            "lr": 1e-3,
            "diagnostics": [
                {"layer": "4", "type": "QActivation", "outside_window": 0.3, "positive": 0.5},
                {"layer": "5", "type": "QConvolution", "flip_ratio": 0.01 / e, "at_bound": 0.1 * e},
            ],
        }
        for e in range(1, epochs + 1)
    ]


def test_the_picture_and_its_refusals():
    image = diagnostics_image(history_with_diagnostics(), title="t")
    assert image.size == (1300, 960)
    assert len(np.unique(np.asarray(image).reshape(-1, 3), axis=0)) > 3  # lines in several colours, not blank
    with pytest.raises(ArgumentError, match="no diagnostics"):
        diagnostics_image([{"epoch": 1, "loss": 0.1}])


def test_show_diagnostics_writes_the_picture_or_says_why_not(tmp_path, capsys):
    model = lenet(binary=True, rng=np.random.default_rng(0)).build((1, 28, 28))
    save_model(tmp_path / "with.npz", model, (1, 28, 28), metadata={"history": history_with_diagnostics()})
    save_model(
        tmp_path / "without.npz",
        model,
        (1, 28, 28),
        metadata={"history": [{k: v for k, v in e.items() if k != "diagnostics"} for e in history_with_diagnostics()]},
    )
    assert main(["show", "diagnostics", str(tmp_path / "with.npz"), str(tmp_path / "d.png")]) == 0
    assert "3 epochs, 2 binary layers" in capsys.readouterr().out and (tmp_path / "d.png").is_file()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tinybnn.cli",
            "show",
            "diagnostics",
            str(tmp_path / "without.npz"),
            str(tmp_path / "e.png"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "without.npz: the training log holds no diagnostics (train with --diagnostics)" in done.stderr
    assert not (tmp_path / "e.png").exists()


def test_train_diagnostics_on_real_mnist_and_resume_keeps_them(mnist_dir, tmp_path, capsys):
    common = ["--data", str(mnist_dir), "--train-limit", "200", "--test-limit", "100", "--optimizer", "bop"]
    assert main(["train", *common, "--epochs", "1", "--diagnostics", "--out", str(tmp_path / "m.npz")]) == 0
    assert main(["train", "--resume", str(tmp_path / "m.ckpt.npz"), "--epochs", "2", "--data", str(mnist_dir)]) == 0
    printed = capsys.readouterr().out
    assert printed.count("  binary layers: flips 5:") == 2
    for path in (tmp_path / "m.npz", tmp_path / "m.ckpt.npz"):
        loaded = load_model(path)
        history = loaded.metadata.get("history") or loaded.metadata["checkpoint"]["history"]
        assert len(history) == 2
        for epoch in history:
            entries = {entry["layer"]: entry for entry in epoch["diagnostics"]}
            assert sorted(entries) == ["10", "4", "5", "9"]
            assert entries["5"]["at_bound"] == 1.0  # Bop: every weight is ±1
            assert 0 < entries["5"]["flip_ratio"] < 0.5
    weights = load_model(tmp_path / "m.npz").model.state_dict()["5.weight"]
    assert set(np.unique(weights)) == {-1.0, 1.0}
