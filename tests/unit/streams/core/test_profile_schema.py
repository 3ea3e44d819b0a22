"""Loading a deployment's profile model: errors name the setting to fix."""

from typing import ClassVar

import pytest
from pydantic import BaseModel

from schemas import ProfileModel, UserProfile
from streams.core.profile_schema import ProfileSchema, load_profile_schema
from streams.errors import ConfigError

SETTING = "PROFILE_STREAM_PROFILE_MODEL"


class NotAProfile(BaseModel):
    name: str | None = None


class NeedsAnAccount(ProfileModel):
    account_id: str
    region: str
    nickname: str | None = None


class Pets(ProfileModel):
    schema_name: ClassVar[str] = "Pets"
    schema_version: ClassVar[int] = 3
    pets: list[str] | None = None
    favourite: str = "dog"


def test_the_default_model_loads() -> None:
    schema = load_profile_schema("schemas.profile:UserProfile")
    assert schema.model is UserProfile
    assert schema.schema_id == "UserProfile/v1"


@pytest.mark.parametrize(
    "path",
    ["no_such_module_xyz:Profile", "schemas.profile:NoSuchClass", "schemas.profile", ":X", ""],
)
def test_an_unimportable_path_names_the_setting(path: str) -> None:
    with pytest.raises(ConfigError, match=SETTING) as info:
        load_profile_schema(path)
    assert "package.module:ClassName" in str(info.value)


@pytest.mark.parametrize("attr", ["NotAProfile", "SETTING", "test_the_default_model_loads"])
def test_something_other_than_a_profile_model_names_the_setting(attr: str) -> None:
    with pytest.raises(ConfigError, match=f"{SETTING}.*not a subclass of schemas.ProfileModel"):
        load_profile_schema(f"{__name__}:{attr}")


def test_a_required_field_without_default_is_refused_and_named() -> None:
    with pytest.raises(ConfigError, match=SETTING) as info:
        load_profile_schema(f"{__name__}:NeedsAnAccount")
    message = str(info.value)
    assert "account_id" in message and "region" in message
    assert "nickname" not in message


def test_a_custom_model_is_seen_field_by_field() -> None:
    schema = load_profile_schema(f"{__name__}:Pets")
    assert schema.schema_id == "Pets/v3"
    assert schema.empty() == {"pets": None, "favourite": "dog"}
    assert schema.fields["pets"].is_list and not schema.fields["favourite"].is_list
    assert schema.fields["pets"].check_item("cat") == "cat"


def test_default_schema_fields_and_kinds(schema: ProfileSchema) -> None:
    lists = {name for name, spec in schema.fields.items() if spec.is_list}
    assert lists == {"languages", "expertise", "common_topics", "key_relationships"}
    assert set(schema.fields) == set(UserProfile.model_fields)
    assert schema.fields["name"].description.startswith("The name the user goes by")


def test_empty_profiles_are_independent(schema: ProfileSchema) -> None:
    first = schema.empty()
    first["name"] = "Alice"
    assert schema.empty()["name"] is None


def test_field_checks_give_json_values_or_a_readable_error(schema: ProfileSchema) -> None:
    assert schema.fields["name"].check("  Alice ") == "Alice"
    with pytest.raises(ValueError, match="not an IANA time zone"):
        schema.fields["timezone"].check("Pacific time")
    assert schema.json_schema()["title"] == "UserProfile"
