"""Record bookkeeping: versions, event ids, replay detection and deterministic events."""

from datetime import timedelta

import orjson

from schemas import RECENT_IDS_KEPT, PatchOperation, ProfileRecord
from streams.core.codecs import encode
from streams.core.merge import MergeResult, merge
from streams.core.profile_schema import ProfileSchema
from streams.core.records import applied_before, deleted_event, new_record, next_version, source_key
from tests.unit.helpers import T0

SRC = source_key("chat-messages", 3)


def _alice(schema: ProfileSchema, profile: dict[str, object] | None = None) -> MergeResult:
    ops = [
        PatchOperation(field="name", op="set", value="Alice", message_id="m1", quote="I'm Alice")
    ]
    return merge(profile or {}, {}, (), ops, schema, evidence={"m1": T0})


def _first_version(schema: ProfileSchema) -> tuple[ProfileRecord, object]:
    record = new_record("u1", schema.schema_id)
    return next_version(record, _alice(schema), offsets={SRC: 10}, message_ids=["m1"], at=T0)


def test_a_change_bumps_the_version_and_names_the_event_user_version(schema: ProfileSchema) -> None:
    record, event = _first_version(schema)
    assert record.version == 1 and record.profile["name"] == "Alice"
    assert event is not None
    assert event.event_id == "u1:1" and event.type == "updated" and event.version == 1
    assert event.source_message_ids == ["m1"]
    assert [c.field for c in event.changes] == ["name"]
    assert record.updated_at == event.updated_at == T0


def test_no_change_means_no_new_version_and_no_event(schema: ProfileSchema) -> None:
    record, _ = _first_version(schema)
    later = T0 + timedelta(hours=1)
    again = _alice(schema, record.profile)
    assert again.changes == []
    after, event = next_version(record, again, offsets={SRC: 11}, message_ids=["m2"], at=later)
    assert event is None
    assert after.version == 1 and after.updated_at == T0
    # ...but the input is remembered, so a replay is skipped without asking the model.
    assert after.applied[SRC] == 11 and after.recent_message_ids == ("m1", "m2")
    none_result, event = next_version(record, None, offsets={SRC: 12}, message_ids=["m3"], at=later)
    assert event is None and none_result.applied[SRC] == 12


def test_identical_input_gives_byte_identical_events(schema: ProfileSchema) -> None:
    _, first = _first_version(schema)
    _, second = _first_version(schema)
    assert first is not None and second is not None
    assert encode(first) == encode(second)
    body = orjson.loads(encode(first))
    assert body["schema"] == "UserProfile/v1" and body["updated_at"] == "2026-01-01T12:00:00Z"


def test_a_redelivered_offset_was_applied_before(schema: ProfileSchema) -> None:
    record, _ = _first_version(schema)
    assert applied_before(record, SRC, 10, "m-new")
    assert applied_before(record, SRC, 3, "m-new")
    assert not applied_before(record, SRC, 11, "m-new")
    assert not applied_before(record, source_key("chat-messages", 4), 10, "m-new")


def test_a_message_published_twice_was_applied_before(schema: ProfileSchema) -> None:
    record, _ = _first_version(schema)
    assert applied_before(record, SRC, 99, "m1")


def test_offsets_never_go_backwards(schema: ProfileSchema) -> None:
    record, _ = _first_version(schema)
    after, _ = next_version(record, None, offsets={SRC: 2}, message_ids=[], at=T0)
    assert after.applied[SRC] == 10


def test_recent_message_ids_are_bounded(schema: ProfileSchema) -> None:
    record = new_record("u1", schema.schema_id)
    for i in range(RECENT_IDS_KEPT + 40):
        record, _ = next_version(record, None, offsets={SRC: i}, message_ids=[f"m{i}"], at=T0)
    assert len(record.recent_message_ids) == RECENT_IDS_KEPT
    assert record.recent_message_ids[-1] == f"m{RECENT_IDS_KEPT + 39}"
    assert applied_before(record, "other:0", 0, f"m{RECENT_IDS_KEPT + 39}")
    assert not applied_before(record, "other:0", 0, "m0")


def test_a_lock_change_alone_is_a_new_version(schema: ProfileSchema) -> None:
    record, _ = _first_version(schema)
    no_change = MergeResult(record.profile, record.provenance)
    locked, event = next_version(
        record, no_change, offsets={}, message_ids=["c1"], at=T0, locked=("name",)
    )
    assert locked.locked == ("name",) and locked.version == 2
    assert event is not None and event.changes == []


def test_a_deleted_event_carries_no_profile_data(schema: ProfileSchema) -> None:
    record, _ = _first_version(schema)
    event = deleted_event(record, "cmd-1", T0 + timedelta(days=1))
    assert (event.type, event.event_id, event.profile, event.changes) == (
        "deleted",
        "u1:2",
        None,
        [],
    )
    assert b"Alice" not in encode(event)
    assert event.source_message_ids == ["cmd-1"]


def test_a_new_record_is_empty(schema: ProfileSchema) -> None:
    record = new_record("u1", schema.schema_id)
    assert (record.version, record.profile, record.applied) == (0, {}, {})
    assert not applied_before(record, SRC, 0, "m1")
