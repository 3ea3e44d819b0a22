"""Schema migration keeps what still fits, sets aside what does not, and says so."""

from schemas import ProfileRecord
from streams.core.migration import migrate
from streams.core.profile_schema import ProfileSchema
from tests.fakes.profiles import TeamProfileV1, TeamProfileV2

V1, V2 = ProfileSchema(TeamProfileV1), ProfileSchema(TeamProfileV2)


def stored_v1() -> ProfileRecord:
    return ProfileRecord(
        user_id="u",
        version=3,
        schema_id=V1.schema_id,
        profile={"name": "Ana", "nickname": "Annie", "age": "thirty", "languages": ["Spanish"]},
    )


def test_current_records_are_left_alone() -> None:
    record = ProfileRecord(user_id="u", schema_id=V2.schema_id, profile=V2.empty())
    assert migrate(record, V2) == (record, [])


def test_new_fields_take_defaults_and_invalid_or_removed_values_are_set_aside() -> None:
    migrated, changes = migrate(stored_v1(), V2)
    assert migrated.schema_id == "Member/v2"
    assert migrated.profile == {
        "name": "Ana",
        "age": None,
        "pronouns": None,
        "languages": ["Spanish"],
    }
    assert migrated.set_aside["nickname"].value == "Annie"
    assert "removed" in migrated.set_aside["nickname"].reason
    assert migrated.set_aside["age"].value == "thirty"
    assert "integer" in migrated.set_aside["age"].reason
    assert {(c.field, c.op, c.old, c.new) for c in changes} == {
        ("age", "migrate", "thirty", None),
        ("pronouns", "migrate", None, None),
        ("nickname", "migrate", "Annie", None),
    }
    assert all(c.evidence.message_id == "schema:Member/v2" for c in changes)


def test_values_that_still_validate_are_converted_not_dropped() -> None:
    record = stored_v1().model_copy(update={"profile": {"name": "Ana", "age": "31"}})
    migrated, _ = migrate(record, V2)
    assert migrated.profile["age"] == 31 and "age" not in migrated.set_aside
