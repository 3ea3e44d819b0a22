"""A profile schema given as a JSON Schema file behaves like a pydantic one."""

import json
from pathlib import Path

import pytest

from streams.core.kinds import load_kinds
from streams.core.profile_schema import load_profile_schema
from streams.errors import ConfigError

ROLE = {
    "title": "RoleProfile",
    "x-schema-version": 2,
    "type": "object",
    "properties": {
        "title": {"type": "string", "maxLength": 40, "description": "The role's name."},
        "seniority": {"enum": ["junior", "senior", "lead"]},
        "headcount": {"type": "integer", "minimum": 0},
        "duties": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
    },
}


def write(tmp_path: Path, schema: dict[str, object]) -> Path:
    path = tmp_path / "role.schema.json"
    path.write_text(json.dumps(schema))
    return path


def test_fields_are_checked_one_by_one_like_a_pydantic_model(tmp_path: Path) -> None:
    schema = load_profile_schema(str(write(tmp_path, ROLE)))
    assert schema.schema_id == "RoleProfile/v2"
    assert schema.empty() == {"title": None, "seniority": None, "headcount": None, "duties": []}
    assert schema.fields["seniority"].check("lead") == "lead"
    assert schema.fields["duties"].is_list and schema.fields["duties"].check_item("hire") == "hire"
    assert schema.fields["title"].description == "The role's name."
    for field, bad in (("seniority", "boss"), ("headcount", -1), ("title", "x" * 41)):
        with pytest.raises(ValueError):
            schema.fields[field].check(bad)
    with pytest.raises(ValueError):
        schema.fields["duties"].check(["a", "b", "c", "d"])


def test_a_required_property_without_default_is_refused_by_name(tmp_path: Path) -> None:
    path = write(tmp_path, ROLE | {"required": ["headcount"]})
    with pytest.raises(ConfigError, match="headcount"):
        load_profile_schema(str(path))


def test_a_kinds_file_may_name_a_json_schema_beside_it(tmp_path: Path) -> None:
    write(tmp_path, ROLE)
    kinds = tmp_path / "kinds.toml"
    kinds.write_text('[kinds.role]\nschema = "role.schema.json"\nsubject = "metadata.role"\n')
    _, role = load_kinds(kinds, "schemas.profile:UserProfile")
    assert role.schema.schema_id == "RoleProfile/v2"


def test_unsupported_types_are_refused_with_the_setting(tmp_path: Path) -> None:
    path = write(tmp_path, {"type": "object", "properties": {"x": {"type": "object"}}})
    with pytest.raises(ConfigError, match="PROFILE_STREAM_PROFILE_MODEL=.*: /properties/x/type:"):
        load_profile_schema(str(path))
