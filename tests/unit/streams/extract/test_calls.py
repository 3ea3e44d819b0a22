"""Model calls counted by reason and outcome: every request the model server receives is
counted once, a retry as a retry, against the scripted OpenAI-compatible server (an HTTP
server on this host, no other service)."""

import pytest

from streams.core.profile_schema import ProfileSchema
from streams.errors import ExtractionFailed
from streams.extract.calls import CallOutcome, calls_of, following_up, record
from streams.extract.llm import LLMExtractor
from streams.metrics import REGISTRY
from streams.pipeline.ownership import Fenced
from streams.settings import load_settings
from tests.fakes.llm_server import FakeLLM, Fault
from tests.unit.helpers import MakeMessage

OUTCOMES = [str(o) for o in CallOutcome]


def counted(reason: str) -> dict[str, float]:
    """The calls counted so far for ``reason``, by outcome."""
    return {
        o: REGISTRY.get_sample_value(
            "profile_stream_model_calls_total", {"reason": reason, "outcome": o}
        )
        or 0.0
        for o in OUTCOMES
    }


def moved(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {o: after[o] - before[o] for o in OUTCOMES if after[o] != before[o]}


@pytest.fixture
def extractor(clean_env: pytest.MonkeyPatch, llm: FakeLLM) -> LLMExtractor:
    clean_env.setenv("PROFILE_STREAM_OPENAI_BASE_URL", llm.url)
    clean_env.setenv("PROFILE_STREAM_LLM_BACKOFF_S", "0")
    clean_env.setenv("PROFILE_STREAM_LLM_MAX_ATTEMPTS", "3")
    clean_env.setenv("PROFILE_STREAM_LLM_TIMEOUT_S", "0.3")
    return LLMExtractor(load_settings())


@pytest.mark.parametrize(
    ("faults", "expected"),
    [
        ([], {"ok": 1}),
        ([Fault(status=500)], {"retried": 1, "ok": 1}),
        ([Fault(status=429, times=2)], {"retried": 2, "ok": 1}),
        # A timeout whose call the server went on to answer: asked again, and both counted.
        ([Fault(stall_s=0.6)], {"retried": 1, "ok": 1}),
        (
            [Fault(content='{"operations": [{"fi', finish_reason="length")],
            {"cut_off_retry": 1, "ok": 1},
        ),
        ([Fault(status=503, times=5)], {"retried": 2, "failed": 1}),
        ([Fault(status=400)], {"failed": 1}),
    ],
    ids=["ok", "retried", "retried-twice", "timeout", "cut-off", "gave-up", "refused"],
)
async def test_each_call_the_server_receives_is_counted_once_with_its_outcome(
    extractor: LLMExtractor,
    llm: FakeLLM,
    schema: ProfileSchema,
    make_message: MakeMessage,
    faults: list[Fault],
    expected: dict[str, float],
) -> None:
    llm.on("hello", {"field": "languages", "op": "add", "value": "English"}, faults=faults)
    before = counted("idle")
    try:
        with calls_of("idle"):
            await extractor.extract(schema.empty(), [make_message("m1", "hello")], schema)
    except ExtractionFailed:
        assert "failed" in expected
    finally:
        await extractor.close()
    assert moved(before, counted("idle")) == expected
    assert sum(expected.values()) == len(llm.requests)


async def test_a_call_outside_a_flush_is_counted_at_once_with_no_reason(
    extractor: LLMExtractor, llm: FakeLLM, schema: ProfileSchema, make_message: MakeMessage
) -> None:
    before = counted("none")
    try:
        await extractor.extract(schema.empty(), [make_message("m1", "hello")], schema)
    finally:
        await extractor.close()
    assert moved(before, counted("none")) == {"ok": 1}


def test_calls_of_a_flush_are_counted_when_it_ends_and_redone_when_it_was_stopped() -> None:
    before = counted("size")
    with calls_of("size"):
        record(CallOutcome.RETRIED)
        record(CallOutcome.OK)
        assert moved(before, counted("size")) == {}  # not before the flush ends
    assert moved(before, counted("size")) == {"retried": 1, "ok": 1}
    before = counted("size")
    with pytest.raises(Fenced), calls_of("size"):
        record(CallOutcome.RETRIED)
        record(CallOutcome.OK)
        raise Fenced("partition lost before a store")
    # The answered call was wasted: the next owner flushes the same messages again.
    assert moved(before, counted("size")) == {"retried": 1, "fenced_redo": 1}


def test_a_follow_ups_calls_are_counted_under_their_own_reason_in_a_flush_or_not() -> None:
    before = counted("follow_up"), counted("idle"), counted("none")
    with calls_of("idle"):
        record(CallOutcome.OK)
        with following_up():
            record(CallOutcome.RETRIED)
            record(CallOutcome.OK)
        with following_up(False):
            record(CallOutcome.OK)
    with following_up():
        record(CallOutcome.OK)
    after = counted("follow_up"), counted("idle"), counted("none")
    assert [moved(b, a) for b, a in zip(before, after, strict=True)] == [
        {"retried": 1, "ok": 2},
        {"ok": 2},
        {},
    ]
