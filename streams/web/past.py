"""As-of reads of a profile: ``?version=N`` and ``?as_of=<RFC 3339 time>``, optionally for
some fields only (``&fields=a,b``: only those need to be kept).

The answer is built from the revisions the record keeps (``streams.core.past``): the profile at
that version, its time, and the version the profile is at now. What the revisions no longer
hold is answered ``410`` with the reason (the per-field bound dropped it, or the record kept no
history then); a version the profile never had, or a time before its first version, ``404``.
"""

from typing import Any

from faust.web import Request, Response, View

from schemas import ProfileRecord
from streams.core.kinds import USER
from streams.core.past import parse_time, profile_at, version_at
from streams.core.profile_schema import ProfileSchema
from streams.errors import HistoryUnavailable
from streams.web.responses import error, json

__all__ = ["past_answer", "wants_past"]


def wants_past(request: Request) -> bool:
    """Whether ``request`` asks for the profile as it was."""
    return "version" in request.query or "as_of" in request.query


def past_answer(
    view: View, request: Request, record: ProfileRecord, schema: ProfileSchema
) -> Response:
    """The JSON of ``record``'s profile at the version or time ``request`` asks for."""
    query = request.query
    if "version" in query and "as_of" in query:
        return error(view, 400, "give version or as_of, not both")
    asked: dict[str, Any] = {}
    try:
        if "version" in query:
            version = _version(query["version"])
            if version > record.version:
                return error(
                    view, 404, f"no version {version}: the profile is at version {record.version}"
                )
        else:
            when = parse_time(query["as_of"])
            asked["as_of"] = when
            found = version_at(record, when)
            if found is None:
                return error(view, 404, f"the profile had no version yet at {when.isoformat()}")
            version = found
        defaults, removed = _fields(query.get("fields"), schema)
        past = profile_at(record, version, defaults, removed=removed)
    except ValueError as exc:
        return error(view, 400, str(exc))
    except HistoryUnavailable as exc:
        return error(view, 410, str(exc))
    body: dict[str, Any] = {
        "user_id": record.user_id,
        "version": past.version,
        "updated_at": past.at,
        "schema": record.schema_id,
        "profile": past.profile,
        "locked": list(record.locked),  # today's: locks are not versioned
        "current_version": record.version,
        **asked,
    }
    if record.kind != USER:
        body["kind"] = record.kind
    return json(view, body)


def _version(text: str) -> int:
    try:
        version = int(text)
    except ValueError:
        version = 0
    if version < 1:
        raise ValueError(f"version must be a whole number from 1, not {text[:32]!r}")
    return version


def _fields(asked: str | None, schema: ProfileSchema) -> tuple[dict[str, Any], bool]:
    """The defaults of the fields asked for (all of the schema's, with removed ones shown when
    known, when none are named)."""
    defaults = schema.empty()
    if not asked:
        return defaults, True
    names = [n for n in asked.split(",") if n]
    unknown = sorted(set(names) - set(defaults))
    if unknown:
        raise ValueError(f"unknown fields {unknown}; the schema has {sorted(defaults)}")
    return {n: defaults[n] for n in names}, False
