"""MNIST and Fashion-MNIST: find the four IDX files, download them if missing, load them.

Each dataset is four files, gzip (``.gz``) or raw (no extension)::

    train-images-idx3-ubyte   train-labels-idx1-ubyte
    t10k-images-idx3-ubyte    t10k-labels-idx1-ubyte

Where :func:`locate_dataset` looks, in this order, taking the first folder
that holds all four files:

1. ``data_dir`` (the command line's ``--data DIR``), if given: first its
   subfolders named after the dataset (``mnist/`` then ``mnist-5k/`` for
   MNIST, ``fashion-mnist/``), then ``data_dir`` itself. Nothing else is
   searched when ``data_dir`` is given; missing files are downloaded into
   ``data_dir/<name>/``.
2. ``$TINYBNN_DATA``, with the same rules.
3. the cache, ``<cache>/<name>/`` (see :func:`default_cache_dir`).
4. otherwise the files are downloaded into the cache, from the first mirror
   that answers, each checked against its md5 (see :mod:`.download`).

A folder that directly holds the four files is taken to be whichever dataset
was asked for. The md5 sums check downloads only: files you provide may be
recompressed (Debian's Fashion-MNIST is), but every file is still fully
validated as IDX, and images and labels are checked against each other.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Union

import numpy as np

from tinybnn.data.download import DEFAULT_TIMEOUT, DownloadError, fetch
from tinybnn.data.idx import read_idx
from tinybnn.errors import ArgumentError, DataFileError, ShapeError

PathLike = Union[str, "os.PathLike[str]"]

#: The four files of a dataset, without the ``.gz`` extension.
TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"
TEST_IMAGES = "t10k-images-idx3-ubyte"
TEST_LABELS = "t10k-labels-idx1-ubyte"
FILES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)


@dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset comes from and what it must look like.

    ``mirrors`` are base URLs (ending in ``/``) tried in order; ``md5`` maps
    each downloaded ``.gz`` file name to its md5; ``folders`` are the
    subfolder names looked for inside a data folder.
    """

    name: str
    mirrors: tuple[str, ...]
    md5: Mapping[str, str]
    folders: tuple[str, ...]
    image_shape: tuple[int, int] = (28, 28)
    num_classes: int = 10
    class_names: tuple[str, ...] = ()


DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        name="mnist",
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
        md5={
            "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        },
        folders=("mnist", "mnist-5k"),
        class_names=tuple(str(digit) for digit in range(10)),
    ),
    "fashion-mnist": DatasetSpec(
        name="fashion-mnist",
        mirrors=(
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        ),
        md5={
            "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
        },
        folders=("fashion-mnist",),
        class_names=(
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
    ),
}


@dataclass(frozen=True)
class Dataset:
    """A loaded dataset: images uint8 (N, 28, 28) in 0..255, labels int64 (N,) in 0..9."""

    name: str
    source_dir: Path
    train_images: np.ndarray = field(repr=False)
    train_labels: np.ndarray = field(repr=False)
    test_images: np.ndarray = field(repr=False)
    test_labels: np.ndarray = field(repr=False)

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}, train={len(self.train_labels):,}, "
            f"test={len(self.test_labels):,}, source_dir={str(self.source_dir)!r})"
        )


def to_float_nchw(images: np.ndarray) -> np.ndarray:
    """uint8 images (N, H, W) -> float32 (N, 1, H, W) scaled to [0, 1] (divided by 255).

    The result takes four times the memory of the images: 60,000 28x28
    images take 188 MB as float32.
    """
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise ShapeError(f"to_float_nchw expects uint8 images of shape (N, H, W), got {images.dtype} {images.shape}")
    return np.divide(images[:, None, :, :], np.float32(255), dtype=np.float32)


