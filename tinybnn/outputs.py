"""Where a command may write: never over its own input, never over a file it did not make.

:func:`check_output` is called before a command does any work (before
training loads its data, before convert loads its model), so a run never
fails after an hour for want of a folder. It refuses, with an
``ArgumentError`` naming the option and the file:

- an output that is one of the command's inputs: the same path once
  resolved (``./m.npz`` and ``m.npz``, a symbolic link to it) or the same
  file (a hard link); ``--force`` does not change this;
- an output whose folder does not exist or cannot be written (tried by
  creating a nameless temporary file there);
- an output that exists and is a folder or not a regular file (a device,
  a pipe, a dangling link); ``--force`` does not change this either;
- an output that exists and is not a tinybnn file of the kind about to be
  written (a trained model, a converted model, a checkpoint), unless
  ``force``. Deciding this reads only the file's JSON header
  (:func:`tinybnn.serialization.read_header`), never its arrays.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Iterable

from .errors import ArgumentError, TinyBNNError
from .serialization import read_header

#: the kinds of file tinybnn writes, as :func:`file_kind` names them
KINDS = {"float": "trained model", "binarized": "converted model", "checkpoint": "checkpoint"}


def file_kind(path: str | Path) -> str | None:
    """ "float", "binarized" or "checkpoint" for a tinybnn file, None for anything else."""
    try:
        header = read_header(path)
    except TinyBNNError:
        return None
    kind, metadata = header.get("kind"), header.get("metadata")
    if kind == "float" and isinstance(metadata, dict) and isinstance(metadata.get("checkpoint"), dict):
        return "checkpoint"
    return kind if kind in ("float", "binarized") else None


def same_file(a: str | Path, b: str | Path) -> bool:
    """True if ``a`` and ``b`` name one file: the same resolved path, or the same inode."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def refuse_inputs(path: str | Path, inputs: Iterable[str | Path], option: str = "--out") -> Path:
    """Refuse (ArgumentError) an output ``path`` that is one of ``inputs`` (see :func:`same_file`)."""
    path = Path(path)
    for source in inputs:
        if same_file(path, source):
            raise ArgumentError(
                f"{option} {path}: is this command's input {source}; choose another name "
                "(tinybnn never writes over its own input)"
            )
    return path


def check_output(
    path: str | Path, kind: str, inputs: Iterable[str | Path] = (), force: bool = False, option: str = "--out"
) -> Path:
    """Refuse to write a ``kind`` file (see :data:`KINDS`) at ``path`` if that could lose data."""
    path = refuse_inputs(path, inputs, option)
    folder = path.absolute().parent
    if not folder.is_dir():
        raise ArgumentError(f"{option} {path}: the folder {folder} does not exist")
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise ArgumentError(
            f"{option} {path}: cannot write in the folder {folder} ({error.strerror or error})"
        ) from None
    if path.is_dir():
        raise ArgumentError(f"{option} {path}: is a folder; give a file name")
    if path.is_symlink() and not path.exists() or path.exists() and not path.is_file():
        raise ArgumentError(f"{option} {path}: exists and is not a regular file; choose another name")
    if path.exists() and not force:
        found = file_kind(path)
        if found != kind:
            what = f"a tinybnn {KINDS[found]}" if found else "not a tinybnn file at all"
            raise ArgumentError(
                f"{option} {path}: exists and is not a tinybnn {KINDS[kind]} file (it is {what}); "
                "choose another name, or overwrite it with --force"
            )
    return path
