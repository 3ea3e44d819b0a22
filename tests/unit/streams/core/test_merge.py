"""Merging a patch: each operation checked on its own, everything unmentioned kept."""

from datetime import timedelta

import pytest

from schemas import PatchOperation, Provenance
from schemas.languages import LANGUAGES
from streams.core.merge import merge
from streams.core.profile_schema import ProfileSchema
from tests.unit.helpers import T0

EVIDENCE = {"m1": T0, "m2": T0 + timedelta(minutes=5)}


def op(
    field: str, kind: str, value: object = None, mid: str = "m1", quote: str = ""
) -> PatchOperation:
    return PatchOperation(field=field, op=kind, value=value, message_id=mid, quote=quote)  # type: ignore[arg-type]


def test_seed_scenario_alice_from_california_then_spanish(schema: ProfileSchema) -> None:
    first = merge(
        {},
        {},
        (),
        [
            op("name", "set", "Alice", quote="I'm Alice"),
            op("location", "set", "California", quote="from California"),
            op("timezone", "set", "America/Los_Angeles", quote="from California"),
        ],
        schema,
        evidence={"m1": T0},
    )
    second = merge(
        first.profile,
        first.provenance,
        (),
        [op("languages", "add", "Spanish", mid="m2", quote="I speak Spanish too")],
        schema,
        evidence={"m2": EVIDENCE["m2"]},
    )
    assert second.profile["name"] == "Alice"
    assert second.profile["timezone"] == "America/Los_Angeles"
    assert second.profile["location"] == "California"
    assert second.profile["languages"] == ["Spanish"]
    assert [(c.field, c.old, c.new) for c in second.changes] == [("languages", [], ["Spanish"])]
    assert second.provenance["name"] == Provenance(message_id="m1", at=T0)
    assert second.provenance["languages"] == Provenance(message_id="m2", at=EVIDENCE["m2"])
    assert second.dropped == []


def test_list_add_is_a_case_insensitive_union(schema: ProfileSchema) -> None:
    ops = [op("languages", "add", "spanish"), op("languages", "add", ["French", "ENGLISH"])]
    result = merge({"languages": ["English", "Spanish"]}, {}, (), ops, schema, evidence=EVIDENCE)
    assert result.profile["languages"] == ["English", "Spanish", "French"]
    assert len(result.changes) == 1


def test_set_on_a_list_adds_instead_of_replacing(schema: ProfileSchema) -> None:
    ops = [op("languages", "set", ["German"])]
    result = merge({"languages": ["English"]}, {}, (), ops, schema, evidence=EVIDENCE)
    assert result.profile["languages"] == ["English", "German"]


def test_remove_takes_an_item_out_case_insensitively(schema: ProfileSchema) -> None:
    profile = {"languages": ["English", "Spanish"]}
    result = merge(
        profile, {}, (), [op("languages", "remove", "SPANISH")], schema, evidence=EVIDENCE
    )
    assert result.profile["languages"] == ["English"]
    assert result.changes[0].old == ["English", "Spanish"]


def test_unset_returns_a_field_to_its_default(schema: ProfileSchema) -> None:
    profile = {"name": "Alice", "expertise": ["Go"]}
    ops = [op("name", "unset"), op("expertise", "unset")]
    result = merge(profile, {}, (), ops, schema, evidence=EVIDENCE)
    assert (result.profile["name"], result.profile["expertise"]) == (None, [])
    assert [c.new for c in result.changes] == [None, []]


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (op("nickname", "set", "Al"), "not a field"),
        (op("timezone", "set", "Pacific time"), "IANA"),
        (op("name", "add", "Al"), "list fields"),
        (op("name", "set", 42), "valid string"),
        (op("formality", "set", True), "casual"),
        (op("languages", "add", None), "valid string"),
        (op("name", "set", "Bob", mid="m9"), "no message of this batch"),
    ],
)
def test_an_invalid_operation_is_dropped_with_a_reason_and_the_rest_apply(
    schema: ProfileSchema, bad: PatchOperation, reason: str
) -> None:
    ops = [op("location", "set", "Paris"), bad, op("languages", "add", "French")]
    result = merge({"name": "Alice"}, {}, (), ops, schema, evidence=EVIDENCE)
    assert [d.operation for d in result.dropped] == [bad]
    assert reason in result.dropped[0].reason
    assert result.profile["location"] == "Paris"
    assert result.profile["languages"] == ["French"]
    assert result.profile["name"] == "Alice"


def test_without_a_message_id_the_only_message_is_the_evidence(schema: ProfileSchema) -> None:
    single = merge({}, {}, (), [op("name", "set", "Alice", mid="")], schema, evidence={"m1": T0})
    assert single.provenance["name"].message_id == "m1"
    both = merge({}, {}, (), [op("name", "set", "Alice", mid="")], schema, evidence=EVIDENCE)
    assert both.changes == [] and len(both.dropped) == 1