def default_cache_dir() -> Path:
    """The folder downloads go to when no ``data_dir`` is given.

    ``$TINYBNN_CACHE`` if set; else the checkout's ``datasets/`` folder when
    tinybnn runs from a source checkout (recognised by ``datasets/README.md``
    beside the ``tinybnn/`` package, that folder not being a Python package);
    else ``$XDG_CACHE_HOME/tinybnn`` or
    ``~/.cache/tinybnn`` for an installed package. A dataset lives in
    ``<cache>/<name>/``.
    """
    override = os.environ.get("TINYBNN_CACHE")
    if override:
        return Path(override)
    checkout = Path(__file__).resolve().parents[2] / "datasets"
    # In site-packages, a datasets/ beside tinybnn/ is another library (a package).
    if (checkout / "README.md").is_file() and not (checkout / "__init__.py").exists():
        return checkout
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "tinybnn"


def get_spec(name: str | DatasetSpec) -> DatasetSpec:
    """The :class:`DatasetSpec` registered under ``name`` (a spec is returned as is)."""
    if isinstance(name, DatasetSpec):
        return name
    try:
        return DATASETS[name]
    except KeyError:
        raise ArgumentError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}") from None


def find_files(folder: PathLike) -> dict[str, Path]:
    """The dataset files present in ``folder``: file stem -> path (``.gz`` preferred over raw)."""
    folder = Path(folder)
    found = {}
    for stem in FILES:
        for candidate in (folder / f"{stem}.gz", folder / stem):
            if os.path.isfile(candidate):  # False, not an exception, for unreadable folders
                found[stem] = candidate
                break
    return found


def _candidates(root: Path, spec: DatasetSpec) -> list[Path]:
    """``root/<name>/``, ``root/<other folder names>/``, then ``root`` itself."""
    names = dict.fromkeys((spec.name,) + tuple(spec.folders))
    return [root / sub for sub in names] + [root]


def locate_dataset(
    name: str | DatasetSpec,
    data_dir: PathLike | None = None,
    *,
    download: bool = True,
    cache_dir: PathLike | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    log: Callable[[str], None] | None = None,
) -> Path:
    """The folder holding all four files of the dataset, downloading them if needed.

    Search order: see the module docstring. ``log`` (e.g. ``print``) is told
    about each download. Raises :class:`~tinybnn.errors.DataFileError` when
    the files are nowhere and cannot be downloaded, naming the folders
    searched, the files expected and where to put them.
    """
    spec = get_spec(name)
    if data_dir is not None:
        if not Path(data_dir).is_dir():
            raise DataFileError(
                f"--data {data_dir}: no such folder (give the folder holding the "
                f"{spec.name} files, or create it to download them there)"
            )
        groups = [("--data", _candidates(Path(data_dir), spec))]
        target = Path(data_dir) / spec.name
        where = f"Put the four files (gzip or raw) in {target.absolute()} or {Path(data_dir).absolute()}"
    else:
        cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        target = cache / spec.name
        env = os.environ.get("TINYBNN_DATA")
        groups = [("$TINYBNN_DATA", _candidates(Path(env), spec))] if env else []
        groups.append(("cache", [target]))
        where = (
            f"Put the four files (gzip or raw) in {target.absolute()}, or in a folder "
            f"(or its {spec.name}/ subfolder) given by --data DIR or $TINYBNN_DATA"
        )
    searched = []
    partial = ""
    for label, folders in groups:
        for folder in folders:
            found = find_files(folder)
            if len(found) == len(FILES):
                return folder
            if found and not partial:
                missing = [stem for stem in FILES if stem not in found]
                partial = f"; {folder.absolute()} lacks {', '.join(missing)}"
        searched.append(f"{label}: {', '.join(str(f.absolute()) for f in folders)}")

    expected = ", ".join(f"{stem}.gz" for stem in FILES)
    intro = f"{spec.name}: {expected} not found (searched {'; '.join(searched)}{partial})"
    if not download:
        raise DataFileError(f"{intro} and downloading is off. {where}, or allow downloading.")
    _download_missing(spec, target, timeout, log, intro, where)
    return target


