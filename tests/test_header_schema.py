"""Model files and checkpoints with forged or damaged header fields are refused on load by
the written schema (tinybnn/headers.py), with a ModelFileError naming the file and the field;
nothing else escapes, and what loads can be used (generator states restore)."""

import io
import json
import math
import subprocess
import sys
import zipfile
from dataclasses import asdict

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.strategies import header_mutations
from tinybnn.checkpoint import load_checkpoint, save_checkpoint
from tinybnn.errors import ModelFileError
from tinybnn.layers import BatchNorm, Dropout, FullyConnected, QFullyConnected, Sequential
from tinybnn.optim import SGD
from tinybnn.recipe import RunSettings
from tinybnn.serialization import load_model
from tinybnn.training import EpochResult, TrainState


def small_model():
    rng = np.random.default_rng(0)
    return Sequential(
        QFullyConnected(6, rng=rng), BatchNorm(), Dropout(0.2, rng=np.random.default_rng(1)), FullyConnected(3, rng=rng)
    ).build((10,))


@pytest.fixture(scope="module")
def checkpoint_bytes(tmp_path_factory):
    model = small_model()
    optimizer = SGD(model.parameters(), lr=0.1, momentum=0.9)
    rng = np.random.default_rng(7)
    history = [asdict(EpochResult(1, 0.5, 0.8, 0.6, 0.75, 1.5, 100.0, 0.1))]
    state = TrainState(epoch=1, rng_state=rng.bit_generator.state, history=history)
    path = tmp_path_factory.mktemp("ckpt") / "run.ckpt.npz"
    save_checkpoint(path, model, (10,), optimizer, state, asdict(RunSettings(epochs=2)))
    return path.read_bytes()


def header_of(data: bytes) -> dict:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return json.loads(np.load(io.BytesIO(archive.read("header.npy"))).tobytes())


