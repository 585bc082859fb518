"""Workspaces never hand out an array that is in use, and reuse arrays once released."""

import threading

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from tinybnn import workspace
from tinybnn.workspace import MIN_BYTES, Workspace

BIG = (MIN_BYTES // 4 + 16,)  # float32 elements just over the pooling threshold

shapes = st.lists(st.sampled_from([BIG, (2, *BIG), (3, 4096 * 5)]), min_size=1, max_size=12)


@given(shapes, shapes)
def test_taken_arrays_never_overlap_until_released(first, second):
    ws = Workspace()
    taken = [ws.take(shape) for shape in first]
    for i, a in enumerate(taken):
        for b in taken[i + 1 :]:
            assert not np.shares_memory(a, b)
    assert ws.in_use() == len(first)
    ws.release()
    again = [ws.take(shape) for shape in first]
    assert all(a is b for a, b in zip(taken, again))  # the same requests get the same arrays back
    more = [ws.take(shape) for shape in second]
    assert not any(np.shares_memory(a, b) for a in again for b in more)


def test_empty_takes_from_the_current_workspace_only_inside_use():
    ws = Workspace()
    outside = workspace.empty(BIG)
    with ws.use():
        a = workspace.empty(BIG)
        b = workspace.empty(BIG)
        small = workspace.empty((4,))
    assert not np.shares_memory(a, b) and ws.in_use() == 2
    assert workspace.current() is None
    assert small.shape == (4,) and ws.nbytes == 2 * a.nbytes  # small arrays are not pooled
    with ws.use():  # the next block starts by releasing the previous one's arrays
        assert workspace.empty(BIG) is a
    assert not np.shares_memory(outside, a)


def test_a_workspace_in_use_is_not_shared_with_another_thread_or_a_nested_block():
    ws = Workspace()
    seen = {}
    inside, done = threading.Event(), threading.Event()

    def other_thread():
        inside.wait()
        with ws.use():
            seen["other"] = workspace.empty(BIG)
        done.set()

    thread = threading.Thread(target=other_thread)
    thread.start()
    with ws.use():
        mine = workspace.empty(BIG)
        with ws.use():
            nested = workspace.empty(BIG)
        inside.set()
        done.wait(30)
        assert workspace.current() is ws
    thread.join(30)
    assert not np.shares_memory(mine, nested)
    assert not np.shares_memory(mine, seen["other"])
    assert ws.in_use() == 1