def _download_missing(
    spec: DatasetSpec, target: Path, timeout: float, log: Callable[[str], None] | None, intro: str, where: str
) -> None:
    present = find_files(target)
    for stem in FILES:
        if stem in present:
            continue
        filename = f"{stem}.gz"
        reasons = []
        for mirror in spec.mirrors:
            url = mirror + filename
            if log is not None:
                log(f"downloading {url} to {target.absolute()}")
            try:
                fetch(url, target / filename, spec.md5[filename], timeout=timeout)
                break
            except DownloadError as error:
                reasons.append(f"{url}: {error.reason}")
        else:
            raise DataFileError(
                f"{intro} and downloading {filename} failed ({'; '.join(reasons)}). "
                f"{where}, or connect to the network and try again."
            )


#: the largest payload a data set's file may hold (256 MiB, about 340,000 images of 28x28;
#: MNIST's training images are 47 MB), so that a small gzip file whose header honestly
#: declares gigabytes is refused before it is decompressed
MAX_FILE_BYTES = 1 << 28


def _check_pair(spec: DatasetSpec, images: np.ndarray, labels: np.ndarray, image_path: Path, label_path: Path) -> None:
    if images.dtype != np.uint8 or images.shape[1:] != spec.image_shape or images.ndim != 3:
        h, w = spec.image_shape
        raise DataFileError(
            f"{image_path.absolute()}: expected ubyte images of shape (N, {h}, {w}), "
            f"found {images.dtype} of shape {images.shape}"
        )
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise DataFileError(
            f"{label_path.absolute()}: expected ubyte labels of shape (N,), "
            f"found {labels.dtype} of shape {labels.shape}"
        )
    if len(images) == 0:
        raise DataFileError(
            f"{image_path.absolute()}: holds no images; a data set needs at least one for training and for testing"
        )
    if len(images) != len(labels):
        raise DataFileError(
            f"{image_path.absolute()} holds {len(images):,} images but {label_path.absolute()} "
            f"holds {len(labels):,} labels: they must be the same count"
        )
    if len(labels) and labels.max() >= spec.num_classes:
        index = int(np.argmax(labels >= spec.num_classes))
        raise DataFileError(
            f"{label_path.absolute()}: label {labels[index]} at index {index} is outside 0..{spec.num_classes - 1}"
        )


def load_folder(spec: str | DatasetSpec, folder: PathLike) -> Dataset:
    """Load the four files from ``folder`` (no searching, no downloading) and check them."""
    spec = get_spec(spec)
    folder = Path(folder)
    files = find_files(folder)
    missing = [stem for stem in FILES if stem not in files]
    if missing:
        raise DataFileError(f"{folder.absolute()}: missing {', '.join(missing)} (.gz or raw)")
    arrays = {stem: read_idx(path, max_bytes=MAX_FILE_BYTES) for stem, path in files.items()}
    for images, labels in ((TRAIN_IMAGES, TRAIN_LABELS), (TEST_IMAGES, TEST_LABELS)):
        _check_pair(spec, arrays[images], arrays[labels], files[images], files[labels])
    return Dataset(
        name=spec.name,
        source_dir=folder,
        train_images=arrays[TRAIN_IMAGES],
        train_labels=arrays[TRAIN_LABELS].astype(np.int64),
        test_images=arrays[TEST_IMAGES],
        test_labels=arrays[TEST_LABELS].astype(np.int64),
    )


def load_dataset(
    name: str | DatasetSpec,
    data_dir: PathLike | None = None,
    download: bool = True,
    *,
    cache_dir: PathLike | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    log: Callable[[str], None] | None = None,
) -> Dataset:
    """Find (or download) and load ``"mnist"`` or ``"fashion-mnist"``.

    Returns a :class:`Dataset`: images uint8 (N, 28, 28), labels int64 (N,)
    in 0..9; use :func:`to_float_nchw` for float32 (N, 1, 28, 28) in [0, 1].
    Search order and download: see :func:`locate_dataset`. Raises
    :class:`~tinybnn.errors.DataFileError` naming the file for anything
    missing, corrupt or inconsistent.
    """
    folder = locate_dataset(name, data_dir, download=download, cache_dir=cache_dir, timeout=timeout, log=log)
    return load_folder(name, folder)
