"""A one-line progress display for a training epoch, on a terminal only.

While an epoch runs, ``tinybnn train`` shows on a terminal one line that it
rewrites in place (a carriage return, then the new text padded over the old)::

    epoch 3/10  24,600/60,000 images  5,120 images/s  7 s left

at most :data:`UPDATES_PER_SECOND` times a second, however short the
batches; the line is cleared before the epoch's own line is printed. Where
the output is not a terminal (a pipe, a log file) nothing is written, so a
log holds only the plain per-epoch lines. Standard library only.

The rate is the epoch's images so far over the seconds since it started;
the time left is the images still to do at that rate.
"""

from __future__ import annotations

import time
from typing import Callable, TextIO

#: the most times a second the line is rewritten
UPDATES_PER_SECOND = 4


def duration(seconds: float) -> str:
    """``seconds`` as "7 s", "2:05" (minutes:seconds) or "1:02:05" (hours:minutes:seconds)."""
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def progress_text(label: str, done: int, total: int, seconds: float) -> str:
    """The line shown after ``done`` of ``total`` images in ``seconds``."""
    text = f"{label}  {done:,}/{total:,} images"
    if done > 0 and seconds > 0:
        rate = done / seconds
        text += f"  {rate:,.0f} images/s  {duration((total - done) / rate)} left"
    return text


class Progress:
    """The progress line of one epoch at a time, written to ``stream`` if it is a terminal.

    ``start(total, label)`` begins an epoch of ``total`` images, ``update(done)``
    reports the images done so far (rewriting the line if 1 / UPDATES_PER_SECOND
    seconds have passed since the last write, and always at the end), ``finish()``
    clears the line. ``clock`` (seconds, monotonic) and ``enabled`` (default:
    ``stream.isatty()``) are there for tests.
    """

    def __init__(self, stream: TextIO, clock: Callable[[], float] = time.monotonic, enabled: bool | None = None):
        self.stream, self.clock = stream, clock
        self.enabled = stream.isatty() if enabled is None else enabled
        self.label, self.total = "", 0
        self.started = self.last_write = 0.0
        self.shown = 0  # characters on the line now

    def start(self, total: int, label: str) -> None:
        self.label, self.total = label, total
        self.started = self.clock()
        self.last_write = -float("inf")
        self.update(0)

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        now = self.clock()
        if now - self.last_write < 1.0 / UPDATES_PER_SECOND and done < self.total:
            return
        self.last_write = now
        self.write(progress_text(self.label, done, self.total, now - self.started))

    def finish(self) -> None:
        """Clear the line, so that what is printed next starts at its beginning."""
        if self.enabled and self.shown:
            self.write("")

    def write(self, text: str) -> None:
        self.stream.write("\r" + text.ljust(self.shown) + ("\r" if not text else ""))
        self.stream.flush()
        self.shown = len(text)
