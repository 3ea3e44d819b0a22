"""A profile of a team or department, built from what its members say (an example kind)."""

from typing import ClassVar

from pydantic import Field

from .profile import ProfileModel, ShortText

__all__ = ["TeamProfile"]


class TeamProfile(ProfileModel):
    """What an assistant should know about one team to help its members."""

    schema_name: ClassVar[str] = "TeamProfile"
    schema_version: ClassVar[int] = 1

    name: ShortText | None = Field(None, description="The team's name.")
    mission: ShortText | None = Field(None, description="What the team is for, in a sentence.")
    tools: list[ShortText] = Field(
        default_factory=list, max_length=50, description="Tools and systems the team uses."
    )
    current_projects: list[ShortText] = Field(
        default_factory=list, max_length=50, description="Projects the team works on now."
    )
    conventions: list[ShortText] = Field(
        default_factory=list, max_length=50, description="How the team likes work done."
    )
