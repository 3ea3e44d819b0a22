"""Applying a batch: one extraction per batch, nothing applied twice, no event for nothing."""

import asyncio
from dataclasses import replace
from typing import Any

import pytest

from schemas import FORGET_MARK_FORMAT, RECENT_IDS_KEPT, ModelUsage, PatchOperation
from streams.errors import BrokerUnavailable, CachePurgeFailed, ExtractionFailed, SendRejected
from streams.pipeline import apply as apply_module
from streams.pipeline import flush as flush_module
from streams.pipeline.job import Job
from streams.pipeline.policy import undeliverable
from streams.pipeline.scheduler import KeyedScheduler, SchedulerLimits
from tests.unit.helpers import T0

from .fakes import Event, Pipeline, Record, chat, command, raw_bytes

T0_S = T0.timestamp()


async def test_a_batch_is_extracted_once_and_published_as_one_version() -> None:
    pipeline = Pipeline()
    await pipeline.batch(
        chat("m1", "name=Al", offset=0),
        chat("m2", "hi", offset=1),
        chat("m3", "name=Alice", offset=2),
    )
    assert pipeline.model.calls == [["m1", "m2", "m3"]]
    (event,) = pipeline.output.values
    assert (event["event_id"], event["version"]) == ("alice:1", 1)
    assert event["source_message_ids"] == ["m1", "m2", "m3"]
    assert event["profile"]["name"] == "Alice"
    record = pipeline.stored()
    assert record.version == 1 and record.profile["name"] == "Alice"
    assert record.applied == {"chat-messages:0": 2}


async def test_a_redelivered_message_is_not_applied_twice_nor_paid_for_twice() -> None:
    pipeline = Pipeline()
    first = chat("m1", "name=Alice", offset=0)
    await pipeline.feed(first)
    await pipeline.feed(first)  # the same offset again (a rebalance before the commit)
    await pipeline.feed(chat("m1", "name=Alice", offset=5))  # re-published by a producer
    assert pipeline.model.calls == [["m1"]]
    assert [e["version"] for e in pipeline.output.values] == [1]


async def test_only_the_new_messages_of_a_partly_redelivered_batch_are_extracted() -> None:
    pipeline = Pipeline()
    await pipeline.feed(chat("m1", "name=Al", offset=0))
    await pipeline.batch(chat("m1", "name=Al", offset=0), chat("m2", "name=Alice", offset=1))
    assert pipeline.model.calls == [["m1"], ["m2"]]
    assert pipeline.output.values[-1]["source_message_ids"] == ["m2"]


async def test_an_empty_patch_emits_nothing_but_a_replay_still_costs_nothing() -> None:
    pipeline = Pipeline()
    small_talk = chat("m1", "nice weather today")
    await pipeline.feed(small_talk)
    assert pipeline.output.sent == []
    assert pipeline.stored().version == 0
    await pipeline.feed(small_talk)
    assert pipeline.model.calls == [["m1"]]


async def test_each_batch_charges_what_the_model_reported_and_a_replay_charges_nothing() -> None:
    pipeline = Pipeline()
    await pipeline.batch(chat("m1", "name=Al", offset=0), chat("m2", "hi", offset=1))
    await pipeline.feed(chat("m3", "nice weather", offset=2))  # no change, but a call
    await pipeline.feed(chat("m3", "nice weather", offset=2))  # redelivered: no call
    usage = pipeline.stored().usage
    assert usage is not None
    assert usage.total == ModelUsage(calls=2, prompt_tokens=30, completion_tokens=10)
    assert usage.today == usage.total and usage.day == T0.date()


async def test_assistant_turns_alone_are_never_sent_to_the_model() -> None:
    pipeline = Pipeline()
    await pipeline.feed(chat("m1", "name=Bot", role="assistant"))
    assert pipeline.model.calls == [] and pipeline.output.sent == []


async def test_an_extraction_that_gives_up_dead_letters_each_new_message() -> None:
    pipeline = Pipeline()
    await pipeline.feed(chat("m1", "name=Al", offset=0))
    pipeline.model.fail = ExtractionFailed("model refused", attempts=4)
    await pipeline.batch(chat("m1", "name=Al", offset=0), chat("m2", "x", offset=1))
    dead = pipeline.dlq.values
    assert [(d["reason_code"], d["message_id"], d["attempts"]) for d in dead] == [
        ("extraction_failed", "m2", 4)
    ]
    assert dead[0]["reason"] == "model refused" and dead[0]["user_id"] == "alice"
    assert [e["version"] for e in pipeline.output.values] == [1]


