"""profile-stream's public contracts: pydantic v2 models, no I/O, no Faust."""

from .events import (
    DeadLetter,
    DeadLetterReason,
    Evidence,
    FieldChange,
    ProfileEvent,
    RecordHeader,
)
from .messages import ChatMessage, ProfileCommand, Role
from .patch import Op, PatchOperation, PatchValue, ProfilePatch
from .profile import ProfileModel, UserProfile
from .record import (
    BUFFER_FORMAT,
    RECENT_IDS_KEPT,
    RECORD_FORMAT,
    TOMBSTONE_FORMAT,
    USAGE_FORMAT,
    BufferedMessage,
    ModelUsage,
    ProfileRecord,
    ProfileUsage,
    Provenance,
    SetAside,
)

__all__ = [
    "BUFFER_FORMAT",
    "RECENT_IDS_KEPT",
    "RECORD_FORMAT",
    "TOMBSTONE_FORMAT",
    "USAGE_FORMAT",
    "BufferedMessage",
    "ChatMessage",
    "DeadLetter",
    "DeadLetterReason",
    "Evidence",
    "FieldChange",
    "ModelUsage",
    "Op",
    "PatchOperation",
    "PatchValue",
    "ProfileCommand",
    "ProfileEvent",
    "ProfileModel",
    "ProfilePatch",
    "ProfileRecord",
    "ProfileUsage",
    "Provenance",
    "RecordHeader",
    "Role",
    "SetAside",
    "UserProfile",
]
