"""Nothing is lost: no command writes over its own input or over a file it did not make.

convert and train refuse, before any work, an --out that is their input (in
any spelling: ./m.npz, an absolute path, a symbolic or hard link), an --out
that is not a tinybnn file of the kind they write (unless --force), and a
folder that does not exist or cannot be written; resuming continues the run
it resumes; killed writes' temporary files go on the next write.
"""

import contextlib
import io
import os
import re
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinybnn.checkpoint import save_checkpoint
from tinybnn.cli import main
from tinybnn.fileio import atomic_write
from tinybnn.layers import FullyConnected, QActivation, QFullyConnected, Sequential
from tinybnn.optim import Adam
from tinybnn.outputs import check_output, file_kind
from tinybnn.serialization import load_model, save_model
from tinybnn.training import TrainState, checkpoint_path, model_path_of

from .test_cli import tinybnn


def binary_model():
    return Sequential(QActivation(1), QFullyConnected(8, rng=np.random.default_rng(0))).build((70,))


@pytest.fixture
def trained(tmp_path):
    """A small float model file with a 1-bit layer (what convert takes), in its own folder."""
    path = tmp_path / "m.npz"
    save_model(path, binary_model(), (70,), metadata={"note": "trained"})
    return path


def run_cli(*args):
    """``tinybnn ARGS`` in this process: (status, stderr)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        status = main([str(a) for a in args])
    return status, err.getvalue()


def assert_one_line_error(capsys, *fragments):
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("tinybnn: error: "), err
    assert all(fragment in err for fragment in fragments), err
    return err


# --- convert ---------------------------------------------------------------------
@pytest.mark.parametrize("spelling", ["same", "dot", "absolute", "up-and-back", "symlink", "hardlink"])
@pytest.mark.parametrize("force", [False, True])
def test_convert_never_writes_over_its_input(trained, spelling, force, monkeypatch, capsys):
    monkeypatch.chdir(trained.parent)
    out = {
        "same": "m.npz",
        "dot": "./m.npz",
        "absolute": str(trained),
        "up-and-back": f"../{trained.parent.name}/m.npz",
        "symlink": "link.npz",
        "hardlink": "hard.npz",
    }[spelling]
    if spelling == "symlink":
        os.symlink("m.npz", "link.npz")
    if spelling == "hardlink":
        os.link("m.npz", "hard.npz")
    before = trained.read_bytes()
    assert main(["convert", "m.npz", "--out", out, *(["--force"] if force else [])]) == 2
    assert_one_line_error(capsys, "never writes over its own input")
    assert trained.read_bytes() == before


@settings(max_examples=30)
@given(content=st.binary(max_size=300) | st.sampled_from([b"", b"PK\x03\x04", b"notes\n"]))
def test_convert_refuses_to_overwrite_a_foreign_file(tmp_path_factory, content):
    folder = tmp_path_factory.mktemp("foreign")
    model = folder / "m.npz"
    save_model(model, binary_model(), (70,))
    foreign = folder / "notes.txt"
    foreign.write_bytes(content)
    status, err = run_cli("convert", model, "--out", foreign)
    assert status == 2 and err.count("\n") == 1
    assert "not a tinybnn converted model file (it is not a tinybnn file at all)" in err and "--force" in err
    assert foreign.read_bytes() == content


def test_convert_refuses_a_model_of_another_kind_as_out_unless_forced(trained, tmp_path, capsys):
    other = tmp_path / "other.npz"
    save_model(other, binary_model(), (70,), metadata={"note": "other"})
    before = other.read_bytes()
    assert main(["convert", str(trained), "--out", str(other)]) == 2
    assert_one_line_error(capsys, "it is a tinybnn trained model")
    assert other.read_bytes() == before
    assert main(["convert", str(trained), "--out", str(other), "--force"]) == 0
    assert load_model(other).kind == "binarized"
    assert main(["convert", str(trained), "--out", str(other)]) == 0  # a converted file: same kind, no --force


def test_convert_default_target_obeys_the_same_rule(trained, capsys):
    default = trained.with_name("binarized_m.npz")
    default.write_text("mine")
    assert main(["convert", str(trained)]) == 2
    assert_one_line_error(capsys, "binarized_m.npz", "--force")
    assert default.read_text() == "mine"


@pytest.mark.parametrize("where", ["folder", "missing-folder", "unwritable-folder", "dangling-link", "device"])
def test_convert_refuses_outs_that_are_not_files_it_can_write(trained, where, capsys):
    if where == "unwritable-folder" and not sys.platform.startswith("linux"):
        pytest.skip("/proc is Linux's")  # /proc refuses new files even to root, unlike chmod
    out = {
        "folder": trained.parent,
        "missing-folder": trained.parent / "no" / "x.npz",
        "unwritable-folder": Path("/proc/x.npz"),
        "dangling-link": trained.parent / "dangling.npz",
        "device": Path(os.devnull),
    }[where]
    if where == "dangling-link":
        os.symlink("nowhere.npz", out)
    for force in ([], ["--force"]):
        assert main(["convert", str(trained), "--out", str(out), *force]) == 2
        assert_one_line_error(capsys, f"--out {out}:")
    assert sorted(p.name for p in trained.parent.iterdir()) == sorted(
        ["m.npz"] + (["dangling.npz"] if where == "dangling-link" else [])
    )


# --- train: checked before the data is loaded ----------------------------------------
@pytest.mark.parametrize(
    "out, existing, message",
    [
        ("notes.txt", b"my notes", "--out notes.txt: exists and is not a tinybnn trained model file"),
        ("m.npz", b"PK\x05\x06" + bytes(18), "--out m.npz: exists and is not a tinybnn trained model file"),
        (
            "m.ckpt.npz",
            None,
            "--out m.ckpt.npz: exists and is not a tinybnn trained model file (it is a tinybnn checkpoint)",
        ),
        (
            "b.npz",
            None,
            "--out b.npz: exists and is not a tinybnn trained model file (it is a tinybnn converted model)",
        ),
        ("gone/m.npz", None, "the folder"),
        (".", None, "is a folder"),
    ],
)
def test_train_refuses_its_out_before_loading_data(tmp_path, out, existing, message):
    save_model(tmp_path / "b.npz", binary_model(), (70,), kind="binarized")
    model = binary_model()
    save_checkpoint(
        tmp_path / "m.ckpt.npz",
        model,
        (70,),
        Adam(model.parameters()),
        TrainState(epoch=1, rng_state=np.random.default_rng(0).bit_generator.state),
        {},
    )
    if existing is not None:
        (tmp_path / out).write_bytes(existing)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    # --data names no folder: the error about --out proves the check came first
    status, _, err = tinybnn("train", "--out", out, "--data", "no-such-data", cwd=tmp_path)
    assert status == 2 and err.count("\n") == 1 and message in err, err
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_train_refuses_a_foreign_file_where_its_checkpoint_goes(tmp_path):
    (tmp_path / "m.ckpt.npz").write_text("not a checkpoint")
    status, _, err = tinybnn("train", "--out", "m.npz", "--data", "no-such-data", cwd=tmp_path)
    assert status == 2 and "the checkpoint m.ckpt.npz: exists and is not a tinybnn checkpoint file" in err
    assert (tmp_path / "m.ckpt.npz").read_text() == "not a checkpoint"


def test_resume_refuses_a_checkpoint_whose_model_name_is_unknown(tmp_path):
    status, _, err = tinybnn("train", "--resume", "backup.npz", cwd=tmp_path)
    assert status == 2 and "--resume backup.npz: not named MODEL.ckpt.npz" in err and "--out" in err


def test_resume_continues_the_run_it_resumes(mnist_dir, tmp_path, monkeypatch, capsys):
    common = ["--data", str(mnist_dir.resolve())]
    monkeypatch.chdir(tmp_path)
    Path("model.npz").write_text("an unrelated file")
    assert (
        main(
            [
                "train",
                "--model",
                "lenet",
                *common,
                "--epochs",
                "1",
                "--train-limit",
                "200",
                "--test-limit",
                "100",
                "--out",
                "run.npz",
            ]
        )
        == 0
    )
    assert main(["train", "--resume", "run.ckpt.npz", "--epochs", "2", *common]) == 0
    assert "saved run.npz" in capsys.readouterr().out
    assert Path("model.npz").read_text() == "an unrelated file"
    assert sorted(os.listdir()) == ["model.npz", "run.ckpt.npz", "run.npz"]
    assert load_model("run.ckpt.npz").metadata["checkpoint"]["epoch"] == 2
    assert len(load_model("run.npz").metadata["history"]) == 2
    # the resumed checkpoint is an input: it can never become the model
    assert main(["train", "--resume", "run.ckpt.npz", "--epochs", "3", *common, "--out", "run.ckpt.npz"]) == 2
    assert_one_line_error(capsys, "never writes over its own input")


@given(name=st.text(st.characters(codec="ascii", exclude_characters="/\0"), min_size=1, max_size=12))
def test_model_path_of_undoes_checkpoint_path(name):
    if name in (".", ".."):
        return
    model = Path("folder") / name
    assert model_path_of(checkpoint_path(model)) == model


# --- what kind of file: the header only ------------------------------------------------
def test_file_kind_reads_the_header_and_allocates_no_array(tmp_path):
    path = tmp_path / "big.npz"
    save_model(path, Sequential(FullyConnected(2000, rng=None)).build((2000,)), (2000,))  # 16 MB of floats
    tracemalloc.start()
    try:
        assert file_kind(path) == "float"
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20
    data = bytearray(path.read_bytes())
    data[-30_000:-25_000] = bytes(5000)  # damage the arrays: a header-only check still knows the file
    path.write_bytes(bytes(data))
    assert file_kind(path) == "float"


def test_check_output_passes_a_file_of_the_same_kind(trained):
    assert check_output(trained, "float") == trained
    with pytest.raises(ValueError):
        check_output(trained, "binarized")


# --- killed writes' leftovers ----------------------------------------------------------
@settings(max_examples=40)
@given(
    names=st.lists(
        st.one_of(
            st.builds(lambda h: f".m.npz.{h}.tmp", st.text("0123456789abcdefABCDEFg", min_size=10, max_size=14)),
            st.sampled_from(
                [
                    ".m.npz.tmp",
                    "m.npz.0123456789ab.tmp",
                    ".m.npz.0123456789ab.tmp.keep",
                    ".other.npz.0123456789ab.tmp",
                    ".m.npz.0123456789ab.tmpx",
                    ".mXnpz.0123456789ab.tmp",
                ]
            ),
        ),
        max_size=6,
        unique=True,
    )
)
def test_a_successful_write_removes_exactly_its_own_stale_temporaries(tmp_path_factory, names):
    folder = tmp_path_factory.mktemp("stale")
    for name in names:
        (folder / name).write_text("left by a killed write")
    with atomic_write(folder / "m.npz") as handle:
        handle.write(b"new")
    stale = re.compile(r"\.m\.npz\.[0-9a-f]{12}\.tmp")
    assert sorted(os.listdir(folder)) == sorted(["m.npz", *(n for n in names if not stale.fullmatch(n))])
    assert (folder / "m.npz").read_bytes() == b"new"


def test_a_failed_write_leaves_the_stale_temporaries_alone(tmp_path):
    leftover = tmp_path / ".m.npz.0123456789ab.tmp"
    leftover.write_text("x")
    with pytest.raises(RuntimeError), atomic_write(tmp_path / "m.npz"):
        raise RuntimeError("disk on fire")
    assert sorted(os.listdir(tmp_path)) == [leftover.name]
