"""tinybnn serve: the trace against the layers, the API good and bad, 50 requests at once, a real browser.

The server runs on an ephemeral port in a thread of the test process. The
browser test needs Chromium (Debian package ``chromium``); without it the
test fails, saying how to install it: it is never skipped.
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from tests.hang import without_hanging
from tests.terminal import sigint_as_at_a_terminal
from tinybnn.autograd import Tensor
from tinybnn.autograd.backends import KERNELS
from tinybnn.explorer.digits import SHIPPED_DIGITS, load_test_digits, read_test_files
from tinybnn.explorer.model_trace import explain, layers_of, run_layer, trace
from tinybnn.explorer.server import MAX_BODY, MAX_SIDE, open_server
from tinybnn.gemm.bitconv import pack_normalized_channels
from tinybnn.layers import BatchNorm, Convolution, Flatten, FullyConnected, Module, Sequential
from tinybnn.layers.packed import PackedConvolution
from tinybnn.predict import SHIPPED_MODEL, probabilities
from tinybnn.serialization import load_model

CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--virtual-time-budget=5000",
]


@pytest.fixture(scope="module")
def server():
    server = open_server(None, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def model():
    return load_model(SHIPPED_MODEL).model


def call(server, method: str, path: str, body: bytes | None = None, content_type: str | None = None):
    """(status, decoded JSON) of one request."""
    connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=60)
    try:
        headers = {"Content-Type": content_type} if content_type else {}
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        assert response.getheader("Content-Type") == "application/json"
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def raw(server, data: bytes) -> tuple[int, dict]:
    """Send raw bytes, read the whole answer: (status, decoded JSON body)."""
    with socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=60) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def predict_json(server, image: np.ndarray):
    return call(server, "POST", "/api/predict", json.dumps({"image": image.tolist()}).encode(), "application/json")


def direct_top(model, image: np.ndarray) -> list[tuple[str, float]]:
    probs = probabilities(model, image[None])[0]
    return [(str(k), round(float(probs[k]), 6)) for k in np.argsort(-probs, kind="stable")[:3]]


def digit(server, index: int) -> np.ndarray:
    return server.explorer.digits.digit(index)[0]


def decode_bits(encoded: dict) -> np.ndarray:
    packed = np.frombuffer(base64.b64decode(encoded["bits"]), np.uint8)
    count = int(np.prod(encoded["shape"]))
    return np.unpackbits(packed, bitorder="little")[:count].reshape(encoded["shape"]).astype(bool)


# --- the trace ----------------------------------------------------------------------------
def test_trace_gives_every_layer_output_exactly(server, model):
    """Exactly, but for a float convolution's output: the trace sums it as im2col @ W^T in NumPy,
    the layer by the fast backend's direct kernel, in another order (its stated tolerance)."""
    conv_tolerance = KERNELS["conv_forward"].tolerance
    for index in (0, 1, 7):
        x = digit(server, index)[None]
        for layer_trace, layer in zip(trace(model, x), layers_of(model)):
            own = run_layer(layer, x)
            traced = layer_trace.stages[-1].values.reshape(own.shape)
            if isinstance(layer, Convolution):
                np.testing.assert_allclose(traced, own, rtol=conv_tolerance.rtol, atol=conv_tolerance.atol)
            else:
                np.testing.assert_array_equal(traced, own)
            if isinstance(layer, PackedConvolution):
                words = pack_normalized_channels(
                    x[None], layer.input_mean, layer.input_inv_std, layer.input_gamma, layer.input_beta
                )[0]  # (H, W, 1): 64 channels in one word
                bits = (words[..., 0, None] >> np.arange(64, dtype=np.uint64)) & np.uint64(1)
                np.testing.assert_array_equal(layer_trace.stages[0].values, bits.transpose(2, 0, 1).astype(bool))
            x = own


def test_explain_spells_out_the_layer_output(server, model):
    x = digit(server, 0)[None]
    traces = trace(model, x)
    conv_out, dense_out = traces[3].stages[1].values, traces[5].stages[1].values
    for position in ((0, 0, 0), (8, 0, 3), (63, 3, 3), (17, 2, 1)):
        answer = explain(model, x, 3, list(position))
        assert answer["result"] == conv_out[position]
        assert (
            answer["dot"]
            == answer["K"] - 2 * int(np.count_nonzero(answer["xor_bits"]))
            == 1600 - 2 * answer["popcount"]
        )
        np.testing.assert_array_equal(answer["xor_bits"], answer["patch_bits"] ^ answer["filter_bits"])
        assert answer["result"] == max(max(row) for row in answer["pool"]["values"])
    for unit in (0, 999):
        answer = explain(model, x, 5, [unit])
        assert answer["result"] == dense_out[unit]
        assert answer["K"] == 1024 and answer["dot"] == 1024 - 2 * answer["popcount"]


