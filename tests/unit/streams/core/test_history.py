"""Field revisions kept with the record: written per version, bounded, read back as of a version
or a time, rolled back, dropped by a forget, the same bytes on a replay."""

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import orjson
import pytest

from schemas import REVISIONS_FORMAT, PatchOperation, ProfileCommand, ProfileRecord
from streams.core.codecs import encode
from streams.core.commands import apply_command
from streams.core.history import Source, Trail
from streams.core.merge import merge
from streams.core.migration import migrate
from streams.core.past import parse_time, profile_at, reverted, value_at, version_at
from streams.core.profile_schema import load_profile_schema
from streams.core.records import new_record, next_version, source_key
from streams.core.stored import format_of
from streams.errors import HistoryUnavailable, InvalidEvent
from tests.unit.helpers import T0

SCHEMA = load_profile_schema("schemas.profile:UserProfile")
EMPTY = SCHEMA.empty()
TOPIC, PARTITION = "chat-messages", 3


def at(n: int) -> datetime:
    return T0 + timedelta(hours=n)


def said(
    record: ProfileRecord, n: int, *ops: tuple[str, str, Any], keep: int = 10
) -> ProfileRecord:
    """``record`` after message ``m<n>`` (offset 100 + n, sent at ``at(n)``) made ``ops``."""
    message_id = f"m{n}"
    operations = [
        PatchOperation(field=f, op=op, value=v, message_id=message_id, quote=f"said {v}")  # type: ignore[arg-type]
        for f, op, v in ops
    ]
    result = merge(
        record.profile,
        record.provenance,
        record.locked,
        operations,
        SCHEMA,
        evidence={message_id: at(n)},
    )
    updated, _ = next_version(
        record,
        result,
        offsets={source_key(TOPIC, PARTITION): 100 + n},
        message_ids=[message_id],
        at=at(n),
        trail=Trail(keep, {message_id: Source(TOPIC, PARTITION, 100 + n)}),
    )
    return updated


def moves(cities: Sequence[str], keep: int = 10) -> ProfileRecord:
    """A user who said where they live, version by version (version n at ``at(n)``)."""
    record = new_record("u1", SCHEMA.schema_id)
    for n, city in enumerate(cities, 1):
        record = said(record, n, ("location", "set", city), keep=keep)
    return record


def test_each_version_of_a_field_is_a_revision_with_its_source() -> None:
    record = moves(["Lyon", "Paris", "Oslo"])
    revisions = record.history["location"].revisions
    assert [(r.version, r.value, r.op) for r in revisions] == [
        (1, "Lyon", "set"),
        (2, "Paris", "set"),
        (3, "Oslo", "set"),
    ]
    paris = revisions[1]
    assert paris.at == at(2)
    assert (paris.evidence.message_id, paris.evidence.quote) == ("m2", "said Paris")
    assert (paris.evidence.topic, paris.evidence.partition, paris.evidence.offset) == (
        TOPIC,
        PARTITION,
        102,
    )
    assert record.history_from == 0 and record.format == REVISIONS_FORMAT


def test_the_profile_reads_as_it_was_at_every_version_and_every_time_between() -> None:
    record = moves(["Lyon", "Paris", "Oslo"])
    record = said(record, 4, ("name", "set", "Ann"))
    expected = {
        1: {"location": "Lyon", "name": None},
        2: {"location": "Paris", "name": None},
        3: {"location": "Oslo", "name": None},
        4: {"location": "Oslo", "name": "Ann"},
    }
    for version, fields in expected.items():
        past = profile_at(record, version, EMPTY)
        assert past.profile == EMPTY | fields and past.at == at(version)
        between = version_at(record, at(version) + timedelta(minutes=30))
        assert between == version
        assert version_at(record, at(version)) == version  # a version's own time is in it
    assert profile_at(record, 2, EMPTY).sources["location"].evidence.offset == 102
    assert version_at(record, at(1) - timedelta(seconds=1)) is None  # no profile yet


def test_the_bound_drops_the_oldest_revisions_and_says_so_when_they_are_needed() -> None:
    record = moves(["Lyon", "Paris", "Oslo", "Rome"], keep=2)
    kept = record.history["location"]
    assert [r.value for r in kept.revisions] == ["Oslo", "Rome"] and kept.truncated
    assert profile_at(record, 3, EMPTY).profile["location"] == "Oslo"
    with pytest.raises(
        HistoryUnavailable,
        match="'location' at version 2 is no longer kept.*"
        "oldest kept revision is version 3.*PROFILE_STREAM_REVISIONS_PER_FIELD",
    ):
        profile_at(record, 2, EMPTY)
    with pytest.raises(HistoryUnavailable, match="no version of this profile at or before"):
        version_at(record, at(1) + timedelta(minutes=1))
    # a field that never reached the bound still reads from the start
    record = said(record, 5, ("name", "set", "Ann"), keep=2)
    assert value_at(record, "name", 4, None) == (None, None)


