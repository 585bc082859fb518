"""iterate_batches: seeded order, full coverage, last partial batch, exact resume."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinybnn.data.batches import iterate_batches, num_batches
from tinybnn.errors import ArgumentError, ShapeError


def toy(n):
    images = np.arange(n * 4, dtype=np.uint8).reshape(n, 2, 2)
    labels = np.arange(n, dtype=np.int64)  # label i marks sample i
    return images, labels


def epoch_order(images, labels, batch_size, rng, **options):
    return np.concatenate([y for _, y in iterate_batches(images, labels, batch_size, rng=rng, **options)])


@given(n=st.integers(0, 60), batch_size=st.integers(1, 70), seed=st.integers(0, 2**32 - 1), shuffle=st.booleans())
def test_every_sample_once_per_epoch(n, batch_size, seed, shuffle):
    images, labels = toy(n)
    batches = list(iterate_batches(images, labels, batch_size, shuffle=shuffle, rng=np.random.default_rng(seed)))
    assert len(batches) == num_batches(n, batch_size)
    assert [len(y) for _, y in batches[:-1]] == [batch_size] * (len(batches) - 1)
    seen = np.concatenate([y for _, y in batches]) if batches else np.array([], np.int64)
    assert sorted(seen.tolist()) == list(range(n))
    for x, y in batches:  # images stay paired with their labels
        np.testing.assert_array_equal(x, images[y])
    if not shuffle:
        assert seen.tolist() == list(range(n))


def test_last_partial_batch_kept_or_dropped():
    images, labels = toy(10)
    sizes = [len(y) for _, y in iterate_batches(images, labels, 4, shuffle=False)]
    assert sizes == [4, 4, 2]
    dropped = list(iterate_batches(images, labels, 4, shuffle=False, drop_last=True))
    assert [y.tolist() for _, y in dropped] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert num_batches(10, 4) == 3 and num_batches(10, 4, drop_last=True) == 2
    assert list(iterate_batches(images, labels, 20, shuffle=False, drop_last=True)) == []


def test_drop_last_with_shuffle_drops_the_tail_of_the_permutation():
    images, labels = toy(10)
    batches = list(iterate_batches(images, labels, 3, rng=np.random.default_rng(1), drop_last=True))
    assert [len(y) for _, y in batches] == [3, 3, 3]
    assert len(set(np.concatenate([y for _, y in batches]).tolist())) == 9


def test_same_seed_same_order_different_seed_different_order():
    images, labels = toy(100)
    a = epoch_order(images, labels, 32, np.random.default_rng(42))
    b = epoch_order(images, labels, 32, np.random.default_rng(42))
    c = epoch_order(images, labels, 32, np.random.default_rng(43))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert not np.array_equal(a, np.arange(100))


def test_consecutive_epochs_differ():
    images, labels = toy(100)
    rng = np.random.default_rng(0)
    assert not np.array_equal(epoch_order(images, labels, 10, rng), epoch_order(images, labels, 10, rng))


def test_restoring_the_generator_state_reproduces_the_next_epoch():
    images, labels = toy(50)
    rng = np.random.default_rng(7)
    epoch_order(images, labels, 8, rng)  # epoch 1
    saved = rng.bit_generator.state  # as a checkpoint would store it
    epoch2 = epoch_order(images, labels, 8, rng)
    epoch3 = epoch_order(images, labels, 8, rng)

    resumed = np.random.default_rng()  # a fresh process, another seed
    resumed.bit_generator.state = saved
    np.testing.assert_array_equal(epoch_order(images, labels, 8, resumed), epoch2)
    np.testing.assert_array_equal(epoch_order(images, labels, 8, resumed), epoch3)


def test_permutation_is_drawn_at_the_call_not_at_the_first_batch():
    images, labels = toy(20)
    rng = np.random.default_rng(3)
    before = rng.bit_generator.state
    batches = iterate_batches(images, labels, 5, rng=rng)
    assert rng.bit_generator.state != before  # drawn already
    resumed = np.random.default_rng()
    resumed.bit_generator.state = before
    np.testing.assert_array_equal(np.concatenate([y for _, y in batches]), epoch_order(images, labels, 5, resumed))


def test_shuffled_batches_are_copies_unshuffled_are_views():
    images, labels = toy(6)
    x, _ = next(iterate_batches(images, labels, 3, rng=np.random.default_rng(0)))
    assert not np.shares_memory(x, images)
    x, _ = next(iterate_batches(images, labels, 3, shuffle=False))
    assert np.shares_memory(x, images)


def test_bad_arguments_are_refused_at_the_call():
    images, labels = toy(10)
    with pytest.raises(ShapeError, match="10 images but 9 labels"):
        iterate_batches(images, labels[:9], 4, shuffle=False)
    for size in [0, -1]:
        with pytest.raises(ArgumentError, match="at least 1"):
            iterate_batches(images, labels, size, shuffle=False)
    with pytest.raises(ArgumentError, match="integer"):
        iterate_batches(images, labels, 2.5, shuffle=False)
    with pytest.raises(ArgumentError, match="rng=np.random.default_rng"):
        iterate_batches(images, labels, 4)
    with pytest.raises(ArgumentError, match="RandomState"):
        iterate_batches(images, labels, 4, rng=np.random.RandomState(0))
    assert len(list(iterate_batches(images, labels, np.int64(4), shuffle=False))) == 3
