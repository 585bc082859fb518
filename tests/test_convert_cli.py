"""convert, summary and predict from the command line, on small trained models, and file sizes."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image, ImageDraw

from tinybnn.cli import main
from tinybnn.convert import convert_file
from tinybnn.errors import ModelFileError
from tinybnn.layers import use_float_path
from tinybnn.models import lenet, resnet18
from tinybnn.predict import SHIPPED_MODEL, load_image, mnist_style
from tinybnn.serialization import load_model, save_model
from tinybnn.summary import summarize
from tinybnn.training import predict_logits

BMXNET_LENET_BYTES = 206_511
BMXNET_RESNET18_BYTES = 1_490_426


@pytest.fixture(scope="module")
def trained(tmp_path_factory, mnist_dir):
    """A binary LeNet trained for one epoch on 1,000 real digits, and its converted twin."""
    folder = tmp_path_factory.mktemp("trained")
    out = folder / "lenet.npz"
    assert (
        main(
            [
                "train",
                "--model",
                "binary-lenet",
                "--data",
                str(mnist_dir),
                "--epochs",
                "1",
                "--train-limit",
                "1000",
                "--test-limit",
                "200",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert main(["convert", str(out)]) == 0
    return out, folder / "binarized_lenet.npz"


@pytest.fixture(scope="module")
def test_digits(mnist_dir):
    from tinybnn.data import load_dataset, to_float_nchw

    data = load_dataset("mnist", data_dir=mnist_dir, download=False)
    return to_float_nchw(data.test_images[:2000]), data.test_labels[:2000]


def test_converted_predictions_equal_the_float_path(trained, test_digits):
    original = use_float_path(load_model(trained[0]).model)
    converted = load_model(trained[1], kind="binarized").model
    a, b = predict_logits(original, test_digits[0], 100), predict_logits(converted, test_digits[0], 100)
    assert np.array_equal(a.argmax(axis=1), b.argmax(axis=1))
    relative = np.abs(a - b) / np.abs(a).max(axis=1, keepdims=True)
    assert relative.max() < 1e-4


def test_converted_file_is_small_and_close_to_its_payload(trained):
    size = trained[1].stat().st_size
    loaded = load_model(trained[1])
    payload = sum(array.nbytes for array in loaded.model.state_dict().values())
    assert size <= BMXNET_LENET_BYTES
    assert abs(size - payload) <= 0.02 * payload


def test_summary_predicts_the_converted_size(trained):
    loaded = load_model(trained[0])
    rows, predicted = summarize(loaded.model, loaded.input_shape, loaded.metadata)
    actual = trained[1].stat().st_size
    assert abs(predicted - actual) <= 0.01 * actual
    assert sum(r.binary_macs for r in rows) == 64 * 8 * 8 * 1600 + 1000 * 1024
    assert sum(r.stored_bytes for r in rows) == 197_032
    converted = load_model(trained[1])
    rows_c, predicted_c = summarize(converted.model, converted.input_shape, converted.metadata)
    assert predicted_c == actual
    assert sum(r.binary_macs for r in rows_c) == sum(r.binary_macs for r in rows)


def test_convert_command_prints_both_sizes(trained, capsys, tmp_path):
    assert main(["convert", str(trained[0]), "--out", str(tmp_path / "small.npz")]) == 0
    line = capsys.readouterr().out
    assert f"{trained[0].stat().st_size:,} bytes" in line
    assert f"{(tmp_path / 'small.npz').stat().st_size:,} bytes" in line


def test_convert_refuses_a_converted_or_float_model(trained, tmp_path):
    with pytest.raises(ModelFileError, match="already converted"):
        convert_file(trained[1])
    float_net = lenet(rng=np.random.default_rng(0)).build((1, 28, 28))
    float_model = save_model(tmp_path / "float.npz", float_net, (1, 28, 28))
    with pytest.raises(ModelFileError, match="has no binary layer"):
        convert_file(float_model)


def test_summary_command(trained, capsys):
    assert main(["summary", str(trained[0])]) == 0
    text = capsys.readouterr().out
    for expected in ("QConvolution", "QFullyConnected", "binary MACs", "compression", "predicted size"):
        assert expected in text


STROKES = {  # digits as a pen draws them, on a 10 x 14 grid
    "0": [("ellipse", (1, 1, 9, 13))],
    "1": [("line", [(5, 1), (5, 13)])],
    "4": [("line", [(7, 13), (7, 1), (1, 9), (9, 9)])],
    "7": [("line", [(1, 1), (9, 1), (4, 13)])],
}


def draw_digit(path, digit: str, size=(150, 120), mode="RGB", background="white", ink="black"):
    """A PNG of a handwritten-looking digit: thick strokes drawn with Pillow, dark on light."""
    canvas = Image.new(mode, size, background)
    pen = ImageDraw.Draw(canvas)
    scale, left, top = 6, (size[0] - 60) // 2, (size[1] - 84) // 2
    for shape, points in STROKES[digit]:
        if shape == "line":
            pen.line([(left + x * scale, top + y * scale) for x, y in points], fill=ink, width=10, joint="curve")
        else:
            x0, y0, x1, y1 = points
            pen.ellipse(
                (left + x0 * scale, top + y0 * scale, left + x1 * scale, top + y1 * scale), outline=ink, width=10
            )
    canvas.save(path)
    return path


def test_mnist_style_inverts_crops_and_centres(tmp_path):
    image = load_image(draw_digit(tmp_path / "one.png", "1"))
    assert image.shape == (28, 28) and image.dtype == np.float32
    assert image.max() == pytest.approx(1.0, abs=0.05) and image[0].max() == 0 and image[:, 0].max() == 0
    ys, xs = np.indices(image.shape)
    assert abs((ys * image).sum() / image.sum() - 14) < 1.5 and abs((xs * image).sum() / image.sum() - 14) < 1.5
    rows, cols = np.nonzero(image > 0.2)
    assert max(np.ptp(rows), np.ptp(cols)) <= 21


def test_blank_and_transparent_images(tmp_path):
    assert mnist_style(Image.new("L", (10, 10), 255)).max() == 0
    transparent = Image.new("RGBA", (40, 40), (0, 0, 0, 0))
    ImageDraw.Draw(transparent).rectangle((15, 5, 24, 34), fill=(0, 0, 0, 255))
    transparent.save(tmp_path / "bar.png")
    image = load_image(tmp_path / "bar.png")
    assert image.max() > 0.9 and image[0].max() == 0


def run_predict(*args):
    done = subprocess.run(
        [sys.executable, "-m", "tinybnn.cli", "predict", *map(str, args)], capture_output=True, text=True, timeout=300
    )
    return done.returncode, done.stdout, done.stderr


def test_the_shipped_model_exists_and_is_small():
    assert SHIPPED_MODEL.is_file() and SHIPPED_MODEL.stat().st_size <= BMXNET_LENET_BYTES
    assert load_model(SHIPPED_MODEL).kind == "binarized"


@pytest.mark.parametrize("digit", sorted(STROKES))
def test_predict_reads_a_drawn_digit(tmp_path, digit):
    path = draw_digit(tmp_path / f"digit{digit}.png", digit)
    status, out, err = run_predict(path, "--json")
    assert status == 0, err
    result = json.loads(out)
    assert result["top"][0]["class"] == digit, result
    assert len(result["top"]) == 3 and result["error"] is None


def test_predict_reports_bad_files_and_classifies_the_rest(tmp_path):
    good = draw_digit(tmp_path / "seven.png", "7", mode="L", background=230, ink=20)
    (tmp_path / "text.png").write_text("not an image")
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(good.read_bytes()[:60])
    status, out, err = run_predict(SHIPPED_MODEL, tmp_path / "missing.png", tmp_path / "text.png", corrupt, good)
    assert status == 2
    assert out.strip().startswith(f"{good}: 7 ")
    errors = err.strip().splitlines()
    assert len(errors) == 3 and "no such file" in errors[0] and "not an image" in errors[1]
    assert "damaged image" in errors[2] and "Traceback" not in err


def test_converted_resnet18_is_smaller_than_bmxnets(tmp_path):
    float_twin = resnet18(rng=np.random.default_rng(0)).build((3, 32, 32))
    float_path = save_model(tmp_path / "resnet18.npz", float_twin, (3, 32, 32))
    assert 44_000_000 < float_path.stat().st_size < 45_500_000
    binary = resnet18(binary=True, rng=np.random.default_rng(0)).build((3, 32, 32))
    binary_path = save_model(tmp_path / "binary-resnet18.npz", binary, (3, 32, 32))
    converted_path = convert_file(binary_path)
    size = converted_path.stat().st_size
    assert size <= BMXNET_RESNET18_BYTES
    _, predicted = summarize(load_model(binary_path).model, (3, 32, 32), {"converted_from": binary_path.name})
    assert abs(predicted - size) <= 0.01 * size
    converted = load_model(converted_path).model
    # every binary convolution packed: the bodies' pass bits between them, the shortcuts' stay unfused
    assert sum(type(m).__name__ in ("PackedConvolution", "BitConvolution") for _, m in converted.named_modules()) == 19


def test_class_names_come_from_the_training_dataset():
    from tinybnn.predict import class_labels

    assert class_labels({"training": {"dataset": "fashion-mnist"}}, 10)[0] == "T-shirt/top"
    assert class_labels({"training": {"dataset": "mnist"}}, 10)[3] == "3"
    assert class_labels({}, 4) == ["0", "1", "2", "3"]
