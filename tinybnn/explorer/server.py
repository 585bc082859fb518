"""``tinybnn serve``: the explorer's page and its JSON API, on the standard library's threaded HTTP server.

Routes (anything else is a 404, a known path with another method a 405)::

    GET  /, /index.html, /app.js, /style.css   the page (three files of the package, nothing else)
    GET  /api/model                            the layers, their output shapes and sizes
    GET  /api/digit?index=N                    test digit N: {"index", "label", "source", "image"}
    POST /api/predict                          a PNG or JPEG (any Content-Type but JSON), or
                                               JSON {"image": 28x28 numbers in [0, 1]}
    POST /api/explain                          JSON {"image": ..., "layer": L, "position": [f, i, j] or [h]}

``/api/predict`` answers the top-3 classes from the model's own forward pass
(the same numbers as ``tinybnn predict``: an uploaded image goes through
:func:`tinybnn.predict.load_image`, MNIST-style), the 28x28 input as the
model sees it, and every layer's stages from
:func:`tinybnn.explorer.model_trace.trace`: bits as base64 of
``numpy.packbits(bits, bitorder="little")`` (element k is bit k % 8 of byte
k // 8, 1 for +1) with their shape, floats rounded to 3 decimals. A JSON
image is taken as given (the model's input, like a test digit divided by
255) after checking its shape, that every value is a finite number, and
that it lies in [0, 1].

Every bad request gets a 4xx and ``{"error": "..."}``: a body without
Content-Length (411) or above :data:`MAX_BODY` (413, not read), bad JSON, a
wrong shape, not an image, an image over :data:`MAX_SIDE` pixels a side, a
bad query (400). A bug answers 500 with its message and prints its
traceback; the server keeps serving either way.

Requests run in threads. The forward pass and the trace run Numba kernels
that are parallel themselves (``prange``). With the OpenMP or TBB threading
layer, concurrent calls give the same answers, but where neither is
installed Numba falls back to its ``workqueue`` layer, which aborts the
whole process when two threads launch parallel kernels at once; so one
lock serializes the model's computation, and parsing, encoding and sending
are done outside it.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import sys
import tempfile
import threading
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BytesIO
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import ArgumentError, DataFileError, TinyBNNError
from ..predict import SHIPPED_MODEL, class_labels, load_image, probabilities
from ..serialization import ModelFile, load_model
from .digits import DigitSet, load_test_digits
from .model_trace import Stage, explain, layers_of, run_layer, trace

MAX_BODY = 4 << 20
"""Largest request body read, in bytes (a canvas drawing is a few KB, a 28x28 JSON array 20 KB)."""
MAX_SIDE = 4096
"""Largest width or height of an uploaded image, checked from its header before it is decoded."""
IMAGE_FORMATS = ("PNG", "JPEG")
WHOLE_NUMBER = re.compile(r"[0-9]{1,12}")  # ASCII digits only: str.isdigit() also takes "²", which int() refuses
STATIC = Path(__file__).with_name("static")
PAGES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
}
ROUTES = {
    "/api/model": "GET",
    "/api/digit": "GET",
    "/api/predict": "POST",
    "/api/explain": "POST",
    **dict.fromkeys(PAGES, "GET"),
}


class RequestError(Exception):
    """A request the server refuses: its HTTP status and the message for the JSON error."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


# --- encoding -------------------------------------------------------------------------
def encode_bits(bits: np.ndarray) -> dict[str, Any]:
    """Bits (bool, True = +1) as their shape and base64 of the bytes of packbits, little bit order."""
    packed = np.packbits(np.asarray(bits, bool).reshape(-1), bitorder="little")
    return {"kind": "bits", "shape": list(bits.shape), "bits": base64.b64encode(packed.tobytes()).decode("ascii")}


