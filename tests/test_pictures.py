"""Pictures: filters (binary tiles in two colours, float tiles in greys, packed filters
unpacked exactly), training curves, and ``tinybnn show`` (atomic writes, one-line errors)."""

import json
import subprocess
import sys
from dataclasses import asdict

import numpy as np
import pytest
from hypothesis import given, settings
from PIL import Image

from tinybnn import show
from tinybnn.checkpoint import save_checkpoint
from tinybnn.cli import OneLineParser
from tinybnn.convert import convert_model
from tinybnn.errors import ArgumentError
from tinybnn.layers import BatchNorm, Convolution, Pooling, QActivation, QConvolution, Sequential
from tinybnn.layers.packed import PackedConvolution
from tinybnn.models import lenet
from tinybnn.optim import Adam
from tinybnn.pictures import (
    BACKGROUND,
    BLACK,
    MAX_TILES,
    TEST_COLOUR,
    TRAIN_COLOUR,
    WHITE,
    curves_image,
    filter_panel,
    filter_panels,
    filters_image,
    format_tick,
    kernel_grid,
    nice_ticks,
    panel_caption,
)
from tinybnn.predict import SHIPPED_MODEL
from tinybnn.serialization import load_model, save_model
from tinybnn.training import EpochResult, TrainState

from .strategies import binary_conv_weights


def tile_colours(grid: np.ndarray) -> set:
    """The colours of a grid's kernel pixels (everything but the background)."""
    pixels = grid.reshape(-1, 3)
    pixels = pixels[np.any(pixels != BACKGROUND, axis=1)]
    return {tuple(int(v) for v in p) for p in np.unique(pixels, axis=0)}


def contains(image: Image.Image, grid: np.ndarray) -> bool:
    """Whether ``grid`` appears in ``image`` as a block of pixels."""
    big = np.asarray(image.convert("RGB"))
    h, w = grid.shape[:2]
    for y in range(big.shape[0] - h + 1):
        for x in range(big.shape[1] - w + 1):
            if np.array_equal(big[y, x : x + 8], grid[0, :8]) and np.array_equal(big[y : y + h, x : x + w], grid):
                return True
    return False


def history(epochs: int) -> list[dict]:
    return [
        asdict(EpochResult(e, 1.0 / e, 0.8 + 0.01 * e, 1.2 / e, 0.75 + 0.01 * e, 2.0, 500.0, 1e-3))
        for e in range(1, epochs + 1)
    ]


@pytest.fixture(scope="module")
def binary_lenet():
    return lenet(binary=True, rng=np.random.default_rng(3)).build((1, 28, 28))


@pytest.fixture(scope="module")
def shipped():
    return load_model(SHIPPED_MODEL)


# --- filters ------------------------------------------------------------------------------
def test_binary_tiles_are_black_and_white_and_float_tiles_are_greys(binary_lenet):
    float_panel, binary_panel = filter_panels(binary_lenet)
    assert (float_panel.name, float_panel.kind, binary_panel.name, binary_panel.kind) == ("0", "float", "5", "binary")
    assert tile_colours(kernel_grid(binary_panel)) == {BLACK, WHITE}
    greys = tile_colours(kernel_grid(float_panel))
    assert len(greys) > 2 and all(r == g == b for r, g, b in greys)
    # the per-layer grey scale spans the full range: the largest |w| is black or white
    assert {BLACK, WHITE} & greys


def test_binary_tiles_show_the_signs_of_the_latent_weights_with_sign0_plus_one():
    layer = QConvolution(2, 1, rng=np.random.default_rng(0))
    layer.build((1, 2, 2))
    layer.weight.data[...] = np.array([[[[0.0, -0.3], [0.7, -0.0]]]], dtype=np.float32)
    grid = kernel_grid(filter_panel("0", layer), scale=1)
    tile = grid[2:4, 2:4]  # GAP = 2 pixels of background around the 2x2 tile
    assert tile[..., 0].tolist() == [[255, 0], [255, 255]]


def test_the_shipped_model_draws_a_two_coloured_packed_layer(shipped):
    panels = filter_panels(shipped.model)
    assert [(p.name, p.layer_type, p.kind) for p in panels] == [
        ("0", "Convolution", "float"),
        ("3", "PackedConvolution", "binary"),
    ]
    assert panels[1].values.shape == (64, 64, 5, 5)
    image = filters_image(shipped.model, title="shipped")
    assert image.mode == "RGB"
    packed_grid = kernel_grid(panels[1])
    assert tile_colours(packed_grid) == {BLACK, WHITE}
    assert len(tile_colours(kernel_grid(panels[0]))) > 16
    assert image.width >= packed_grid.shape[1] and contains(image, packed_grid)


