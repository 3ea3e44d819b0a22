"""`make real-model`'s verdict: what its recording proxy sees of the worker's extractor talking to
a model server, and when the lane fails (exit 1) or passes (exit 0).

The server here is the scripted fake; the lane itself runs against llama.cpp (README,
"Against a real model"). The extractor is the worker's own, through the real ``openai`` client.
"""

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from deploy.demo import Outcome
from deploy.model_proxy import Call, RecordingProxy
from deploy.real_model import fit_timeout, problems
from streams.core.profile_schema import ProfileSchema
from streams.errors import ExtractionFailed
from streams.extract.llm import LLMExtractor
from streams.settings import load_settings
from tests.fakes.llm_server import FakeLLM, Fault
from tests.unit.helpers import MakeMessage

BOUND = 2048


@pytest.fixture
async def fake() -> AsyncIterator[FakeLLM]:
    server = FakeLLM()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def proxy(fake: FakeLLM) -> AsyncIterator[RecordingProxy]:
    async with RecordingProxy(fake.url.removesuffix("/v1")) as recording:
        yield recording


@pytest.fixture
async def extractor(
    clean_env: pytest.MonkeyPatch, proxy: RecordingProxy
) -> AsyncIterator[LLMExtractor]:
    clean_env.setenv("OPENAI_BASE_URL", f"{proxy.url}/v1")
    clean_env.setenv("PROFILE_STREAM_LLM_TIMEOUT_S", "0.5")
    clean_env.setenv("PROFILE_STREAM_LLM_MAX_ATTEMPTS", "2")
    clean_env.setenv("PROFILE_STREAM_LLM_BACKOFF_S", "0")
    clean_env.setenv("PROFILE_STREAM_LLM_BACKOFF_MAX_S", "0")
    clean_env.setenv("PROFILE_STREAM_LLM_MAX_OUTPUT_TOKENS", str(BOUND))
    client = LLMExtractor(load_settings())
    yield client
    await client.close()


async def _settled(calls: list[Call], timeout: float = 5.0) -> None:
    """Until every call has an answer or an error (a client's hang-up reaches the proxy a
    moment after the client gave up)."""
    deadline = time.monotonic() + timeout
    while any(c.status is None and c.error is None for c in calls):
        assert time.monotonic() < deadline, f"calls not settled after {timeout}s: {calls}"
        await asyncio.sleep(0.02)


async def test_an_answered_call_is_recorded_as_sent_and_passes(
    fake: FakeLLM,
    proxy: RecordingProxy,
    extractor: LLMExtractor,
    schema: ProfileSchema,
    make_message: MakeMessage,
) -> None:
    fake.on("Alice", {"field": "name", "op": "set", "value": "Alice"})
    message = make_message("m-alice", "I'm Alice")
    extraction = await extractor.extract({}, [message], schema)
    [call] = proxy.calls
    assert extraction.operations[0].value == "Alice"  # the bytes came back unchanged
    assert (call.status, call.finish_reason, call.completion_tokens) == (200, "stop", 20)
    assert (call.bound_field, call.bound) == ("max_tokens", BOUND)
    assert (call.response_format, call.strict) == ("json_schema", True)
    assert problems(proxy.calls, [Outcome("m-alice")], BOUND) == []


async def test_a_refused_request_fails_the_lane_with_the_servers_reason(
    fake: FakeLLM,
    proxy: RecordingProxy,
    extractor: LLMExtractor,
    schema: ProfileSchema,
    make_message: MakeMessage,
) -> None:
    refusal = '{"error": {"message": "JSON schema conversion failed: unsupported anyOf"}}'
    fake.on("Alice", faults=[Fault(status=400, body=refusal)])
    with pytest.raises(ExtractionFailed):
        await extractor.extract({}, [make_message("m-alice", "I'm Alice")], schema)
    letter = {"reason": "model endpoint refused the request: HTTP 400"}
    found = problems(proxy.calls, [Outcome("m-alice", dead_letter=letter)], BOUND)
    assert found == [
        "the server refused a call: HTTP 400: JSON schema conversion failed: unsupported anyOf",
        "message 1: none of its 1 calls was answered: JSON schema conversion failed: "
        "unsupported anyOf",
    ]


async def test_calls_that_all_time_out_fail_the_lane(
    fake: FakeLLM,
    proxy: RecordingProxy,
    extractor: LLMExtractor,
    schema: ProfileSchema,
    make_message: MakeMessage,
) -> None:
    fake.on("Alice", faults=[Fault(stall_s=3, times=2)])
    with pytest.raises(ExtractionFailed, match="no answer from"):
        await extractor.extract({}, [make_message("m-alice", "I'm Alice")], schema)
    await _settled(proxy.calls)
    assert [c.status for c in proxy.calls] == [None, None]
    assert all("the worker gave up after" in (c.error or "") for c in proxy.calls)
    [found] = problems(proxy.calls, [Outcome("m-alice", dead_letter={})], BOUND)
    assert found.startswith("message 1: none of its 2 calls was answered: 2 x the worker gave up")


async def test_an_answer_cut_off_at_the_bound_is_handled_and_passes(
    fake: FakeLLM,
    proxy: RecordingProxy,
    extractor: LLMExtractor,
    schema: ProfileSchema,
    make_message: MakeMessage,
) -> None:
    cut = Fault(content='{"operations": [{"field": "na', finish_reason="length", times=2)
    fake.on("Alice", faults=[cut])
    with pytest.raises(ExtractionFailed, match="finish_reason=length") as failure:
        await extractor.extract({}, [make_message("m-alice", "I'm Alice")], schema)
    assert failure.value.attempts == 2  # asked once more, repetition penalised
    assert problems(proxy.calls, [Outcome("m-alice", dead_letter={})], BOUND) == []


def test_an_answer_over_the_bound_or_out_of_format_fails_the_lane() -> None:
    over = Call("/v1/chat/completions", request="m1", bound=16, status=200, finish_reason="length")
    over.completion_tokens = 40
    prose = Call("/v1/chat/completions", request="m2", bound=16, status=200, finish_reason="stop")
    prose.content = "Alice is from California."
    assert problems([over, prose], [Outcome("m1"), Outcome("m2")], 16) == [
        "max_tokens ignored: 40 tokens over 16",
        "response_format ignored: a complete answer is not a patch object",
    ]


def test_a_message_the_worker_never_handled_fails_the_lane() -> None:
    answered = Call("/v1/chat/completions", request="m1", status=200, content='{"operations":[]}')
    assert problems([answered], [Outcome("m1", handled=False)], BOUND) == [
        "message 1: the worker did not handle it in time"
    ]


def test_the_timeout_covers_an_answer_as_long_as_the_bound_three_times() -> None:
    call = Call("/v1/chat/completions", status=200, prompt_tokens=600, latency_s=2.0)
    call.timings = {"prompt_per_second": 300.0, "predicted_per_second": 50.0}
    # 600 / 300 = 2 s of prompt, 2048 / 50 = 40.96 s of answer: 3 x 42.96 s, rounded up
    assert fit_timeout(call, BOUND) == 129.0
    assert fit_timeout(Call("/v1/chat/completions", latency_s=2.0), BOUND) == 16.0
