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
    RECENT_IDS_KEPT,
    RECORD_FORMAT,
    REVISIONS_FORMAT,
    TOMBSTONE_FORMAT,
    USAGE_FORMAT,
    FieldHistory,
    ModelUsage,
    ProfileRecord,
    ProfileUsage,
    Provenance,
    Revision,
    RevisionOp,
    SetAside,
)

__all__ = [
    "RECENT_IDS_KEPT",
    "RECORD_FORMAT",
    "REVISIONS_FORMAT",
    "TOMBSTONE_FORMAT",
    "USAGE_FORMAT",
    "ChatMessage",
    "DeadLetter",
    "DeadLetterReason",
    "Evidence",
    "FieldChange",
    "FieldHistory",
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
    "Revision",
    "RevisionOp",
    "Role",
    "SetAside",
    "UserProfile",
]
