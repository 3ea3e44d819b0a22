"""A forget is final (review F7, proof p13): a message taken in before a forget never builds the
profile again, whether it comes back as a dead letter replayed with ``profile-stream dlq
replay``, as a late re-routed copy, or after the tombstone became a new profile, a second
forget or a restart. Messages after the forget still build a new profile."""

import logging
from datetime import timedelta

import pytest

from schemas import DeadLetter, UserProfile
from streams.cli.dlq import _record
from streams.core.codecs import encode
from streams.core.flushing import FlushPolicy
from streams.core.forget_mark import FirstSeen
from streams.core.kinds import Kind
from streams.core.partitioning import partition_for
from streams.core.profile_schema import ProfileSchema
from streams.errors import ExtractionFailed
from streams.metrics import PRE_FORGET_SKIPPED
from tests.unit.helpers import T0

from .fakes import Pipeline, Record, chat, command

#: When the operator replays dead letters in these tests: well after every forget.
REPLAYED_AT = (T0 + timedelta(hours=1)).timestamp()


def replayed(p: Pipeline, offset: int, *, letter: int = 0) -> Record:
    """Dead letter ``letter`` as ``profile-stream dlq replay`` re-publishes it, read back at
    ``offset`` of the user's partition."""
    out = _record(DeadLetter.model_validate(p.dlq.values[letter]))
    return Record(
        out.key, out.value, offset=offset, headers=list(out.headers), timestamp=REPLAYED_AT
    )


def skipped(by: str) -> float:
    return PRE_FORGET_SKIPPED.labels(by)._value.get()  # noqa: SLF001 - the counter's value


async def dead_lettered(p: Pipeline, message_id: str, content: str, offset: int) -> None:
    """``message_id`` fails extraction (the model is down) and goes to the dead letters."""
    p.model.fail = ExtractionFailed("model down", attempts=4)
    await p.feed(chat(message_id, content, offset=offset))
    p.model.fail = None


async def test_review_p13_a_dead_letter_replayed_after_the_forget_stays_forgotten() -> None:
    # p13 as the review wrote it, replayed through the CLI's own record instead of bare bytes.
    p = Pipeline()
    await p.feed(chat("m0", "name=Alice", offset=0))
    await dead_lettered(p, "m1", "name=Alice Smith", offset=1)
    forget = command("f1", "forget", offset=2, requested_at=(T0 + timedelta(minutes=5)).isoformat())
    await p.feed(forget)
    before = skipped("offset")
    replay = replayed(p, offset=3)
    await p.feed(replay)
    s = p.stored()
    assert s.forgotten_at is not None and s.profile == {} and s.version == 2
    assert [e["type"] for e in p.output.values] == ["updated", "deleted"]
    assert p.model.calls == [["m0"], ["m1"]]  # the replay never reached the model
    assert skipped("offset") == before + 1
    assert s.applied["chat-messages:0"] == 2  # left out, not applied: nothing to remember


async def test_a_replayed_dead_letter_stays_out_after_the_tombstone_became_a_new_profile() -> None:
    p = Pipeline()
    await dead_lettered(p, "m1", "name=Alice", offset=0)
    await p.feed(command("f1", "forget", offset=1), chat("m2", "name=Bea", offset=2))
    assert p.stored().forgotten_at is None  # no tombstone any more: a new profile
    await p.feed(replayed(p, offset=3))
    assert p.stored().profile["name"] == "Bea" and p.stored().version == 2
    assert [(e["event_id"], e["type"]) for e in p.output.values] == [
        ("alice:1", "deleted"),
        ("alice:2", "updated"),
    ]


async def test_a_message_after_the_forget_builds_a_new_profile_also_when_replayed() -> None:
    p = Pipeline()
    await p.feed(chat("m1", "name=Alice", offset=0), command("f1", "forget", offset=1))
    await dead_lettered(p, "m2", "name=Bea", offset=2)
    await p.feed(replayed(p, offset=3))
    s = p.stored()
    assert s.forgotten_at is None and s.profile["name"] == "Bea" and s.version == 3
    await p.feed(chat("m4", "name=Cleo", offset=4))
    assert p.stored().profile["name"] == "Cleo"


