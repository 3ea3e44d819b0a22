"""A table written by the single-record release is read and converted, losing nothing.

``fixtures/single_record_table.json`` holds records exactly as main 89ab65a's encoder wrote them
(format 4 and 5, the buffer inside the record), made by that release's own pipeline (the script
beside it): alice has a version with history and two buffered messages, bob and dave one each
(dave's a re-routed copy), carol is a tombstone that chatted again.
"""

from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson

from streams.core.flushing import FlushPolicy
from streams.pipeline.buffer_store import entry_key
from streams.pipeline.flush_clock import buffers_in
from tests.unit.helpers import T0

from .fakes import Pipeline, Record, chat

FIXTURE = orjson.loads(
    (Path(__file__).parent / "fixtures" / "single_record_table.json").read_bytes()
)
BUFFERED = {"alice": ["a2", "a3"], "bob": ["b1"], "carol": ["c2"], "dave": ["d1"]}


def _old_table() -> Pipeline:
    policy = FlushPolicy(**FIXTURE["policy"])
    pipeline = Pipeline(flushing=policy, revisions_per_field=10)
    pipeline.now = FIXTURE["now"]
    pipeline.table.update({k.encode(): v.encode() for k, v in FIXTURE["table"].items()})
    return pipeline


def _inputs(user: str | None = None) -> list[Record]:
    return [
        Record(i["user"].encode(), i["value"].encode(), offset=i["offset"])
        for i in FIXTURE["inputs"]
        if user is None or i["user"] == user
    ]


def _restart(pipeline: Pipeline) -> None:
    """What a new worker does on assignment: its clock rebuilt from the tables."""
    tps = {("chat-messages", 0)}
    pipeline.clock.rebuild(
        buffers_in(
            pipeline.table.items(), pipeline.buffer_table.items(), tps, pipeline.updater.flushing
        )
    )


def _stored_bytes(pipeline: Pipeline) -> dict[str, Any]:
    return {k.decode(): orjson.loads(v) for k, v in pipeline.table.items()}


async def test_every_buffer_of_the_old_table_is_flushed_once_by_a_new_worker() -> None:
    pipeline = _old_table()
    assert {u: [b.message.message_id for b in pipeline.stored(u).buffer] for u in BUFFERED} == (
        BUFFERED
    )
    _restart(pipeline)
    pipeline.now += 3600
    await pipeline.tick()
    assert sorted(pipeline.model.calls) == sorted(BUFFERED.values())
    names = {u: pipeline.stored(u).profile.get("name") for u in BUFFERED}
    assert names == {"alice": "Alicia", "bob": "Bob", "carol": "Caroline", "dave": "Dave"}
    # The history the old record kept goes on: alice's name has both values.
    revisions = pipeline.stored("alice").history["name"].revisions
    assert [r.value for r in revisions] == ["Alice", "Alicia"]
    assert all("buffer" not in record for record in _stored_bytes(pipeline).values())
    assert pipeline.buffer_table == {}


async def test_redelivered_inputs_of_the_old_release_are_skipped_after_conversion() -> None:
    pipeline = _old_table()
    await pipeline.feed(*_inputs())  # every input again: each user converted on first touch
    assert pipeline.model.calls == [] and pipeline.output.sent == []
    assert all("buffer" not in record for record in _stored_bytes(pipeline).values())
    assert {u: [b.message.message_id for b in pipeline.stored(u).buffer] for u in BUFFERED} == (
        BUFFERED
    )
    # Dave's copy stands for its original too: that original, arriving late, is skipped.
    assert pipeline.stored("dave").applied["origin:chat-messages:3"] == 41
    pipeline.now += 3600
    await pipeline.tick()
    await pipeline.feed(*_inputs())
    assert sorted(pipeline.model.calls) == sorted(BUFFERED.values())


async def test_a_new_message_joins_the_converted_buffer_in_order() -> None:
    pipeline = _old_table()
    await pipeline.feed(
        chat("b2", "name=Bobby", offset=8, user="bob", sent_at=T0 + timedelta(seconds=9))
    )
    assert [b.message.message_id for b in pipeline.stored("bob").buffer] == ["b1", "b2"]
    assert set(pipeline.buffer_table) == {entry_key(b"bob", 0), entry_key(b"bob", 1)}
    pipeline.now += 3600
    pipeline.clock.set(b"bob", ("chat-messages", 0), pipeline.now)
    await pipeline.tick()
    assert pipeline.model.calls == [["b1", "b2"]]
    assert pipeline.stored("bob").profile["name"] == "Bobby"


async def test_a_crash_between_the_entries_and_the_record_converts_again_without_doubles() -> None:
    pipeline = _old_table()
    old = dict(pipeline.table)
    # Convert alice by touching her (a redelivery), then lose the record's rewrite.
    (alice_input,) = [r for r in _inputs("alice") if r.offset == 2]
    await pipeline.feed(alice_input)
    assert len(pipeline.buffer_table) == 2
    pipeline.table[b"alice"] = old[b"alice"]
    await pipeline.feed(alice_input)
    assert [b.message.message_id for b in pipeline.stored("alice").buffer] == ["a2", "a3"]
    assert len(pipeline.buffer_table) == 2
