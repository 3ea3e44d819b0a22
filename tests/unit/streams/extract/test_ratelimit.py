"""GCRA reservations: a burst passes at once, then callers are spaced at the limit's rate.

The limiter shared through Redis is covered by ``tests/integration/test_cache_and_limits.py``;
here the in-memory fallback it uses when Redis is away (``redis=None``).
"""

import time

import pytest

from streams.errors import ConfigError
from streams.extract.ratelimit import Limit, LocalGCRA, RateLimiter, limits_from_settings
from streams.metrics import REGISTRY
from streams.settings import load_settings


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


def test_the_settings_give_a_burst_of_burst_s_seconds_of_each_budget() -> None:
    settings = load_settings(llm_requests_per_min=30, llm_tokens_per_min=12_000, llm_burst_s=15)
    requests, tokens = limits_from_settings(settings)
    assert (requests.name, tokens.name) == ("requests", "tokens")
    assert requests.burst == pytest.approx(7.5) and tokens.burst == pytest.approx(3_000)
    assert load_settings().llm_burst_s == 10.0
    assert limits_from_settings(load_settings()) == []  # no limit set, none enforced
    tiny = limits_from_settings(load_settings(llm_requests_per_min=1, llm_burst_s=1))
    assert tiny[0].burst == 1.0  # at least one request passes at once


@pytest.mark.parametrize("burst_s", [0, 61])
def test_a_burst_outside_a_minute_is_refused_naming_the_variable(burst_s: float) -> None:
    with pytest.raises(ConfigError, match="PROFILE_STREAM_LLM_BURST_S"):
        load_settings(llm_burst_s=burst_s)


def test_when_idle_a_call_up_to_the_burst_does_not_wait_and_a_larger_one_waits_the_rest() -> None:
    # 10k tokens a minute with the default 10 s burst: 1,666.7 tokens at once, 6 ms per token.
    (tokens,) = limits_from_settings(load_settings(llm_tokens_per_min=10_000))
    assert tokens.burst == pytest.approx(10_000 / 6)
    assert LocalGCRA().reserve(tokens, 1_666, now=0.0) == 0.0
    # Before: a one-second burst (166.7 tokens) made a 3,000-token call wait 17 s.
    assert LocalGCRA().reserve(tokens, 3_000, now=0.0) == pytest.approx(
        (3_000 - 10_000 / 6) * 0.006
    )
    assert LocalGCRA().reserve(tokens, 3_000, now=0.0) == pytest.approx(8.0)
    spent = LocalGCRA()
    assert spent.reserve(tokens, 1_666, now=0.0) == 0.0
    assert spent.reserve(tokens, 1_000, now=0.0) == pytest.approx(1_000 * 0.006, abs=0.01)


def _waited_total() -> float:
    return REGISTRY.get_sample_value("profile_stream_rate_limit_wait_seconds_total") or 0.0


async def test_without_redis_the_limiter_sleeps_the_local_wait_and_counts_it() -> None:
    limiter = RateLimiter(None, [Limit("requests", per_minute=6_000, burst=1)], "x")
    before = _waited_total()
    started = time.monotonic()
    waits = [await limiter.acquire(tokens=1) for _ in range(3)]
    assert waits[0] == 0.0 and 0.0 < waits[1] <= 0.01  # the burst, then one interval
    assert time.monotonic() - started >= sum(waits)
    assert _waited_total() - before == pytest.approx(sum(waits))


async def test_each_limit_is_charged_its_own_cost() -> None:
    tokens = Limit("tokens", per_minute=600_000, burst=1_000)  # 0.1 ms a token after 1,000
    limiter = RateLimiter(None, [Limit("requests", per_minute=60_000, burst=10), tokens], "x")
    assert await limiter.acquire(tokens=1_000) == 0.0
    assert 0.005 < await limiter.acquire(tokens=100) <= 0.01  # the tokens wait, not requests
