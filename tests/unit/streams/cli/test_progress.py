"""Progress on stderr: what a line says, and how often one is written on a terminal and in a
log."""

import io

import pytest

from streams.cli.progress import LOG_EVERY_S, TTY_EVERY_S, Progress, duration, progress_line


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("seconds", "shown"), [(0, "0s"), (42.4, "42s"), (185, "3m05s"), (3720, "1h02m")]
)
def test_durations_read_as_a_person_says_them(seconds: float, shown: str) -> None:
    assert duration(seconds) == shown


def test_a_line_with_a_total_says_how_far_how_fast_and_how_long_still() -> None:
    line = progress_line("publish", "lines", 12_500, 50_000, elapsed=10)
    assert line == "publish: 12,500 of 50,000 lines (25%), 1,250 lines/s, about 30s left"
    nearly = progress_line("publish", "lines", 990, 1000, elapsed=1)
    assert nearly.endswith("990 lines/s, about 1s left")  # under a second is not "0s left"
    done = progress_line("publish", "lines", 50_000, 50_000, elapsed=40)
    assert done == "publish: 50,000 of 50,000 lines (100%), 1,250 lines/s, in 40s"


def test_a_line_without_a_total_says_the_count_and_rate_only() -> None:
    assert progress_line("dlq: reading", "records", 300, None, elapsed=2) == (
        "dlq: reading: 300 records, 150 records/s"
    )
    assert progress_line("migrate", "commands", 0, 10, elapsed=0.1) == (
        "migrate: 0 of 10 commands (0%)"
    )


def test_on_a_terminal_the_line_is_rewritten_in_place_a_few_times_a_second() -> None:
    clock, out = Clock(), io.StringIO()
    progress = Progress("publish", "lines", 1000, stream=out, tty=True, clock=clock)
    for done in range(1, 1001):
        clock.now += 0.001  # a line a millisecond: one second of work
        progress(done)
    progress.finish()
    written = out.getvalue()
    assert 1 / TTY_EVERY_S - 1 <= written.count("\r") <= 1 / TTY_EVERY_S + 1
    assert written.endswith("publish: 1,000 of 1,000 lines (100%), 1,000 lines/s, in 1s\x1b[K\n")
    assert written.count("\n") == 1  # one line on screen, rewritten


def test_quick_work_shows_nothing() -> None:
    clock, out = Clock(), io.StringIO()
    progress = Progress("publish", "lines", 10, stream=out, tty=True, clock=clock)
    for done in range(1, 11):
        clock.now += 0.01
        progress(done)
    progress.finish()
    assert out.getvalue() == ""


def test_in_a_log_a_plain_line_comes_only_every_ten_seconds_of_long_work() -> None:
    clock, out = Clock(), io.StringIO()
    progress = Progress("dlq replay", "letters", 60_000, stream=out, tty=False, clock=clock)
    for done in range(1, 60_001):
        clock.now += 0.001  # a minute of work
        progress(done)
    progress.finish()
    lines = out.getvalue().splitlines()
    assert len(lines) == 60 / LOG_EVERY_S and "\r" not in out.getvalue()
    assert lines[0] == "dlq replay: 10,000 of 60,000 letters (16%), 1,000 letters/s, about 50s left"
    assert lines[-1] == "dlq replay: 60,000 of 60,000 letters (100%), 1,000 letters/s, in 1m00s"
