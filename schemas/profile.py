"""The default profile schema, after LangMem's ``UserProfile``.

A deployment may supply its own model (setting ``PROFILE_STREAM_PROFILE_MODEL``). Whatever
the model, each field is validated on its own when a patch touches it, so validation lives in
field types (``Annotated`` validators), never in model-level validators.
"""

from functools import lru_cache
from typing import Annotated, ClassVar, Literal
from zoneinfo import available_timezones

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from .languages import Language

__all__ = ["ProfileModel", "UserProfile", "Timezone", "ShortText"]

ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def _iana_zone(value: str) -> str:
    if value not in _zones():
        raise ValueError(f"{value!r} is not an IANA time zone such as 'America/Los_Angeles'")
    return value


Timezone = Annotated[str, AfterValidator(_iana_zone)]


class ProfileModel(BaseModel):
    """Base of every profile schema: frozen, closed, and named with a version."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    schema_name: ClassVar[str] = "profile"
    schema_version: ClassVar[int] = 1


class UserProfile(ProfileModel):
    """What an assistant should know about one user to talk with them well."""

    schema_name: ClassVar[str] = "UserProfile"
    schema_version: ClassVar[int] = 1

    name: ShortText | None = Field(
        None,
        description="The name the user goes by, only as the user writes it about themselves; "
        "never guessed.",
    )
    languages: list[Language] = Field(
        default_factory=list,
        max_length=20,
        description="Languages the user speaks, as English names; also when said indirectly "
        "(the language they grew up with, or use at home).",
    )
    timezone: Timezone | None = Field(
        None,
        description="IANA zone name (Area/City): the zone the user names, or the one of the "
        "city they live in when that city has a single zone.",
    )
    location: ShortText | None = Field(
        None,
        description="Where the user lives now (city, region), also when said indirectly (a "
        "move, a city they call home); not a place they visit, nor where someone else lives.",
    )
    formality: Literal["casual", "neutral", "formal"] | None = Field(
        None,
        description="How formally the user likes to be addressed, from how they ask to be "
        "spoken to.",
    )
    detail_level: Literal["brief", "balanced", "detailed"] | None = Field(
        None,
        description="How much detail the user wants in answers, from what they ask for.",
    )
    expertise: list[ShortText] = Field(
        default_factory=list,
        max_length=50,
        description="Subjects the user knows well, from their work, studies or long practice.",
    )
    common_topics: list[ShortText] = Field(
        default_factory=list,
        max_length=50,
        description="Topics the user often talks about or asks for help with.",
    )
    key_relationships: list[ShortText] = Field(
        default_factory=list,
        max_length=50,
        description="People who matter to the user, as 'Name (relation)'. Their own facts are "
        "never the user's.",
    )
    last_conversation_summary: LongText | None = Field(
        None, description="One or two sentences on the latest conversation."
    )
