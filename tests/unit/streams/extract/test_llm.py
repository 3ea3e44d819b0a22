"""The model client: backoff with jitter, Retry-After, the answer bound, failures named."""

import socket
from types import SimpleNamespace

import openai
import pytest

from streams.core.profile_schema import ProfileSchema
from streams.errors import ExtractionFailed
from streams.extract.llm import LLMExtractor, _retry_after
from streams.extract.prompt import max_operations
from streams.settings import load_settings
from tests.fakes.llm_server import FakeLLM, Fault
from tests.unit.helpers import MakeMessage


@pytest.fixture
def extractor(clean_env: pytest.MonkeyPatch) -> LLMExtractor:
    clean_env.setenv("PROFILE_STREAM_LLM_BACKOFF_S", "0.5")
    clean_env.setenv("PROFILE_STREAM_LLM_BACKOFF_MAX_S", "4")
    return LLMExtractor(load_settings())


def _status_error(headers: dict[str, str]) -> openai.APIStatusError:
    # A stand-in for the HTTP response: only what APIStatusError and _retry_after read.
    response = SimpleNamespace(status_code=429, request=None, headers=headers)
    return openai.APIStatusError("rate limited", response=response, body=None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("attempt", "ceiling"), [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 4.0), (30, 4.0)]
)
def test_backoff_doubles_up_to_the_ceiling_with_jitter(
    extractor: LLMExtractor, attempt: int, ceiling: float
) -> None:
    delays = [extractor._delay(attempt, None) for _ in range(300)]
    assert all(ceiling / 2 <= d <= ceiling for d in delays)
    assert len(set(delays)) > 1  # jittered, so workers do not retry in lockstep


def test_retry_after_is_a_floor(extractor: LLMExtractor) -> None:
    assert all(extractor._delay(1, 30.0) == 30.0 for _ in range(50))
    assert all(0.25 <= extractor._delay(1, 0.0) <= 0.5 for _ in range(50))


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "7"}, 7.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after": "3600"}, 60.0),
        ({}, None),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, None),
    ],
)
def test_retry_after_header(headers: dict[str, str], expected: float | None) -> None:
    assert _retry_after(_status_error(headers)) == expected


# Against the scripted OpenAI-compatible server (an HTTP server on this host, no other service):
# what goes over the wire and how a cut-off answer ends.


def _extractor(env: pytest.MonkeyPatch, llm: FakeLLM, **settings: str) -> LLMExtractor:
    env.setenv("PROFILE_STREAM_OPENAI_BASE_URL", llm.url)
    env.setenv("PROFILE_STREAM_LLM_BACKOFF_S", "0")
    for name, value in settings.items():
        env.setenv(f"PROFILE_STREAM_{name}", value)
    return LLMExtractor(load_settings())


@pytest.mark.parametrize(
    ("settings", "field", "limit"),
    [
        ({}, "max_tokens", 1024),
        ({"LLM_MAX_OUTPUT_TOKENS": "300"}, "max_tokens", 300),
        ({"LLM_MAX_TOKENS_FIELD": "max_completion_tokens"}, "max_completion_tokens", 1024),
    ],
)
async def test_every_call_bounds_the_answer(
    clean_env: pytest.MonkeyPatch,
    llm: FakeLLM,
    schema: ProfileSchema,
    make_message: MakeMessage,
    settings: dict[str, str],
    field: str,
    limit: int,
) -> None:
    extractor = _extractor(clean_env, llm, **settings)
    try:
        await extractor.extract(schema.empty(), [make_message("m1", "hello")], schema)
    finally:
        await extractor.close()
    (request,) = llm.requests
    assert request["body"][field] == limit
    other = {"max_tokens", "max_completion_tokens"} - {field}
    assert not other & request["body"].keys()


LOOP = (
    '{"operations": [{"field": "name", "op": "set", "value": "Al", "message_id": "m1", '
    '"quote": "hello Al"}, {"field": "name", "op": "set", "value": "Al", "message_id": "m1", '
    '"quote": "hello Al"}, {"field": "name", "op": "set", "val'
)


