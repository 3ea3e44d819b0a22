"""An operator's PATCH body, parsed into a ``correct`` command or refused with a reason."""

from datetime import UTC, datetime

import orjson
import pytest

from schemas import PatchOperation
from streams.core.corrections import SHAPE, parse_correction
from streams.core.profile_schema import load_profile_schema

SCHEMA = load_profile_schema("schemas.profile:UserProfile")
AT = datetime(2026, 12, 1, 9, tzinfo=UTC)


def parse(body: object) -> object:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return parse_correction(raw, "ann", SCHEMA, command_id="c1", at=AT)


def refusal(body: object) -> str:
    with pytest.raises(ValueError) as caught:
        parse(body)
    return str(caught.value)


def test_a_good_body_becomes_a_correct_command() -> None:
    command = parse(
        {
            "operations": [
                {"field": "name", "op": "set", "value": "Annie"},
                {"field": "languages", "op": "add", "value": "Welsh", "quote": "I speak Welsh"},
            ],
            "lock": ["name"],
            "unlock": ["languages"],
        }
    )
    assert command.model_dump() == {
        "command_id": "c1",
        "type": "correct",
        "user_id": "ann",
        "operations": (
            PatchOperation(field="name", op="set", value="Annie").model_dump(),
            PatchOperation(
                field="languages", op="add", value="Welsh", quote="I speak Welsh"
            ).model_dump(),
        ),
        "lock": ("name",),
        "unlock": ("languages",),
        "requested_at": AT,
    }


def test_an_empty_object_is_a_correction_that_changes_nothing() -> None:
    command = parse({})
    assert (command.operations, command.lock, command.unlock) == ((), (), ())


def test_other_keys_are_ignored() -> None:
    assert parse({"pad": "x" * 100, "lock": ["name"]}).lock == ("name",)


def test_without_an_id_or_a_time_each_command_gets_its_own() -> None:
    first = parse_correction(b"{}", "ann", SCHEMA)
    second = parse_correction(b"{}", "ann", SCHEMA)
    assert first.command_id != second.command_id
    assert first.requested_at.tzinfo is not None
    assert abs((datetime.now(UTC) - first.requested_at).total_seconds()) < 60


@pytest.mark.parametrize("body", [b"not json", b"", b'{"operations": [', b"\xff"])
def test_a_body_that_is_not_json_is_refused(body: bytes) -> None:
    assert refusal(body) == "body is not JSON"


@pytest.mark.parametrize("body", [b"[]", b"null", b"1", b'"operations"'])
def test_a_body_that_is_not_an_object_is_refused_with_the_expected_shape(body: bytes) -> None:
    assert refusal(body) == f"body must be {SHAPE}"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"operations": 5}, "invalid correction: 'int' object is not iterable"),
        ({"operations": [{"field": "name"}]}, "invalid correction: op: Field required"),
        ({"operations": [{"field": "name", "op": "shout"}]}, "invalid correction: op: "),
        ({"lock": [1]}, "invalid correction: lock.0: Input should be a valid string"),
        ({"unlock": [None]}, "invalid correction: unlock.0: Input should be a valid string"),
    ],
)
def test_a_body_that_does_not_validate_says_where(body: object, reason: str) -> None:
    assert refusal(body).startswith(reason)


@pytest.mark.parametrize("key", ["lock", "unlock"])
def test_locking_or_unlocking_an_unknown_field_is_refused(key: str) -> None:
    reason = refusal({key: ["name", "shoe_size", "age"]})
    assert reason.startswith("unknown fields ['age', 'shoe_size']; the schema has [")
    assert "'name'" in reason and "'languages'" in reason


def test_a_string_for_lock_is_read_as_its_letters_and_so_refused() -> None:
    # Not a list of fields; it is refused because no field is named by one letter.
    assert refusal({"lock": "name"}).startswith("unknown fields ['a', 'e', 'm', 'n']")


@pytest.mark.parametrize(
    ("operation", "reason"),
    [
        ({"field": "shoe_size", "op": "set", "value": 44}, "'shoe_size' is not a field of"),
        ({"field": "name", "op": "add", "value": "x"}, "'add' works on list fields"),
        (
            {"field": "name", "op": "set", "value": "x", "message_id": "m9"},
            "evidence names no message of this batch ('m9')",
        ),
    ],
)
def test_operations_the_schema_refuses_are_refused_with_the_merge_reason(
    operation: dict[str, object], reason: str
) -> None:
    assert reason in refusal({"operations": [operation]})


def test_every_refused_operation_is_named() -> None:
    reason = refusal(
        {
            "operations": [
                {"field": "shoe_size", "op": "set", "value": 44},
                {"field": "name", "op": "set", "value": "ok"},
                {"field": "age", "op": "set", "value": 3},
            ]
        }
    )
    assert reason.count("is not a field of") == 2 and "; " in reason
