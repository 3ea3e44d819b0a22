"""What the model returns: field-level operations on a profile, each with its evidence."""

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from ._base import Produced

__all__ = ["Op", "PatchOperation", "PatchValue", "ProfilePatch"]

Op = Literal["set", "unset", "add", "remove"]
#: Kept to what strict structured output can express; each field's own type decides the rest.
PatchValue = str | int | float | bool | list[str] | None


class PatchOperation(Produced):
    """One change to one field.

    ``set`` replaces a value, ``unset`` clears it, ``add``/``remove`` change one item of a list.
    ``message_id`` names the message that justifies the change; ``quote`` is the words in it.
    """

    field: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    op: Op
    value: PatchValue = None
    message_id: Annotated[str, StringConstraints(max_length=256)] = ""
    quote: Annotated[str, StringConstraints(max_length=500)] = ""


class ProfilePatch(Produced):
    """The model's whole answer for one extraction; an empty list means nothing changed."""

    operations: list[PatchOperation] = Field(default_factory=list)
