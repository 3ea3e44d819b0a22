"""The Redis-backed result cache and rate limit, against the real Redis and fake model."""

import time
import uuid
from datetime import UTC, datetime

import redis.asyncio as aioredis

from schemas import ChatMessage
from streams.core.profile_schema import load_profile_schema
from streams.extract.cache import CachedExtractor, subject_key
from streams.extract.llm import LLMExtractor
from streams.extract.ratelimit import Limit, RateLimiter
from streams.extract.rules import RuleExtractor
from streams.metrics import REGISTRY
from streams.settings import load_settings
from tests.fakes.llm_server import FakeLLM

from .harness import REDIS_URL

SCHEMA = load_profile_schema("schemas.profile:UserProfile")


def chat(user: str, text: str) -> ChatMessage:
    return ChatMessage(
        message_id=uuid.uuid4().hex,
        user_id=user,
        role="user",
        content=text,
        sent_at=datetime.now(UTC),
    )


def cache_lookups() -> tuple[float, float]:
    """The worker's cache hits and misses so far, as ``/metrics`` shows them."""

    def count(result: str) -> float:
        name = "profile_stream_extraction_cache_total"
        return REGISTRY.get_sample_value(name, {"result": result}) or 0.0

    return count("hit"), count("miss")


def extractor(
    fake: FakeLLM, redis: aioredis.Redis, limiter: RateLimiter | None = None
) -> CachedExtractor:
    settings = load_settings(
        openai_base_url=fake.url,
        openai_api_key="k",
        extractor="openai",
        llm_backoff_s=0.01,
        llm_backoff_max_s=0.01,
    )
    return CachedExtractor(LLMExtractor(settings, limiter), redis, f"it-{uuid.uuid4().hex[:8]}")


async def test_the_same_question_is_paid_for_once_and_forgotten_with_its_user(
    services: None, fake_llm: FakeLLM
) -> None:
    fake_llm.on("I speak Spanish", {"field": "languages", "op": "add", "value": "Spanish"})
    cached = extractor(fake_llm, aioredis.from_url(REDIS_URL))
    messages = [chat("zoe", "I speak Spanish")]
    hits, misses = cache_lookups()
    first = await cached.extract({}, messages, SCHEMA)
    again = await cached.extract({}, messages, SCHEMA)
    assert first.operations == again.operations and len(first.operations) == 1
    assert len(fake_llm.requests) == 1 and cache_lookups() == (hits + 1, misses + 1)

    assert await cached.forget("zoe") == 1
    await cached.extract({}, messages, SCHEMA)
    assert len(fake_llm.requests) == 2
    await cached.close()


async def test_a_forget_removes_exactly_its_own_subject_whatever_the_id_holds(
    services: None,
) -> None:
    prefix = f"it-{uuid.uuid4().hex[:8]}"
    redis = aioredis.from_url(REDIS_URL)
    cached = CachedExtractor(RuleExtractor(), aioredis.from_url(REDIS_URL), prefix)
    users = ["x[1]", "a*", "alice", "alice:bob", "ab"]
    for user in users:
        for text in ("I speak French", "I speak German"):
            await cached.extract({}, [chat(user, text)], SCHEMA)
    await cached.extract({}, [chat("zed", "I speak Thai")], SCHEMA, subject="alice", kind="team")

    async def entries() -> dict[str, int]:
        return {user: int(await redis.hlen(subject_key(prefix, user))) for user in users}

    assert await entries() == dict.fromkeys(users, 2)
    assert await cached.forget("a*") == 2
    assert await entries() == {"x[1]": 2, "a*": 0, "alice": 2, "alice:bob": 2, "ab": 2}
    assert await cached.forget("x[1]") == 2
    assert await cached.forget("alice") == 2
    assert await entries() == {"x[1]": 0, "a*": 0, "alice": 0, "alice:bob": 2, "ab": 2}
    assert await redis.exists(subject_key(prefix, "alice", "team")) == 1  # another kind's
    assert await cached.forget("alice", kind="team") == 1
    assert await cached.forget("nobody") == 0
    ttl = await redis.ttl(subject_key(prefix, "alice:bob"))
    assert 7 * 24 * 3600 - 60 < ttl <= 7 * 24 * 3600
    await redis.delete(subject_key(prefix, "alice:bob"), subject_key(prefix, "ab"))
    await redis.aclose()
    await cached.close()


async def test_without_redis_extraction_goes_on_uncached(fake_llm: FakeLLM) -> None:
    fake_llm.on("I speak French", {"field": "languages", "op": "add", "value": "French"})
    nowhere = aioredis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    cached = extractor(fake_llm, nowhere)
    messages = [chat("yan", "I speak French")]
    for _ in range(2):
        result = await cached.extract({}, messages, SCHEMA)
        assert [op.value for op in result.operations] == ["French"]
    assert len(fake_llm.requests) == 2
    await cached.close()


async def test_workers_share_one_request_limit_through_redis(services: None) -> None:
    redis = aioredis.from_url(REDIS_URL)
    prefix = f"it-{uuid.uuid4().hex[:8]}"
    limit = Limit("requests", per_minute=600, burst=2)  # one request per 0.1 s after 2
    a = RateLimiter(redis, [limit], prefix)
    b = RateLimiter(redis, [limit], prefix)
    started = time.monotonic()
    waited = {a: 0.0, b: 0.0}
    for limiter in (a, b, a, b, a, b):
        waited[limiter] += await limiter.acquire(tokens=10)
    elapsed = time.monotonic() - started
    assert elapsed >= 0.35  # 6 requests, 2 free: at least 4 spaced 0.1 s apart
    assert waited[a] > 0 and waited[b] > 0
    await redis.aclose()


async def test_the_limiter_falls_back_to_local_limits_without_redis() -> None:
    nowhere = aioredis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    limiter = RateLimiter(nowhere, [Limit("requests", per_minute=600, burst=1)], "x")
    waited = [await limiter.acquire(tokens=1) for _ in range(3)]
    assert sum(waited) >= 0.15
    await nowhere.aclose()
