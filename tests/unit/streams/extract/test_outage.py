"""A dependency that stays away is reported once, not once per request."""

import logging

import pytest

from streams.extract.outage import OutageWarning


def test_the_first_failure_is_logged_and_repeats_within_the_interval_are_not(
    caplog: pytest.LogCaptureFixture,
) -> None:
    warn = OutageWarning(logging.getLogger("test.outage"), "Redis unreachable (%s)")
    with caplog.at_level(logging.WARNING, logger="test.outage"):
        for _ in range(100):
            warn(ConnectionError("refused"))
    assert [r.getMessage() for r in caplog.records] == ["Redis unreachable (refused)"]


def test_after_the_interval_it_is_logged_again(caplog: pytest.LogCaptureFixture) -> None:
    warn = OutageWarning(logging.getLogger("test.outage"), "down (%s)", interval_s=0.0)
    with caplog.at_level(logging.WARNING, logger="test.outage"):
        warn(ConnectionError("a"))
        warn(ConnectionError("b"))
    assert [r.getMessage() for r in caplog.records] == ["down (a)", "down (b)"]
