"""GCRA reservations: a burst passes at once, then callers are spaced at the limit's rate."""

import pytest

from streams.extract.ratelimit import Limit, LocalGCRA


def test_a_burst_passes_then_requests_are_spaced_at_the_rate() -> None:
    limit = Limit("requests", per_minute=60, burst=3)
    gcra = LocalGCRA()
    waits = [gcra.reserve(limit, 1, now=100.0) for _ in range(6)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert waits[3:] == pytest.approx([1.0, 2.0, 3.0])


def test_capacity_comes_back_with_time() -> None:
    limit = Limit("requests", per_minute=60, burst=1)
    gcra = LocalGCRA()
    assert gcra.reserve(limit, 1, now=0.0) == 0.0
    assert gcra.reserve(limit, 1, now=0.0) == pytest.approx(1.0)
    assert gcra.reserve(limit, 1, now=10.0) == 0.0


def test_token_costs_weigh_in_proportion() -> None:
    limit = Limit("tokens", per_minute=60_000, burst=1_000)
    gcra = LocalGCRA()
    assert gcra.reserve(limit, 1_000, now=0.0) == 0.0
    assert gcra.reserve(limit, 2_000, now=0.0) == pytest.approx(2.0)
