"""The extraction-result cache in Redis: the same question is never paid for twice.

The key hashes everything the answer depends on (extractor and model, prompt version, profile
schema, the current profile, the messages), so a replay after a crash or a rebalance gets the
same operations without a model call. Redis being away only costs money: the worker goes on
without the cache and logs that once a minute.
"""

import hashlib
import logging
from collections.abc import Sequence
from typing import Any

import orjson
import redis.asyncio as aioredis
from pydantic import TypeAdapter, ValidationError
from redis.exceptions import RedisError

from schemas import ChatMessage, PatchOperation
from streams.core.profile_schema import ProfileSchema
from streams.extract.base import Extraction, Extractor
from streams.extract.outage import OutageWarning
from streams.extract.prompt import PROMPT_VERSION
from streams.metrics import CACHE

__all__ = ["CachedExtractor", "cache_key"]

logger = logging.getLogger(__name__)
_OPS = TypeAdapter(list[PatchOperation])
_TTL_S = 7 * 24 * 3600


def cache_key(
    prefix: str,
    extractor: str,
    schema_id: str,
    profile: dict[str, Any],
    messages: Sequence[ChatMessage],
) -> str:
    """The cache key for one extraction; the user id is in it, so a user can be forgotten."""
    digest = hashlib.sha256()
    for part in (extractor, PROMPT_VERSION, schema_id):
        digest.update(part.encode() + b"\0")
    digest.update(orjson.dumps(profile, option=orjson.OPT_SORT_KEYS))
    for m in messages:
        digest.update(b"\0" + m.message_id.encode() + b"\0" + m.content.encode())
    user = messages[0].user_id if messages else ""
    return f"{prefix}:extraction:{user}:{digest.hexdigest()}"


class CachedExtractor:
    """Wraps an extractor with the Redis cache; counts hits and misses in the metrics."""

    def __init__(self, inner: Extractor, redis: aioredis.Redis, prefix: str) -> None:
        self._inner, self._redis, self._prefix = inner, redis, prefix
        self.name = inner.name
        self._warn = OutageWarning(logger, "Redis unreachable (%s); extracting without the cache")

    async def extract(
        self, profile: dict[str, Any], messages: Sequence[ChatMessage], schema: ProfileSchema
    ) -> Extraction:
        """The cached operations for this exact question, else the inner extractor's."""
        key = cache_key(self._prefix, self.name, schema.schema_id, profile, messages)
        cached = await self._get(key)
        if cached is not None:
            CACHE.labels("hit").inc()
            return cached
        CACHE.labels("miss").inc()
        result = await self._inner.extract(profile, messages, schema)
        await self._set(key, result)
        return result

    async def forget(self, user_id: str) -> int:
        """Delete every cached extraction of ``user_id``; returns how many were deleted."""
        deleted = 0
        try:
            async for key in self._redis.scan_iter(f"{self._prefix}:extraction:{user_id}:*"):
                deleted += int(await self._redis.delete(key))
        except RedisError as exc:
            self._warn(exc)
        return deleted

    async def close(self) -> None:
        """Close the inner extractor and the Redis connections."""
        await self._inner.close()
        await self._redis.aclose()

    async def _get(self, key: str) -> Extraction | None:
        try:
            raw = await self._redis.get(key)
        except RedisError as exc:
            self._warn(exc)
            return None
        if raw is None:
            return None
        try:
            return Extraction(_OPS.validate_json(raw))
        except ValidationError:
            return None

    async def _set(self, key: str, result: Extraction) -> None:
        try:
            await self._redis.set(key, _OPS.dump_json(result.operations), ex=_TTL_S)
        except RedisError as exc:
            self._warn(exc)