def encode_floats(values: np.ndarray, decimals: int | None = 3) -> dict[str, Any]:
    """Floats as their shape, min, max and values, flattened in C order (rounded unless decimals is None)."""
    flat = np.asarray(values, np.float64).reshape(-1)
    return {
        "kind": "float",
        "shape": list(values.shape),
        "min": float(flat.min()),
        "max": float(flat.max()),
        "values": (flat if decimals is None else np.round(flat, decimals)).tolist(),
    }


def encode_stage(stage: Stage) -> dict[str, Any]:
    encoded = encode_bits(stage.values) if stage.kind == "bits" else encode_floats(stage.values)
    return {"title": stage.title, "explainable": stage.explainable, **encoded}


# --- reading inputs -----------------------------------------------------------------------
def image_from_json(value: Any, shape: tuple[int, int]) -> np.ndarray:
    """A list of ``shape[0]`` lists of ``shape[1]`` finite numbers in [0, 1] as float32."""
    h, w = shape
    if not (
        isinstance(value, list) and len(value) == h and all(isinstance(row, list) and len(row) == w for row in value)
    ):
        raise RequestError(400, f"image must be a list of {h} rows of {w} numbers")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for row in value for v in row):
        raise RequestError(400, "image must hold numbers only")
    try:
        image = np.array(value, dtype=np.float64)
    except OverflowError:
        raise RequestError(400, "image holds a number too large for a float") from None
    if not np.isfinite(image).all():
        raise RequestError(400, "image holds a value that is not finite")
    if image.min() < 0 or image.max() > 1:
        raise RequestError(
            400, f"image values must lie in [0, 1] (a digit divided by 255), found {image.min():g}..{image.max():g}"
        )
    return image.astype(np.float32)


def image_from_upload(body: bytes) -> np.ndarray:
    """An uploaded PNG or JPEG as the MNIST-style (28, 28) image ``tinybnn predict`` makes of it."""
    try:
        with Image.open(BytesIO(body), formats=IMAGE_FORMATS) as opened:
            width, height = opened.size
    except Image.DecompressionBombError as error:
        raise RequestError(413, f"the image is too large ({error})") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise RequestError(
            400, "the body is not a PNG or JPEG image (send JSON with Content-Type: application/json for a 28x28 array)"
        ) from None
    if max(width, height) > MAX_SIDE:
        raise RequestError(413, f"the image is {width}x{height}; at most {MAX_SIDE} pixels a side")
    with tempfile.TemporaryDirectory(prefix="tinybnn-serve-") as folder:
        path = Path(folder) / "upload"
        path.write_bytes(body)
        try:
            return load_image(path)
        except DataFileError as error:
            raise RequestError(400, str(error).replace(str(path), "the uploaded image")) from None