def test_locked_fields_resist_extraction_but_not_an_operator(schema: ProfileSchema) -> None:
    profile, locked = {"name": "Alice"}, ("name",)
    ops = [op("name", "set", "Mallory")]
    extracted = merge(profile, {}, locked, ops, schema, evidence=EVIDENCE)
    assert extracted.profile["name"] == "Alice"
    assert "locked" in extracted.dropped[0].reason
    corrected = merge(profile, {}, locked, ops, schema, evidence=EVIDENCE, by="operator")
    assert corrected.profile["name"] == "Mallory"
    assert corrected.provenance["name"].by == "operator"


def test_provenance_records_the_message_and_its_time(schema: ProfileSchema) -> None:
    result = merge(
        {},
        {},
        (),
        [op("name", "set", "Alice", mid="m2", quote="I'm Alice")],
        schema,
        evidence=EVIDENCE,
    )
    assert result.provenance["name"] == Provenance(message_id="m2", at=EVIDENCE["m2"])
    assert result.changes[0].evidence.quote == "I'm Alice"


def test_an_empty_patch_changes_nothing(schema: ProfileSchema) -> None:
    profile = {"name": "Alice", "languages": ["English"]}
    result = merge(profile, {}, (), [], schema, evidence=EVIDENCE)
    assert result.changes == [] and result.dropped == []
    assert result.profile == schema.empty() | profile


@pytest.mark.parametrize(
    "same",
    [
        op("name", "set", "Alice"),
        op("name", "set", " Alice "),
        op("languages", "add", "english"),
        op("timezone", "unset"),
    ],
)
def test_setting_what_is_already_there_is_no_change(
    schema: ProfileSchema, same: PatchOperation
) -> None:
    profile = {"name": "Alice", "languages": ["English"]}
    result = merge(profile, {}, (), [same], schema, evidence=EVIDENCE)
    assert result.changes == [] and result.dropped == []
    assert "name" not in result.provenance


def test_a_list_never_grows_past_its_limit(schema: ProfileSchema) -> None:
    full = sorted(LANGUAGES.values())[:20]
    result = merge(
        {"languages": full}, {}, (), [op("languages", "add", "Zulu")], schema, evidence=EVIDENCE
    )
    assert result.profile["languages"] == full
    assert "at most 20" in result.dropped[0].reason


def test_merge_leaves_its_inputs_and_the_empty_profile_alone(schema: ProfileSchema) -> None:
    profile = {"languages": ["English"]}
    merge(profile, {}, (), [op("languages", "add", "French")], schema, evidence=EVIDENCE)
    unset = merge(
        {},
        {},
        (),
        [op("languages", "unset"), op("languages", "add", "Dutch")],
        schema,
        evidence=EVIDENCE,
    )
    assert profile == {"languages": ["English"]}
    assert unset.profile["languages"] == ["Dutch"]
    assert schema.empty()["languages"] == []


def test_fields_no_longer_in_the_schema_are_dropped_from_the_profile(schema: ProfileSchema) -> None:
    result = merge({"name": "Alice", "shoe_size": 9}, {}, (), [], schema, evidence=EVIDENCE)
    assert "shoe_size" not in result.profile


def test_a_late_older_message_does_not_overwrite_a_newer_value(schema: ProfileSchema) -> None:
    newer = merge({}, {}, (), [op("name", "set", "Alicia", mid="m2")], schema, evidence=EVIDENCE)
    late = [op("name", "set", "Alice"), op("languages", "add", "French")]
    result = merge(newer.profile, newer.provenance, (), late, schema, evidence={"m1": T0})
    assert result.profile["name"] == "Alicia" and result.profile["languages"] == ["French"]
    assert "superseded" in result.dropped[0].reason


def test_an_operators_set_replaces_a_list_and_add_remove_change_one_item(
    schema: ProfileSchema,
) -> None:
    profile = {"languages": ["English", "Spanish"]}

    def by_operator(*ops: PatchOperation) -> list[str]:
        result = merge(profile, {}, (), list(ops), schema, evidence={"m1": T0}, by="operator")
        return list(result.profile["languages"])

    assert by_operator(op("languages", "set", ["Basque"])) == ["Basque"]
    assert by_operator(op("languages", "set", "Basque")) == ["Basque"]
    assert by_operator(op("languages", "add", "Basque")) == ["English", "Spanish", "Basque"]
    assert by_operator(op("languages", "remove", "Spanish")) == ["English"]


def test_extractions_set_on_a_list_still_adds(schema: ProfileSchema) -> None:
    profile = {"languages": ["English"]}
    result = merge(profile, {}, (), [op("languages", "set", ["Basque"])], schema, evidence=EVIDENCE)
    assert result.profile["languages"] == ["English", "Basque"]
