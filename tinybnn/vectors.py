"""Golden vectors for a device port: every layer's input and output, as raw files with a JSON manifest.

:func:`write_vectors` runs a model (trained or converted) on N images and
walks its top-level ``Sequential``, recording for layer ``i``:

* ``layerII_input.f32`` and ``layerII_output.f32``: the float32 tensors
  going in and out, C order, little-endian;
* for a layer that holds packed weights (:func:`records_bits`), the signs
  of its output also as packed bits, ``layerII_output.bits.u64``: a 4-D
  tensor (N, C, H, W) packs per pixel along the channels to
  (N, H, W, ceil(C / 64)), any other tensor is seen as (N, D) and packs to
  (N, ceil(D / 64)); bit ``t % 64`` of word ``t // 64``, least significant
  bit first, 1 for x >= 0 (so sign(0) = +1), unused bits 0. (The input's
  bits are not recorded: a fused layer may binarize something else than its
  raw input, e.g. a BatchNorm of it; a port packs ``layerII_input.f32`` the
  way the layer's config says);
* every array the layer holds (its parameters and buffers, e.g. the packed
  ``weight_bits``, ``scale``, ``shift``): ``layerII_array_NAME.f32`` /
  ``.u64`` / ...

``manifest.json`` lists, per layer, its type, its ``config()`` and every
file with its dtype, shape and (for bits) layout, so that a C or firmware
implementation can read the input of a layer, compute it, and compare with
the recorded output. :func:`compare_vectors` does that comparison for a
whole folder: bits and integers exactly, floats within
``|a - b| <= FLOAT_ATOL + FLOAT_RTOL |b|``; it names the first layer, file
and element that differ.

The hook: a layer is binary, and gets its signs recorded as bits, when
:func:`records_bits` says so: when it holds a ``weight_bits`` buffer (the
packed filters of every packed layer, whatever its class). Nothing else
here knows the layer types.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .autograd import Tensor, no_grad
from .errors import ArgumentError, DataFileError
from .gemm import pack_bits
from .gemm.bitconv import pack_channels
from .layers import Module, Sequential

FORMAT = "tinybnn-vectors"
VERSION = 1
FLOAT_RTOL = 1e-5
FLOAT_ATOL = 1e-5
BIT_ORDER = (
    "bit t % 64 of uint64 word t // 64, least significant bit first; 1 for x >= 0 (+1), 0 for -1; "
    "unused bits 0; little-endian"
)
SUFFIXES = {"float32": "f32", "float64": "f64", "uint64": "u64", "int64": "i64", "int32": "i32", "uint8": "u8"}
MAX_MANIFEST_BYTES = 16 << 20
_NAME = re.compile(r"^[A-Za-z0-9_.]+$")


def records_bits(layer: Module) -> bool:
    """The hook: does ``layer`` compute on packed bits? True when it holds a ``weight_bits`` buffer."""
    return "weight_bits" in getattr(layer, "buffer_names", ())


def pack_signs(x: np.ndarray) -> tuple[np.ndarray, str]:
    """The signs of ``x`` as packed bits and the layout's name (see the module docstring)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim == 4:
        return pack_channels(x), "(N, H, W, ceil(C / 64)): each pixel's channels"
    return pack_bits(x.reshape(x.shape[0], -1), axis=-1), "(N, ceil(D / 64)): each row, flattened"


def _layers(model: Module) -> list[Module]:
    return list(model) if isinstance(model, Sequential) else [model]


def _arrays_of(layer: Module) -> dict[str, np.ndarray]:
    arrays = {name: np.asarray(value) for name, value in layer.named_buffers()}
    arrays.update((name, np.asarray(parameter.data)) for name, parameter in layer.named_parameters())
    return arrays


class _Writer:
    """Writes raw arrays into a folder and keeps their manifest entries."""

    def __init__(self, folder: Path):
        self.folder = folder

    def write(self, stem: str, array: np.ndarray, **extra: Any) -> dict[str, Any]:
        array = np.ascontiguousarray(array)
        if array.dtype.name not in SUFFIXES:
            array = array.astype(np.float32)
        name = f"{stem}.{SUFFIXES[array.dtype.name]}"
        array.astype(array.dtype.newbyteorder("<"), copy=False).tofile(self.folder / name)
        return {"file": name, "dtype": array.dtype.name, "shape": list(array.shape), **extra}


def write_vectors(
    model: Module, images: np.ndarray, out: str | os.PathLike, labels=None, model_name: str = ""
) -> dict[str, Any]:
    """Run ``model`` on ``images`` (float32 N, C, H, W) and write the golden vectors to the new folder ``out``.

    ``out`` must not exist: the files are written into a temporary folder
    beside it, renamed to ``out`` at the end, so nothing is ever written over.
    Returns the manifest.
    """
    target = Path(out)
    if target.exists():
        raise ArgumentError(f"{target}: already exists; golden vectors go into a new folder")
    if not target.parent.is_dir():
        raise ArgumentError(f"{target.parent}: no such folder to create {target.name} in")
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
    temporary.mkdir()
    try:
        manifest = _record(
            model, np.ascontiguousarray(images, dtype=np.float32), _Writer(temporary), labels, model_name
        )
        (temporary / "manifest.json").write_text(json.dumps(manifest, indent=1))
        os.rename(temporary, target)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    return manifest


