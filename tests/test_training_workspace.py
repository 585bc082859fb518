"""A training step's workspace never hands out memory in use, and nothing that outlives a step lives in it.

The training loop owns one :class:`~tinybnn.workspace.Workspace` and reuses
its arrays step after step. Two ways it could go wrong: an array handed out
twice within a step, or an array that outlives its step (a parameter's
gradient, the optimizer's state, running statistics) taken from the
workspace and overwritten by the next step. The checking workspace below
catches both: it asserts that the arrays a step takes are pairwise disjoint,
and when a step's arrays are released it overwrites every one of them with
0xFF bytes (NaN for floats), so anything that escaped turns the training
into NaNs or into other bits than a run without a workspace.
"""

import contextlib

import numpy as np
import pytest

from tinybnn import training, workspace
from tinybnn.autograd import Tensor, no_grad, softmax_cross_entropy
from tinybnn.models import lenet
from tinybnn.optim import Adam
from tinybnn.predict import probabilities
from tinybnn.training import evaluate, predict_logits, train_epoch

from .test_training import toy_data


class CheckingWorkspace(workspace.Workspace):
    """A workspace that checks its arrays are disjoint within a step and poisons them on release."""

    instances: list["CheckingWorkspace"] = []

    def __init__(self, name="workspace"):
        super().__init__(name)
        self.step_arrays: list[np.ndarray] = []
        self.steps = 0
        CheckingWorkspace.instances.append(self)

    def take(self, shape, dtype=np.float32):
        array = super().take(shape, dtype)
        assert not any(np.may_share_memory(array, other) for other in self.step_arrays), "handed out twice"
        self.step_arrays.append(array)
        return array

    def release(self):
        for array in self.step_arrays:
            array.view(np.uint8).fill(0xFF)
        self.steps += bool(self.step_arrays)
        self.step_arrays = []
        super().release()


class NoWorkspace(workspace.Workspace):
    """Every array fresh: what the loop computes without a workspace."""

    @contextlib.contextmanager
    def use(self):
        yield self


def train(monkeypatch, workspace_class, binary):
    x, y = toy_data(n=80)
    rng = np.random.default_rng(5)
    model = lenet(binary=binary, rng=rng).build((1, 28, 28))
    optimizer = Adam(model.parameters(), lr=1e-3)
    monkeypatch.setattr(training, "Workspace", workspace_class)
    result = train_epoch(model, optimizer, x, y, 20, rng)
    for instance in CheckingWorkspace.instances:
        instance.release()  # poison the last step's arrays too
    grads = {name: p.grad for name, p in model.named_parameters()}
    return model.state_dict(), grads, optimizer.state_arrays(), result


@pytest.mark.parametrize("binary", [False, True])
def test_training_with_a_checking_workspace_gives_the_bits_of_training_without_one(monkeypatch, binary):
    CheckingWorkspace.instances = []
    checked = train(monkeypatch, CheckingWorkspace, binary)
    (used,) = CheckingWorkspace.instances
    assert used.steps == 4 and used.nbytes > 0  # four steps, each took arrays from the workspace
    fresh = train(monkeypatch, NoWorkspace, binary)
    for got, expected in zip(checked[:3], fresh[:3]):
        assert got.keys() == expected.keys()
        for name in got:
            assert np.isfinite(got[name]).all(), name
            assert got[name].tobytes() == expected[name].tobytes(), name
    assert checked[3] == fresh[3]  # the loss and accuracy read inside each step


def test_outside_a_step_calls_never_share_memory():
    x, _ = toy_data(n=40)
    model = lenet(binary=True, rng=np.random.default_rng(0)).build((1, 28, 28))
    with workspace.Workspace().use():  # a finished step leaves no workspace current
        model(Tensor(x[:20]))
    assert workspace.current() is None
    model.eval()
    with no_grad():
        first = model(Tensor(x[:20])).data
        kept = first.copy()
        second = model(Tensor(x[20:])).data
    assert not np.shares_memory(first, second) and np.array_equal(first, kept)
    logits = predict_logits(model, x, batch_size=20)
    assert np.array_equal(logits[:20], kept)
    p = probabilities(model, x[:20, 0])
    assert not np.shares_memory(p, probabilities(model, x[20:, 0]))
    evaluate(model, x, np.zeros(40, np.int64), batch_size=20)
    assert np.array_equal(first, kept)


def test_two_graphs_built_outside_a_step_keep_their_own_saved_arrays():
    x, y = toy_data(n=40)
    model = lenet(binary=True, rng=np.random.default_rng(1)).build((1, 28, 28))
    alone = {}
    for part in (0, 1):
        model.zero_grad()
        softmax_cross_entropy(model(Tensor(x[20 * part : 20 * part + 20])), y[20 * part : 20 * part + 20]).backward()
        alone[part] = {name: p.grad.copy() for name, p in model.named_parameters()}
    losses = [
        softmax_cross_entropy(model(Tensor(x[20 * part : 20 * part + 20])), y[20 * part : 20 * part + 20])
        for part in (0, 1)
    ]
    for part in (0, 1):
        model.zero_grad()
        losses[part].backward()
        for name, p in model.named_parameters():
            assert p.grad.tobytes() == alone[part][name].tobytes(), (part, name)
