"""profile-stream's public contracts: pydantic v2 models, no I/O, no Faust."""

from .events import (
    DeadLetter,
    DeadLetterReason,
    Evidence,
    FieldChange,
    ProfileEvent,
    RecordHeader,
)
from .http import (
    CommandAccepted,
    Correction,
    ErrorAnswer,
    Liveness,
    ProfileAnswer,
    Readiness,
    UsageAnswer,
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
    "CommandAccepted",
    "Correction",
    "DeadLetter",
    "DeadLetterReason",
    "ErrorAnswer",
    "Evidence",
    "FieldChange",
    "Liveness",
    "ModelUsage",
    "Op",
    "PatchOperation",
    "PatchValue",
    "ProfileAnswer",
    "ProfileCommand",
    "ProfileEvent",
    "ProfileModel",
    "ProfilePatch",
    "ProfileRecord",
    "ProfileUsage",
    "Provenance",
    "Readiness",
    "RecordHeader",
    "Role",
    "SetAside",
    "UsageAnswer",
    "UserProfile",
]