def test_a_lowered_bound_trims_every_field_at_the_next_version() -> None:
    record = moves(["Lyon", "Paris", "Oslo"])
    record = said(record, 4, ("name", "set", "Ann"), keep=1)
    assert [r.value for r in record.history["location"].revisions] == ["Oslo"]


def test_bound_zero_keeps_no_revisions_and_drops_those_kept_but_still_places_the_evidence() -> None:
    record = moves(["Lyon", "Paris"])
    record = said(record, 3, ("location", "set", "Oslo"), keep=0)
    assert record.history == {} and record.history_from is None
    assert format_of(record) == 1 and b"history" not in encode(record)
    with pytest.raises(HistoryUnavailable, match="keeps no revisions"):
        profile_at(record, 2, EMPTY)
    assert profile_at(record, 3, EMPTY).profile["location"] == "Oslo"  # the current version


def test_a_record_stored_before_revisions_starts_its_history_at_its_version() -> None:
    old = ProfileRecord(
        user_id="u1",
        version=4,
        schema_id=SCHEMA.schema_id,
        profile=EMPTY | {"name": "Ann", "location": "Lyon"},
        updated_at=at(4),
    )
    record = said(old, 5, ("location", "set", "Paris"))
    assert record.history_from == 4
    baseline = record.history["name"].revisions[0]
    assert (baseline.version, baseline.op, baseline.value, baseline.at) == (
        4,
        "baseline",
        "Ann",
        at(4),
    )
    assert profile_at(record, 4, EMPTY).profile == old.profile
    assert profile_at(record, 5, EMPTY).profile["location"] == "Paris"
    with pytest.raises(HistoryUnavailable, match="starts at version 4"):
        profile_at(record, 3, EMPTY)
    with pytest.raises(HistoryUnavailable, match="starts at version 4"):
        version_at(record, at(3))


def test_an_operator_correction_is_a_correct_revision_naming_the_command() -> None:
    record = moves(["Lyon"])
    op = PatchOperation(field="location", op="set", value="Lille")
    outcome = apply_command(
        command("correct", operations=(op,)),
        record,
        SCHEMA,
        source="chat-messages:3",
        offset=200,
        exists=True,
        trail=Trail(10, {"c1": Source(TOPIC, PARTITION, 200)}),
    )
    assert outcome is not None and outcome.event is not None
    last = outcome.record.history["location"].revisions[-1]
    assert (last.op, last.value, last.evidence.message_id, last.evidence.offset) == (
        "correct",
        "Lille",
        "c1",
        200,
    )
    assert outcome.event.changes[0].op == "set"  # the event's contract is unchanged
    assert outcome.event.changes[0].evidence.offset == 200


def test_a_migration_step_is_a_migrate_revision_without_an_input_record() -> None:
    record = moves(["Lyon"]).model_copy(update={"schema_id": "UserProfile/v0"})
    record = record.model_copy(update={"profile": {**record.profile, "shoe_size": 42}})
    migrated, steps = migrate(record, SCHEMA)
    updated, event = next_version(
        migrated,
        None,
        offsets={},
        message_ids=["m9"],
        at=at(9),
        migration=steps,
        trail=Trail(10, {"m9": Source(TOPIC, PARTITION, 109)}),
    )
    assert event is not None
    removed = updated.history["shoe_size"].revisions[-1]
    assert (removed.op, removed.value, removed.evidence.offset) == ("migrate", None, None)
    assert "shoe_size" not in profile_at(updated, 2, EMPTY).profile  # gone from then on


def command(kind: str, **extra: Any) -> ProfileCommand:
    return ProfileCommand(
        command_id="c1",
        type=kind,
        user_id="u1",
        requested_at=at(50),
        **extra,  # type: ignore[arg-type]
    )


def revert(record: ProfileRecord, **extra: Any) -> ProfileRecord:
    outcome = apply_command(
        command("revert", **extra),
        record,
        SCHEMA,
        source="chat-messages:3",
        offset=300,
        exists=True,
        trail=Trail(10, {"c1": Source(TOPIC, PARTITION, 300)}),
    )
    assert outcome is not None
    return outcome.record