@settings(max_examples=30)
@given(binary_conv_weights())
def test_a_converted_layer_draws_the_same_signs_as_the_trained_one(case):
    channels, kernel, filters, weight = case
    model = Sequential(QActivation(1), QConvolution(kernel, filters, rng=np.random.default_rng(0)), BatchNorm())
    model.build((channels, 4, 4))
    model[1].weight.data[...] = weight
    converted = convert_model(model)
    assert isinstance(converted[0], PackedConvolution)
    (trained_panel,) = filter_panels(model)
    (packed_panel,) = filter_panels(converted)
    expected = np.where(weight >= 0, 1.0, -1.0)
    assert np.array_equal(trained_panel.values, expected)
    assert np.array_equal(packed_panel.values, expected)


def test_k_bit_weights_are_drawn_in_their_grey_levels():
    layer = QConvolution(3, 8, act_bit=2, weight_bit=2, rng=np.random.default_rng(0))
    layer.build((4, 5, 5))
    panel = filter_panel("0", layer)
    assert panel.kind == "k-bit"
    assert set(np.unique(np.rint(panel.values * 3)).tolist()) <= {-3.0, -1.0, 1.0, 3.0}  # -1, -1/3, 1/3, 1
    assert np.allclose(panel.values * 3, np.rint(panel.values * 3), atol=1e-5)
    colours = tile_colours(kernel_grid(panel))
    assert 2 < len(colours) <= 4 and all(r == g == b for r, g, b in colours)
    assert "2-bit weights in grey" in panel_caption(panel)[0]


def test_choosing_a_layer_and_refusing_what_is_not_a_convolution(binary_lenet):
    (only,) = filter_panels(binary_lenet, layer="5")
    assert only.layer_type == "QConvolution"
    with pytest.raises(
        ArgumentError,
        match=r"--layer 3: layer 3 is a BatchNorm, not a convolution "
        r"\(convolutions: 0, 5\)",
    ):
        filter_panels(binary_lenet, layer="3")
    with pytest.raises(ArgumentError, match=r"--layer 99: no such layer \(convolutions: 0, 5\)"):
        filter_panels(binary_lenet, layer="99")
    with pytest.raises(ArgumentError, match="no convolution to draw"):
        filter_panels(Sequential(Pooling("max", kernel=(2, 2))).build((1, 4, 4)))


def test_wide_layers_show_their_first_filters_and_channels():
    layer = Convolution(1, MAX_TILES + 6, rng=np.random.default_rng(0))
    layer.build((MAX_TILES + 2, 3, 3))
    panel = filter_panel("0", layer)
    grid = kernel_grid(panel, scale=1)
    assert grid.shape[:2] == (MAX_TILES * 3 + 2, MAX_TILES * 3 + 2)  # 1x1 tiles with 2-pixel gaps
    assert "first 64 of 70 filters; first 64 of 66 channels" in panel_caption(panel)[1]


# --- curves -------------------------------------------------------------------------------
@pytest.mark.parametrize("epochs", [1, 2, 15])
def test_curves_have_the_size_asked_for_and_two_drawn_panels(epochs):
    image = curves_image(history(epochs), size=(1000, 420), title="a run")
    assert image.size == (1000, 420) and image.mode == "RGB"
    pixels = np.asarray(image)
    for half in (pixels[:, :500], pixels[:, 500:]):
        assert np.mean(np.any(half != 255, axis=-1)) > 0.02  # axes, ticks, labels, lines
        for colour in (TRAIN_COLOUR, TEST_COLOUR):
            assert np.any(np.all(half == colour, axis=-1)), colour


def test_the_shipped_models_history_draws(shipped):
    image = curves_image(shipped.metadata["history"])
    assert image.size == (1200, 480)


@pytest.mark.parametrize(
    "bad, message",
    [
        ([], "empty"),
        ("loss", "empty"),
        ([{"epoch": 1, "loss": 0.5, "train_accuracy": 0.9, "test_loss": 0.4}], "no number 'test_accuracy'"),
        ([{"epoch": 1, "loss": "x", "train_accuracy": 0.9, "test_loss": 0.4, "test_accuracy": 0.9}], "'loss'"),
        ([7], "entry 0 is a int"),
    ],
)
def test_a_malformed_history_is_refused_by_name(bad, message):
    with pytest.raises(ArgumentError, match=message):
        curves_image(bad)


def test_ticks_cover_the_range_with_round_steps():
    assert nice_ticks(0.0, 0.395) == [0.0, 0.1, 0.2, 0.3, 0.4]
    assert nice_ticks(0.879, 1.0) == [0.875, 0.9, 0.925, 0.95, 0.975, 1.0]
    assert [format_tick(t, 0.025) for t in (0.875, 1.0)] == ["0.875", "1.000"]
    assert format_tick(10.0, 5.0) == "10"


# --- tinybnn show --------------------------------------------------------------------------
def run_show(argv: list[str]) -> int:
    """``tinybnn show ...`` in this process, through a parser that has only the show command."""
    parser = OneLineParser(prog="tinybnn")
    commands = parser.add_subparsers(dest="command", parser_class=OneLineParser)
    show.add_parser(commands)
    args = parser.parse_args(["show", *argv])
    return args.handler(args)


