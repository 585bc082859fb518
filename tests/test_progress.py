"""The progress line of ``tinybnn train``: on a terminal only, rate-limited, cleared before the epoch line."""

import io

import numpy as np

from tinybnn.layers import FullyConnected, Sequential
from tinybnn.optim import Adam, ConstantLR
from tinybnn.progress import UPDATES_PER_SECOND, Progress, duration, progress_text
from tinybnn.training import fit


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


class Clock:
    """Seconds that advance only when the test says so."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_line_says_images_done_rate_and_time_left():
    assert progress_text("epoch 3/10", 24_600, 60_000, 4.8) == (
        "epoch 3/10  24,600/60,000 images  5,125 images/s  7 s left"
    )
    assert progress_text("epoch 1/1", 0, 60_000, 0.0) == "epoch 1/1  0/60,000 images"
    assert [duration(s) for s in (0.4, 59.4, 125, 3725)] == ["0 s", "59 s", "2:05", "1:02:05"]


def test_on_a_terminal_the_line_is_rewritten_in_place_a_few_times_a_second():
    stream, clock = Terminal(), Clock()
    progress = Progress(stream, clock=clock)
    progress.start(1000, "epoch 1/2")
    for done in range(10, 1000, 10):  # 99 batches, 10 ms apart: about one second
        clock.now += 0.01
        progress.update(done)
    clock.now += 0.01
    progress.update(1000)  # the last batch is always shown
    writes = stream.getvalue().split("\r")[1:]
    assert 1 + UPDATES_PER_SECOND <= len(writes) <= 2 + UPDATES_PER_SECOND
    assert writes[0] == "epoch 1/2  0/1,000 images"
    assert writes[-1].startswith("epoch 1/2  1,000/1,000 images  1,000 images/s  0 s left")
    progress.finish()
    assert stream.getvalue().endswith("\r" + " " * len(writes[-1]) + "\r")
    assert "\n" not in stream.getvalue()


def test_a_shorter_line_covers_the_longer_one_before_it():
    stream, clock = Terminal(), Clock()
    progress = Progress(stream, clock=clock)
    progress.start(100, "epoch 1/1")
    clock.now += 1
    progress.update(50)
    progress.start(100, "epoch 2/2")
    last = stream.getvalue().split("\r")[-1]
    assert last.rstrip() == "epoch 2/2  0/100 images"
    assert len(last) == len("epoch 1/1  50/100 images  50 images/s  1 s left")


def test_nothing_is_written_where_the_output_is_not_a_terminal():
    stream = io.StringIO()
    progress = Progress(stream, clock=Clock())
    progress.start(100, "epoch 1/1")
    progress.update(100)
    progress.finish()
    assert stream.getvalue() == ""


def test_fit_shows_each_epoch_and_clears_the_line_before_the_epoch_line():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 6)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    model = Sequential(FullyConnected(2, rng=rng)).build((6,))
    stream, clock = Terminal(), Clock()
    events = []

    def log(line: str) -> None:
        events.append(("log", stream.getvalue()))
        stream.write(line + "\n")

    fit(
        model,
        Adam(model.parameters()),
        ConstantLR(1e-2),
        (x, y),
        (x, y),
        2,
        10,
        rng,
        log=log,
        progress=Progress(stream, clock=clock),
    )
    assert len(events) == 2
    for epoch, (_, before) in enumerate(events, 1):
        assert f"epoch {epoch}/2  0/40 images" in before
        assert f"epoch {epoch}/2  40/40 images" in before
        assert before.endswith(" \r")  # cleared: the epoch line starts at the line's beginning
