"""Memory bombs: files whose headers or compressed payloads imply gigabytes are refused
from the command line with one line and exit 2, in a child process whose address
space is limited to 1 GiB (so that allocating what the file claims would crash it)."""

import gzip
import struct
import subprocess
import sys
import zipfile
import zlib

import numpy as np
import pytest
from PIL import Image, ImageDraw

from tinybnn.data.idx import write_idx
from tinybnn.predict import SHIPPED_MODEL
from tinybnn.serialization import read_archive, save_model, write_archive
from tinybnn.models import build_model

MEMORY_LIMIT = 1 << 30
CHILD = f"""
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, ({MEMORY_LIMIT}, {MEMORY_LIMIT}))
from tinybnn.cli import main
sys.exit(main(sys.argv[1:]))
"""
BOMB_BYTES = 3 << 29  # 1.5 GiB of zeros behind a few MB of deflate
CHUNK = bytes(1 << 22)


def run_limited(*args):
    """``tinybnn *args`` in a child limited to MEMORY_LIMIT bytes of address space."""
    done = subprocess.run([sys.executable, "-c", CHILD, *map(str, args)], capture_output=True, text=True, timeout=600)
    return done.returncode, done.stdout, done.stderr


def assert_one_line(status, err, *fragments):
    assert status == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tinybnn: error: "), err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


@pytest.fixture(scope="module")
def lenet_file(tmp_path_factory):
    model, shape = build_model("binary-lenet", rng=np.random.default_rng(0))
    return save_model(tmp_path_factory.mktemp("lenet") / "lenet.npz", model.build(shape), shape)


def forged(source, target, change):
    """``source`` with its header changed by ``change(header)``, the arrays kept."""
    header, arrays = read_archive(source)
    change(header)
    del header["arrays"]
    with open(target, "wb") as handle:
        write_archive(handle, header, arrays)
    return target


def first_layer(header):
    return header["architecture"]["config"]["layers"][0]["config"]


@pytest.mark.parametrize(
    "change, layer",
    [
        (lambda h: h.update(input_shape=[1, 65536, 65536]), "layer 10 (QFullyConnected)"),
        (lambda h: first_layer(h).update(num_filter=10**9), "layer 5 (QConvolution)"),
        (
            lambda h: h["architecture"]["config"]["layers"][-1]["config"].update(num_hidden=10**8),
            "layer 13 (FullyConnected)",
        ),
    ],
    ids=["input_shape", "num_filter", "num_hidden"],
)
@pytest.mark.parametrize("command", ["summary", "predict", "convert"])
def test_a_header_implying_gigabytes_is_refused_before_building(tmp_path, lenet_file, change, layer, command):
    path = forged(lenet_file, tmp_path / "bomb.npz", change)
    before = path.read_bytes()
    image = tmp_path / "digit.png"
    Image.new("L", (28, 28)).save(image)
    args = {"summary": [path], "predict": [path, image], "convert": [path]}[command]
    status, _, err = run_limited(command, *args)
    assert_one_line(status, err, str(path), "more than the limit of 2,147,483,648 (2 GiB)", layer)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["bomb.npz", "digit.png"]