def tinybnn(*args, cwd=None):
    done = subprocess.run(
        [sys.executable, "-m", "tinybnn.cli", *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=300
    )
    return done.returncode, done.stdout, done.stderr


@pytest.fixture(scope="module")
def trained_file(tmp_path_factory, binary_lenet):
    path = tmp_path_factory.mktemp("models") / "binary-lenet.npz"
    save_model(path, binary_lenet, (1, 28, 28), metadata={"history": history(3), "training": {"model": "binary-lenet"}})
    return path


def test_show_filters_writes_a_png_and_says_what_it_drew(trained_file, tmp_path, capsys):
    out = tmp_path / "filters.png"
    assert run_show(["filters", str(trained_file), str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(
        f"wrote {out}: layer 0 Convolution float 64x1 5x5, layer 5 QConvolution binary 64x64 5x5 ("
    )
    with Image.open(out) as image:
        assert image.format == "PNG" and f"({image.width}x{image.height} pixels)" in printed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["filters.png"]  # no temporary file left


def test_show_curves_reads_model_files_checkpoints_and_converted_files(trained_file, tmp_path, capsys):
    model = lenet(binary=True, rng=np.random.default_rng(0)).build((1, 28, 28))
    checkpoint = tmp_path / "run.ckpt.npz"
    save_checkpoint(
        checkpoint,
        model,
        (1, 28, 28),
        Adam(model.parameters()),
        TrainState(2, np.random.default_rng(0).bit_generator.state, history(2)),
        {"model": "binary-lenet"},
    )
    for source, epochs in [(trained_file, 3), (checkpoint, 2), (SHIPPED_MODEL, 15)]:
        out = tmp_path / f"curves-{epochs}.png"
        assert run_show(["curves", str(source), str(out)]) == 0
        assert f"wrote {out}: {epochs} epochs, final loss" in capsys.readouterr().out
        with Image.open(out) as image:
            assert image.size == (1200, 480)


def test_a_failed_write_leaves_the_old_picture_and_no_temporary_file(trained_file, tmp_path, monkeypatch):
    out = tmp_path / "filters.png"
    out.write_bytes(b"the old picture")

    def broken_save(self, fp, format=None, **params):
        fp.write(b"half a PNG")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(ArgumentError, match="cannot write the picture .No space left on device."):
        run_show(["filters", str(trained_file), str(out)])
    assert out.read_bytes() == b"the old picture"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["filters.png"]


def test_show_replaces_an_existing_picture(trained_file, tmp_path):
    out = tmp_path / "curves.png"
    out.write_bytes(b"old")
    assert run_show(["curves", str(trained_file), str(out)]) == 0
    with Image.open(out) as image:
        assert image.format == "PNG"


@pytest.mark.parametrize(
    "args, message",
    [
        (["filters", "missing.npz", "out.png"], "missing.npz: no such model file"),
        (["filters", "junk.npz", "out.png"], "junk.npz: not a tinybnn model file"),
        (["filters", "model.npz", "out.png", "--layer", "3"], "model.npz: --layer 3: layer 3 is a BatchNorm"),
        (["filters", "model.npz", "out.jpg"], "out.jpg: pictures are written as PNG"),
        (["filters", "model.npz", "no/such/folder/out.png"], "does not exist"),
        (["curves", "bare.npz", "out.png"], "bare.npz: holds no training history"),
        (
            ["curves", "badhistory.npz", "out.png"],
            "badhistory.npz: field metadata.history[0].test_accuracy: expected "
            "a finite number >= 0.0 <= 1.0, got nothing (the field is missing)",
        ),
        (["filters", "model.npz"], "the following arguments are required: OUT.png"),
        (["sketch", "model.npz", "out.png"], "invalid choice: 'sketch'"),
        ([], "the following arguments are required: PICTURE"),
    ],
)
def test_bad_input_gets_one_line_and_status_2(args, message, tmp_path, binary_lenet):
    save_model(tmp_path / "model.npz", binary_lenet, (1, 28, 28))
    (tmp_path / "junk.npz").write_bytes(b"not a zip file at all")
    save_model(tmp_path / "bare.npz", binary_lenet, (1, 28, 28))
    broken = [{k: v for k, v in row.items() if k != "test_accuracy"} for row in history(2)]
    save_model(tmp_path / "badhistory.npz", binary_lenet, (1, 28, 28), metadata={"history": broken})
    (tmp_path / "out.png").write_bytes(b"keep me")
    before = sorted(p.name for p in tmp_path.iterdir())
    status, out, err = tinybnn("show", *args, cwd=tmp_path)
    assert status == 2, err
    assert len(err.strip().splitlines()) == 1, err
    assert message in err and "Traceback" not in err
    assert out == ""
    assert (tmp_path / "out.png").read_bytes() == b"keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_show_help_names_both_pictures():
    status, out, _ = tinybnn("show", "--help")
    assert status == 0 and "filters" in out and "curves" in out
    status, out, _ = tinybnn("show", "filters", "--help")
    assert status == 0 and "--layer" in out and json.dumps("OUT.png")[1:-1] in out