def _record(model: Module, images: np.ndarray, writer: _Writer, labels, model_name: str) -> dict[str, Any]:
    entries = []
    model.eval()
    x = images
    with no_grad():
        for index, layer in enumerate(_layers(model)):
            stem = f"layer{index:02d}"
            y = np.array(layer(Tensor(x)).data, dtype=np.float32)  # a copy: layers may reuse scratch buffers
            files = {"input": writer.write(f"{stem}_input", x), "output": writer.write(f"{stem}_output", y)}
            if records_bits(layer):
                bits, layout = pack_signs(y)
                files["output_bits"] = writer.write(f"{stem}_output.bits", bits, layout=layout)
            arrays = {name: writer.write(f"{stem}_array_{name}", value) for name, value in _arrays_of(layer).items()}
            entries.append(
                {
                    "index": index,
                    "type": type(layer).__name__,
                    "config": layer.config(),
                    "binary": records_bits(layer),
                    "files": files,
                    "arrays": arrays,
                }
            )
            x = y
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "model": model_name,
        "images": int(images.shape[0]),
        "bit_order": BIT_ORDER,
        "float_tolerance": {"rtol": FLOAT_RTOL, "atol": FLOAT_ATOL},
        "layers": entries,
    }
    if labels is not None:
        manifest["labels"] = [int(label) for label in labels]
    return manifest


# --- reading and comparing ---------------------------------------------------------------------
def read_manifest(folder: str | os.PathLike) -> dict[str, Any]:
    """The manifest of a golden-vector folder, checked (format, file names, dtypes, shapes)."""
    folder = Path(folder)
    path = folder / "manifest.json"
    if not path.is_file():
        raise DataFileError(f"{folder}: no manifest.json (not a golden-vector folder)")
    if path.stat().st_size > MAX_MANIFEST_BYTES:
        raise DataFileError(f"{path}: larger than {MAX_MANIFEST_BYTES} bytes, not a manifest")
    try:
        manifest = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataFileError(f"{path}: not JSON ({error})") from None
    if (
        not isinstance(manifest, dict)
        or manifest.get("format") != FORMAT
        or not isinstance(manifest.get("layers"), list)
    ):
        raise DataFileError(f"{path}: not a {FORMAT} manifest")
    for layer in manifest["layers"]:
        for entry in _entries(layer, path):
            _check_entry(entry, path)
    return manifest


def _entries(layer, path: Path) -> list[dict]:
    if not isinstance(layer, dict) or not isinstance(layer.get("files"), dict):
        raise DataFileError(f"{path}: a layer entry without files")
    return list(layer["files"].values()) + list(layer.get("arrays", {}).values())


def _check_entry(entry, path: Path) -> None:
    if (
        not isinstance(entry, dict)
        or not isinstance(entry.get("file"), str)
        or not _NAME.match(entry["file"])
        or entry["file"].startswith(".")
        or entry.get("dtype") not in SUFFIXES
        or not isinstance(entry.get("shape"), list)
        or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in entry["shape"])
    ):
        raise DataFileError(f"{path}: bad file entry {entry!r} (a plain file name, a dtype, a shape)")


def read_array(folder: Path, entry: dict) -> np.ndarray:
    """One raw file of a manifest entry, its size checked against dtype and shape before it is read."""
    path = folder / entry["file"]
    dtype = np.dtype(entry["dtype"]).newbyteorder("<")
    count = int(np.prod(entry["shape"], dtype=np.int64))
    if not path.is_file():
        raise DataFileError(f"{path}: missing")
    if path.stat().st_size != count * dtype.itemsize:
        raise DataFileError(
            f"{path}: {path.stat().st_size} bytes, expected {count * dtype.itemsize} for "
            f"{entry['dtype']} {tuple(entry['shape'])}"
        )
    return np.fromfile(path, dtype=dtype, count=count).reshape(entry["shape"])


@dataclass
class Difference:
    """The first difference between two golden-vector folders."""

    layer: int
    layer_type: str
    name: str
    message: str

    def __str__(self) -> str:
        return f"layer {self.layer} ({self.layer_type}) {self.name}: {self.message}"


def compare_vectors(expected_dir: str | os.PathLike, obtained_dir: str | os.PathLike) -> Difference | None:
    """Compare a device's dump (``obtained_dir``) with the golden vectors, layer by layer, file by file.

    The obtained folder has the same manifest layout (at least the files it
    names); a file it lacks is skipped, so a device may dump only the layers
    it implements. Returns the first :class:`Difference`, or ``None``.
    """
    expected_dir, obtained_dir = Path(expected_dir), Path(obtained_dir)
    expected, obtained = read_manifest(expected_dir), read_manifest(obtained_dir)
    theirs = {layer.get("index"): layer for layer in obtained["layers"]}
    for layer in expected["layers"]:
        other = theirs.get(layer["index"])
        if other is None:
            continue
        for name, entry in {**layer["files"], **layer.get("arrays", {})}.items():
            their_entry = {**other["files"], **other.get("arrays", {})}.get(name)
            if their_entry is None:
                continue
            difference = _first_difference(read_array(expected_dir, entry), read_array(obtained_dir, their_entry))
            if difference:
                return Difference(layer["index"], layer["type"], name, difference)
    return None


def _first_difference(expected: np.ndarray, obtained: np.ndarray) -> str | None:
    if expected.shape != obtained.shape or expected.dtype != obtained.dtype:
        return f"{obtained.dtype} {obtained.shape} where the golden file has {expected.dtype} {expected.shape}"
    if expected.dtype.kind == "f":
        bad = ~np.isclose(obtained, expected, rtol=FLOAT_RTOL, atol=FLOAT_ATOL, equal_nan=False)
    else:
        bad = obtained != expected
    if not bad.any():
        return None
    index = tuple(int(i) for i in np.argwhere(bad)[0])
    e, o = expected[index], obtained[index]
    values = (
        f"expected 0x{int(e):016x}, obtained 0x{int(o):016x}"
        if expected.dtype == np.uint64
        else f"expected {e.item()!r}, obtained {o.item()!r}"
    )
    return f"first difference at {list(index)}: {values} ({int(bad.sum())} of {bad.size} elements differ)"
