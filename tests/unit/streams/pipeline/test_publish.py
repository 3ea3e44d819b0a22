"""Publishing a version: its steps in order, and a worker killed between any two of them."""

from typing import Any, cast

import pytest

from schemas import ProfileEvent, ProfileRecord
from streams.core.codecs import decode_record, encode
from streams.core.commands import SIGNED_KEY
from streams.pipeline.publish import Publication, PublishState
from tests.unit.helpers import T0

from .fakes import Pipeline, chat, command


class Killed(BaseException):
    """The worker dies here (the process exits: nothing after this step runs, no handler
    catches it)."""


class Journal(dict[bytes, bytes]):
    """A table that notes each write in ``log``, and can be killed at its ``kill_at``-th write."""

    def __init__(self, log: list[str]) -> None:
        super().__init__()
        self.log, self.writes, self.kill_at = log, 0, 0

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.writes += 1
        if self.writes == self.kill_at:
            raise Killed
        pending = decode_record(value).pending_event
        self.log.append(f"store v{pending.version} pending" if pending else "store final")
        super().__setitem__(key, value)

    def __delitem__(self, key: bytes) -> None:
        self.log.append("delete")
        super().__delitem__(key)


def _journaled(pipeline: Pipeline) -> list[str]:
    """Note every table write, changelog wait and emitted event of ``pipeline`` in order."""
    log: list[str] = []
    table = Journal(log)
    pipeline.table = pipeline.publisher.table = pipeline.updater.table = table
    send = pipeline.output.send

    async def acked(key: bytes) -> None:
        log.append("changelog acked")

    async def emit(*, key: bytes | None, value: bytes) -> Any:
        future = await send(key=key, value=value)
        log.append(f"emit v{pipeline.output.values[-1]['version']}")
        return future

    pipeline.publisher.changelog_acked = acked
    pipeline.output.send = emit  # type: ignore[method-assign]
    return log


async def test_a_version_is_durable_before_its_event_and_final_after_it() -> None:
    pipeline = Pipeline()
    log = _journaled(pipeline)
    await pipeline.feed(chat("m1", "name=Alice"))
    assert log == ["store v1 pending", "changelog acked", "emit v1", "store final"]
    assert pipeline.stored().pending_event is None and pipeline.stored().version == 1


async def test_nothing_to_announce_stores_the_record_and_emits_nothing() -> None:
    pipeline = Pipeline()
    log = _journaled(pipeline)
    await pipeline.feed(chat("m1", "just chatting"))
    assert log == ["store final"] and pipeline.output.sent == []


def _kill(pipeline: Pipeline, at: PublishState) -> None:
    """Kill the worker right after it reached ``at``."""
    if at is PublishState.PENDING_STORED:

        async def dies(key: bytes) -> None:
            raise Killed

        pipeline.publisher.changelog_acked = dies
    elif at is PublishState.CHANGELOG_ACKED:
        pipeline.output.fail = Killed()
    else:
        assert isinstance(pipeline.table, Journal)
        pipeline.table.kill_at = pipeline.table.writes + 2  # the store after the pending one


def _restart(pipeline: Pipeline) -> None:
    async def acked(key: bytes) -> None:
        return None

    pipeline.publisher.changelog_acked = acked
    pipeline.output.fail = None
    assert isinstance(pipeline.table, Journal)
    pipeline.table.kill_at = 0


@pytest.mark.parametrize(
    "at", [PublishState.PENDING_STORED, PublishState.CHANGELOG_ACKED, PublishState.EMITTED]
)
async def test_a_worker_killed_after_any_step_re_emits_the_pending_event_once(
    at: PublishState,
) -> None:
    pipeline = Pipeline()
    _journaled(pipeline)
    await pipeline.feed(chat("m0", "name=Al", offset=0))
    first = chat("m1", "name=Alice", offset=1)
    _kill(pipeline, at)
    with pytest.raises(Killed):
        await pipeline.feed(first)
    emitted_before = list(pipeline.output.sent)
    assert pipeline.stored().pending_event is not None  # the table owes v2's event
    _restart(pipeline)

    await pipeline.feed(first)  # redelivered: its offset was never acknowledged
    versions = [e["version"] for e in pipeline.output.values]
    assert versions == [1, 2, 2] if at is PublishState.EMITTED else versions == [1, 2]
    resent = pipeline.output.sent[len(emitted_before) :]
    assert len(resent) == 1
    if at is PublishState.EMITTED:
        assert resent[0] == emitted_before[-1]  # the same id and the same bytes
    final = pipeline.stored()
    assert final.pending_event is None and final.version == 2
    assert final.profile["name"] == "Alice"
    assert pipeline.model.calls == [["m0"], ["m1"]]  # the redelivery pays nothing


