"""Applying a batch: one extraction per batch, nothing applied twice, no event for nothing."""

import pytest

from schemas import PatchOperation
from streams.errors import ExtractionFailed

from .fakes import Pipeline, chat, command


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


async def test_any_other_failure_leaves_the_batch_to_the_scheduler() -> None:
    pipeline = Pipeline()
    pipeline.model.fail = RuntimeError("bug")
    with pytest.raises(RuntimeError):
        await pipeline.feed(chat("m1", "name=Alice"))
    assert pipeline.dlq.sent == [] and pipeline.output.sent == [] and pipeline.table == {}


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
    assert (tombstone.version, tombstone.applied) == (2, {"chat-messages:0": 1})


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
    assert record.forgotten_at is None and record.format == 1 and record.version == 4
    assert b'"format"' not in pipeline.table[b"alice"]  # a profile again, in format 1 bytes
    assert pipeline.model.calls[-1] == ["m4"]


async def test_forgetting_an_unknown_user_does_nothing() -> None:
    pipeline = Pipeline()
    await pipeline.feed(command("c1", "forget"))
    assert pipeline.output.sent == [] and pipeline.table == {}
    await pipeline.feed(chat("m1", "name=Al", offset=1), command("c2", "forget", offset=2))
    await pipeline.feed(command("c3", "forget", offset=3))  # a tombstone is not forgotten again
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