def test_a_revert_restores_a_field_names_the_version_and_may_lock_it() -> None:
    record = moves(["Lyon", "Paris", "Oslo"])
    record = said(record, 4, ("name", "set", "Ann"))
    outcome = apply_command(
        command("revert", version=2, fields=("location",), lock=("location",)),
        record,
        SCHEMA,
        source="chat-messages:3",
        offset=300,
        exists=True,
        trail=Trail(10, {"c1": Source(TOPIC, PARTITION, 300)}),
    )
    assert outcome is not None and outcome.event is not None
    (change,) = outcome.event.changes
    assert (change.field, change.op, change.old, change.new, change.restored_version) == (
        "location",
        "revert",
        "Oslo",
        "Paris",
        2,
    )
    assert (change.evidence.message_id, change.evidence.offset) == ("c1", 300)
    after = outcome.record
    assert after.profile["location"] == "Paris" and after.profile["name"] == "Ann"
    assert after.locked == ("location",) and after.provenance["location"].by == "operator"
    last = after.history["location"].revisions[-1]
    assert (last.op, last.version, last.restored_version) == ("revert", 5, 2)
    assert b'"restored_version":2' in encode(outcome.event)


def test_a_whole_profile_revert_restores_every_field_lists_whole() -> None:
    record = said(new_record("u1", SCHEMA.schema_id), 1, ("languages", "add", "Welsh"))
    record = said(record, 2, ("languages", "add", "Irish"), ("name", "set", "Ann"))
    after = revert(record, version=1)
    assert after.profile == EMPTY | {"languages": ["Welsh"]}
    for name, value in (("languages", ["Welsh"]), ("name", None)):
        last = after.history[name].revisions[-1]
        assert (last.op, last.value, last.restored_version) == ("revert", value, 1)


@pytest.mark.parametrize(
    "extra, complaint",
    [
        ({"version": 9}, "version 9 does not exist"),
        ({"version": 1, "fields": ("shoe_size",)}, "unknown fields"),
    ],
)
def test_a_revert_the_profile_cannot_satisfy_is_refused(
    extra: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(InvalidEvent, match=complaint):
        revert(moves(["Lyon", "Paris"]), **extra)


def test_a_revert_to_a_dropped_version_is_refused_naming_the_bound() -> None:
    record = moves(["Lyon", "Paris", "Oslo"], keep=1)
    with pytest.raises(InvalidEvent, match="cannot revert 'location' to version 1.*REVISIONS_PER"):
        reverted(command("revert", version=1, fields=("location",)), record, SCHEMA)


def test_a_forget_leaves_no_revision_and_the_next_profile_starts_a_new_history() -> None:
    record = moves(["Lyon", "Paris"])
    outcome = apply_command(
        command("forget"), record, SCHEMA, source="chat-messages:3", offset=300, exists=True
    )
    assert outcome is not None
    tombstone = outcome.record
    assert tombstone.history == {} and tombstone.history_from is None
    assert b"Lyon" not in encode(tombstone) and b"history" not in encode(tombstone)
    fresh = said(tombstone, 60, ("name", "set", "Bo"))
    assert fresh.version == 4 and fresh.history_from == 3 and set(fresh.history) == {"name"}
    with pytest.raises(HistoryUnavailable, match="starts at version 3"):
        profile_at(fresh, 2, EMPTY)


def test_the_same_input_gives_the_same_revisions_byte_for_byte() -> None:
    assert encode(moves(["Lyon", "Paris", "Oslo"], keep=2)) == encode(
        moves(["Lyon", "Paris", "Oslo"], keep=2)
    )


def test_evidence_without_a_source_keeps_the_bytes_of_before() -> None:
    record = moves(["Lyon"])
    body = orjson.loads(encode(record))
    assert set(body["history"]["location"]["revisions"][0]["evidence"]) == {
        "message_id",
        "quote",
        "topic",
        "partition",
        "offset",
    }
    plain = command("forget")
    assert b"version" not in encode(plain) and b"fields" not in encode(plain)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2026-01-01T12:00:00Z", T0),
        ("2026-01-01T13:00:00+01:00", T0),
        ("2026-01-01T13:00:00 01:00", T0),  # a '+' that a query string turned into a space
    ],
)
def test_as_of_times_need_an_offset(text: str, expected: datetime) -> None:
    assert parse_time(text) == expected


@pytest.mark.parametrize("text", ["2026-01-01T12:00:00", "yesterday", ""])
def test_an_as_of_time_without_an_offset_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="RFC 3339"):
        parse_time(text)


def test_a_revert_names_a_version_and_only_a_revert_does() -> None:
    with pytest.raises(ValueError, match="names the version"):
        command("revert")
    with pytest.raises(ValueError, match="names the version"):
        command("correct", version=2)
