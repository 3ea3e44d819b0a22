"""Where a new group starts: the setting's values, and the offsets and counts they give."""

from datetime import UTC, datetime, timedelta

import pytest

from streams.core.start_position import (
    LARGE_BACKLOG,
    RetainedRange,
    StartFrom,
    plan_first_start,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
# Partition 0 kept offsets 100..399, partition 1 is empty (nothing ever written), partition 2
# kept 0..49; a time picks 250 on partition 0 and no message on partition 2.
RETAINED = {
    0: RetainedRange(beginning=100, end=400, from_time=250),
    1: RetainedRange(beginning=0, end=0, from_time=None),
    2: RetainedRange(beginning=0, end=50, from_time=None),
}


@pytest.mark.parametrize(
    ("text", "mode", "shown"),
    [
        ("earliest", "earliest", "earliest"),
        (" Latest ", "latest", "latest"),
        ("2026-02-01T00:00:00Z", "time", "2026-02-01T00:00:00+00:00"),
        ("2026-02-01T09:30:00+02:00", "time", "2026-02-01T09:30:00+02:00"),
    ],
)
def test_the_setting_takes_earliest_latest_or_a_time_with_its_offset(
    text: str, mode: str, shown: str
) -> None:
    start = StartFrom.parse(text, now=NOW)
    assert start.mode == mode and str(start) == shown


def test_a_time_is_compared_with_kafka_timestamps_in_milliseconds() -> None:
    start = StartFrom.parse("2026-02-01T00:00:01.5Z", now=NOW)
    assert start.at_ms == int(datetime(2026, 2, 1, 0, 0, 1, 500_000, tzinfo=UTC).timestamp() * 1000)
    assert StartFrom.parse("latest").at_ms is None


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("beginning", "neither earliest, latest nor an RFC 3339 time"),
        ("2026-02-01T00:00:00", "no UTC offset"),
        ((NOW + timedelta(minutes=5)).isoformat(), "in the future; use latest"),
    ],
)
def test_a_bad_value_says_what_is_accepted(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        StartFrom.parse(text, now=NOW)


def test_earliest_extracts_everything_retained() -> None:
    first = plan_first_start(StartFrom("earliest"), RETAINED)
    assert first.offsets == {0: 100, 1: 0, 2: 0}
    assert (first.to_extract, first.skipped) == (300 + 50, 0)


def test_latest_starts_at_the_end_and_extracts_nothing_retained() -> None:
    first = plan_first_start(StartFrom("latest"), RETAINED)
    assert first.offsets == {0: 400, 1: 0, 2: 50}
    assert (first.to_extract, first.skipped) == (0, 300 + 50)


def test_a_time_starts_at_its_first_message_or_at_the_end_when_none_is_that_recent() -> None:
    first = plan_first_start(StartFrom.parse("2026-02-01T00:00:00Z", now=NOW), RETAINED)
    assert first.offsets == {0: 250, 1: 0, 2: 50}
    assert (first.to_extract, first.skipped) == (150, 150 + 50)


def test_only_a_large_backlog_gets_a_hint_naming_the_setting() -> None:
    small = plan_first_start(StartFrom("earliest"), {0: RetainedRange(0, LARGE_BACKLOG - 1)})
    large = plan_first_start(StartFrom("earliest"), {0: RetainedRange(0, LARGE_BACKLOG)})
    assert small.hint == ""
    assert "PROFILE_STREAM_START_FROM=latest" in large.hint
