"""The cache key names everything an answer depends on; the cache itself needs Redis.

``CachedExtractor`` against a live Redis (hits, misses, forget) is covered by
``tests/integration/test_cache_and_limits.py``; here only what runs without one.
"""

import logging
from typing import Any

import pytest
import redis.asyncio as aioredis

from streams.core.profile_schema import ProfileSchema
from streams.errors import CachePurgeFailed
from streams.extract.cache import CachedExtractor, answer_digest, subject_key
from streams.extract.prompt import PROMPT_VERSION
from streams.extract.rules import RuleExtractor
from streams.metrics import REGISTRY
from tests.unit.helpers import MakeMessage


def _key(make_message: MakeMessage, **overrides: Any) -> str:
    parts: dict[str, Any] = {
        "extractor": "openai:m",
        "schema_id": "UserProfile/v1",
        "profile": {"name": "Ana", "languages": ["Spanish"]},
        "messages": [make_message("m1", "I'm Ana"), make_message("m2", "I live in Paris")],
    }
    return answer_digest(**(parts | overrides))


def test_the_same_question_gets_the_same_key(make_message: MakeMessage) -> None:
    reordered = {"languages": ["Spanish"], "name": "Ana"}
    assert _key(make_message) == _key(make_message, profile=reordered)


@pytest.mark.parametrize(
    "change",
    [
        {"extractor": "openai:other-model"},
        {"schema_id": "UserProfile/v2"},
        {"profile": {"name": "Ana", "languages": []}},
    ],
)
def test_anything_the_answer_depends_on_changes_the_key(
    make_message: MakeMessage, change: dict[str, Any]
) -> None:
    assert _key(make_message, **change) != _key(make_message)


def test_message_ids_and_texts_are_part_of_the_key(make_message: MakeMessage) -> None:
    other_id = [make_message("m9", "I'm Ana"), make_message("m2", "I live in Paris")]
    other_text = [make_message("m1", "I'm Anna"), make_message("m2", "I live in Paris")]
    keys = {_key(make_message), _key(make_message, messages=other_id)}
    keys.add(_key(make_message, messages=other_text))
    assert len(keys) == 3


def test_context_is_part_of_the_key_and_apart_from_the_messages(
    make_message: MakeMessage,
) -> None:
    m1, m2 = make_message("m1", "I'm Ana"), make_message("m2", "I live in Paris")
    keys = {
        _key(make_message, messages=[m1, m2]),
        _key(make_message, messages=[m2], context=[m1]),
        _key(make_message, messages=[m2]),
    }
    assert len(keys) == 3
    assert _key(make_message, context=[]) == _key(make_message)


def test_the_digest_is_a_sha256_that_does_not_spell_out_the_prompt(
    make_message: MakeMessage,
) -> None:
    digest = _key(make_message)
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert PROMPT_VERSION not in digest


SUBJECTS = ["alice", "alice:bob", "a*", "a", "x[1]", "x?", "back\\slash", "", "é/ü #", "user"]


def test_each_subject_has_a_key_of_its_own_with_no_glob_or_separator_in_it() -> None:
    keys = [subject_key("ps", subject) for subject in SUBJECTS]
    assert len(set(keys)) == len(SUBJECTS)
    for key in keys:
        prefix, cache, kind, encoded = key.split(":")
        assert (prefix, cache, kind) == ("ps", "extraction", "user")
        assert not set(encoded) & set("*?[]\\:{}/+= ")


def test_a_kind_subject_and_a_user_of_the_same_name_do_not_share_a_key() -> None:
    assert subject_key("ps", "acme", "team") != subject_key("ps", "acme")
    assert subject_key("ps", "acme") == subject_key("ps", "acme", "user")


def _lookups(result: str) -> float:
    return (
        REGISTRY.get_sample_value("profile_stream_extraction_cache_total", {"result": result})
        or 0.0
    )


async def test_without_redis_every_lookup_is_a_miss_and_extraction_goes_on(
    make_message: MakeMessage, schema: ProfileSchema, caplog: pytest.LogCaptureFixture
) -> None:
    # Nothing listens on port 1: the connection is refused at once, no Redis is started.
    nowhere = aioredis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    cached = CachedExtractor(RuleExtractor(), nowhere, "ps")
    messages = [make_message("m1", "I speak French")]
    hits, misses = _lookups("hit"), _lookups("miss")
    with caplog.at_level(logging.WARNING, logger="streams.extract.cache"):
        for _ in range(2):
            result = await cached.extract({}, messages, schema)
            assert [op.value for op in result.operations] == ["French"]
    assert (_lookups("hit"), _lookups("miss")) == (hits, misses + 2)
    warnings = [r for r in caplog.records if r.name == "streams.extract.cache"]
    assert len(warnings) == 1  # the outage is reported once, not per request
    await cached.close()


async def test_a_forget_that_cannot_reach_redis_retries_then_raises(
    caplog: pytest.LogCaptureFixture,
) -> None:
    nowhere = aioredis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    cached = CachedExtractor(RuleExtractor(), nowhere, "ps", purge_attempts=3, purge_backoff_s=0.01)
    with (
        caplog.at_level(logging.WARNING, logger="streams.extract.cache"),
        pytest.raises(CachePurgeFailed, match=r"user 'x\[1\]'.*after 3 attempts") as raised,
    ):
        await cached.forget("x[1]")
    assert raised.value.retriable
    retries = [r for r in caplog.records if "retrying" in r.getMessage()]
    assert len(retries) == 2
    await cached.close()
