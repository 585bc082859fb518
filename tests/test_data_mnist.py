"""Dataset loading: the search order, downloads into the cache, checks, and the real files.

Synthetic tests build tiny datasets with write_idx and "download" them from
file:// mirrors (and a refused port for the offline case): no internet.
Real-data tests use the data_root / mnist_dir / fashion_dir fixtures.
"""

import dataclasses
import gzip
import hashlib
import re
from pathlib import Path

import numpy as np
import pytest

import tinybnn
import tinybnn.data.mnist as mnist_module
from tinybnn.data import (
    DATASETS,
    FILES,
    Dataset,
    DatasetSpec,
    default_cache_dir,
    load_dataset,
    load_folder,
    locate_dataset,
    md5_of_file,
    read_idx,
    to_float_nchw,
    write_idx,
)
from tinybnn.errors import ArgumentError, DataFileError, ShapeError

OFFLINE = "http://127.0.0.1:1/"  # a refused port: "no network", instantly


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch, tmp_path):
    """No test sees the caller's $TINYBNN_DATA or writes into the checkout's datasets/."""
    monkeypatch.delenv("TINYBNN_DATA", raising=False)
    monkeypatch.setenv("TINYBNN_CACHE", str(tmp_path / "default-cache"))


def make_folder(folder: Path, n_train=20, n_test=10, seed=0, compress=True, **override) -> Path:
    """Write a small valid dataset into ``folder``; ``override`` replaces arrays by file stem."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": np.arange(n_train, dtype=np.uint8) % 10,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": np.arange(n_test, dtype=np.uint8)[::-1] % 10,
    }
    arrays.update(override)
    folder.mkdir(parents=True, exist_ok=True)
    for stem, array in arrays.items():
        write_idx(folder / (stem + ".gz" if compress else stem), array)
    return folder


def spec_for_mirror(mirror_folder: Path, *mirrors: str, name="toy") -> DatasetSpec:
    """A dataset whose files and md5 sums are the ones in ``mirror_folder``."""
    md5 = {f"{stem}.gz": md5_of_file(mirror_folder / f"{stem}.gz") for stem in FILES}
    urls = mirrors or (mirror_folder.as_uri() + "/",)
    return DatasetSpec(name=name, mirrors=tuple(urls), md5=md5, folders=(name,))


# --- where the files are looked for -------------------------------------------------


def test_data_dir_holding_the_files(tmp_path):
    folder = make_folder(tmp_path / "anything")
    data = load_dataset("mnist", folder, download=False)
    assert data.source_dir == folder
    assert data.train_images.shape == (20, 28, 28) and data.train_images.dtype == np.uint8
    assert data.test_images.shape == (10, 28, 28) and data.test_images.dtype == np.uint8
    assert data.train_labels.dtype == np.int64 and data.test_labels.dtype == np.int64
    np.testing.assert_array_equal(data.train_labels, np.arange(20) % 10)


@pytest.mark.parametrize("name, sub", [("mnist", "mnist"), ("mnist", "mnist-5k"), ("fashion-mnist", "fashion-mnist")])
def test_data_dir_with_a_subfolder_named_after_the_dataset(tmp_path, name, sub):
    make_folder(tmp_path / sub)
    assert load_dataset(name, tmp_path, download=False).source_dir == tmp_path / sub


def test_subfolder_order(tmp_path):
    make_folder(tmp_path, seed=1)  # files directly in the root too
    make_folder(tmp_path / "mnist-5k", seed=2)
    assert locate_dataset("mnist", tmp_path, download=False) == tmp_path / "mnist-5k"
    make_folder(tmp_path / "mnist", seed=3)
    assert locate_dataset("mnist", tmp_path, download=False) == tmp_path / "mnist"
    # Fashion-MNIST ignores the MNIST subfolders but takes the root's files.
    assert locate_dataset("fashion-mnist", tmp_path, download=False) == tmp_path


def test_raw_files_and_gz_preferred(tmp_path):
    make_folder(tmp_path, compress=False, n_train=7)
    assert load_dataset("mnist", tmp_path, download=False).train_labels.shape == (7,)
    make_folder(tmp_path, compress=True, n_train=9)
    assert load_dataset("mnist", tmp_path, download=False).train_labels.shape == (9,)


def test_environment_variable(tmp_path, monkeypatch):
    make_folder(tmp_path / "shared" / "mnist-5k")
    monkeypatch.setenv("TINYBNN_DATA", str(tmp_path / "shared"))
    assert locate_dataset("mnist", download=False) == tmp_path / "shared" / "mnist-5k"
    # An explicit data_dir wins over the environment.
    make_folder(tmp_path / "mine")
    assert locate_dataset("mnist", tmp_path / "mine", download=False) == tmp_path / "mine"


def test_environment_then_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYBNN_DATA", str(tmp_path / "empty"))
    make_folder(tmp_path / "cache" / "fashion-mnist")
    found = locate_dataset("fashion-mnist", cache_dir=tmp_path / "cache", download=False)
    assert found == tmp_path / "cache" / "fashion-mnist"


def test_cache_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYBNN_CACHE", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    make_folder(tmp_path / "c" / "mnist")
    assert locate_dataset("mnist", download=False) == tmp_path / "c" / "mnist"


def test_default_cache_is_the_checkouts_datasets_folder(monkeypatch):
    monkeypatch.delenv("TINYBNN_CACHE")
    root = Path(tinybnn.__file__).resolve().parent.parent
    assert (root / "datasets" / "README.md").is_file(), "these tests run from a checkout"
    assert default_cache_dir() == root / "datasets"


def test_default_cache_when_installed(tmp_path, monkeypatch):
    monkeypatch.delenv("TINYBNN_CACHE")
    site = tmp_path / "site-packages"
    (site / "datasets").mkdir(parents=True)  # another library's package, not ours
    (site / "datasets" / "__init__.py").write_text("")
    (site / "datasets" / "README.md").write_text("")
    monkeypatch.setattr(mnist_module, "__file__", str(site / "tinybnn" / "data" / "mnist.py"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "tinybnn"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "tinybnn"


def test_nothing_found_and_downloading_off(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYBNN_DATA", str(tmp_path / "env"))
    make_folder(tmp_path / "env" / "mnist")
    (tmp_path / "env" / "mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataFileError) as info:
        locate_dataset("mnist", cache_dir=tmp_path / "cache", download=False)
    message = str(info.value)
    for fragment in [
        "mnist: ",
        "t10k-images-idx3-ubyte.gz",
        str(tmp_path / "env" / "mnist-5k"),
        str(tmp_path / "cache" / "mnist"),
        "$TINYBNN_DATA",
        "downloading is off",
        f"{tmp_path / 'env' / 'mnist'} lacks t10k-labels-idx1-ubyte",
        f"Put the four files (gzip or raw) in {tmp_path / 'cache' / 'mnist'}",
    ]:
        assert fragment in message, message
    assert "\n" not in message


def test_explicit_folder_without_the_files(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFileError) as info:
        load_dataset("fashion-mnist", tmp_path / "empty", download=False)
    message = str(info.value)
    assert f"--data: {tmp_path / 'empty' / 'fashion-mnist'}, {tmp_path / 'empty'}" in message
    assert "train-images-idx3-ubyte.gz" in message


def test_explicit_folder_that_does_not_exist_is_a_typo_not_a_download(tmp_path):
    with pytest.raises(DataFileError, match="--data .*typo: no such folder"):
        load_dataset("fashion-mnist", tmp_path / "typo")
    assert not (tmp_path / "typo").exists()


def test_unknown_dataset_name():
    with pytest.raises(ArgumentError, match="unknown dataset 'cifar'; known: mnist, fashion-mnist"):
        load_dataset("cifar")


# --- downloading (from file:// mirrors; the refused port plays "no network") --------


def test_download_into_cache_then_reuse(tmp_path):
    mirror = make_folder(tmp_path / "mirror")
    spec = spec_for_mirror(mirror)
    messages = []
    data = load_dataset(spec, cache_dir=tmp_path / "cache", log=messages.append)
    assert data.source_dir == tmp_path / "cache" / "toy"
    assert len(messages) == 4 and all("downloading" in m for m in messages)
    assert sorted(p.name for p in data.source_dir.iterdir()) == sorted(f"{s}.gz" for s in FILES)
    again = load_dataset(spec, cache_dir=tmp_path / "cache", log=messages.append)
    assert len(messages) == 4  # found in the cache, nothing downloaded
    np.testing.assert_array_equal(again.train_images, data.train_images)


def test_download_into_explicit_folder(tmp_path):
    spec = spec_for_mirror(make_folder(tmp_path / "mirror"))
    (tmp_path / "mine").mkdir()
    assert load_dataset(spec, tmp_path / "mine").source_dir == tmp_path / "mine" / "toy"
    assert not (tmp_path / "default-cache").exists()


def test_download_falls_back_to_the_next_mirror(tmp_path):
    mirror = make_folder(tmp_path / "mirror")
    spec = spec_for_mirror(mirror, OFFLINE, mirror.as_uri() + "/")
    assert load_dataset(spec, cache_dir=tmp_path / "cache").train_labels.shape == (20,)


def test_download_only_what_is_missing(tmp_path):
    mirror = make_folder(tmp_path / "mirror")
    spec = spec_for_mirror(mirror)
    cache = make_folder(tmp_path / "cache" / "toy")
    (cache / "train-images-idx3-ubyte.gz").unlink()
    messages = []
    locate_dataset(spec, cache_dir=tmp_path / "cache", log=messages.append)
    assert len(messages) == 1 and "train-images-idx3-ubyte.gz" in messages[0]


def test_download_checksum_mismatch_leaves_nothing(tmp_path):
    mirror = make_folder(tmp_path / "mirror")
    spec = spec_for_mirror(mirror)
    spec = dataclasses.replace(spec, md5={**spec.md5, "t10k-images-idx3-ubyte.gz": "0" * 32})
    with pytest.raises(DataFileError) as info:
        load_dataset(spec, cache_dir=tmp_path / "cache")
    message = str(info.value)
    assert "downloading t10k-images-idx3-ubyte.gz failed" in message
    assert f"expected {'0' * 32}" in message
    assert not (tmp_path / "cache" / "toy" / "t10k-images-idx3-ubyte.gz").exists()
    assert not [p for p in (tmp_path / "cache" / "toy").iterdir() if p.name.startswith(".")]


def test_offline_error_says_where_to_put_the_files(tmp_path):
    spec = dataclasses.replace(DATASETS["mnist"], mirrors=(OFFLINE, OFFLINE + "mirror2/"))
    with pytest.raises(DataFileError) as info:
        load_dataset(spec, cache_dir=tmp_path / "cache", timeout=2)
    message = str(info.value)
    assert re.search(
        r"downloading train-images-idx3-ubyte.gz failed \(http://127.0.0.1:1/"
        r"train-images-idx3-ubyte.gz: connection refused; ",
        message,
    ), message
    assert f"Put the four files (gzip or raw) in {tmp_path / 'cache' / 'mnist'}" in message
    assert "connect to the network" in message
    assert list((tmp_path / "cache" / "mnist").iterdir()) == []


def test_registry():
    for spec in DATASETS.values():
        assert sorted(spec.md5) == sorted(f"{stem}.gz" for stem in FILES)
        assert all(re.fullmatch(r"[0-9a-f]{32}", md5) for md5 in spec.md5.values())
        assert all(url.endswith("/") for url in spec.mirrors)
        assert len(spec.class_names) == spec.num_classes == 10
    assert DATASETS["mnist"].mirrors[0] == "https://ossci-datasets.s3.amazonaws.com/mnist/"


def test_mnist_md5_table_matches_the_checkouts_datasets_readme():
    readme = (Path(tinybnn.__file__).resolve().parent.parent / "datasets" / "README.md").read_text()
    table = dict(re.findall(r"\| (\S+\.gz)\s*\| ([0-9a-f]{32}) \|", readme))
    assert table == dict(DATASETS["mnist"].md5)


# --- checks on what is loaded ---------------------------------------------------------


def test_image_and_label_counts_differ(tmp_path):
    make_folder(tmp_path, n_train=20, **{"train-labels-idx1-ubyte": np.zeros(19, np.uint8)})
    with pytest.raises(DataFileError) as info:
        load_folder("mnist", tmp_path)
    message = str(info.value)
    assert str(tmp_path / "train-images-idx3-ubyte.gz") in message
    assert str(tmp_path / "train-labels-idx1-ubyte.gz") in message
    assert "20 images" in message and "19 labels" in message


def test_label_out_of_range(tmp_path):
    labels = np.arange(10, dtype=np.uint8)
    labels[7] = 12
    make_folder(tmp_path, n_test=10, **{"t10k-labels-idx1-ubyte": labels})
    with pytest.raises(DataFileError, match=r"t10k-labels-idx1-ubyte.gz: label 12 at index 7 is outside 0..9"):
        load_folder("mnist", tmp_path)


@pytest.mark.parametrize(
    "images", [np.zeros((20, 28, 27), np.uint8), np.zeros((20, 784), np.uint8), np.zeros((20, 28, 28), np.int16)]
)
def test_wrong_image_shape_or_type(tmp_path, images):
    make_folder(tmp_path, **{"train-images-idx3-ubyte": images})
    with pytest.raises(DataFileError, match=r"train-images-idx3-ubyte.gz: expected ubyte images of shape"):
        load_folder("mnist", tmp_path)


def test_wrong_label_type(tmp_path):
    make_folder(tmp_path, **{"train-labels-idx1-ubyte": np.zeros((20, 1), np.uint8)})
    with pytest.raises(DataFileError, match=r"train-labels-idx1-ubyte.gz: expected ubyte labels"):
        load_folder("mnist", tmp_path)


def test_corrupt_file_in_the_folder(tmp_path):
    make_folder(tmp_path)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataFileError, match=re.escape(str(path))):
        load_dataset("mnist", tmp_path)


def test_load_folder_names_missing_files(tmp_path):
    with pytest.raises(DataFileError, match="missing train-images-idx3-ubyte"):
        load_folder("mnist", tmp_path)


def test_to_float_nchw():
    images = np.array([[[0, 51], [255, 128]]], dtype=np.uint8)
    out = to_float_nchw(images)
    assert out.dtype == np.float32 and out.shape == (1, 1, 2, 2)
    np.testing.assert_array_equal(out[0, 0], np.array([[0, 51], [255, 128]], np.float32) / np.float32(255))
    assert out.max() == 1.0 and out.min() == 0.0
    with pytest.raises(ShapeError):
        to_float_nchw(images[0])
    with pytest.raises(ShapeError):
        to_float_nchw(images.astype(np.float32))


def test_dataset_repr_is_short(tmp_path):
    text = repr(load_dataset("mnist", make_folder(tmp_path), download=False))
    assert text == f"Dataset('mnist', train=20, test=10, source_dir='{tmp_path}')"


# --- the real files (through the fixtures; CI sets TINYBNN_REQUIRE_DATA=1) --------


def test_real_mnist_5k(mnist_dir):
    data = load_dataset("mnist", mnist_dir, download=False)
    assert isinstance(data, Dataset)
    assert data.train_images.shape == (5000, 28, 28) and data.train_images.dtype == np.uint8
    assert data.test_images.shape == (10000, 28, 28) and data.test_images.dtype == np.uint8
    assert np.bincount(data.train_labels, minlength=10).tolist() == [500] * 10
    assert set(np.unique(data.test_labels)) == set(range(10))
    assert data.train_images.max() == 255 and data.train_images.min() == 0
    # The test set is the canonical one: its .gz files match the download md5s.
    for name in ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]:
        assert md5_of_file(mnist_dir / name) == DATASETS["mnist"].md5[name]


def test_real_mnist_found_from_the_data_root(data_root, monkeypatch, tmp_path):
    assert locate_dataset("mnist", data_root, download=False) == data_root / "mnist-5k"
    monkeypatch.setenv("TINYBNN_DATA", str(data_root))
    assert locate_dataset("mnist", cache_dir=tmp_path, download=False) == data_root / "mnist-5k"


@pytest.fixture(scope="module")
def fashion(fashion_dir):
    return load_dataset("fashion-mnist", fashion_dir, download=False)


def test_real_fashion_mnist(fashion):
    assert fashion.train_images.shape == (60000, 28, 28) and fashion.train_images.dtype == np.uint8
    assert fashion.test_images.shape == (10000, 28, 28)
    assert np.bincount(fashion.train_labels, minlength=10).tolist() == [6000] * 10
    assert np.bincount(fashion.test_labels, minlength=10).tolist() == [1000] * 10


# md5 of the decompressed Fashion-MNIST files (shared datasets README): writing
# back what we read must give the very same bytes.
FASHION_RAW_MD5 = {
    "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
    "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
    "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
}


def test_real_fashion_round_trips_byte_for_byte(fashion_dir, tmp_path):
    for stem, md5 in FASHION_RAW_MD5.items():
        out = write_idx(tmp_path / stem, read_idx(fashion_dir / f"{stem}.gz"))
        assert md5_of_file(out) == md5, stem
        assert hashlib.md5(gzip.decompress((fashion_dir / f"{stem}.gz").read_bytes())).hexdigest() == md5