def json_body(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise RequestError(400, f"bad JSON: {type(error).__name__}: {str(error)[:200]}") from None
    if not isinstance(value, dict):
        raise RequestError(400, f"the JSON body must be an object, got {type(value).__name__}")
    return value


# --- the application ------------------------------------------------------------------------
class Explorer:
    """The model, its class names, the test digits, and the answers of the API (no HTTP here)."""

    def __init__(self, loaded: ModelFile, name: str, digits: DigitSet):
        if tuple(loaded.input_shape) != (1, 28, 28):
            raise ArgumentError(f"{name}: takes input {loaded.input_shape}; the explorer shows 28x28 grey images")
        self.loaded = loaded
        self.model = loaded.model
        self.model.eval()
        self.name = name
        self.digits = digits
        self.lock = threading.Lock()
        with self.lock:
            logits = probabilities(self.model, np.zeros((1, 28, 28), np.float32))
        self.labels = class_labels(loaded.metadata, logits.shape[1])
        self.description = self.describe_model()

    def describe_model(self) -> dict[str, Any]:
        layers, x = [], np.zeros(self.loaded.input_shape, np.float32)
        for index, layer in enumerate(layers_of(self.model)):
            x = run_layer(layer, x)
            state = layer.state_dict()
            layers.append(
                {
                    "index": index,
                    "type": type(layer).__name__,
                    "config": layer.config(),
                    "output_shape": list(x.shape),
                    "arrays": {k: list(v.shape) for k, v in state.items()},
                    "bytes": int(sum(v.nbytes for v in state.values())),
                }
            )
        return {
            "file": self.name,
            "kind": self.loaded.kind,
            "input_shape": list(self.loaded.input_shape),
            "classes": self.labels,
            "layers": layers,
            "digits": {"count": int(len(self.digits.labels)), "source": self.digits.source},
        }

    def predict(self, image: np.ndarray) -> dict[str, Any]:
        with self.lock:
            probs = probabilities(self.model, image[None])[0]
            traces = trace(self.model, image[None])
        best = np.argsort(-probs, kind="stable")[:3]
        return {
            "predicted": self.labels[best[0]],
            "top": [{"class": self.labels[k], "probability": round(float(probs[k]), 6)} for k in best],
            "input": encode_floats(image, decimals=None),
            "layers": [
                {
                    "index": t.index,
                    "type": t.type,
                    "description": t.description,
                    "stages": [encode_stage(s) for s in t.stages],
                }
                for t in traces
            ],
        }

    def explain(self, image: np.ndarray, layer: Any, position: Any) -> dict[str, Any]:
        with self.lock:
            answer = explain(self.model, image[None], layer, position)
        for name in ("patch_bits", "filter_bits", "xor_bits"):
            answer[name] = encode_bits(answer[name])
        return {"layer": layer, "position": position, **answer}

    def digit(self, index: int) -> dict[str, Any]:
        image, label = self.digits.digit(index)
        return {
            "index": index,
            "label": label,
            "source": self.digits.source,
            "image": image.astype(np.float64).tolist(),
        }


# --- HTTP ----------------------------------------------------------------------------------
class ExplorerHandler(BaseHTTPRequestHandler):
    """One request: route it, answer JSON or a page, turn every refusal into a JSON error."""

    server: "ExplorerServer"
    timeout = 30  # seconds a client may take to send its request before the thread gives up

    def answer(self) -> None:
        method = self.command
        try:
            path = urlsplit(self.path).path
            if path not in ROUTES:
                raise RequestError(404, f"no such path: {path}")
            if ROUTES[path] != method:
                raise RequestError(405, f"{path} answers {ROUTES[path]}, not {method}")
            if path in PAGES:
                name, content_type = PAGES[path]
                self.send(200, self.server.pages[name], content_type)
            else:
                self.send_json(200, self.api(path))
        except RequestError as error:
            self.send_json(error.status, {"error": str(error)})
        except TinyBNNError as error:
            self.send_json(400, {"error": str(error)})
        except Exception as error:  # a bug: say so, keep serving
            traceback.print_exc(file=sys.stderr)
            self.send_json(500, {"error": f"internal error ({type(error).__name__}: {error})"})

    do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = answer

    def api(self, path: str) -> dict[str, Any]:
        explorer = self.server.explorer
        if path == "/api/model":
            return explorer.description
        if path == "/api/digit":
            return explorer.digit(self.query_index())
        body = self.read_body()
        is_json = self.headers.get("Content-Type", "").split(";")[0].strip().lower() == "application/json"
        if path == "/api/predict":
            if not is_json:
                return explorer.predict(image_from_upload(body))
            return explorer.predict(image_from_json(json_body(body).get("image"), (28, 28)))
        if not is_json:
            raise RequestError(415, "/api/explain takes JSON (Content-Type: application/json)")
        request = json_body(body)
        image = image_from_json(request.get("image"), (28, 28))
        return explorer.explain(image, request.get("layer"), request.get("position"))

    def query_index(self) -> int:
        try:
            query = parse_qs(urlsplit(self.path).query, strict_parsing=True)
        except ValueError:
            raise RequestError(400, "bad query string; expected ?index=N") from None
        values = query.get("index", [])
        if len(values) != 1 or not WHOLE_NUMBER.fullmatch(values[0]):
            raise RequestError(400, "expected one ?index=N with N a whole number")
        return int(values[0])

    def read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            raise RequestError(411, "send the body with a Content-Length, not chunked")
        length = self.headers.get("Content-Length")
        if length is None:
            raise RequestError(411, "a POST needs a Content-Length")
        if not WHOLE_NUMBER.fullmatch(length.strip()):
            raise RequestError(400, f"bad Content-Length {length[:40]!r}")
        size = int(length)
        if size > MAX_BODY:
            raise RequestError(413, f"the body is {size:,} bytes; at most {MAX_BODY:,}")
        body = self.rfile.read(size)
        if len(body) != size:
            raise RequestError(400, f"the body ended after {len(body):,} of {size:,} bytes")
        return body

    # --- answering ---
    def send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", "default-src 'self'; img-src 'self' data: blob:")
        if status >= 400:
            self.send_header("Connection", "close")  # the body may be unread
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, status: int, value: dict[str, Any]) -> None:
        self.send(status, json.dumps(value, allow_nan=False).encode("utf-8"), "application/json")

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own refusals (a malformed request line, an unknown method) as JSON errors too."""
        if code == HTTPStatus.NOT_IMPLEMENTED:  # a method no do_* handles: a wrong method
            code, message = HTTPStatus.METHOD_NOT_ALLOWED, f"method {self.command!r} not allowed"
        if not getattr(self, "command", None):
            self.command = ""
        if getattr(self, "request_version", "HTTP/0.9") == "HTTP/0.9":
            self.request_version = "HTTP/1.0"  # an unparsed request line: answer with a status line anyway
        try:
            self.send_json(int(code), {"error": message or HTTPStatus(code).phrase})
        except OSError:
            pass  # the client is gone

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the explorer prints its URL and nothing per request."""


