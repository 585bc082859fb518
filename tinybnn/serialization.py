"""Model files: NumPy ``.npz`` archives with a JSON description, never pickle.

A model file holds

- ``__tinybnn__``: a uint8 array of UTF-8 JSON,
  ``{"format": "tinybnn-model", "version": 1, "kind": "float", "architecture":
  <describe(model)>, "input_shape": [C, H, W], "metadata": {...}}``;
- ``state/<name>``: every parameter and buffer of the network, by path
  (``state/4.weight``);
- optionally ``extra/<name>``: other arrays (a checkpoint's optimizer state).

Loading rebuilds the network from the description, builds it on the input
shape, and refuses (``ModelFileError``, naming the file and the array or
layer) anything that is not exactly that: a foreign file, a newer version,
an unknown layer, a missing, extra or misshapen array. Arrays are read with
``allow_pickle=False``, and files are written with :func:`atomic_write`.
"""
from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .architecture import construct, describe
from .errors import ModelFileError, TinyBNNError
from .fileio import atomic_write
from .layers import Module

FORMAT = "tinybnn-model"
VERSION = 1
HEADER = "__tinybnn__"


@dataclass
class ModelFile:
    """What :func:`load_model` returns: the network and what was stored beside it."""

    model: Module
    input_shape: tuple[int, ...]
    kind: str = "float"
    metadata: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, np.ndarray] = field(default_factory=dict)


def encode_header(header: dict[str, Any]) -> np.ndarray:
    return np.frombuffer(json.dumps(header, sort_keys=True).encode("utf-8"), dtype=np.uint8)


def save_model(path: str | Path, model: Module, input_shape: tuple[int, ...],
               metadata: dict[str, Any] | None = None, extra: dict[str, np.ndarray] | None = None,
               kind: str = "float", state: dict[str, np.ndarray] | None = None) -> Path:
    """Write ``model`` (built on ``input_shape``) to ``path`` atomically; return the path."""
    path = Path(path)
    header = {"format": FORMAT, "version": VERSION, "kind": kind, "architecture": describe(model),
              "input_shape": list(input_shape), "metadata": metadata or {}}
    arrays = {HEADER: encode_header(header)}
    state = model.state_dict() if state is None else state
    arrays.update((f"state/{name}", value) for name, value in state.items())
    arrays.update((f"extra/{name}", value) for name, value in (extra or {}).items())
    with atomic_write(path) as handle:
        np.savez(handle, **arrays)
    return path


def read_arrays(path: str | Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The header and every array of a model file, validated only as far as the format."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError, RuntimeError, NotImplementedError) as error:
        raise ModelFileError(f"{path}: not a tinybnn model file ({type(error).__name__}: {error})") from None
    except MemoryError:
        raise ModelFileError(f"{path}: an array claims more memory than there is; the file is damaged") from None
    if HEADER not in arrays:
        raise ModelFileError(f"{path}: not a tinybnn model file (no {HEADER} entry)")
    raw = arrays.pop(HEADER)
    try:
        if raw.dtype != np.uint8 or raw.ndim != 1:
            raise ValueError(f"header array has dtype {raw.dtype} and shape {raw.shape}")
        header = json.loads(raw.tobytes().decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise ModelFileError(f"{path}: damaged header ({error})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not a tinybnn model file (format {header.get('format')!r})"
                             if isinstance(header, dict) else f"{path}: damaged header")
    version = header.get("version")
    if not isinstance(version, int) or version > VERSION or version < 1:
        raise ModelFileError(
            f"{path}: format version {version!r} is newer than this tinybnn reads ({VERSION}); "
            "upgrade tinybnn"
        )
    return header, arrays


def load_model(path: str | Path, kind: str | None = None) -> ModelFile:
    """Load a model file; with ``kind`` given ("float"), refuse files of another kind."""
    path = Path(path)
    header, arrays = read_arrays(path)
    stored_kind = header.get("kind", "float")
    if kind is not None and stored_kind != kind:
        raise ModelFileError(f"{path}: this is a {stored_kind} model file, a {kind} one is needed")
    input_shape = header.get("input_shape")
    if (not isinstance(input_shape, list) or not input_shape
            or not all(isinstance(n, int) and 0 < n <= 1 << 16 for n in input_shape)):
        raise ModelFileError(f"{path}: input_shape {input_shape!r} is not a list of positive sizes")
    try:
        model = construct(header.get("architecture"))
        model.build(tuple(input_shape))
    except ModelFileError as error:
        raise ModelFileError(f"{path}: {error}") from None
    except TinyBNNError as error:
        raise ModelFileError(f"{path}: the architecture does not fit its input shape: {error}") from None
    state = {name[len("state/"):]: value for name, value in arrays.items() if name.startswith("state/")}
    extra = {name[len("extra/"):]: value for name, value in arrays.items() if name.startswith("extra/")}
    unknown = sorted(name for name in arrays if not name.startswith(("state/", "extra/")))
    if unknown:
        raise ModelFileError(f"{path}: unexpected arrays {', '.join(unknown)}")
    try:
        model.load_state_dict(state)
    except TinyBNNError as error:
        raise ModelFileError(f"{path}: {error}") from None
    metadata = header.get("metadata") if isinstance(header.get("metadata"), dict) else {}
    return ModelFile(model=model, input_shape=tuple(input_shape), kind=stored_kind,
                     metadata=metadata, extra=extra)
