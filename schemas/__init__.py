"""profile-stream's public contracts: pydantic v2 models, no I/O, no Faust."""

from .events import (
    DeadLetter,
    DeadLetterReason,
    Evidence,
    FieldChange,
    ProfileEvent,
    RecordHeader,
)
from .http import CommandAccepted, Correction, ErrorAnswer, Liveness, ProfileAnswer, Readiness
from .messages import ChatMessage, ProfileCommand, Role
from .patch import Op, PatchOperation, PatchValue, ProfilePatch
from .profile import ProfileModel, UserProfile
from .record import (
    RECENT_IDS_KEPT,
    RECORD_FORMAT,
    TOMBSTONE_FORMAT,
    ProfileRecord,
    Provenance,
    SetAside,
)

__all__ = [
    "RECENT_IDS_KEPT",
    "RECORD_FORMAT",
    "TOMBSTONE_FORMAT",
    "ChatMessage",
    "CommandAccepted",
    "Correction",
    "DeadLetter",
    "DeadLetterReason",
    "ErrorAnswer",
    "Evidence",
    "FieldChange",
    "Liveness",
    "Op",
    "PatchOperation",
    "PatchValue",
    "ProfileAnswer",
    "ProfileCommand",
    "ProfileEvent",
    "ProfileModel",
    "ProfilePatch",
    "ProfileRecord",
    "Provenance",
    "Readiness",
    "RecordHeader",
    "Role",
    "SetAside",
    "UserProfile",
]
