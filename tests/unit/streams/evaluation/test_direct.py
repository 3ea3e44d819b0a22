"""The direct run: the worker's extraction and merge per conversation, or per message."""

import pytest

from streams.evaluation.direct import run_direct
from streams.evaluation.report import score_variant
from streams.evaluation.variants import Variant, settings_of
from tests.fakes.evaluation import DATASET
from tests.fakes.llm_server import FakeLLM, Fault


def _settings(llm: FakeLLM, variant: Variant):  # type: ignore[no-untyped-def]
    base = {
        "openai_base_url": llm.url,
        "openai_api_key": "test-key",
        "llm_timeout_s": "2",
        "llm_backoff_s": "0.01",
        "llm_backoff_max_s": "0.02",
        "llm_max_attempts": "2",
    }
    return settings_of(variant, base)


async def test_buffered_asks_once_per_conversation_and_follows_the_move(
    llm: FakeLLM, clean_env: pytest.MonkeyPatch
) -> None:
    variant = Variant("buffered")
    progress: list[tuple[int | None, int, int]] = []
    outcome = await run_direct(
        DATASET.users, _settings(llm, variant), variant.flush, lambda *a: progress.append(a)
    )
    assert outcome.profiles["alice"]["location"] == "Denver"
    assert outcome.cost.model_calls == 3 == len(llm.requests)
    assert outcome.cost.messages == 8
    assert outcome.cost.calls_per_message == pytest.approx(3 / 8)
    assert outcome.cost.prompt_tokens > 0 and outcome.cost.completion_tokens == 60
    assert progress[-1] == (2, 8, 3)
    report = score_variant(variant, DATASET.users, outcome)
    assert (report.overall.tp, report.overall.fp, report.overall.fn) == (2, 1, 1)
    assert (report.overall.trap_hits, report.overall.traps) == (1, 2)
    assert report.overall.update_accuracy == 1.0
    assert report.traits["move"].recall == 1.0


async def test_per_message_asks_once_per_user_message(
    llm: FakeLLM, clean_env: pytest.MonkeyPatch
) -> None:
    variant = Variant("one-by-one", flush="per-message")
    outcome = await run_direct(
        DATASET.users, _settings(llm, variant), variant.flush, lambda *a: None
    )
    assert outcome.cost.model_calls == 4  # assistant turns alone are never sent
    assert all(len(r["messages"]) == 1 for r in llm.requests)
    assert outcome.profiles["alice"]["name"] == "Alice"


async def test_a_flush_that_gives_up_is_counted_and_the_rest_goes_on(
    llm: FakeLLM, clean_env: pytest.MonkeyPatch
) -> None:
    llm.on("My friend", faults=[Fault(status=400, times=5)])
    variant = Variant("buffered")
    outcome = await run_direct(
        DATASET.users, _settings(llm, variant), variant.flush, lambda *a: None
    )
    assert outcome.cost.failures == 1
    assert outcome.outcomes.gave_up == {"endpoint_refused": 1}
    assert outcome.profiles["alice"]["location"] == "Denver"
    assert outcome.profiles["bruno"]["location"] is None


async def test_the_report_counts_what_the_extractor_and_the_guards_did(
    llm: FakeLLM, clean_env: pytest.MonkeyPatch
) -> None:
    llm.on("I'm Alice", {"field": "name", "op": "set", "value": "John Doe"})
    llm.on("I'm Alice", faults=[Fault(content="Sure! Here is the profile.")])
    cut = (
        '{"operations": [{"message_id": "alice-c2-t00", "quote": "I moved to Denver", '
        '"field": "location", "op": "set", "value": "Denver"}, {"message_id": "alice-c2'
    )
    llm.on("moved to Denver", faults=[Fault(content=cut, finish_reason="length")])
    variant = Variant("buffered")
    outcome = await run_direct(
        DATASET.users, _settings(llm, variant), variant.flush, lambda *a: None
    )
    assert outcome.profiles["alice"]["name"] == "Alice"
    assert outcome.profiles["alice"]["location"] == "Denver"  # salvaged from the cut answer
    assert outcome.outcomes.retries == {"invalid_output": 1}
    assert outcome.outcomes.answers_repaired == {"cut_off": 1}
    assert outcome.outcomes.operations_dropped == {"placeholder_value": 1}
    assert outcome.outcomes.gave_up == {}
    report = score_variant(variant, DATASET.users, outcome)
    assert report.outcomes == outcome.outcomes and report.guards


async def test_without_the_guards_the_placeholder_lands(
    llm: FakeLLM, clean_env: pytest.MonkeyPatch
) -> None:
    llm.on("I'm Alice", {"field": "name", "op": "set", "value": "John Doe"})
    variant = Variant("unguarded", guards=False)
    outcome = await run_direct(
        DATASET.users, _settings(llm, variant), variant.flush, lambda *a: None, guards=False
    )
    assert outcome.profiles["alice"]["name"] == "John Doe"
    assert "placeholder_value" not in outcome.outcomes.operations_dropped
    assert not score_variant(variant, DATASET.users, outcome).guards


async def test_the_report_judges_each_dropped_value_against_the_labels(
    llm: FakeLLM, clean_env: pytest.MonkeyPatch
) -> None:
    llm.on("I'm Alice", {"field": "name", "op": "set", "value": "John Doe"})
    # Quotes no turn of their flush holds: Alice's old city (a trap) and Bruno's language (a
    # value he is expected to have, but never said).
    llm.on("moved to Denver", {"field": "location", "op": "set", "value": "Boston", "quote": "x"})
    speaks = {"field": "languages", "op": "add", "value": "Portuguese", "quote": "I speak it"}
    llm.on("lives in Paris", speaks)
    variant = Variant("buffered")
    outcome = await run_direct(
        DATASET.users, _settings(llm, variant), variant.flush, lambda *a: None
    )
    report = score_variant(variant, DATASET.users, outcome)
    alice, bruno = report.users
    assert {(d.field, d.value, d.verdict) for d in alice.dropped} == {
        ("name", "John Doe", "other"),
        ("location", "Boston", "forbidden"),
    }
    assert [(d.field, d.value, d.verdict) for d in bruno.dropped] == [
        ("languages", "Portuguese", "expected")
    ]
    judged = report.dropped_values
    assert {r: c.expected + c.forbidden + c.other for r, c in judged.items()} == (
        outcome.outcomes.operations_dropped
    )
    assert [sum(getattr(c, v) for c in judged.values()) for v in ("expected", "forbidden")] == [
        1,
        1,
    ]
    assert report.dropped_values["placeholder_value"].other == 1
