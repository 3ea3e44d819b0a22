"""A rate limit on model requests and tokens shared by every worker, through Redis.

GCRA (generic cell rate algorithm) in one Lua script: each caller reserves its cost and learns
how long to wait, atomically, on Redis's clock. When Redis cannot be reached the worker keeps
going with the same algorithm in memory (its own share only) and logs that once a minute.

The burst is ``PROFILE_STREAM_LLM_BURST_S`` seconds of each budget (10 s by default): after an
idle spell, that much is spent at once, and a call costing more waits only for the rest. Why
10 s: providers state limits per minute but may enforce them over shorter windows (Azure
OpenAI evaluates its per-minute request limit over 1 s or 10 s windows; OpenAI says limits may
be "quantized" over shorter periods), and in any sliding minute GCRA admits at most
``(60 + burst_s) / 60`` of the budget, here 1/6 above it, once after idle. A larger burst makes
429s likelier, and a 429 that outlasts ``PROFILE_STREAM_LLM_MAX_ATTEMPTS`` dead-letters the batch;
a provider that refills a token bucket of a whole minute (Anthropic's does) can take up to 60.
"""

import asyncio
import logging
import time
from dataclasses import dataclass, field

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from streams.extract.outage import OutageWarning
from streams.metrics import RATE_LIMIT_WAIT
from streams.settings import Settings

__all__ = ["Limit", "LocalGCRA", "RateLimiter", "limits_from_settings"]

logger = logging.getLogger(__name__)

# KEYS[1]: the limit's key. ARGV: cost, emission interval (s per unit), burst tolerance (s).
# Returns the wait in microseconds before the reserved cost may be spent.
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + tonumber(ARGV[1]) * tonumber(ARGV[2])
local wait = new_tat - tonumber(ARGV[3]) - now
if wait < 0 then wait = 0 end
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil((new_tat - now) * 1000) + 1000)
return math.floor(wait * 1000000)
"""


@dataclass(frozen=True)
class Limit:
    """``per_minute`` units a minute, with bursts of up to ``burst`` units."""

    name: str
    per_minute: float
    burst: float

    @property
    def interval(self) -> float:
        """Seconds one unit takes at the steady rate (GCRA's emission interval)."""
        return 60.0 / self.per_minute

    @property
    def tolerance(self) -> float:
        """How many seconds ahead of now reservations may run before callers wait."""
        return self.burst * self.interval


def limits_from_settings(settings: Settings) -> list[Limit]:
    """The request and token limits the settings ask for (none set: an empty list).

    Each bursts ``llm_burst_s`` seconds of its per-minute budget, and at least one unit.
    """
    return [
        Limit(name, per_minute, burst=max(1.0, per_minute * settings.llm_burst_s / 60))
        for name, per_minute in (
            ("requests", settings.llm_requests_per_min),
            ("tokens", settings.llm_tokens_per_min),
        )
        if per_minute > 0
    ]


@dataclass
class LocalGCRA:
    """The same reservation in memory: the fallback when Redis is away. Pure."""

    #: Per limit name, the theoretical arrival time: when the capacity reserved so far is spent.
    tat: dict[str, float] = field(default_factory=dict)

    def reserve(self, limit: Limit, cost: float, now: float) -> float:
        """Reserve ``cost`` units of ``limit`` at ``now``; returns the seconds to wait."""
        tat = max(self.tat.get(limit.name, now), now)
        new_tat = tat + cost * limit.interval
        self.tat[limit.name] = new_tat
        return max(0.0, new_tat - limit.tolerance - now)


class RateLimiter:
    """Waits as long as the shared limits ask before each model request."""

    def __init__(self, redis: aioredis.Redis | None, limits: list[Limit], prefix: str) -> None:
        self._redis, self._limits, self._prefix = redis, limits, prefix
        self._local = LocalGCRA()
        self._script = redis.register_script(_RESERVE) if redis is not None else None
        self._warn = OutageWarning(
            logger, "Redis unreachable for the rate limit (%s); limiting locally"
        )

    async def acquire(self, tokens: int) -> float:
        """Reserve one request and ``tokens`` tokens; sleeps the wait and returns it."""
        costs = {"requests": 1.0, "tokens": float(tokens)}
        wait = 0.0
        for limit in self._limits:
            wait = max(wait, await self._reserve(limit, costs[limit.name]))
        if wait > 0:
            RATE_LIMIT_WAIT.inc(wait)
            await asyncio.sleep(wait)
        return wait

    async def _reserve(self, limit: Limit, cost: float) -> float:
        if self._script is not None:
            try:
                micros = await self._script(
                    keys=[f"{self._prefix}:ratelimit:{limit.name}"],
                    args=[cost, limit.interval, limit.tolerance],
                )
                return int(micros) / 1_000_000
            except RedisError as exc:
                self._warn(exc)
        return self._local.reserve(limit, cost, time.monotonic())
