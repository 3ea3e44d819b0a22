"""The default profile model: what each field accepts."""

import pytest
from pydantic import ValidationError

from schemas import ProfileModel, UserProfile


def test_a_new_profile_is_empty_and_versioned() -> None:
    profile = UserProfile()
    assert all(value in (None, []) for value in profile.model_dump().values())
    assert (UserProfile.schema_name, UserProfile.schema_version) == ("UserProfile", 1)
    assert issubclass(UserProfile, ProfileModel)


@pytest.mark.parametrize("zone", ["America/Los_Angeles", "Europe/Paris", "UTC", "Asia/Kolkata"])
def test_iana_time_zones_are_accepted(zone: str) -> None:
    assert UserProfile(timezone=zone).timezone == zone


@pytest.mark.parametrize("zone", ["Pacific time", "America/Nowhere", "GMT+2 ish", ""])
def test_anything_else_as_a_time_zone_is_refused_with_an_example(zone: str) -> None:
    with pytest.raises(ValidationError, match="America/Los_Angeles"):
        UserProfile(timezone=zone)


def test_short_text_is_stripped() -> None:
    assert UserProfile(name="  Alice \n").name == "Alice"


@pytest.mark.parametrize(
    "fields",
    [
        {"name": "   "},
        {"name": "x" * 201},
        {"languages": [f"L{i}" for i in range(21)]},
        {"languages": [""]},
        {"formality": "very"},
        {"detail_level": "verbose"},
        {"last_conversation_summary": "s" * 2001},
        {"favourite_colour": "blue"},
    ],
)
def test_out_of_range_values_and_unknown_fields_are_refused(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        UserProfile.model_validate(fields)


def test_profiles_are_frozen() -> None:
    with pytest.raises(ValidationError):
        UserProfile().name = "Alice"  # type: ignore[misc]


def test_every_field_has_a_description_for_the_model() -> None:
    assert all(info.description for info in UserProfile.model_fields.values())
