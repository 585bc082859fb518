"""Model files: ``.npz`` archives of plain arrays with a JSON description, never pickle.

A model file is a zip archive (NumPy's ``.npz`` layout, readable by
``np.load``) with one member per dtype plus a header:

- ``header.npy``: uint8 UTF-8 JSON (deflated)::

      {"format": "tinybnn-model", "version": 1, "kind": "float" | "binarized",
       "architecture": <describe(model)>, "input_shape": [C, H, W],
       "metadata": {...}, "arrays": [[name, dtype, shape], ...]}

- ``float32.npy``, ``uint64.npy``, ...: every array of that dtype, flattened
  and stored back to back in the order ``arrays`` lists them.

Array names are ``state/<path>`` for the network's parameters and buffers
(``state/4.weight``) and ``extra/<name>`` for anything else (a checkpoint's
optimizer state). One member per dtype rather than per array keeps the
overhead of a file at about 1 KB whatever the number of arrays, which matters
for the 200 KB of a binarized LeNet.

Loading checks the archive before it trusts it, in this order, and nothing
large is allocated before the step that bounds it:

1. the header member, read through a limit of 16 MiB, must be JSON that
   matches the written schema of :mod:`tinybnn.headers` field by field (the
   architecture against each layer's own ``config_schema``);
2. what the header implies is bounded before anything is built: from the
   architecture and ``input_shape`` alone, each layer's ``footprint``
   (:func:`tinybnn.architecture.footprint`) gives its parameters and
   buffers, its output and its largest temporary at batch 1, and their sum
   (with the input) must stay within :data:`MAX_NETWORK_BYTES` = 2 GiB (the
   binary LeNet needs 5.5 MB, 0.6 MB once converted; ResNet-18 for CIFAR 55 MB); the
   arrays the header lists may not hold more than twice the network's
   parameters and buffers, and four times that for an optimizer's state;
3. only known members and dtypes (so nothing can be unpickled); each
   member's npy header must state exactly the bytes the array list gives its
   dtype, and the member is read through a streaming limit of that size
   (the zip's own declared sizes are not trusted: a member that inflates
   past it is a damaged file, whatever its compression ratio);
4. every array's name and shape against the network built from the architecture.

Anything else raises :class:`ModelFileError` naming the file and the field,
array or layer. Files are written to a temporary name and renamed.
"""

from __future__ import annotations

import io
import json
import math
import tokenize
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from .architecture import construct, describe, footprint
from .errors import ModelFileError, TinyBNNError
from .fileio import atomic_write
from .headers import DTYPES, FORMAT, VERSION, check_header
from .layers import Module
from .layers.module import FLOAT32
from .schema import SchemaError

HEADER = "header"
MAX_HEADER_BYTES = 16 << 20
#: bytes a model file's network may need at batch 1: parameters, buffers, every
#: layer's output and the largest temporary (see the module docstring)
MAX_NETWORK_BYTES = 2 << 30
_CHUNK = 1 << 20  # bytes read from a member at a time


@dataclass
class ModelFile:
    """What :func:`load_model` returns: the network and what was stored beside it."""

    model: Module
    input_shape: tuple[int, ...]
    kind: str = "float"
    metadata: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, np.ndarray] = field(default_factory=dict)


# --- writing ------------------------------------------------------------------------
def _write_member(archive: zipfile.ZipFile, name: str, array: np.ndarray, compress: bool) -> None:
    info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with archive.open(info, "w", force_zip64=array.nbytes > (1 << 30)) as member:
        np.lib.format.write_array(member, array, allow_pickle=False)


