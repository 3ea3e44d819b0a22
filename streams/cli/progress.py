"""Progress of long work (publishing a large file, reading a topic, replaying, migrating), on
stderr for a person: how many so far, how fast, and the time left when the total is known.

On a terminal one line is rewritten in place, at most every ``TTY_EVERY_S`` and not before the
work has run that long, so a quick command shows nothing extra. Elsewhere (a log file, CI) a
plain line is written at most every ``LOG_EVERY_S``, and only once the work has run that long:
a long job shows it is alive without flooding the log. stdout is never touched: it carries the
command's data.
"""

import math
import sys
import time
from collections.abc import Callable
from typing import TextIO

__all__ = ["LOG_EVERY_S", "TTY_EVERY_S", "Progress", "duration", "progress_line"]

#: Seconds between two updates of the line on a terminal.
TTY_EVERY_S = 0.25
#: Seconds between two progress lines when stderr is not a terminal.
LOG_EVERY_S = 10.0
_CLEAR = "\x1b[K"  # erase to the end of the line: a shorter line leaves no tail behind


def duration(seconds: float) -> str:
    """``42s``, ``3m05s``, ``1h02m``."""
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def progress_line(what: str, unit: str, done: int, total: int | None, elapsed: float) -> str:
    """``publish: 12,345 of 50,000 lines (24%), 1,234 lines/s, about 30s left``."""
    count = f"{done:,} of {total:,} {unit} ({done * 100 // max(total, 1)}%)" if total else ""
    line = f"{what}: {count or f'{done:,} {unit}'}"
    if elapsed < 0.5 or done == 0:
        return line  # too early for a rate worth showing
    rate = done / elapsed
    line += f", {rate:,.0f} {unit}/s"
    if total and done < total:
        left = math.ceil(round((total - done) / rate, 3))  # never "0s left"
        line += f", about {duration(left)} left"
    elif total:
        line += f", in {duration(elapsed)}"
    return line


class Progress:
    """Call it with the count done so far; ``finish`` when the work ends.

    Args:
        what: the work, as the line starts (``publish``, ``dlq replay``...).
        unit: what is counted (``lines``, ``records``...).
        total: how many there are, when known (``total`` may be set later).
        stream: where to write (stderr); ``tty`` whether it is a terminal (asked when None).
        clock: seconds, monotonic (tests give their own).
    """

    def __init__(
        self,
        what: str,
        unit: str,
        total: int | None = None,
        *,
        stream: TextIO | None = None,
        tty: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what, self.unit, self.total = what, unit, total
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.clock = clock
        self.started = clock()
        self.every = TTY_EVERY_S if self.tty else LOG_EVERY_S
        self.next_at = self.started + self.every
        self.done = 0
        self.shown: int | None = None  # the count last shown

    def __call__(self, done: int) -> None:
        self.done = done
        now = self.clock()
        if now < self.next_at:
            return
        self.next_at = now + self.every
        self._show(now)

    def _show(self, now: float) -> None:
        line = progress_line(self.what, self.unit, self.done, self.total, now - self.started)
        # Written as is: click.echo would strip the erase code whenever it doubts a terminal.
        self.stream.write(f"\r{line}{_CLEAR}" if self.tty else f"{line}\n")
        self.stream.flush()
        self.shown = self.done

    def finish(self) -> None:
        """The last count, with the time it took, if a line was shown at all."""
        if self.shown is None:
            return
        if self.shown != self.done:
            self._show(self.clock())
        if self.tty:
            self.stream.write("\n")  # keep the last line; the summary goes below it
            self.stream.flush()
