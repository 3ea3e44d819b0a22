"""Operator commands decided purely: what is stored, what is announced, what is deleted."""

from datetime import UTC, datetime

import pytest

from schemas import PatchOperation, ProfileCommand, ProfileRecord
from streams.core.commands import apply_command
from streams.core.profile_schema import load_profile_schema
from streams.errors import InvalidEvent

SCHEMA = load_profile_schema("schemas.profile:UserProfile")
AT = datetime(2026, 11, 25, 12, tzinfo=UTC)
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
    assert outcome is not None and outcome.delete
    assert outcome.record.profile == {} and outcome.record.provenance == {}
    assert outcome.event is not None and outcome.event.type == "deleted"
    assert outcome.event.event_id == "ann:5" and outcome.event.profile is None


@pytest.mark.parametrize("kind", ["forget", "migrate"])
def test_forget_and_migrate_never_create_a_profile(kind: str) -> None:
    assert apply(command(kind), exists=False) is None


def test_a_correction_applies_and_locks() -> None:
    op = PatchOperation(field="name", op="set", value="Annie")
    outcome = apply(command("correct", operations=(op,), lock=("name",)))
    assert outcome is not None and not outcome.delete and outcome.event is not None
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
