"""Bop: the flip rule by hand, parameter groups, exact resume, bad settings."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinybnn.checkpoint import load_checkpoint, save_checkpoint
from tinybnn.errors import ArgumentError, ModelFileError
from tinybnn.layers import BatchNorm, FullyConnected, Parameter, QActivation, QFullyConnected, Sequential
from tinybnn.models import lenet
from tinybnn.optim import SGD, Adam
from tinybnn.optim_bop import Bop, ParameterGroups, binary_weights, bop_step_reference, bop_with
from tinybnn.recipe import RunSettings
from tinybnn.training import TrainState

from .test_training import run as train_run


def test_three_steps_against_a_hand_computation():
    w = Parameter(np.array([0.7, -0.1, 0.0, -0.5], dtype=np.float32))
    bop = Bop([w], gamma=0.5, tau=0.3)
    assert w.data.tolist() == [1, -1, 1, -1]
    # step 1: m = 0 + 0.5 (g - 0) = [0.5, 0.2, -0.4, -1.0]; w m = [0.5, -0.2, -0.4, 1.0] > 0.3 at 0 and 3
    w.grad = np.array([1.0, 0.4, -0.8, -2.0], dtype=np.float32)
    bop.step()
    np.testing.assert_allclose(bop.m[0], [0.5, 0.2, -0.4, -1.0])
    assert w.data.tolist() == [-1, -1, 1, 1] and bop.flips == 2
    # step 2: m = m + 0.5 (g - m) with g = [0, -1, -1, 0]: m = [0.25, -0.4, -0.7, -0.5];
    # w m = [-0.25, 0.4, -0.7, -0.5]: only weight 1 flips
    w.grad = np.array([0.0, -1.0, -1.0, 0.0], dtype=np.float32)
    bop.step()
    np.testing.assert_allclose(bop.m[0], [0.25, -0.4, -0.7, -0.5])
    assert w.data.tolist() == [-1, 1, 1, 1] and bop.flips == 1
    # step 3: no gradient, no update at all
    w.grad = None
    bop.step()
    np.testing.assert_allclose(bop.m[0], [0.25, -0.4, -0.7, -0.5])
    assert bop.step_count == 3 and bop.flips == 0


def test_a_product_equal_to_tau_does_not_flip():
    w = np.array([1.0, -1.0], dtype=np.float32)
    m = np.zeros(2, dtype=np.float32)
    assert bop_step_reference(w, np.array([0.5, -0.5], dtype=np.float32), m, 1.0, 0.5) == 0
    assert w.tolist() == [1, -1]


@settings(deadline=None, max_examples=50)
@given(
    st.lists(st.floats(-2, 2, width=32), min_size=1, max_size=30),
    st.floats(1e-4, 1.0),
    st.floats(0, 1e-2),
    st.integers(0, 2**32 - 1),
)
def test_weights_stay_plus_minus_one_and_flips_count_sign_changes(values, gamma, tau, seed):
    w = Parameter(np.array(values, dtype=np.float32))
    bop = Bop([w], gamma=gamma, tau=tau)
    rng = np.random.default_rng(seed)
    for _ in range(3):
        before = w.data.copy()
        w.grad = rng.standard_normal(w.shape).astype(np.float32)
        bop.step()
        assert set(np.unique(w.data)) <= {-1.0, 1.0}
        assert bop.flips == int(np.count_nonzero(before != w.data))


def small_binary_net():
    net = Sequential(
        QActivation(),
        QFullyConnected(4, rng=np.random.default_rng(0)),
        BatchNorm(),
        FullyConnected(3, rng=np.random.default_rng(1)),
    )
    return net.build((6,))


def test_parameter_groups_give_binary_weights_to_bop_and_the_rest_to_adam():
    net = small_binary_net()
    groups = bop_with(net, Adam, lr=0.01)
    bop, adam = groups.optimizers
    assert isinstance(bop, Bop) and isinstance(adam, Adam)
    assert [id(p) for p in bop.params] == [id(p) for p in binary_weights(net)]
    assert {id(p) for p in bop.params} | {id(p) for p in adam.params} == {id(p) for p in net.parameters()}
    assert set(np.unique(binary_weights(net)[0].data)) <= {-1.0, 1.0}

    groups.lr = 0.5  # a schedule sets the learning rate: Adam's, not Bop's
    assert adam.lr == 0.5 and bop.lr == 0.0 and groups.lr == 0.5
    groups.step_count = 7
    assert bop.step_count == adam.step_count == 7

    before = {id(p): p.data.copy() for p in net.parameters()}
    for p in net.parameters():
        p.grad = np.ones_like(p.data)
    groups.step()
    assert groups.step_count == 8
    for p in adam.params:
        assert not np.array_equal(p.data, before[id(p)])  # Adam moved every float parameter
    assert sorted(groups.state_arrays()) == sorted(["0.m.0"] + [f"1.{k}" for k in adam.state_arrays()])
    assert groups.hyperparameters()["groups"][0]["gamma"] == 1e-4
    groups.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_a_parameter_in_two_groups_is_refused():
    net = small_binary_net()
    with pytest.raises(ArgumentError, match="two optimizers"):
        ParameterGroups(Bop(binary_weights(net)), Adam(net.parameters()))


@pytest.mark.parametrize(
    "gamma, tau",
    [(0.0, 1e-8), (-1e-4, 1e-8), (1.5, 1e-8), (math.nan, 1e-8), (1e-4, -1.0), (1e-4, math.inf), (1e-4, math.nan)],
)
def test_bad_hyperparameters_are_refused(gamma, tau):
    with pytest.raises(ArgumentError, match="gamma|tau"):
        Bop([Parameter(np.ones(3))], gamma=gamma, tau=tau)
    with pytest.raises(ArgumentError, match="--bop-gamma/--bop-tau"):
        RunSettings(optimizer="bop", bop_gamma=gamma, bop_tau=tau).check()


def test_bop_needs_binary_weights():
    with pytest.raises(ArgumentError, match="no binary weights"):
        Bop([])
    with pytest.raises(ArgumentError, match="binary model"):
        RunSettings(optimizer="bop", model="lenet").check()
    with pytest.raises(ArgumentError, match="binary model"):
        RunSettings(optimizer="bop", weight_bit=2).check()


def bop_optimizer(model):
    return bop_with(model, Adam, lr=1e-3, gamma=1e-3, tau=1e-6)


def test_resume_with_bop_is_exact(tmp_path):
    """Train 4 epochs straight = train 2, save a checkpoint, load it into a fresh model and Bop, train 2 more."""
    rng = np.random.default_rng(0)
    model = lenet(binary=True, rng=rng).build((1, 28, 28))
    straight = train_run(4, model=model, optimizer=bop_optimizer(model), rng=rng)[0].state_dict()
    assert all(set(np.unique(p.data)) <= {-1.0, 1.0} for p in binary_weights(model))

    rng = np.random.default_rng(0)
    model = lenet(binary=True, rng=rng).build((1, 28, 28))
    optimizer = bop_optimizer(model)
    model, optimizer, rng, _, _ = train_run(4, model=model, optimizer=optimizer, rng=rng, stop_after=2)
    assert optimizer.optimizers[0].step_count == 6  # 60 toy images in batches of 20, two epochs
    path = tmp_path / "bop.ckpt.npz"
    state = TrainState(epoch=2, rng_state=rng.bit_generator.state, history=[])
    save_checkpoint(path, model, (1, 28, 28), optimizer, state, run={"note": "test"})

    ckpt = load_checkpoint(path)
    assert ckpt.optimizer["groups"][0]["gamma"] == 1e-3
    fresh_rng = np.random.default_rng(12345)
    fresh = lenet(binary=True, rng=fresh_rng).build((1, 28, 28))
    fresh_optimizer = bop_optimizer(fresh)
    fresh.load_state_dict(ckpt.model_file.model.state_dict())
    ckpt.restore_optimizer(fresh_optimizer, path)
    assert fresh_optimizer.optimizers[1].step_count == 6  # Adam's bias correction goes on from step 7
    fresh_rng.bit_generator.state = ckpt.state.rng_state
    resumed = train_run(4, state=ckpt.state, model=fresh, optimizer=fresh_optimizer, rng=fresh_rng)[0].state_dict()
    for name in straight:
        assert np.array_equal(straight[name], resumed[name]), name


def test_a_bop_checkpoint_does_not_load_into_another_optimizer(tmp_path):
    model = small_binary_net()
    groups = bop_with(model, Adam)
    path = save_checkpoint(
        tmp_path / "c.ckpt.npz",
        model,
        (6,),
        groups,
        TrainState(rng_state=np.random.default_rng(0).bit_generator.state),
        run={},
    )
    with pytest.raises(ModelFileError, match="c.ckpt.npz: optimizer state has arrays"):
        load_checkpoint(path).restore_optimizer(SGD(model.parameters(), momentum=0.9), path)


def test_bop_trained_weights_are_what_the_converter_packs():
    """No latent weights: the ±1 values Bop holds are the signs the packed model uses."""
    from tinybnn.autograd import Tensor
    from tinybnn.convert import convert_model
    from tinybnn.training import predict_logits

    rng = np.random.default_rng(0)
    model = lenet(binary=True, rng=rng).build((1, 28, 28))
    model = train_run(1, model=model, optimizer=bop_optimizer(model), rng=rng)[0]
    x = np.random.default_rng(1).random((8, 1, 28, 28), dtype=np.float32)
    model.eval()
    converted = convert_model(model).eval()
    want = predict_logits(model, x)
    got = converted(Tensor(x)).data
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3)
    assert np.array_equal(got.argmax(axis=1), want.argmax(axis=1))


def test_train_resume_with_bop_on_the_command_line_is_exact(mnist_dir, tmp_path, capsys):
    from tinybnn.cli import main
    from tinybnn.serialization import load_model

    common = [
        "--optimizer",
        "bop",
        "--bop-gamma",
        "1e-3",
        "--data",
        str(mnist_dir),
        "--train-limit",
        "200",
        "--test-limit",
        "50",
    ]
    assert main(["train", *common, "--epochs", "2", "--out", str(tmp_path / "straight.npz")]) == 0
    assert main(["train", *common, "--epochs", "1", "--out", str(tmp_path / "part.npz")]) == 0
    assert main(["train", "--resume", str(tmp_path / "part.ckpt.npz"), "--epochs", "2", "--data", str(mnist_dir)]) == 0
    a = load_model(tmp_path / "straight.npz")
    b = load_model(tmp_path / "part.npz")
    assert b.metadata["training"]["optimizer"] == "bop" and b.metadata["training"]["bop_gamma"] == 1e-3
    a, b = a.model.state_dict(), b.model.state_dict()
    assert all(np.array_equal(a[k], b[k]) for k in a)
