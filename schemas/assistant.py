"""The assistant's own profile, built from its own turns (an example kind)."""

from typing import ClassVar

from pydantic import Field

from .profile import ProfileModel, ShortText

__all__ = ["AssistantProfile"]


class AssistantProfile(ProfileModel):
    """How the assistant has presented itself and what it has committed to."""

    schema_name: ClassVar[str] = "AssistantProfile"
    schema_version: ClassVar[int] = 1

    persona: ShortText | None = Field(None, description="The name or persona it uses.")
    commitments: list[ShortText] = Field(
        default_factory=list, max_length=50, description="Promises it made to users."
    )
    limitations: list[ShortText] = Field(
        default_factory=list, max_length=50, description="What it said it cannot do."
    )