def test_unknown_layers_are_shown_generically():
    class Sign(Module):  # a layer type the explorer does not know, giving ±1
        def forward(self, x: Tensor) -> Tensor:
            return Tensor(np.where(x.data >= 0, 1.0, -1.0).astype(np.float32))

    model = Sequential(BatchNorm(), Sign(), Flatten(), FullyConnected(3, rng=np.random.default_rng(0)))
    model.build((2, 3, 3))
    traces = trace(model, np.random.default_rng(1).standard_normal((2, 3, 3)).astype(np.float32))
    assert [t.stages[0].kind for t in traces] == ["float", "bits", "float", "float"]
    assert "computed by the layer itself" in traces[0].description
    with pytest.raises(Exception, match="only binary layers"):
        explain(model, np.zeros((2, 3, 3), np.float32), 0, [0])


# --- good requests ------------------------------------------------------------------------
def test_model_lists_layers_and_sizes(server):
    status, answer = call(server, "GET", "/api/model")
    assert status == 200
    assert [layer["type"] for layer in answer["layers"]] == [
        "Convolution",
        "Activation",
        "Pooling",
        "PackedConvolution",
        "Flatten",
        "PackedFullyConnected",
        "Activation",
        "FullyConnected",
    ]
    assert [layer["output_shape"] for layer in answer["layers"]][2:6] == [[64, 12, 12], [64, 4, 4], [1024], [1000]]
    assert answer["layers"][5]["arrays"]["weight_bits"] == [1000, 16]
    assert answer["layers"][5]["bytes"] == 1000 * 16 * 8 + 2 * 1000 * 4
    assert answer["classes"] == [str(k) for k in range(10)]


def test_digit_and_predict_answer_the_models_prediction(server, model):
    status, answer = call(server, "GET", "/api/digit?index=3")
    assert status == 200 and answer["index"] == 3 and answer["label"] == 0
    image = np.array(answer["image"], np.float32)
    np.testing.assert_array_equal(image, digit(server, 3))  # exact, not rounded
    status, prediction = predict_json(server, image)
    assert status == 200
    assert [(t["class"], t["probability"]) for t in prediction["top"]] == direct_top(model, image)
    assert prediction["predicted"] == prediction["top"][0]["class"]
    assert np.array_equal(np.array(prediction["input"]["values"], np.float32).reshape(28, 28), image)
    stages = {(layer["index"], stage["title"]): stage for layer in prediction["layers"] for stage in layer["stages"]}
    traces = trace(model, image[None])
    bits = stages[(3, traces[3].stages[0].title)]
    np.testing.assert_array_equal(decode_bits(bits), traces[3].stages[0].values)
    floats = stages[(0, "output")]
    np.testing.assert_allclose(
        np.array(floats["values"]).reshape(floats["shape"]), traces[0].stages[0].values, atol=5e-4
    )


def test_explain_endpoint(server, model):
    image = digit(server, 0)
    body = json.dumps({"image": image.tolist(), "layer": 3, "position": [8, 0, 3]}).encode()
    status, answer = call(server, "POST", "/api/explain", body, "application/json")
    assert status == 200
    direct = explain(model, image[None], 3, [8, 0, 3])
    assert (answer["popcount"], answer["dot"], answer["result"]) == (
        direct["popcount"],
        direct["dot"],
        direct["result"],
    )
    np.testing.assert_array_equal(decode_bits(answer["xor_bits"]), direct["xor_bits"])