def write_archive(handle: BinaryIO, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` (name -> array) and ``header`` as a model archive to an open file."""
    listing: list = []
    blobs: dict[str, list[np.ndarray]] = {}
    for name, value in arrays.items():
        value = np.asarray(value)
        dtype = value.dtype.name
        if dtype not in DTYPES:
            raise ModelFileError(f"array {name}: dtype {dtype} cannot be stored (allowed: {', '.join(DTYPES)})")
        listing.append([name, dtype, list(value.shape)])
        blobs.setdefault(dtype, []).append(value.reshape(-1))
    header = dict(header, arrays=listing)
    text = np.frombuffer(json.dumps(header, sort_keys=True).encode("utf-8"), dtype=np.uint8)
    with zipfile.ZipFile(handle, "w") as archive:
        _write_member(archive, HEADER, text, compress=True)
        for dtype, parts in blobs.items():
            _write_member(archive, dtype, np.concatenate(parts), compress=False)


def model_contents(
    model: Module,
    input_shape: tuple[int, ...],
    metadata: dict[str, Any] | None = None,
    extra: dict[str, np.ndarray] | None = None,
    kind: str = "float",
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The header (without its array list) and the named arrays of ``model``'s file."""
    header = {
        "format": FORMAT,
        "version": VERSION,
        "kind": kind,
        "architecture": describe(model),
        "input_shape": list(input_shape),
        "metadata": metadata or {},
    }
    arrays = {f"state/{name}": value for name, value in model.state_dict().items()}
    arrays.update((f"extra/{name}", value) for name, value in (extra or {}).items())
    return header, arrays


def save_model(
    path: str | Path,
    model: Module,
    input_shape: tuple[int, ...],
    metadata: dict[str, Any] | None = None,
    extra: dict[str, np.ndarray] | None = None,
    kind: str = "float",
) -> Path:
    """Write ``model`` (built on ``input_shape``) to ``path`` atomically; return the path."""
    path = Path(path)
    header, arrays = model_contents(model, input_shape, metadata, extra, kind)
    try:
        with atomic_write(path) as handle:
            write_archive(handle, header, arrays)
    except OSError as error:
        raise ModelFileError(f"{path}: cannot write the model file ({error.strerror or error})") from None
    return path


def predicted_size(
    model: Module, input_shape: tuple[int, ...], metadata: dict[str, Any] | None = None, kind: str = "binarized"
) -> int:
    """Bytes :func:`save_model` would write for ``model``, counted from the format's parts:
    the arrays' bytes, one npy header per member, the deflated JSON header, and the zip
    entries (30 + name bytes before each member, 46 + name in the directory, 22 at the end)."""
    header, arrays = model_contents(model, input_shape, metadata, kind=kind)
    header["arrays"] = [[name, np.asarray(a).dtype.name, list(np.shape(a))] for name, a in arrays.items()]
    text = np.frombuffer(json.dumps(header, sort_keys=True).encode("utf-8"), dtype=np.uint8)
    deflate = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
    header_member = deflate.compress(npy_header(text) + text.tobytes()) + deflate.flush()
    sizes = {f"{HEADER}.npy": len(header_member)}
    for dtype in {np.asarray(a).dtype.name for a in arrays.values()}:
        count = sum(np.size(a) for a in arrays.values() if np.asarray(a).dtype.name == dtype)
        sizes[f"{dtype}.npy"] = len(npy_header(np.empty(count, dtype))) + count * np.dtype(dtype).itemsize
    return sum(size + 30 + 46 + 2 * len(name) for name, size in sizes.items()) + 22


def npy_header(array: np.ndarray) -> bytes:
    """The npy header NumPy writes before ``array``'s data."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, np.lib.format.header_data_from_array_1_0(array))
    return buffer.getvalue()


# --- reading ------------------------------------------------------------------------
def _read_member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path, limit: int, expected: int | None = None
) -> np.ndarray:
    """One npy member, refusing anything but a 1-D array of an allowed dtype whose npy header
    states at most ``limit`` bytes (exactly ``expected`` when given), read through a
    streaming limit of that size: the zip's declared sizes are not trusted."""
    name = info.filename
    with archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(member)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(member)
        else:
            raise ValueError(f"npy format version {version}")
        if dtype.name not in DTYPES or dtype.byteorder == ">" or len(shape) != 1:
            raise ModelFileError(
                f"{path}: member {name} holds {dtype} of shape {shape}, "
                "expected a flat array of one of " + ", ".join(DTYPES)
            )
        nbytes = shape[0] * dtype.itemsize
        if nbytes > limit or (expected is not None and nbytes != expected):
            wanted = f"{expected:,}" if expected is not None else f"at most {limit:,}"
            raise ModelFileError(
                f"{path}: member {name} claims {nbytes:,} bytes, the header's array list "
                f"gives it {wanted}; the file is damaged"
            )
        data = bytearray()
        while len(data) < nbytes:
            chunk = member.read(min(_CHUNK, nbytes - len(data)))
            if not chunk:
                raise ModelFileError(
                    f"{path}: member {name} ends after {len(data):,} of its {nbytes:,} bytes; the file is truncated"
                )
            data += chunk
        if member.read(1):  # reaching the end also makes zipfile check the CRC
            raise ModelFileError(
                f"{path}: member {name} holds more than the {nbytes:,} bytes its npy header states; the file is damaged"
            )
    return np.frombuffer(data, dtype=dtype)


#: what reading a foreign or damaged archive raises (RuntimeError: an "encrypted" member;
#: SyntaxError / TokenError: a garbled npy header; KeyError: a member the directory lists but lacks)
DAMAGED = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    ValueError,
    OSError,
    EOFError,
    KeyError,
    NotImplementedError,
    RuntimeError,
    SyntaxError,
    tokenize.TokenError,
    zlib.error,
)


def read_archive(path: str | Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The header and every named array of a model file, checked as far as the format goes
    and bounded (see the module docstring) before any array is read."""
    path = Path(path)
    if path.is_dir():
        raise ModelFileError(f"{path}: is a folder, not a model file")
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    try:
        with zipfile.ZipFile(path) as archive:
            infos = {info.filename: info for info in archive.infolist()}
            if f"{HEADER}.npy" not in infos:
                raise ModelFileError(f"{path}: not a tinybnn model file (no {HEADER} entry)")
            raw = _read_member(archive, infos.pop(f"{HEADER}.npy"), path, MAX_HEADER_BYTES)
            header = _parse_header(raw, path)
            listing = [(name, dtype, tuple(shape)) for name, dtype, shape in header["arrays"]]
            sizes = _check_bounds(header, listing, path)
            blobs = {}
            for name, info in infos.items():
                dtype = name[:-4] if name.endswith(".npy") else ""
                if dtype not in DTYPES:
                    raise ModelFileError(f"{path}: unexpected member {name}")
                if dtype not in sizes:
                    raise ModelFileError(f"{path}: member {name} holds no array the header lists")
                blobs[dtype] = _read_member(archive, info, path, sizes[dtype], sizes[dtype])
    except DAMAGED as error:
        raise ModelFileError(
            f"{path}: not a tinybnn model file, or a damaged one ({type(error).__name__}: {error})"
        ) from None
    return header, _split(blobs, listing, path)


def read_header(path: str | Path) -> dict[str, Any]:
    """Only the JSON header of a model file, checked as :func:`read_archive` checks it.

    No array member is opened, so this allocates nothing beyond the header
    (at most ``MAX_HEADER_BYTES``): enough to tell what kind of file it is."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            try:
                info = archive.getinfo(f"{HEADER}.npy")
            except KeyError:
                raise ModelFileError(f"{path}: not a tinybnn model file (no {HEADER} entry)") from None
            return _parse_header(_read_member(archive, info, path, MAX_HEADER_BYTES), path)
    except DAMAGED as error:
        raise ModelFileError(
            f"{path}: not a tinybnn model file, or a damaged one ({type(error).__name__}: {error})"
        ) from None


def _parse_header(raw: np.ndarray, path: Path) -> dict[str, Any]:
    """The JSON header, checked against :data:`tinybnn.headers.HEADER`."""
    if raw.dtype != np.uint8:
        raise ModelFileError(f"{path}: damaged header (dtype {raw.dtype})")
    try:
        header = json.loads(raw.tobytes().decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as error:
        raise ModelFileError(f"{path}: damaged header ({type(error).__name__}: {str(error)[:80]})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        found = header.get("format") if isinstance(header, dict) else type(header).__name__
        raise ModelFileError(f"{path}: not a tinybnn model file (format {found!r:.60})")
    version = header.get("version")
    if isinstance(version, int) and not isinstance(version, bool) and version > VERSION:
        raise ModelFileError(
            f"{path}: format version {version} is newer than this tinybnn reads ({VERSION}); upgrade tinybnn"
        )
    try:
        check_header(header)
    except SchemaError as error:
        raise ModelFileError(f"{path}: {error}") from None
    return header


def _check_bounds(
    header: dict[str, Any], listing: list[tuple[str, str, tuple[int, ...]]], path: Path
) -> dict[str, int]:
    """Refuse a network that would need more than MAX_NETWORK_BYTES at batch 1, or an array
    list larger than that network's state allows; return the bytes listed per dtype."""
    input_shape = tuple(header["input_shape"])
    try:
        need = footprint(header["architecture"], input_shape)
    except ModelFileError as error:
        raise ModelFileError(
            f"{path}: the architecture does not fit its input shape: {error}"
            if not isinstance(error, SchemaError)
            else f"{path}: {error}"
        ) from None
    total = need.total + FLOAT32 * math.prod(input_shape)
    if total > MAX_NETWORK_BYTES:
        raise ModelFileError(
            f"{path}: the network needs {total:,} bytes at batch 1 (parameters and buffers {need.state:,}, "
            f"outputs {need.activations:,}, largest temporary {need.scratch:,}), more than the limit of "
            f"{MAX_NETWORK_BYTES:,} (2 GiB); the largest is {need.heaviest[1]} with {need.heaviest[0]:,} bytes"
        )
    names: set[str] = set()
    sizes: dict[str, int] = {}
    listed = {"state/": 0, "extra/": 0}
    for name, dtype, shape in listing:
        if name in names:
            raise ModelFileError(f"{path}: array {name} is listed twice")
        names.add(name)
        nbytes = math.prod(shape) * np.dtype(dtype).itemsize
        sizes[dtype] = sizes.get(dtype, 0) + nbytes
        prefix = "state/" if name.startswith("state/") else "extra/"
        listed[prefix] += nbytes
    # 2x: a float64 array where float32 belongs is named by the shape check later; 4x: Adam's two moments
    if listed["state/"] > 2 * need.state or listed["extra/"] > 4 * need.state:
        raise ModelFileError(
            f"{path}: the header lists {listed['state/']:,} bytes of network arrays and {listed['extra/']:,} "
            f"of others, far more than its architecture holds ({need.state:,} bytes of parameters and buffers)"
        )
    return sizes


def _split(blobs: dict[str, np.ndarray], listing: list, path: Path) -> dict[str, np.ndarray]:
    """Cut each dtype's blob into the listed arrays (whose lengths the members were read to)."""
    arrays, offsets = {}, dict.fromkeys(blobs, 0)
    for name, dtype, shape in listing:
        size = math.prod(shape)
        if dtype not in blobs or offsets[dtype] + size > len(blobs[dtype]):
            raise ModelFileError(f"{path}: array {name} ({dtype} {shape}) is not in the file: it is truncated")
        arrays[name] = blobs[dtype][offsets[dtype] : offsets[dtype] + size].reshape(shape)
        offsets[dtype] += size
    return arrays


def load_model(path: str | Path, kind: str | None = None) -> ModelFile:
    """Load a model file; with ``kind`` given ("float" or "binarized"), refuse the other kind."""
    path = Path(path)
    header, arrays = read_archive(path)
    stored_kind = header["kind"]
    if kind is not None and stored_kind != kind:
        hint = "convert it first: tinybnn convert" if kind == "binarized" else "use the model it was converted from"
        raise ModelFileError(f"{path}: this is a {stored_kind} model file, a {kind} one is needed ({hint})")
    input_shape = header["input_shape"]
    try:
        model = construct(header["architecture"])
        model.build(tuple(input_shape))
    except ModelFileError as error:
        raise ModelFileError(f"{path}: {error}") from None
    except TinyBNNError as error:
        raise ModelFileError(f"{path}: the architecture does not fit its input shape: {error}") from None
    state = {name[len("state/") :]: value for name, value in arrays.items() if name.startswith("state/")}
    extra = {name[len("extra/") :]: value for name, value in arrays.items() if name.startswith("extra/")}
    unknown = sorted(name for name in arrays if not name.startswith(("state/", "extra/")))
    if unknown:
        raise ModelFileError(f"{path}: unexpected arrays {', '.join(unknown)}")
    try:
        model.load_state_dict(state)
    except TinyBNNError as error:
        raise ModelFileError(f"{path}: {error}") from None
    metadata = header["metadata"]
    return ModelFile(
        model=model,
        input_shape=tuple(input_shape),
        kind=stored_kind,
        metadata=metadata,
        extra={name: value.copy() for name, value in extra.items()},
    )