async def test_the_worker_log_says_why_an_extraction_was_dead_lettered(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pipeline = Pipeline()
    pipeline.model.fail = ExtractionFailed(
        "cut off twice at the bound", attempts=2, cause="cut_off"
    )
    with caplog.at_level("WARNING", logger="streams.pipeline.flush"):
        await pipeline.feed(chat("m1", "I live in a secret place"))
    (line,) = [r.getMessage() for r in caplog.records if "extraction failed" in r.getMessage()]
    assert "cause=cut_off attempts=2 reason=cut off twice at the bound" in line
    assert "secret" not in line
    pipeline.model.fail = ExtractionFailed("model refused: I won't, secret place", cause="refused")
    caplog.clear()
    with caplog.at_level("WARNING", logger="streams.pipeline.flush"):
        await pipeline.feed(chat("m2", "x", offset=1))
    assert "secret" not in caplog.text and "cause=refused" in caplog.text


async def test_a_forget_announces_the_deletion_and_purges_the_cache() -> None:
    pipeline = Pipeline()
    await pipeline.feed(chat("m1", "name=Alice"), command("c1", "forget", offset=1))
    assert [(e["event_id"], e["type"]) for e in pipeline.output.values] == [
        ("alice:1", "updated"),
        ("alice:2", "deleted"),
    ]
    assert pipeline.model.forgotten == ["alice"]
    tombstone = pipeline.stored()  # no profile data, but the version and what was applied
    assert tombstone.forgotten_at is not None and tombstone.profile == {}
    assert tombstone.version == 2 and tombstone.applied["chat-messages:0"] == 1


async def test_a_message_redelivered_after_a_forget_is_skipped_without_a_model_call() -> None:
    pipeline = Pipeline()
    m1, m2 = chat("m1", "name=Alice", offset=0), chat("m2", "name=Al", offset=1)
    await pipeline.feed(m1, m2, command("c1", "forget", offset=2))
    await pipeline.feed(m1, m2)  # a crash or rebalance before the forget's offset was committed
    await pipeline.feed(chat("m1", "name=Alice", offset=7))  # re-published by a producer
    assert [(e["event_id"], e["type"]) for e in pipeline.output.values] == [
        ("alice:1", "updated"),
        ("alice:2", "updated"),
        ("alice:3", "deleted"),
    ]
    assert pipeline.model.calls == [["m1"], ["m2"]]
    assert pipeline.stored().forgotten_at is not None and pipeline.stored().profile == {}


async def test_a_message_after_a_forget_starts_an_empty_profile_at_the_next_version() -> None:
    pipeline = Pipeline()
    await pipeline.feed(
        chat("m1", "name=Alice", offset=0),
        chat("m2", "name=Al", offset=1),
        command("c1", "forget", offset=2),
    )
    await pipeline.feed(chat("m3", "hello", offset=3))  # nothing to learn: still forgotten
    assert pipeline.stored().forgotten_at is not None
    await pipeline.feed(chat("m4", "name=Bea", offset=4))
    last = pipeline.output.values[-1]
    assert (last["event_id"], last["type"], last["version"]) == ("alice:4", "updated", 4)
    assert last["profile"]["name"] == "Bea"
    assert [c["field"] for c in last["changes"]] == ["name"]
    assert last["changes"][0]["old"] is None  # from empty, not from the forgotten profile
    record = pipeline.stored()
    assert record.forgotten_at is None and record.version == 4
    # The usage counts the calls since the forget (m3, m4); it names m4 as the newest message
    # it reflects; it keeps how far the forget reaches, so the record is format 8.
    assert record.usage is not None and record.usage.total.calls == 2
    assert record.last_message is not None and record.last_message.message_id == "m4"
    assert record.format == FORGET_MARK_FORMAT and record.forget_mark is not None
    assert b"forgotten_at" not in pipeline.table[b"alice"]  # a profile again, no tombstone
    assert pipeline.model.calls[-1] == ["m4"]


async def test_a_captured_signed_command_produced_again_later_is_refused() -> None:
    """Once its id left the record's recent ids, only when it was signed tells a replay."""
    pipeline = Pipeline()
    await pipeline.feed(chat("m0", "name=Alice", offset=0))
    correct = command(
        "c1", "correct", offset=1, operations=[{"field": "name", "op": "set", "value": "Mallory"}]
    )
    forget = command("f1", "forget", offset=2)
    await pipeline.feed(correct, forget, replace(forget, offset=3))  # at once: absorbed
    assert pipeline.stored().version == 3 and pipeline.dlq.sent == []
    offset = 4
    for i in range(RECENT_IDS_KEPT + 1):
        await pipeline.feed(chat(f"x{i}", "name=Alice2" if i == 0 else "hi", offset=offset))
        offset += 1
    assert "f1" not in pipeline.stored().recent_message_ids
    await pipeline.feed(replace(forget, offset=offset), replace(correct, offset=offset + 1))
    after = pipeline.stored()
    assert after.forgotten_at is None and after.profile["name"] == "Alice2"
    assert after.locked == ()
    assert [(d["reason_code"], d["source_offset"]) for d in pipeline.dlq.values] == [
        ("invalid_command", offset),
        ("invalid_command", offset + 1),
    ]
    assert "signed at or before the last command" in pipeline.dlq.values[0]["reason"]


async def test_a_command_signed_after_the_last_one_is_applied() -> None:
    pipeline = Pipeline()
    await pipeline.feed(chat("m0", "name=Alice", offset=0))
    await pipeline.feed(command("f1", "forget", offset=1, signed_at=T0.timestamp() + 5))
    await pipeline.feed(chat("m1", "name=Bea", offset=2))
    await pipeline.feed(command("f2", "forget", offset=3, signed_at=T0.timestamp() + 6))
    assert pipeline.stored().forgotten_at is not None and pipeline.dlq.sent == []


async def test_forgetting_an_unknown_user_announces_nothing_and_leaves_only_a_mark() -> None:
    pipeline = Pipeline()
    await pipeline.feed(command("c1", "forget"))
    assert pipeline.output.sent == []
    mark = pipeline.stored()
    assert (mark.version, mark.profile, mark.forget_mark) == (0, {}, mark.forget_mark)
    assert mark.forget_mark is not None and mark.forget_mark.offsets == {"chat-messages:0": 0}
    await pipeline.feed(chat("m1", "name=Al", offset=1), command("c2", "forget", offset=2))
    await pipeline.feed(command("c3", "forget", offset=3))  # a tombstone: no second event
    assert [e["event_id"] for e in pipeline.output.values] == ["alice:1", "alice:2"]


async def test_a_correction_is_applied_and_a_refused_one_is_dead_lettered() -> None:
    pipeline = Pipeline()
    fix = PatchOperation(field="name", op="set", value="Alicia")
    bad = PatchOperation(field="no_such_field", op="set", value="x")
    await pipeline.feed(
        command("c1", "correct", operations=[fix], offset=0),
        command("c2", "correct", operations=[bad], offset=1),
    )
    assert [e["profile"]["name"] for e in pipeline.output.values] == ["Alicia"]
    (dead,) = pipeline.dlq.values
    assert (dead["reason_code"], dead["source_offset"], dead["user_id"]) == (
        "invalid_command",
        1,
        "alice",
    )


async def test_a_bug_in_the_extractor_dead_letters_the_new_messages_as_internal_error() -> None:
    pipeline = Pipeline()
    pipeline.model.fail = RuntimeError("bug quoting alice's words")
    await pipeline.feed(chat("m1", "name=Alice"))
    (dead,) = pipeline.dlq.values
    assert (dead["reason_code"], dead["message_id"]) == ("internal_error", "m1")
    assert "RuntimeError" in dead["reason"] and "alice" not in dead["reason"]
    assert pipeline.output.sent == [] and pipeline.stored().version == 0
    # Re-published from the dead-letter topic once the bug is fixed, it is applied.
    pipeline.model.fail = None
    await pipeline.feed(chat("m1", "name=Alice", offset=9))
    assert [e["profile"]["name"] for e in pipeline.output.values] == ["Alice"]


def _scheduled(pipeline: Pipeline, fatal: list[BaseException]) -> KeyedScheduler:
    """The real scheduler running ``pipeline``'s batches, with ``on_fatal`` recorded."""
    return KeyedScheduler(
        pipeline.updater.apply, fatal.append, SchedulerLimits(window_s=0.05, catch_up_window_s=0)
    )


async def _submit(pipeline: Pipeline, scheduler: KeyedScheduler, *records: Record) -> list[Event]:
    events = [Event(r) for r in records]
    for event in events:
        await scheduler.submit(Job.of(event, await pipeline.admit(event.message), now=T0_S))
    while scheduler.pending:  # noqa: ASYNC110 - polling is enough here
        await asyncio.sleep(0.001)
    return events


async def test_a_batch_whose_merge_has_a_bug_is_dead_lettered_acked_and_the_user_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pipeline, fatal = Pipeline(), []
    scheduler = _scheduled(pipeline, fatal)

    def buggy_merge(*args: Any, **kwargs: Any) -> Any:
        raise KeyError("a bug")

    monkeypatch.setattr(flush_module, "merge", buggy_merge)
    batch = [chat("m1", "name=Al", offset=0), chat("m2", "name=Alice", offset=1)]
    events = await _submit(pipeline, scheduler, *batch)
    assert [e.acks for e in events] == [1, 1] and fatal == []
    dead = pipeline.dlq.values
    assert [(d["reason_code"], d["message_id"], d["source_offset"]) for d in dead] == [
        ("internal_error", "m1", 0),
        ("internal_error", "m2", 1),
    ]
    assert [raw_bytes(d) for d in dead] == [r.value for r in batch]
    assert all("KeyError" in d["reason"] and d["user_id"] == "alice" for d in dead)

    monkeypatch.undo()  # the next batch of that user runs as usual
    (event,) = await _submit(pipeline, scheduler, chat("m3", "name=Alicia", offset=2))
    assert event.acks == 1 and fatal == []
    assert [(e["version"], e["profile"]["name"]) for e in pipeline.output.values] == [(1, "Alicia")]


async def test_a_bug_in_a_command_dead_letters_it_and_acks_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pipeline, fatal = Pipeline(), []
    scheduler = _scheduled(pipeline, fatal)

    def buggy(*args: Any, **kwargs: Any) -> Any:
        raise AttributeError("a bug")

    monkeypatch.setattr(apply_module, "apply_command", buggy)
    (event,) = await _submit(pipeline, scheduler, command("c1", "forget"))
    assert event.acks == 1 and fatal == []
    (dead,) = pipeline.dlq.values
    assert dead["reason_code"] == "internal_error" and dead["command"] is True


@pytest.mark.parametrize(
    "exc", [BrokerUnavailable("down"), CachePurgeFailed("redis"), OSError("net")], ids=repr
)
async def test_an_infrastructure_failure_leaves_the_batch_unacked_for_redelivery(
    exc: Exception,
) -> None:
    pipeline, fatal = Pipeline(), []
    scheduler = _scheduled(pipeline, fatal)
    pipeline.output.fail = exc
    events = [Event(chat("m1", "name=Alice", offset=4))]
    await scheduler.submit(Job.of(events[0], await pipeline.admit(events[0].message), now=T0_S))
    while not fatal:  # noqa: ASYNC110 - polling is enough here
        await asyncio.sleep(0.001)
    (failure,) = fatal
    assert failure is exc and events[0].acks == 0 and pipeline.dlq.sent == []
    assert "topic=chat-messages partition=0 offsets=4" in failure.__notes__


async def test_a_batch_that_can_be_neither_applied_nor_dead_lettered_is_left_unacked() -> None:
    pipeline, fatal = Pipeline(), []
    scheduler = _scheduled(pipeline, fatal)
    pipeline.model.fail = RuntimeError("bug")
    pipeline.dlq.fail = SendRejected("Kafka refused a record for dlq: too large")
    batch = [Event(chat("m1", "hi", offset=7)), Event(chat("m2", "hi", offset=8))]
    for event in batch:
        await scheduler.submit(Job.of(event, await pipeline.admit(event.message), now=T0_S))
    while not fatal:  # noqa: ASYNC110 - polling is enough here
        await asyncio.sleep(0.001)
    (failure,) = fatal
    assert isinstance(failure, SendRejected) and [e.acks for e in batch] == [0, 0]
    assert "topic=chat-messages partition=0 offsets=7..8" in failure.__notes__
    decision = undeliverable(failure, "; ".join(failure.__notes__))
    assert "offsets=7..8" in decision.reason and "fix the limit" in decision.reason
