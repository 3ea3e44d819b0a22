"""Operator commands decided purely: what is stored, what is announced, what is forgotten."""

from datetime import UTC, datetime

import pytest

from schemas import ForgetMark, PatchOperation, ProfileCommand, ProfileRecord
from streams.core.commands import apply_command
from streams.core.profile_schema import load_profile_schema
from streams.errors import InvalidEvent

SCHEMA = load_profile_schema("schemas.profile:UserProfile")
AT = datetime(2026, 11, 25, 12, tzinfo=UTC)
#: ``AT`` in ms: where a forget's mark is put when no record timestamp is given.
MS = int(AT.timestamp() * 1000)
STORED = ProfileRecord(
    user_id="ann",
    version=4,
    schema_id=SCHEMA.schema_id,
    profile=SCHEMA.empty() | {"name": "Ann", "languages": ["Welsh"]},
)


def command(kind: str, **extra: object) -> ProfileCommand:
    return ProfileCommand(
        command_id="c1",
        type=kind,
        user_id="ann",  # type: ignore[arg-type]
        requested_at=AT,
        **extra,
    )  # type: ignore[arg-type]


def apply(cmd: ProfileCommand, exists: bool = True):  # type: ignore[no-untyped-def]
    return apply_command(cmd, STORED, SCHEMA, source="chat:0", offset=9, exists=exists)


def test_forget_keeps_no_profile_data_and_announces_the_next_version() -> None:
    outcome = apply(command("forget"))
    assert outcome is not None and outcome.forgets
    assert outcome.record.profile == {} and outcome.record.provenance == {}
    assert outcome.event is not None and outcome.event.type == "deleted"
    assert outcome.event.event_id == "ann:5" and outcome.event.profile is None


def test_forget_leaves_a_tombstone_at_the_deleted_version_that_remembers_what_was_applied() -> None:
    stored = STORED.model_copy(
        update={"applied": {"chat:0": 7}, "recent_message_ids": ("m7",), "locked": ("name",)}
    )
    outcome = apply_command(
        command("forget"), stored, SCHEMA, source="chat:0", offset=9, exists=True
    )
    assert outcome is not None
    tombstone = outcome.record
    assert tombstone.forgotten_at == AT and tombstone.version == 5 and tombstone.format == 8
    assert tombstone.applied == {"chat:0": 9} and tombstone.recent_message_ids == ("m7", "c1")
    assert tombstone.forget_mark == ForgetMark(offsets={"chat:0": 9}, at_ms=MS)
    assert (tombstone.profile, tombstone.locked, tombstone.set_aside) == ({}, (), {})


def test_a_tombstone_is_not_migrated() -> None:
    tombstone = apply(command("forget")).record  # type: ignore[union-attr]
    again = command("migrate").model_copy(update={"command_id": "c2"})
    assert apply_command(again, tombstone, SCHEMA, source="chat:0", offset=10, exists=True) is None


def test_a_second_forget_of_a_tombstone_announces_nothing_and_moves_the_mark_on() -> None:
    tombstone = apply(command("forget")).record  # type: ignore[union-attr]
    again = command("forget").model_copy(update={"command_id": "c2"})
    outcome = apply_command(
        again, tombstone, SCHEMA, source="chat:0", offset=10, exists=True, received_ms=MS + 5
    )
    assert outcome is not None and outcome.event is None and not outcome.forgets
    kept = outcome.record
    assert kept.forget_mark == ForgetMark(offsets={"chat:0": 10}, at_ms=MS + 5)
    assert (kept.version, kept.forgotten_at, kept.applied) == (5, AT, {"chat:0": 10})


def test_a_redelivered_command_changes_nothing() -> None:
    tombstone = apply(command("forget")).record  # type: ignore[union-attr]
    renewed = tombstone.model_copy(update={"forgotten_at": None, "applied": {"chat:0": 11}})
    # the forget at offset 9 comes again after a new profile began at offset 11: it is skipped
    assert (
        apply_command(command("forget"), renewed, SCHEMA, source="chat:0", offset=9, exists=True)
        is None
    )


def test_migrate_never_creates_a_profile() -> None:
    assert apply(command("migrate"), exists=False) is None


def test_a_forget_of_an_unknown_subject_leaves_only_a_mark() -> None:
    absent = ProfileRecord(user_id="ann", schema_id=SCHEMA.schema_id)
    outcome = apply_command(
        command("forget"), absent, SCHEMA, source="chat:0", offset=3, exists=False
    )
    assert outcome is not None and outcome.event is None and not outcome.forgets
    kept = outcome.record
    assert (kept.version, kept.profile, kept.forgotten_at) == (0, {}, AT)
    assert kept.forget_mark == ForgetMark(offsets={"chat:0": 3}, at_ms=MS)


def test_a_correction_applies_and_locks() -> None:
    op = PatchOperation(field="name", op="set", value="Annie")
    outcome = apply(command("correct", operations=(op,), lock=("name",)))
    assert outcome is not None and not outcome.forgets and outcome.event is not None
    assert outcome.record.profile["name"] == "Annie" and outcome.record.locked == ("name",)
    assert outcome.record.provenance["name"].by == "operator"
    assert outcome.event.changes[0].evidence.message_id == "c1"


@pytest.mark.parametrize(
    "extra, complaint",
    [
        ({"operations": (PatchOperation(field="timezone", op="set", value="Pacific"),)}, "IANA"),
        ({"lock": ("shoe_size",)}, "shoe_size"),
    ],
)
def test_a_bad_correction_is_refused_with_the_reason(
    extra: dict[str, object], complaint: str
) -> None:
    with pytest.raises(InvalidEvent, match=complaint):
        apply(command("correct", **extra))


def test_migrating_a_current_profile_announces_nothing() -> None:
    outcome = apply(command("migrate"))
    assert outcome is not None and outcome.event is None and outcome.record.version == 4
