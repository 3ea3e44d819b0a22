"""A profile as it was: read from the revisions its record keeps, and rolled back to. Pure.

A field's value at version N is the value of its latest revision at or before N. A field with
no revision at or before N held its default then, unless the bound dropped older revisions of
it (its history is ``truncated``): then its value at N is not known. Nothing before the version
the record's history starts at (``history_from``) is known, and a record without history knows
only its current version. What is not known raises :class:`HistoryUnavailable`, saying why;
nothing is guessed.

A version's time is the time of its input (the newest message it was extracted from, or the
command's request time); the profile as of a time is the profile at the highest version whose
time is at or before it.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn

from schemas import Evidence, FieldChange, ProfileCommand, ProfileRecord, Provenance, Revision
from streams.core.merge import MergeResult
from streams.core.profile_schema import ProfileSchema
from streams.errors import HistoryUnavailable, InvalidEvent

__all__ = ["Past", "parse_time", "profile_at", "reverted", "value_at", "version_at"]

#: Named in every "dropped" message: the setting that decides how much is kept.
_BOUND = "PROFILE_STREAM_REVISIONS_PER_FIELD"


def parse_time(text: str) -> datetime:
    """An RFC 3339 time with its offset, as an as-of read names it; ValueError otherwise.

    A ``+`` offset sent unquoted in a URL's query arrives as a space: it is read as ``+``.
    """
    for candidate in (text, "+".join(text.rsplit(" ", 1))):
        try:
            when = datetime.fromisoformat(candidate)
        except ValueError:
            continue
        if when.tzinfo is not None:
            return when
    raise ValueError(
        f"as_of must be an RFC 3339 time with an offset, e.g. 2026-11-25T10:00:00Z, "
        f"not {text[:64]!r}"
    )


@dataclass(frozen=True)
class Past:
    """The profile at ``version``; ``at`` is that version's time (None when no revision of it
    is kept: a version that only locked fields); ``sources`` the revision each field's value
    came from (none for a field that held its default)."""

    version: int
    at: datetime | None
    profile: dict[str, Any]
    sources: dict[str, Revision]


def _no_history(record: ProfileRecord) -> NoReturn:
    raise HistoryUnavailable(
        f"this profile keeps no revisions, so only its current version ({record.version}) "
        f"can be read: it was written while {_BOUND} was 0, or by a release before revisions"
    )


def _kept(record: ProfileRecord, version: int) -> None:
    """Raise when the record keeps nothing about ``version``."""
    if record.history_from is None:
        _no_history(record)
    if version < record.history_from:
        raise HistoryUnavailable(
            f"this profile's history starts at version {record.history_from}; version "
            f"{version} is before it"
        )


def value_at(
    record: ProfileRecord, name: str, version: int, default: Any = None
) -> tuple[Any, Revision | None]:
    """Field ``name``'s value at ``version`` and the revision it came from (None: the
    default). ``version`` is at most the record's.

    Raises:
        HistoryUnavailable: the record does not keep that far back for this field.
    """
    _kept(record, version)
    kept = record.history.get(name)
    if kept is None:
        return default, None
    found = None
    for revision in kept.revisions:
        if revision.version > version:
            break
        found = revision
    if found is not None:
        return found.value, found
    if kept.truncated:
        oldest = kept.revisions[0].version
        raise HistoryUnavailable(
            f"{name!r} at version {version} is no longer kept: its oldest kept revision is "
            f"version {oldest}, older ones were dropped ({_BOUND} bounds the revisions kept "
            "per field)"
        )
    return default, None


def profile_at(
    record: ProfileRecord, version: int, defaults: Mapping[str, Any], *, removed: bool = True
) -> Past:
    """The profile at ``version`` (1 to the record's version): the fields of ``defaults``, and
    (``removed``) fields a later schema removed that held a value then.

    Raises:
        HistoryUnavailable: a field's value at ``version`` is not kept; names every such field.
    """
    if version == record.version:
        now = {n: record.profile.get(n, d) for n, d in defaults.items()}
        return Past(
            version,
            record.updated_at,
            dict(record.profile) if removed else now,
            _sources(record, version),
        )
    _kept(record, version)
    profile: dict[str, Any] = {}
    sources: dict[str, Revision] = {}
    missing: list[str] = []
    others = [n for n in record.history if n not in defaults] if removed else []
    for name in [*defaults, *others]:
        try:
            value, revision = value_at(record, name, version, defaults.get(name))
        except HistoryUnavailable as exc:
            if name in defaults:  # a removed field's past is shown when known, never needed
                missing.append(str(exc))
            continue
        if name in defaults or value is not None:
            profile[name] = value
        if revision is not None:
            sources[name] = revision
    if missing:
        raise HistoryUnavailable("; ".join(missing))
    return Past(version, _time_of(record, version), profile, sources)


def _sources(record: ProfileRecord, version: int) -> dict[str, Revision]:
    """The latest kept revision of each field at or before ``version``."""
    found = {}
    for name, kept in record.history.items():
        earlier = [r for r in kept.revisions if r.version <= version]
        if earlier:
            found[name] = earlier[-1]
    return found


def _time_of(record: ProfileRecord, version: int) -> datetime | None:
    for kept in record.history.values():
        for revision in kept.revisions:
            if revision.version == version:
                return revision.at
    return None


def version_at(record: ProfileRecord, when: datetime) -> int | None:
    """The highest version whose time is at or before ``when``; None when the profile had no
    version yet then.

    Raises:
        HistoryUnavailable: the versions before ``when`` are not kept.
    """
    if record.updated_at is not None and record.updated_at <= when:
        return record.version
    known = [
        revision.version
        for kept in record.history.values()
        for revision in kept.revisions
        if revision.at <= when
    ]
    if known:
        return max(known)
    if record.history_from is None:
        _no_history(record)
    if record.history_from or any(kept.truncated for kept in record.history.values()):
        raise HistoryUnavailable(
            f"no version of this profile at or before {when.isoformat()} is kept (its history "
            f"starts at version {record.history_from}, and {_BOUND} bounds the revisions kept "
            "per field)"
        )
    return None


def reverted(command: ProfileCommand, record: ProfileRecord, schema: ProfileSchema) -> MergeResult:
    """The profile with ``command.fields`` (every field when none) given back their values at
    ``command.version``; each change is a ``revert`` naming that version. The operator's
    revert outranks locks, as a correction does.

    Raises:
        InvalidEvent: ``invalid_command``: an unknown field, a version the profile does not
            have, a value the history no longer holds, or one the current schema refuses.
    """
    assert command.version is not None  # noqa: S101 - ProfileCommand checks a revert has one
    version = command.version
    if version > record.version:
        _refuse(command, f"version {version} does not exist: the profile is at {record.version}")
    names = command.fields or tuple(schema.fields)
    unknown = [n for n in (*names, *command.lock, *command.unlock) if n not in schema.fields]
    if unknown:
        _refuse(command, f"unknown fields {unknown}; the schema has {sorted(schema.fields)}")
    result = MergeResult(dict(record.profile), dict(record.provenance))
    evidence = Evidence(message_id=command.command_id)
    for name in names:
        spec = schema.fields[name]
        try:
            value, _ = value_at(record, name, version, spec.default)
            new = spec.check(value)
        except (HistoryUnavailable, ValueError) as exc:
            _refuse(command, f"cannot revert {name!r} to version {version}: {exc}")
        old = result.profile.get(name, spec.default)
        if old == new:
            continue
        result.profile[name] = new
        result.provenance[name] = Provenance(
            message_id=command.command_id, at=command.requested_at, by="operator"
        )
        result.changes.append(
            FieldChange(
                field=name,
                op="revert",
                old=old,
                new=new,
                evidence=evidence,
                restored_version=version,
            )
        )
    return result


def _refuse(command: ProfileCommand, reason: str) -> NoReturn:
    raise InvalidEvent("invalid_command", reason, user_id=command.user_id)