async def test_a_cut_off_answer_keeps_its_complete_operations(
    clean_env: pytest.MonkeyPatch, llm: FakeLLM, schema: ProfileSchema, make_message: MakeMessage
) -> None:
    llm.on("hello", faults=[Fault(content=LOOP, finish_reason="length", times=5)])
    extractor = _extractor(clean_env, llm, LLM_MAX_ATTEMPTS="4")
    try:
        got = await extractor.extract(schema.empty(), [make_message("m1", "hello Al")], schema)
    finally:
        await extractor.close()
    assert [(o.field, o.value) for o in got.operations] == [("name", "Al"), ("name", "Al")]
    assert len(llm.requests) == 1 and got.usage.calls == 1


async def test_a_cut_off_answer_with_nothing_complete_is_asked_once_more_penalising_repetition(
    clean_env: pytest.MonkeyPatch, llm: FakeLLM, schema: ProfileSchema, make_message: MakeMessage
) -> None:
    llm.on(
        "hello",
        {"field": "languages", "op": "add", "value": "English"},
        faults=[Fault(content='{"operations": [{"field": "na', finish_reason="length")],
    )
    extractor = _extractor(clean_env, llm, LLM_MAX_ATTEMPTS="4")
    try:
        got = await extractor.extract(schema.empty(), [make_message("m1", "hello")], schema)
    finally:
        await extractor.close()
    assert [o.value for o in got.operations] == ["English"]
    first, second = (r["body"] for r in llm.requests)
    assert "frequency_penalty" not in first and second["frequency_penalty"] > 0


async def test_a_twice_cut_off_answer_fails_naming_the_limit(
    clean_env: pytest.MonkeyPatch, llm: FakeLLM, schema: ProfileSchema, make_message: MakeMessage
) -> None:
    llm.on("hello", faults=[Fault(content='{"operations": [', finish_reason="length", times=5)])
    extractor = _extractor(clean_env, llm, LLM_MAX_ATTEMPTS="4")
    try:
        with pytest.raises(ExtractionFailed, match="PROFILE_STREAM_LLM_MAX_OUTPUT_TOKENS") as e:
            await extractor.extract(schema.empty(), [make_message("m1", "hello")], schema)
    finally:
        await extractor.close()
    assert len(llm.requests) == 2
    assert (e.value.cause, e.value.attempts) == ("cut_off", 2)


async def test_an_answer_in_a_code_fence_is_read(
    clean_env: pytest.MonkeyPatch, llm: FakeLLM, schema: ProfileSchema, make_message: MakeMessage
) -> None:
    fenced = '```json\n{"operations": [{"field": "name", "op": "set", "value": "Al"}]}\n```'
    llm.on("hello", faults=[Fault(content=fenced)])
    extractor = _extractor(clean_env, llm)
    try:
        got = await extractor.extract(schema.empty(), [make_message("m1", "hello")], schema)
    finally:
        await extractor.close()
    assert [o.value for o in got.operations] == ["Al"] and len(llm.requests) == 1


async def test_the_answer_grammar_bounds_the_operations_by_the_source_turns(
    clean_env: pytest.MonkeyPatch, llm: FakeLLM, schema: ProfileSchema, make_message: MakeMessage
) -> None:
    extractor = _extractor(clean_env, llm)
    turns = [make_message("m1", "a"), make_message("m2", "b", role="assistant")]
    try:
        await extractor.extract(schema.empty(), turns, schema)
    finally:
        await extractor.close()
    fmt = llm.requests[0]["body"]["response_format"]["json_schema"]["schema"]
    assert fmt["properties"]["operations"]["maxItems"] == max_operations(1) == 7


async def test_a_refused_connection_is_reported_as_refused(
    clean_env: pytest.MonkeyPatch, schema: ProfileSchema, make_message: MakeMessage
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    clean_env.setenv("PROFILE_STREAM_OPENAI_BASE_URL", f"http://127.0.0.1:{port}/v1")
    clean_env.setenv("PROFILE_STREAM_LLM_BACKOFF_S", "0")
    clean_env.setenv("PROFILE_STREAM_LLM_MAX_ATTEMPTS", "2")
    extractor = LLMExtractor(load_settings())
    try:
        with pytest.raises(ExtractionFailed, match=f"connection refused by 127.0.0.1:{port}"):
            await extractor.extract(schema.empty(), [make_message("m1", "hello")], schema)
    finally:
        await extractor.close()