async def test_a_second_forget_of_a_tombstone_reaches_the_messages_before_it() -> None:
    p = Pipeline()
    await p.feed(chat("m1", "name=Alice", offset=0), command("f1", "forget", offset=1))
    # after the first forget, before the second: dead-lettered, the user stays a tombstone
    await dead_lettered(p, "m2", "name=Bea", offset=2)
    await p.feed(command("f2", "forget", offset=3))
    await p.feed(replayed(p, offset=4))
    s = p.stored()
    assert s.forgotten_at is not None and s.profile == {} and s.version == 2
    assert s.forget_mark is not None and s.forget_mark.offsets == {"chat-messages:0": 3}
    assert [e["type"] for e in p.output.values] == ["updated", "deleted"]  # f2 announced nothing


async def test_a_second_forget_of_a_new_profile_reaches_its_messages_too() -> None:
    p = Pipeline()
    await p.feed(chat("m1", "name=Alice", offset=0), command("f1", "forget", offset=1))
    await p.feed(chat("m2", "name=Bea", offset=2))
    await dead_lettered(p, "m3", "name=Bea Smith", offset=3)
    await p.feed(command("f2", "forget", offset=4), replayed(p, offset=5))
    s = p.stored()
    assert s.forgotten_at is not None and s.profile == {} and s.version == 4
    assert [e["type"] for e in p.output.values] == ["updated", "deleted", "updated", "deleted"]


async def test_a_worker_restored_from_the_changelog_keeps_the_mark() -> None:
    p = Pipeline()
    await dead_lettered(p, "m1", "name=Alice", offset=0)
    await p.feed(command("f1", "forget", offset=1), chat("m2", "hello", offset=2))
    # another worker (a restart with its store wiped, or the partition moved) restores the
    # tables from their changelogs: the bytes the first one wrote
    restored = Pipeline()
    restored.table.update(p.table)
    restored.buffer_table.update(p.buffer_table)
    restored.dlq = p.dlq
    await restored.feed(replayed(restored, offset=3))
    assert restored.stored().profile == {} and restored.output.sent == []


async def test_a_tombstone_of_the_release_before_keeps_its_forget_by_its_offsets() -> None:
    p = Pipeline()
    await dead_lettered(p, "m1", "name=Alice", offset=0)
    await p.feed(command("f1", "forget", offset=1))
    # as format 7 wrote it: a tombstone with applied offsets and forgotten_at, no mark
    old = p.stored().model_copy(update={"forget_mark": None, "format": 7})
    p.table[b"alice"] = encode(old)
    await p.feed(chat("m2", "name=Bea", offset=2))  # after the forget: a new profile
    assert p.stored().forget_mark is not None  # the tombstone's stand-in mark is kept
    await p.feed(replayed(p, offset=3))
    assert p.stored().profile["name"] == "Bea"


async def test_a_re_routed_copy_of_a_message_sent_before_the_forget_stays_out() -> None:
    p = Pipeline(partitions=8)
    home = partition_for(b"alice", 8)
    await p.feed(chat("m0", "name=Alice", partition=home, partitions=8, offset=0))
    # m1 sat on another user's partition; its copy reaches alice's after the forget
    misplaced = chat("m1", "name=Alice Smith", partition=(home + 1) % 8, partitions=8, offset=7)
    await p.feed(misplaced)
    [(_, headers)] = p.reroute.routing
    forget = command("f1", "forget", offset=1)
    forget.partition = home
    forget.timestamp = (T0 + timedelta(minutes=10)).timestamp()
    await p.feed(forget)
    late = Record(b"alice", misplaced.value, offset=2, partition=home, headers=headers)
    late.timestamp = (T0 + timedelta(minutes=11)).timestamp()
    before = skipped("time")
    await p.feed(late)
    assert p.stored().profile == {} and skipped("time") == before + 1
    assert [e["type"] for e in p.output.values] == ["updated", "deleted"]