class ExplorerServer(ThreadingHTTPServer):
    """A threaded HTTP server holding the :class:`Explorer` and the page's files."""

    daemon_threads = True

    def __init__(self, explorer: Explorer, host: str = "127.0.0.1", port: int = 8000):
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.explorer = explorer
        self.pages = {name: (STATIC / name).read_bytes() for name, _ in PAGES.values()}
        super().__init__((host, port), ExplorerHandler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        assert isinstance(host, str)  # an AF_INET or AF_INET6 address (bytes are AF_UNIX's)
        host = "localhost" if host in ("", "0.0.0.0", "::") else host
        return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def open_server(
    model_path: str | Path | None = None, host: str = "127.0.0.1", port: int = 8000, data_dir: str | Path | None = None
) -> ExplorerServer:
    """Load the model (the shipped binarized LeNet by default) and the digits, and bind the server."""
    if not (isinstance(port, int) and 0 <= port <= 65535):
        raise ArgumentError(f"--port must lie in 0..65535, got {port}")
    path = Path(model_path) if model_path is not None else SHIPPED_MODEL
    loaded = load_model(path)
    training = loaded.metadata.get("training")
    dataset = training.get("dataset") if isinstance(training, dict) else None
    digits = load_test_digits(dataset if dataset in ("mnist", "fashion-mnist") else "mnist", data_dir)
    explorer = Explorer(loaded, path.name, digits)
    try:
        return ExplorerServer(explorer, host, port)
    except OSError as error:
        raise ArgumentError(f"cannot listen on {host} port {port} ({error.strerror or error})") from None


def serve(
    model_path: str | Path | None = None, host: str = "127.0.0.1", port: int = 8000, data_dir: str | Path | None = None
) -> int:
    """Run the explorer until Ctrl-C, which stops it with one line and status 0."""
    server = open_server(model_path, host, port, data_dir)
    try:
        print(f"tinybnn serve: {server.explorer.name} at {server.url} (Ctrl-C stops it)", flush=True)
        server.serve_forever()
    except KeyboardInterrupt:
        print("tinybnn serve: stopped", file=sys.stderr)
    finally:
        server.server_close()
    return 0
