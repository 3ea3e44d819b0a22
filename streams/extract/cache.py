"""The extraction-result cache in Redis: the same question is never paid for twice.

Each subject's answers live in one Redis hash, ``<prefix>:extraction:<kind>:<subject>`` with the
subject base64url-encoded (so no user id can reach another's key, or glob anything); the field
is a digest of everything the answer depends on (extractor and model, prompt version, profile
schema, the current profile, the messages), so a replay after a crash or a rebalance gets the
same operations without a model call.

Expiry is per hash: each write sets the hash's TTL to 7 days, so a subject's answers go 7 days
after its last new answer (a hash over ``_MAX_ENTRIES`` fields is dropped and started again).
Forgetting a subject is one ``DEL`` of its hash; if Redis cannot do it after a few retries the
forget raises :class:`~streams.errors.CachePurgeFailed` instead of going on without the purge.
Redis being away on reads and writes only costs money: the worker goes on without the cache and
logs that once a minute.
"""

import asyncio
import base64
import hashlib
import logging
from collections.abc import Sequence
from typing import Any

import orjson
import redis.asyncio as aioredis
from pydantic import TypeAdapter, ValidationError
from redis.exceptions import RedisError

from schemas import ChatMessage, PatchOperation
from streams.core.kinds import USER
from streams.core.profile_schema import ProfileSchema
from streams.errors import CachePurgeFailed
from streams.extract.base import Extraction, Extractor
from streams.extract.outage import OutageWarning
from streams.extract.prompt import PROMPT_VERSION
from streams.extract.redis_batching import CommandBatcher
from streams.metrics import CACHE

__all__ = ["CachedExtractor", "answer_digest", "subject_key"]

logger = logging.getLogger(__name__)
_OPS = TypeAdapter(list[PatchOperation])
_TTL_S = 7 * 24 * 3600
#: A subject's hash is dropped and restarted past this many answers, so it cannot grow forever
#: while its TTL keeps being refreshed (a replay only needs the recent ones).
_MAX_ENTRIES = 1000

# KEYS[1]: the subject's hash. ARGV: digest, answer, TTL (s), most entries.
_STORE = """
if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[4])
    and redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  redis.call('DEL', KEYS[1])
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
"""


def subject_key(prefix: str, subject: str, kind: str = USER) -> str:
    """The hash holding every cached answer for ``subject`` of ``kind``.

    The subject is base64url-encoded (UTF-8, no padding): an injective encoding without ``:``
    or glob characters, so two subjects never share a key and no subject names a pattern.
    """
    encoded = base64.urlsafe_b64encode(subject.encode()).decode().rstrip("=")
    return f"{prefix}:extraction:{kind}:{encoded}"


def answer_digest(
    extractor: str,
    schema_id: str,
    profile: dict[str, Any],
    messages: Sequence[ChatMessage],
    context: Sequence[ChatMessage] = (),
) -> str:
    """The field of one extraction in its subject's hash: a digest of what the answer depends on."""
    digest = hashlib.sha256()
    for part in (extractor, PROMPT_VERSION, schema_id):
        digest.update(part.encode() + b"\0")
    digest.update(orjson.dumps(profile, option=orjson.OPT_SORT_KEYS))
    _add(digest, messages)
    if context:  # none: the digest of every answer cached before context existed
        digest.update(b"\0context")
        _add(digest, context)
    return digest.hexdigest()


def _add(digest: "hashlib._Hash", messages: Sequence[ChatMessage]) -> None:
    for m in messages:
        digest.update(b"\0" + m.message_id.encode() + b"\0" + m.content.encode())


class CachedExtractor:
    """Wraps an extractor with the Redis cache; counts hits and misses in the metrics.

    Args:
        inner: the extractor asked on a miss.
        redis: the client (its socket timeouts bound each attempt).
        prefix: the key prefix (the app id).
        purge_attempts: tries of a forget's ``DEL`` before :class:`CachePurgeFailed`.
        purge_backoff_s: the wait after the first failed try; it doubles after each.
    """

    def __init__(
        self,
        inner: Extractor,
        redis: aioredis.Redis,
        prefix: str,
        *,
        purge_attempts: int = 5,
        purge_backoff_s: float = 0.25,
    ) -> None:
        self._inner, self._redis, self._prefix = inner, redis, prefix
        self._purge_attempts, self._purge_backoff_s = max(1, purge_attempts), purge_backoff_s
        self.name = inner.name
        # Lookups and stores of concurrent batches share round trips (one pipeline).
        self._batch = CommandBatcher(redis)
        self._warn = OutageWarning(logger, "Redis unreachable (%s); extracting without the cache")

    async def extract(
        self,
        profile: dict[str, Any],
        messages: Sequence[ChatMessage],
        schema: ProfileSchema,
        *,
        subject: str | None = None,
        kind: str = USER,
        context: Sequence[ChatMessage] = (),
    ) -> Extraction:
        """The cached operations for this exact question, else the inner extractor's.

        The answer is kept under ``subject`` of ``kind`` (default: the first message's user).
        """
        owner = subject if subject is not None else (messages[0].user_id if messages else "")
        key = subject_key(self._prefix, owner, kind)
        field = answer_digest(self.name, schema.schema_id, profile, messages, context)
        cached = await self._get(key, field)
        if cached is not None:
            CACHE.labels("hit").inc()
            return cached
        CACHE.labels("miss").inc()
        result = await self._inner.extract(
            profile, messages, schema, subject=owner, kind=kind, context=context
        )
        await self._set(key, field, result)
        return result

    async def forget(self, subject: str, *, kind: str = USER) -> int:
        """Delete every cached answer of ``subject`` (one ``DEL``); returns how many there were.

        Raises:
            CachePurgeFailed: Redis failed every attempt (a few seconds in all); the caller must
                not acknowledge the forget.
        """
        await self._inner.forget(subject, kind=kind)
        key = subject_key(self._prefix, subject, kind)
        delay = self._purge_backoff_s
        for attempt in range(1, self._purge_attempts + 1):
            try:
                async with self._redis.pipeline(transaction=True) as pipe:
                    pipe.hlen(key)
                    pipe.delete(key)
                    count, _ = await pipe.execute()
                return int(count)
            except RedisError as exc:
                if attempt == self._purge_attempts:
                    raise CachePurgeFailed(
                        f"cannot delete the cached extractions of {kind} {subject!r} from Redis "
                        f"after {attempt} attempts ({exc}); check PROFILE_STREAM_REDIS_URL"
                    ) from exc
                logger.warning("cache purge failed (attempt %d): %s; retrying", attempt, exc)
                await asyncio.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")  # pragma: no cover

    async def close(self) -> None:
        """Close the inner extractor and the Redis connections (stores asked for are sent)."""
        await self._inner.close()
        await self._batch.aclose()
        await self._redis.aclose()

    async def _get(self, key: str, field: str) -> Extraction | None:
        try:
            raw = await self._batch.execute("HGET", key, field)
        except RedisError as exc:
            self._warn(exc)
            return None
        if raw is None:
            return None
        try:
            return Extraction(_OPS.validate_json(raw))
        except ValidationError:
            return None

    async def _set(self, key: str, field: str, result: Extraction) -> None:
        try:
            answer = _OPS.dump_json(result.operations)
            # EVAL, not EVALSHA: a pipeline cannot load a script Redis lost (a restart) on
            # NOSCRIPT; Redis keeps the compiled script by its digest all the same.
            await self._batch.execute("EVAL", _STORE, 1, key, field, answer, _TTL_S, _MAX_ENTRIES)
        except RedisError as exc:
            self._warn(exc)