async def test_a_re_routed_copy_of_a_message_sent_after_the_forget_applies() -> None:
    p = Pipeline(partitions=8)
    home = partition_for(b"alice", 8)
    forget = command("f1", "forget", offset=0)
    forget.partition = home
    await p.feed(chat("m0", "name=Alice", partition=home, partitions=8), forget)
    # sent past the forget's time and the skew margin (PROFILE_STREAM_MAX_FUTURE_SKEW_S, 300 s)
    later = T0 + timedelta(minutes=6)
    misplaced = chat("m1", "name=Bea", partition=(home + 1) % 8, partitions=8, sent_at=later)
    await p.feed(misplaced)
    [(_, headers)] = p.reroute.routing
    copy = Record(b"alice", misplaced.value, offset=1, partition=home, headers=headers)
    copy.timestamp = later.timestamp()
    await p.feed(copy)
    assert p.stored().profile["name"] == "Bea" and p.stored().forgotten_at is None


async def test_a_message_left_out_is_logged_at_debug_with_fixed_keys(
    caplog: pytest.LogCaptureFixture,
) -> None:
    p = Pipeline()
    await dead_lettered(p, "m1", "name=Alice Smith", offset=0)
    await p.feed(command("f1", "forget", offset=1))
    with caplog.at_level(logging.DEBUG, logger="streams.pipeline.fresh"):
        await p.feed(replayed(p, offset=2))
    [line] = [r.getMessage() for r in caplog.records if r.name == "streams.pipeline.fresh"]
    assert line == (
        "skipped: taken in before a forget user_id=alice message_id=m1 topic=chat-messages "
        "partition=0 offset=2 first_seen=chat-messages:0:0 "
        f"first_seen_ms={line.rsplit('first_seen_ms=', 1)[1].split()[0]} by=offset"
    )
    assert "Alice Smith" not in line  # never the content


async def test_forget_still_empties_every_store() -> None:
    p = Pipeline(flushing=FlushPolicy(idle_s=60), revisions_per_field=4)
    await p.feed(chat("m1", "name=Alice", offset=0))
    p.now += 61
    await p.tick()
    assert p.stored().history  # a version with its revisions
    await p.feed(chat("m2", "name=Alicia", offset=1, sent_at=T0 + timedelta(seconds=61)))
    assert p.buffer_table  # m2 waits in the buffer table
    await p.feed(command("f1", "forget", offset=2))
    s = p.stored()
    assert p.buffer_table == {}
    assert (s.profile, s.history, s.buffer, s.usage, s.last_message) == ({}, {}, (), None, None)
    assert s.forget_mark is not None
    assert set(s.forget_mark.model_dump()) == {"offsets", "at_ms"}  # positions and a time only


async def test_a_forwarded_copy_from_before_a_kinds_forget_stays_out_of_its_profile() -> None:
    p = Pipeline(kind=Kind("team", ProfileSchema(UserProfile), subject="metadata.team_id"))
    forget = command("f1", "forget", user="t7", offset=1)
    forget.timestamp = (T0 + timedelta(minutes=10)).timestamp()

    def forwarded(message_id: str, offset: int, at: float) -> Record:
        """A copy admission forwarded to the team's topic of a message first read at ``at``."""
        copy = chat(message_id, "name=Ship", metadata={"team_id": "t7"}, key=b"t7", offset=offset)
        copy.headers = [FirstSeen.of("chat-messages", 2, offset, at).header()]
        copy.timestamp = forget.timestamp + 60
        return copy

    await p.feed(chat("m0", "name=Crew", metadata={"team_id": "t7"}, key=b"t7"), forget)
    await p.feed(forwarded("m1", 17, T0.timestamp()))  # sent before the forget, copied late
    assert p.stored("t7").profile == {}
    await p.feed(forwarded("m2", 18, forget.timestamp + 301))  # after it and the margin
    assert p.stored("t7").profile["name"] == "Ship"