def with_header(data: bytes, header: dict) -> bytes:
    """The same archive with its header member replaced by ``header`` (NaN written as NaN)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(buffer, "w") as target:
        for info in source.infolist():
            if info.filename == "header.npy":
                member = io.BytesIO()
                np.save(member, np.frombuffer(json.dumps(header).encode(), np.uint8))
                target.writestr("header.npy", member.getvalue(), zipfile.ZIP_DEFLATED)
            else:
                target.writestr(info, source.read(info.filename))
    return buffer.getvalue()


def checkpoint(header):
    return header["metadata"]["checkpoint"]


CASES = [
    (lambda h: checkpoint(h).update(epoch=-5), "metadata.checkpoint.epoch", "an integer in [0, 1000000], got -5"),
    (lambda h: checkpoint(h).update(epoch="3"), "metadata.checkpoint.epoch", "got '3'"),
    (lambda h: checkpoint(h).update(epoch=True), "metadata.checkpoint.epoch", "got True"),
    (lambda h: checkpoint(h).update(epoch=1.0), "metadata.checkpoint.epoch", "got 1.0"),
    (lambda h: checkpoint(h).update(history="all of it"), "metadata.checkpoint.history", "a list"),
    (
        lambda h: checkpoint(h)["history"][0].update(loss=float("nan")),
        "metadata.checkpoint.history[0].loss",
        "a finite number",
    ),
    (
        lambda h: checkpoint(h)["history"][0].update(test_accuracy=2),
        "metadata.checkpoint.history[0].test_accuracy",
        "<= 1.0",
    ),
    (
        lambda h: checkpoint(h).update(rng_state={"garbage": 1}),
        "metadata.checkpoint.rng_state.bit_generator",
        "missing",
    ),
    (
        lambda h: checkpoint(h)["rng_state"].update(bit_generator="MT19937"),
        "metadata.checkpoint.rng_state.bit_generator",
        "'PCG64'",
    ),
    (
        lambda h: checkpoint(h)["rng_state"]["state"].update(inc=4),
        "metadata.checkpoint.rng_state.state.inc",
        "an odd integer",
    ),
    (
        lambda h: checkpoint(h)["rng_state"]["state"].update(state=1 << 128),
        "metadata.checkpoint.rng_state.state.state",
        "an integer in",
    ),
    (lambda h: checkpoint(h)["rng_state"].update(has_uint32=2), "metadata.checkpoint.rng_state.has_uint32", "got 2"),
    (lambda h: checkpoint(h)["generators"].update({"2": [1, 2]}), "metadata.checkpoint.generators.2", "an object"),
    (lambda h: checkpoint(h)["optimizer"].update(lr="0.1"), "metadata.checkpoint.optimizer.lr", "a finite number"),
    (lambda h: checkpoint(h)["optimizer"].update(step_count=-1), "metadata.checkpoint.optimizer.step_count", "-1"),
    (
        lambda h: checkpoint(h)["optimizer"].update(momentum=float("inf")),
        "metadata.checkpoint.optimizer.momentum",
        "a finite number",
    ),
    (lambda h: checkpoint(h)["run"].update(batch_size="100"), "metadata.checkpoint.run.batch_size", "'100'"),
    (lambda h: checkpoint(h)["run"].update(seed=-1), "metadata.checkpoint.run.seed", "got -1"),
    (lambda h: checkpoint(h)["run"].update(train_limit=False), "metadata.checkpoint.run.train_limit", "got False"),
    (lambda h: checkpoint(h).update(run=[1]), "metadata.checkpoint.run", "an object"),
    (lambda h: h["metadata"].update(training={"dataset": 5}), "metadata.training.dataset", "a string"),
    (
        lambda h: h["metadata"].update(note=[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]),
        "metadata.note",
        "levels",
    ),
    (lambda h: h.update(metadata=[]), "metadata", "an object"),
    (lambda h: h.update(kind="quantum"), "kind", "'float', 'binarized'"),
    (lambda h: h.update(version=0), "version", "got 0"),
    (lambda h: h.update(input_shape=[0]), "input_shape[0]", "got 0"),
    (lambda h: h.update(input_shape="10"), "input_shape", "a list"),
    (
        lambda h: h["architecture"]["config"]["layers"][0]["config"].update(num_hidden="6"),
        "architecture.config.layers[0].config.num_hidden",
        "got '6'",
    ),
    (
        lambda h: h["architecture"]["config"]["layers"][1]["config"].update(eps=float("nan")),
        "architecture.config.layers[1].config.eps",
        "a finite number",
    ),
    (
        lambda h: h["architecture"]["config"]["layers"][0]["config"].update(act_bit=True),
        "architecture.config.layers[0].config.act_bit",
        "got True",
    ),
    (
        lambda h: h["architecture"]["config"]["layers"][0]["config"].update(color="red"),
        "architecture.config.layers[0].config.color",
        "no field of this name",
    ),
    (lambda h: h["arrays"][0].__setitem__(2, [-1]), "arrays[0][2][0]", "got -1"),
    (lambda h: h["arrays"].append(["state/x", "object", [1]]), "arrays[", "'float32'"),
]


@pytest.mark.parametrize("change, field, expected", CASES, ids=[case[1] for case in CASES])
def test_a_forged_field_is_named(tmp_path, checkpoint_bytes, change, field, expected):
    header = header_of(checkpoint_bytes)
    change(header)
    path = tmp_path / "run.ckpt.npz"
    path.write_bytes(with_header(checkpoint_bytes, header))
    with pytest.raises(ModelFileError) as caught:
        load_checkpoint(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: field {field}") and expected in message, message


def test_the_unforged_checkpoint_loads_and_restores(tmp_path, checkpoint_bytes):
    path = tmp_path / "run.ckpt.npz"
    path.write_bytes(checkpoint_bytes)
    loaded = load_checkpoint(path)
    assert loaded.state.epoch == 1 and loaded.run["epochs"] == 2
    loaded.restore_generators(small_model())


def test_resume_from_a_forged_checkpoint_is_one_line(tmp_path, checkpoint_bytes):
    header = header_of(checkpoint_bytes)
    checkpoint(header).update(epoch=-5)
    path = tmp_path / "run.ckpt.npz"
    path.write_bytes(with_header(checkpoint_bytes, header))
    done = subprocess.run(
        [sys.executable, "-m", "tinybnn.cli", "train", "--resume", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2 and "epoch" not in done.stdout
    assert done.stderr.strip().splitlines() == [
        f"tinybnn: error: {path}: field metadata.checkpoint.epoch: expected an integer in [0, 1000000], got -5"
    ]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_field_deletions_and_type_swaps_give_only_model_file_errors(tmp_path, checkpoint_bytes, data):
    """Whatever one field becomes, loading either refuses with the file named or gives a
    checkpoint whose generator states restore and whose numbers are finite."""
    mutated, changed, action = data.draw(header_mutations(header_of(checkpoint_bytes)))
    path = tmp_path / "run.ckpt.npz"
    path.write_bytes(with_header(checkpoint_bytes, mutated))
    try:
        loaded = load_checkpoint(path)
    except ModelFileError as error:
        assert str(error).startswith(f"{path}: ") and "\n" not in str(error)
        return
    model = small_model()
    loaded.restore_generators(model)
    np.random.default_rng().bit_generator.state = loaded.state.rng_state
    assert loaded.state.epoch >= 0 and math.isfinite(float(loaded.optimizer["lr"]))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    member=st.sampled_from(["float32.npy", "header.npy"]),
    cut=st.integers(0, 2000),
    extra=st.binary(min_size=1, max_size=64),
    deflate=st.booleans(),
    truncate=st.booleans(),
)
def test_truncated_and_inflated_members_are_refused(tmp_path, checkpoint_bytes, member, cut, extra, deflate, truncate):
    """A member cut short or followed by bytes its npy header does not state (stored or deflated)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(checkpoint_bytes)) as source, zipfile.ZipFile(buffer, "w") as target:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename == member:
                data = data[: min(cut, len(data) - 1)] if truncate else data + extra
            target.writestr(info.filename, data, zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED)
    path = tmp_path / "run.ckpt.npz"
    path.write_bytes(buffer.getvalue())
    with pytest.raises(ModelFileError) as caught:
        load_checkpoint(path)
    assert str(caught.value).startswith(f"{path}: ")


def test_a_model_file_without_checkpoint_still_names_fields(tmp_path):
    from tinybnn.serialization import save_model

    path = save_model(tmp_path / "m.npz", small_model(), (10,), metadata={"training": {"dataset": "mnist"}})
    header = header_of(path.read_bytes())
    header["metadata"]["history"] = {"epoch": 1}
    path.write_bytes(with_header(path.read_bytes(), header))
    with pytest.raises(ModelFileError, match=r"field metadata\.history: expected a list"):
        load_model(path)


def test_the_written_schema_covers_every_field_tinybnn_writes():
    from dataclasses import fields

    from tinybnn.headers import EPOCH, RUN
    from tinybnn.optim import Adam

    assert set(EPOCH.required) == {f.name for f in fields(EpochResult)}
    assert set(RUN.optional) == {f.name for f in fields(RunSettings)}
    for optimizer in (SGD(small_model().parameters()), Adam(small_model().parameters())):
        assert set(optimizer.hyperparameters()) == {"lr", "step_count"}