def test_png_upload_equals_tinybnn_predict(server, tmp_path):
    """The prediction of the server on a PNG is that of the command line on the same file."""
    for index in (0, 4, 8):
        path = tmp_path / f"digit{index}.png"
        Image.fromarray(server.explorer.digits.images[index]).save(path)
        cli = subprocess.run(
            [sys.executable, "-m", "tinybnn.cli", "predict", "--json", str(path)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert cli.returncode == 0, cli.stderr
        expected = [(t["class"], t["probability"]) for t in json.loads(cli.stdout)["top"]]
        status, answer = call(server, "POST", "/api/predict", path.read_bytes(), "image/png")
        assert status == 200
        assert [(t["class"], t["probability"]) for t in answer["top"]] == expected


def test_fifty_concurrent_predictions(server, model):
    images = [digit(server, k) for k in range(10)]
    expected = [direct_top(model, image) for image in images]
    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(
            without_hanging(
                lambda: list(pool.map(lambda k: (k, predict_json(server, images[k % 10])), range(50))), seconds=300
            )
        )
    assert len(answers) == 50
    for k, (status, answer) in answers:
        assert status == 200
        assert [(t["class"], t["probability"]) for t in answer["top"]] == expected[k % 10]


def test_shipped_digits_are_the_first_test_digits(data_root):
    shipped = read_test_files(SHIPPED_DIGITS, "shipped")
    real = load_test_digits("mnist", data_root)
    assert len(real.labels) == 10_000 and len(shipped.labels) == 20
    np.testing.assert_array_equal(real.images[:20], shipped.images)
    np.testing.assert_array_equal(real.labels[:20], shipped.labels)


# --- bad requests -----------------------------------------------------------------------------
def png_bytes(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (width, height)).save(buffer, "PNG")
    return buffer.getvalue()


def bomb() -> bytes:
    """A small PNG that claims 16000x12000 pixels, above Pillow's decompression-bomb limit."""
    buffer = io.BytesIO()
    Image.new("1", (16000, 12000)).save(buffer, "PNG")
    return buffer.getvalue()


BOMB = bomb()
ZEROS = [[0.0] * 28 for _ in range(28)]
BAD = [
    ("not an image", "POST", "/api/predict", b"certainly not a PNG", "image/png", 400),
    ("an empty body", "POST", "/api/predict", b"", "image/png", 400),
    ("an image too large", "POST", "/api/predict", png_bytes(MAX_SIDE + 1, 1), "image/png", 413),
    ("bad JSON", "POST", "/api/predict", b"{image: [", "application/json", 400),
    ("JSON not an object", "POST", "/api/predict", b"[1, 2]", "application/json", 400),
    ("no image", "POST", "/api/predict", b"{}", "application/json", 400),
    ("wrong shape", "POST", "/api/predict", json.dumps({"image": ZEROS[:27]}).encode(), "application/json", 400),
    (
        "ragged",
        "POST",
        "/api/predict",
        json.dumps({"image": ZEROS[:27] + [[0.0] * 27]}).encode(),
        "application/json",
        400,
    ),
    ("strings", "POST", "/api/predict", json.dumps({"image": [["0"] * 28] * 28}).encode(), "application/json", 400),
    (
        "NaN",
        "POST",
        "/api/predict",
        json.dumps({"image": [[float("nan")] * 28] * 28}).encode(),
        "application/json",
        400,
    ),
    (
        "out of range",
        "POST",
        "/api/predict",
        json.dumps({"image": [[255.0] * 28] * 28}).encode(),
        "application/json",
        400,
    ),
    (
        "explain a float layer",
        "POST",
        "/api/explain",
        json.dumps({"image": ZEROS, "layer": 0, "position": [0, 0, 0]}).encode(),
        "application/json",
        400,
    ),
    (
        "explain outside the output",
        "POST",
        "/api/explain",
        json.dumps({"image": ZEROS, "layer": 3, "position": [64, 0, 0]}).encode(),
        "application/json",
        400,
    ),
    (
        "explain a bad layer",
        "POST",
        "/api/explain",
        json.dumps({"image": ZEROS, "layer": "3", "position": [0]}).encode(),
        "application/json",
        400,
    ),
    ("explain a PNG", "POST", "/api/explain", png_bytes(28, 28), "image/png", 415),
    (
        "a number too large",
        "POST",
        "/api/predict",
        ('{"image": [[1' + "0" * 400 + "]]}").encode(),
        "application/json",
        400,
    ),
    ("JSON nested too deep", "POST", "/api/predict", b"[" * 100_000 + b"]" * 100_000, "application/json", 400),
    (
        "explain layer true",
        "POST",
        "/api/explain",
        json.dumps({"image": ZEROS, "layer": True, "position": [0]}).encode(),
        "application/json",
        400,
    ),
    ("a decompression bomb", "POST", "/api/predict", BOMB, "image/png", 413),
    ("unknown path", "GET", "/etc/passwd", None, None, 404),
    ("path traversal", "GET", "/../tinybnn/explorer/server.py", None, None, 404),
    ("static folder", "GET", "/static/app.js", None, None, 404),
    ("GET on predict", "GET", "/api/predict", None, None, 405),
    ("POST on the page", "POST", "/", b"x", "text/plain", 405),
    ("DELETE", "DELETE", "/api/model", None, None, 405),
    ("unknown method", "BREW", "/api/model", None, None, 405),
    ("no index", "GET", "/api/digit", None, None, 400),
    ("bad index", "GET", "/api/digit?index=-1", None, None, 400),
    ("index out of range", "GET", "/api/digit?index=123456", None, None, 400),
    ("two indices", "GET", "/api/digit?index=1&index=2", None, None, 400),
    ("bad query", "GET", "/api/digit?index", None, None, 400),
    ("a superscript digit", "GET", "/api/digit?index=%C2%B2", None, None, 400),
]


@pytest.mark.parametrize("what, method, path, body, content_type, status", BAD, ids=[b[0] for b in BAD])
def test_bad_request_gets_a_json_4xx_and_the_server_keeps_serving(
    server, what, method, path, body, content_type, status
):
    got, answer = call(server, method, path, body, content_type)
    assert got == status and isinstance(answer["error"], str) and answer["error"]
    assert predict_json(server, digit(server, 0))[0] == 200


@pytest.mark.parametrize(
    "data, status",
    [
        (b"POST /api/predict HTTP/1.0\r\nContent-Type: image/png\r\n\r\n", 411),
        (b"POST /api/predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 411),
        (f"POST /api/predict HTTP/1.0\r\nContent-Length: {MAX_BODY + 1}\r\n\r\n".encode(), 413),
        (b"POST /api/predict HTTP/1.0\r\nContent-Length: lots\r\n\r\n", 400),
        ("POST /api/predict HTTP/1.0\r\nContent-Length: \u00b2\r\n\r\n".encode(), 400),
        (b"POST /api/predict HTTP/1.0\r\nContent-Length: 100\r\n\r\nshort", 400),
        (b"NONSENSE\r\n\r\n", 400),
    ],
    ids=["no length", "chunked", "too large", "bad length", "superscript length", "short body", "bad request line"],
)
def test_bad_raw_request_gets_a_json_4xx(server, data, status):
    got, answer = raw(server, data)
    assert got == status and answer["error"]
    assert predict_json(server, digit(server, 1))[0] == 200


# --- the command ----------------------------------------------------------------------------------
def test_serve_command_prints_its_url_and_stops_on_ctrl_c(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-m", "tinybnn.cli", "serve", "--port", "0"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=sigint_as_at_a_terminal,
    )
    try:
        line = without_hanging(process.stdout.readline, seconds=120)
        url = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert url, line
        connection = http.client.HTTPConnection("127.0.0.1", int(url.group(1)), timeout=60)
        connection.request("GET", "/")
        response = connection.getresponse()
        assert response.status == 200 and b'id="predicted-class"' in response.read()
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0
    assert err.strip().splitlines() == ["tinybnn serve: stopped"] and out == ""


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["serve", "missing.npz"], "missing.npz: no such model file"),
        (["serve", "--port", "70000"], "--port must lie in 0..65535"),
        (["serve", "--data", "no-such-folder"], "no such folder"),
    ],
)
def test_serve_command_refuses_bad_arguments_in_one_line(tmp_path, arguments, message):
    result = subprocess.run(
        [sys.executable, "-m", "tinybnn.cli", *arguments], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr


def test_serve_command_refuses_a_port_in_use(server, tmp_path):
    port = str(server.server_address[1])
    result = subprocess.run(
        [sys.executable, "-m", "tinybnn.cli", "serve", "--port", port],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and f"cannot listen on 127.0.0.1 port {port}" in result.stderr


# --- a real browser ----------------------------------------------------------------------------------
def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail(
            "the browser test needs Chromium: install it with "
            "`apt-get update && apt-get install -y chromium` (as root), then rerun"
        )
    return found


@pytest.mark.parametrize("index", [0, 8])
def test_browser_shows_the_models_prediction(server, model, index):
    """Headless Chromium runs the page's scripts on /?digit=N; the DOM shows the model's class."""
    url = f"http://127.0.0.1:{server.server_address[1]}/?digit={index}"
    with tempfile.TemporaryDirectory() as profile:
        result = subprocess.run(
            [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
            capture_output=True,
            text=True,
            timeout=180,
        )
    assert result.returncode == 0, result.stderr[-2000:]
    shown = re.search(r'<span id="predicted-class">([^<]*)</span>', result.stdout)
    assert shown, result.stdout[:2000]
    assert 'data-state="ready"' in result.stdout
    assert shown.group(1) == direct_top(model, digit(server, index))[0][0]
    assert "error:" not in result.stdout
    assert "K = C·KH·KW = 64·5·5 = 1600" in result.stdout  # the explanation of one binary output is shown
