"""Reading the table's stored records tolerantly, so releases next to each other share a table.

During a rolling upgrade (or a rollback) a worker meets records written by the release after
its own: they may hold fields it does not know, at the top or in what a record embeds (the
pending event, provenance, set-aside values). Such a record is read for what this release knows;
each unknown field is logged once per process, by name, never with its value; the record comes
back at the format of the fields this release kept (:func:`format_of`), so what this worker
writes back claims no field it dropped. Writing stays strict: ``ProfileRecord`` refuses unknown
fields when we build one.

How: the strict decode first (every record of this release takes that path, at no extra cost);
only when pydantic's sole objections are ``extra_forbidden`` is the record decoded again with
``extra="ignore"``, which pydantic applies to nested models too. Any other problem (a missing
or mistyped field) is a broken record and raises as before.

The one side effect here is that warning, through the standard ``logging`` module.
"""

import logging
from collections.abc import Sequence

from pydantic import ValidationError

from schemas import (
    BUFFER_FORMAT,
    BUFFER_STORE_FORMAT,
    FORGET_MARK_FORMAT,
    LAST_MESSAGE_FORMAT,
    RECORD_FORMAT,
    REVISIONS_FORMAT,
    TOMBSTONE_FORMAT,
    USAGE_FORMAT,
    ProfileRecord,
)

__all__ = ["decode_record", "format_of", "unknown_fields"]

logger = logging.getLogger(__name__)

#: Names already warned about, so a rollout logs each new field once, not once per record.
_warned: set[str] = set()
_WARN_AT_MOST = 64  # distinct names; beyond that the log would only repeat the story


def decode_record(value: bytes) -> ProfileRecord:
    """A stored record, with fields of a newer release ignored.

    Raises:
        ValidationError: the bytes are not a record this release can read (not JSON, a required
            field missing, a known field with a wrong type).
    """
    try:
        record = ProfileRecord.model_validate_json(value)
    except ValidationError as exc:
        names = unknown_fields(exc)
        if names is None:
            raise
        record = ProfileRecord.model_validate_json(value, extra="ignore")
        _warn(names)
    if record.format > RECORD_FORMAT:
        _warn([f"format {record.format}"])
        record = record.model_copy(update={"format": format_of(record)})
    return record


def format_of(record: ProfileRecord) -> int:
    """The lowest format that holds ``record``'s fields: the highest format among the features
    it holds (a tombstone 2, usage 3, a buffer 4, revisions 5, the last message 6, a buffer table
    position 7, a forget mark 8); a record with none of them is format 1 (left out of the
    bytes, so older releases read it)."""
    held = [
        (record.forgotten_at is not None, TOMBSTONE_FORMAT),
        (record.usage is not None, USAGE_FORMAT),
        (bool(record.buffer), BUFFER_FORMAT),
        (record.history_from is not None or bool(record.history), REVISIONS_FORMAT),
        (record.last_message is not None, LAST_MESSAGE_FORMAT),
        (record.buffer_seq > 0, BUFFER_STORE_FORMAT),
        (record.forget_mark is not None, FORGET_MARK_FORMAT),
    ]
    return max((format_ for holds, format_ in held if holds), default=1)


def unknown_fields(exc: ValidationError) -> list[str] | None:
    """The unknown fields a strict decode refused, as ``where.name``; None when anything else
    is wrong too. ``where`` is the top-level field they sit in (``pending_event``, ...)."""
    names = []
    for error in exc.errors(include_input=False):
        if error["type"] != "extra_forbidden":
            return None
        names.append(_name(error["loc"]))
    return names


def _name(loc: Sequence[int | str]) -> str:
    # Inner parts (list indices, profile field names as dict keys) would split one unknown field
    # into many names; the outer field and the unknown name say what happened.
    return str(loc[-1]) if len(loc) == 1 else f"{loc[0]}.{loc[-1]}"


def _warn(names: Sequence[str]) -> None:
    for name in names:
        if name in _warned or len(_warned) >= _WARN_AT_MOST:
            continue
        _warned.add(name)
        if name.startswith("format "):
            logger.warning(
                "stored record of %s read by a release that writes format %d (a newer "
                "release wrote it): its fields this release knows are kept, the rest ignored",
                name,
                RECORD_FORMAT,
            )
        else:
            logger.warning(
                "stored record field %r is unknown to this release (a newer release wrote it): "
                "ignored; logged once per field name",
                name,
            )