async def test_a_forget_killed_before_its_event_is_finished_by_the_next_batch() -> None:
    pipeline = Pipeline()
    _journaled(pipeline)
    await pipeline.feed(chat("m1", "name=Alice"))
    _kill(pipeline, PublishState.CHANGELOG_ACKED)
    with pytest.raises(Killed):
        await pipeline.feed(command("c1", "forget", offset=1))
    _restart(pipeline)

    await pipeline.feed(chat("m2", "hello", offset=2))
    assert [(e["type"], e["version"]) for e in pipeline.output.values] == [
        ("updated", 1),
        ("deleted", 2),
    ]
    assert pipeline.model.forgotten == ["alice", "alice"]  # on the command, again on resume
    after = pipeline.stored()  # the tombstone: the forgotten profile did not come back
    assert after.pending_event is None and after.profile == {}
    assert after.forgotten_at is not None and after.version == 2
    # the forget (1) and m2 (2) are remembered, and when the forget was signed
    assert after.applied == {"chat-messages:0": 2, SIGNED_KEY: int(T0.timestamp() * 1000) + 1}

    await pipeline.feed(chat("m1", "name=Alice", offset=0))  # redelivered from before the forget
    await pipeline.feed(chat("m3", "name=Bea", offset=3))
    assert [e["event_id"] for e in pipeline.output.values] == ["alice:1", "alice:2", "alice:3"]
    assert pipeline.model.calls == [["m1"], ["m2"], ["m3"]]


async def test_a_forget_left_pending_by_the_previous_release_settles_as_a_tombstone() -> None:
    pipeline = Pipeline()
    await pipeline.feed(chat("m1", "name=Alice"))
    deleted = ProfileEvent.model_validate(
        pipeline.output.values[0]
        | {"event_id": "alice:2", "type": "deleted", "version": 2}
        | {"profile": None, "changes": [], "source_message_ids": ["c1"]}
    )
    # the release before this one stored a bare record at the old version, then deleted the key
    stub = ProfileRecord(user_id="alice", schema_id=pipeline.stored().schema_id, version=1)
    pipeline.table[b"alice"] = encode(stub.model_copy(update={"pending_event": deleted}))
    await pipeline.feed(chat("m2", "name=Bea", offset=2))
    assert [e["event_id"] for e in pipeline.output.values] == ["alice:1", "alice:2", "alice:3"]
    assert pipeline.stored().version == 3 and pipeline.stored().profile["name"] == "Bea"


async def test_a_forget_stores_its_tombstone_only_once_its_event_is_out() -> None:
    pipeline = Pipeline()
    log = _journaled(pipeline)
    await pipeline.feed(chat("m1", "name=Alice"))
    log.clear()
    await pipeline.feed(command("c1", "forget", offset=1))
    assert log == ["store v2 pending", "changelog acked", "emit v2", "store final"]
    assert pipeline.stored().forgotten_at is not None  # never deleted: it remembers the offsets
    assert pipeline.output.values[-1]["profile"] is None


def test_a_step_is_never_skipped_nor_repeated() -> None:
    version = Publication(b"alice", cast(ProfileEvent, None))
    with pytest.raises(RuntimeError):
        version.reached(PublishState.EMITTED)
    version.reached(PublishState.CHANGELOG_ACKED)
    with pytest.raises(RuntimeError):
        version.reached(PublishState.CHANGELOG_ACKED)
    assert version.state is PublishState.CHANGELOG_ACKED
