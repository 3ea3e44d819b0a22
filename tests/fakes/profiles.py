"""Profile schemas a deployment might use, in successive versions, for migration tests."""

from typing import ClassVar

from pydantic import Field

from schemas import ProfileModel
from schemas.profile import ShortText


class TeamProfileV1(ProfileModel):
    schema_name: ClassVar[str] = "Member"
    schema_version: ClassVar[int] = 1

    name: ShortText | None = None
    nickname: ShortText | None = None
    age: ShortText | None = None
    languages: list[ShortText] = Field(default_factory=list)


class TeamProfileV2(ProfileModel):
    """v2: ``nickname`` removed, ``age`` now a number, ``pronouns`` added with a default."""

    schema_name: ClassVar[str] = "Member"
    schema_version: ClassVar[int] = 2

    name: ShortText | None = None
    age: int | None = Field(None, ge=0, le=150)
    pronouns: ShortText | None = None
    languages: list[ShortText] = Field(default_factory=list)


class TeamProfileV3Unmigratable(ProfileModel):
    schema_name: ClassVar[str] = "Member"
    schema_version: ClassVar[int] = 3

    name: ShortText | None = None
    employee_number: int
