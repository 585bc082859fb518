"""The training loop: determinism, exact resume, NaN detection, and real MNIST."""

import numpy as np
import pytest

from tinybnn.autograd import Tensor
from tinybnn.checkpoint import load_checkpoint, save_checkpoint
from tinybnn.errors import TrainingError
from tinybnn.models import lenet
from tinybnn.optim import Adam, ConstantLR, CosineLR
from tinybnn.training import TrainState, evaluate, fit


def toy_data(seed=0, n=60):
    """Digits-shaped noise whose class is readable from the mean of a band of rows."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    x = rng.random((n, 1, 28, 28), dtype=np.float32) * 0.3
    for i, label in enumerate(y):
        x[i, 0, 2 * label : 2 * label + 3, :] += 0.7
    return x, y


def run(epochs, seed=0, state=None, model=None, optimizer=None, rng=None, stop_after=None, binary=False):
    x, y = toy_data()
    if model is None:
        rng = np.random.default_rng(seed)
        model = lenet(binary=binary, rng=rng).build((1, 28, 28))
        optimizer = Adam(model.parameters(), lr=1e-3)
    saved = []

    def on_epoch_end(s):
        saved.append((s.epoch, model.state_dict()))
        if stop_after is not None and s.epoch == stop_after:
            raise KeyboardInterrupt

    try:
        state = fit(
            model,
            optimizer,
            CosineLR(1e-3, epochs),
            (x, y),
            (x[:20], y[:20]),
            epochs,
            20,
            rng,
            state=state,
            log=lambda line: None,
            on_epoch_end=on_epoch_end,
        )
    except KeyboardInterrupt:
        pass
    return model, optimizer, rng, state, saved


def test_same_seed_same_weights():
    a = run(2)[0].state_dict()
    b = run(2)[0].state_dict()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    c = run(2, seed=1)[0].state_dict()
    assert not np.array_equal(a["0.weight"], c["0.weight"])


@pytest.mark.parametrize("binary", [False, True])
def test_resume_after_2_of_4_epochs_equals_4_straight_epochs(tmp_path, binary):
    straight = run(4, binary=binary)[0].state_dict()

    model, optimizer, rng, _, saved = run(4, stop_after=2, binary=binary)
    assert [epoch for epoch, _ in saved] == [1, 2]
    path = tmp_path / "run.ckpt.npz"
    state = TrainState(epoch=2, rng_state=rng.bit_generator.state, history=[])
    save_checkpoint(path, model, (1, 28, 28), optimizer, state, run={"note": "test"})

    ckpt = load_checkpoint(path)
    fresh_rng = np.random.default_rng(12345)  # anything: the saved state replaces it
    fresh = lenet(binary=binary, rng=fresh_rng).build((1, 28, 28))
    fresh.load_state_dict(ckpt.model_file.model.state_dict())
    fresh_optimizer = Adam(fresh.parameters(), lr=1e-3)
    ckpt.restore_optimizer(fresh_optimizer, path)
    fresh_rng.bit_generator.state = ckpt.state.rng_state
    resumed = run(4, state=ckpt.state, model=fresh, optimizer=fresh_optimizer, rng=fresh_rng)[0].state_dict()
    for name in straight:
        assert np.array_equal(straight[name], resumed[name]), name


def test_a_nan_loss_stops_training_with_a_clear_message():
    x, y = toy_data()
    x[5] = np.nan
    model = lenet(rng=np.random.default_rng(0)).build((1, 28, 28))
    with pytest.raises(TrainingError, match="the loss became nan at batch 1"):
        fit(
            model,
            Adam(model.parameters()),
            ConstantLR(1e-3),
            (x, y),
            (x, y),
            1,
            60,
            np.random.default_rng(0),
            log=lambda line: None,
        )


def test_evaluate_restores_the_mode():
    x, y = toy_data()
    model = lenet(rng=np.random.default_rng(0)).build((1, 28, 28))
    model.train()
    loss, accuracy = evaluate(model, x, y, batch_size=7)
    assert model.training and 0 <= accuracy <= 1 and loss > 0


def test_epoch_lines_have_the_promised_fields():
    lines = []
    x, y = toy_data()
    model = lenet(rng=np.random.default_rng(0)).build((1, 28, 28))
    fit(
        model,
        Adam(model.parameters()),
        ConstantLR(1e-3),
        (x, y),
        (x, y),
        1,
        30,
        np.random.default_rng(0),
        log=lines.append,
    )
    assert len(lines) == 1
    for field in ("epoch   1/1", "loss", "train accuracy", "test accuracy", " s ", "images/s"):
        assert field in lines[0]


def test_one_epoch_on_real_mnist_5k(mnist_dir):
    """5,000 real digits, one epoch of the float LeNet: well above chance on the real test set."""
    from tinybnn.data import load_dataset, to_float_nchw

    data = load_dataset("mnist", data_dir=mnist_dir, download=False)
    train = to_float_nchw(data.train_images), data.train_labels
    test = to_float_nchw(data.test_images[:2000]), data.test_labels[:2000]
    rng = np.random.default_rng(0)
    model = lenet(rng=rng).build((1, 28, 28))
    state = fit(model, Adam(model.parameters()), ConstantLR(1e-3), train, test, 1, 100, rng, log=lambda line: None)
    assert state.history[0]["test_accuracy"] > 0.9
    assert isinstance(model(Tensor(test[0][:1])).data, np.ndarray)


def test_resume_restores_dropout_masks(tmp_path):
    """A layer with its own generator (dropout) draws the same masks after a resume."""
    from tinybnn.layers import Dropout, FullyConnected, Sequential

    def network():
        return Sequential(
            FullyConnected(16, rng=np.random.default_rng(1)),
            Dropout(0.5, rng=np.random.default_rng(2)),
            FullyConnected(10, rng=np.random.default_rng(3)),
        ).build((4, 7, 7))

    x, y = toy_data(n=40)
    x = x[:, :, :7, :7].repeat(4, axis=1)

    def train(model, optimizer, rng, epochs, state=None, stop_after=None):
        def stop(s):
            if s.epoch == stop_after:
                raise KeyboardInterrupt

        try:
            return fit(
                model,
                optimizer,
                ConstantLR(1e-2),
                (x, y),
                (x, y),
                epochs,
                10,
                rng,
                state=state,
                log=lambda line: None,
                on_epoch_end=stop,
            )
        except KeyboardInterrupt:
            return None

    straight = network()
    train(straight, Adam(straight.parameters(), lr=1e-2), np.random.default_rng(0), 4)

    first = network()
    first_opt, first_rng = Adam(first.parameters(), lr=1e-2), np.random.default_rng(0)
    train(first, first_opt, first_rng, 4, stop_after=2)
    path = save_checkpoint(
        tmp_path / "c.npz", first, (4, 7, 7), first_opt, TrainState(2, first_rng.bit_generator.state, []), run={}
    )
    ckpt = load_checkpoint(path)
    second = network()
    second.load_state_dict(ckpt.model_file.model.state_dict())
    ckpt.restore_generators(second)
    second_opt, second_rng = Adam(second.parameters(), lr=1e-2), np.random.default_rng(0)
    ckpt.restore_optimizer(second_opt, path)
    second_rng.bit_generator.state = ckpt.state.rng_state
    train(second, second_opt, second_rng, 4, state=ckpt.state)
    a, b = straight.state_dict(), second.state_dict()
    assert all(np.array_equal(a[k], b[k]) for k in a)