def deflated_zeros_zip(target, header_member: bytes, npy_header: bytes, name="float32.npy"):
    """A model archive whose ``name`` member is ``npy_header`` then BOMB_BYTES zeros, deflated."""
    with zipfile.ZipFile(target, "w") as archive:
        archive.writestr(zipfile.ZipInfo("header.npy"), header_member, zipfile.ZIP_DEFLATED)
        info = zipfile.ZipInfo(name)
        info.compress_type = zipfile.ZIP_DEFLATED
        with archive.open(info, "w", force_zip64=True) as member:
            member.write(npy_header)
            for _ in range(BOMB_BYTES // len(CHUNK)):
                member.write(CHUNK)
    return target


def npy_header(count: int, dtype="<f4") -> bytes:
    text = repr({"descr": dtype, "fortran_order": False, "shape": (count,)}).encode()
    text += b" " * (63 - (len(text) + 10) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text


@pytest.fixture(scope="module")
def small_header(tmp_path_factory):
    """The header member of a model file holding one FullyConnected(2) on 3 inputs (8 floats)."""
    from tinybnn.layers import FullyConnected, Sequential

    path = save_model(
        tmp_path_factory.mktemp("small") / "small.npz",
        Sequential(FullyConnected(2, rng=np.random.default_rng(0))).build((3,)),
        (3,),
    )
    with zipfile.ZipFile(path) as archive:
        return archive.read("header.npy")


@pytest.mark.parametrize("claimed", [8, BOMB_BYTES // 4], ids=["honest-npy-header", "npy-header-claims-all"])
def test_a_zip_member_inflating_past_its_array_list_is_refused(tmp_path, small_header, claimed):
    path = deflated_zeros_zip(tmp_path / "zipbomb.npz", small_header, npy_header(claimed))
    assert path.stat().st_size < 10 << 20
    status, _, err = run_limited("summary", path)
    expected = (
        "holds more than the 32 bytes its npy header states"
        if claimed == 8
        else f"claims {4 * claimed:,} bytes, the header's array list gives it 32"
    )
    assert_one_line(status, err, str(path), expected, "damaged")


def gzip_of_zeros(target, header: bytes, count: int) -> None:
    """A gzip file of ``header`` then ``count`` zero bytes, built from repeated deflate blocks."""
    block = zlib.compressobj(9, zlib.DEFLATED, -15)
    repeated = block.compress(CHUNK) + block.flush(zlib.Z_FULL_FLUSH)  # the same bytes every time
    first = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = first.compress(header) + first.flush(zlib.Z_FULL_FLUSH)
    crc = zlib.crc32(header)
    for _ in range(count // len(CHUNK)):
        crc = zlib.crc32(CHUNK, crc)
    with open(target, "wb") as out:
        out.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + head)
        for _ in range(count // len(CHUNK)):
            out.write(repeated)
        out.write(zlib.compressobj(9, zlib.DEFLATED, -15).flush())
        out.write(struct.pack("<II", crc, (len(header) + count) & 0xFFFFFFFF))


def data_folder(tmp_path, images=10, labels=10):
    folder = tmp_path / "data"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for prefix in ("train", "t10k"):
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (images, 28, 28), dtype=np.uint8))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, labels, dtype=np.uint8))
    return folder


def idx_header(*dims) -> bytes:
    return bytes([0, 0, 0x08, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)


@pytest.mark.parametrize(
    "declared, expected",
    [
        ((10, 28, 28), "extra bytes after the data"),
        ((BOMB_BYTES // 784, 28, 28), "more than the limit of 268,435,456 bytes"),
    ],
    ids=["payload-past-header", "header-declares-gigabytes"],
)
def test_a_gzip_idx_bomb_is_refused_before_training(tmp_path, declared, expected):
    folder = data_folder(tmp_path)
    bomb = folder / "train-images-idx3-ubyte.gz"
    gzip_of_zeros(bomb, idx_header(*declared), BOMB_BYTES)
    assert bomb.stat().st_size < 4 << 20
    status, out, err = run_limited("train", "--data", folder, "--epochs", "1", "--out", tmp_path / "m.npz")
    assert_one_line(status, err, str(bomb), expected)
    assert "epoch" not in out and not (tmp_path / "m.npz").exists()


def test_the_gzip_of_zeros_helper_is_valid_gzip(tmp_path):
    gzip_of_zeros(tmp_path / "z.gz", b"abc", 2 * len(CHUNK))
    assert gzip.decompress((tmp_path / "z.gz").read_bytes()) == b"abc" + bytes(2 * len(CHUNK))


@pytest.mark.parametrize("which", ["train", "t10k"])
def test_a_data_set_with_no_images_is_refused_before_an_epoch(tmp_path, which):
    folder = data_folder(tmp_path)
    write_idx(folder / f"{which}-images-idx3-ubyte.gz", np.zeros((0, 28, 28), np.uint8))
    write_idx(folder / f"{which}-labels-idx1-ubyte.gz", np.zeros(0, np.uint8))
    status, out, err = run_limited("train", "--data", folder, "--epochs", "1", "--out", tmp_path / "m.npz")
    assert_one_line(status, err, f"{which}-images-idx3-ubyte.gz", "holds no images")
    assert "epoch" not in out


def png_bomb(path, side: int) -> None:
    """A grey PNG of side x side black pixels, a few hundred KB whatever the side."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = zlib.compressobj(9)
    row = bytes(side + 1)
    data = b"".join(rows.compress(row) for _ in range(side)) + rows.flush()
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", data)
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    "side, expected",
    [
        (30000, "decompression bomb"),  # Pillow refuses it while reading the header
        (5000, "declares 5000 x 5000 pixels, more than the limit of 16,777,216"),
    ],
)
def test_a_decompression_bomb_png_gets_one_line_and_the_others_are_classified(tmp_path, side, expected):
    bomb = tmp_path / "bomb.png"
    png_bomb(bomb, side)
    good = tmp_path / "seven.png"
    canvas = Image.new("L", (100, 100), 255)
    ImageDraw.Draw(canvas).line([(20, 20), (80, 20), (40, 90)], fill=0, width=10)
    canvas.save(good)
    status, out, err = run_limited("predict", SHIPPED_MODEL, bomb, good)
    assert status == 2
    assert out.strip().splitlines()[0].startswith(f"{good}: ")
    lines = err.strip().splitlines()
    assert len(lines) == 1 and str(bomb) in lines[0] and expected in lines[0] and "Traceback" not in err
