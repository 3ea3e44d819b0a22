"""Profiles over a worker's HTTP API (any worker: it routes to the owner): read one, now or as
it was at a version or time (:func:`get_profile`), list its field revisions
(:func:`get_history`), render it for a system prompt (:func:`get_prompt`), correct it
(:func:`correct_profile`), roll fields back (:func:`revert_profile`) or forget it
(:func:`forget_profile`).

User ids (and kinds) are percent-quoted in every URL, so ``acme/alice`` or ``who?x`` name
exactly that user. Every failure is a :class:`~streams.errors.ProfileStreamError`: a URL that
is not ``http(s)://host[:port]`` is a ``ConfigError``; nothing listening (or no connection
within ``_CONNECT_S``) fails at once with the URL and what to check; a worker that accepts but
does not answer within ``timeout_s`` raises :class:`~streams.errors.ServiceTimeout`; an answer
that is not a worker's is a :class:`~streams.errors.ServiceError` saying so.
"""

import asyncio
import socket
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import aiohttp
import orjson
from pydantic import ValidationError

from schemas import Correction, PatchOperation
from streams.errors import (
    ConfigError,
    HistoryUnavailable,
    InvalidRequest,
    ProfileNotFound,
    Refused,
    ServiceError,
    ServiceTimeout,
)

__all__ = [
    "correct_profile",
    "flush_profile",
    "forget_profile",
    "get_history",
    "get_profile",
    "get_prompt",
    "revert_profile",
]

#: Seconds to open a connection: a worker that listens accepts at once (and a lost SYN is sent
#: again after 1 s), so a command that finds none says so within 2 s of starting.
_CONNECT_S = 1.2


def _timeout(timeout_s: float) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=timeout_s, sock_connect=min(_CONNECT_S, timeout_s))


def _profile_url(base_url: str, user_id: str, kind: str = "user", suffix: str = "") -> str:
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"worker URL {base_url!r} is not an http(s) URL; give it as http://host:6066"
        )
    subject = quote(user_id, safe="")
    path = subject if kind == "user" else f"{quote(kind, safe='')}/{subject}"
    return f"{base_url.rstrip('/')}/profiles/{path}{suffix}"


def _why_not_connected(exc: aiohttp.ClientConnectorError | aiohttp.ServerTimeoutError) -> str:
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return f"no connection within {_CONNECT_S:g}s"
    if isinstance(exc.os_error, socket.gaierror):  # aiohttp before 3.10 has no DNS error class
        return f"unknown host {exc.host}"
    if isinstance(exc.os_error, ConnectionRefusedError):
        return "connection refused"
    return str(exc.os_error) or type(exc.os_error).__name__


def _failure(url: str, exc: BaseException, timeout_s: float) -> ServiceError:
    """The client error for a request to ``url`` that failed with ``exc``."""
    if isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ServerTimeoutError):
        # Refused, no such host, or no connection within _CONNECT_S (the only socket timeout).
        reason = _why_not_connected(exc)
        return ServiceError(f"cannot connect to {url} ({reason}); is a worker listening there?")
    if isinstance(exc, TimeoutError):
        return ServiceTimeout(
            f"{url} accepted the connection but did not answer within {timeout_s:g}s; "
            "is the worker overloaded or stuck?"
        )
    reason = str(exc) or type(exc).__name__
    return ServiceError(f"cannot reach {url} ({reason}); is a worker running?")


def _reason(body: bytes) -> str:
    """The worker's ``{"error": ...}`` message, else the start of whatever answered."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        return str(data["error"])
    start = body[:200].decode("utf-8", "replace")
    return f"{start!r}, not as a profile-stream worker answers; check the URL"


def _retry_after(headers: Mapping[str, str]) -> float:
    try:
        return max(0.0, float(headers.get("Retry-After", "1")))
    except ValueError:  # an HTTP date: not what workers send
        return 1.0


async def _call(
    method: str,
    url: str,
    *,
    token: str,
    ok: int,
    timeout_s: float,
    attempts: int = 1,
    body: bytes | None = None,
    missing: ProfileNotFound | None = None,
    detailed: bool = False,
) -> bytes:
    """The body of ``url``'s answer with status ``ok``.

    Retries 503 (a rebalance in progress) honouring ``Retry-After``, and a connection dropped
    mid-answer, up to ``attempts`` times; nothing listening is not retried. A 404 raises
    ``missing`` when given (``detailed``: with the worker's reason, which names the version or
    time asked for); a 410 raises :class:`HistoryUnavailable` with the worker's reason.
    """
    headers = {"Authorization": f"Bearer {token}"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    async with aiohttp.ClientSession(timeout=_timeout(timeout_s)) as session:
        for attempt in range(1, attempts + 1):
            try:
                async with session.request(method, url, headers=headers, data=body) as response:
                    answer = await response.read()
                    if response.status == ok:
                        return answer
                    if response.status == 404 and missing is not None:
                        raise _detailed(missing, answer) if detailed else missing
                    if response.status == 410:
                        raise HistoryUnavailable(_reason(answer))
                    if response.status != 503 or attempt == attempts:
                        raise Refused(
                            f"{url} answered {response.status}: {_reason(answer)}",
                            status=response.status,
                        )
                    delay = _retry_after(response.headers)
            except (aiohttp.ClientConnectorError, aiohttp.ServerTimeoutError, TimeoutError) as exc:
                raise _failure(url, exc, timeout_s) from exc
            except aiohttp.ClientError as exc:
                if attempt == attempts:
                    raise _failure(url, exc, timeout_s) from exc
                delay = 1.0
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def _detailed(missing: ProfileNotFound, answer: bytes) -> ProfileNotFound:
    return ProfileNotFound(f"{missing}: {_reason(answer)}")


def _json_object(url: str, answer: bytes, key: str) -> dict[str, Any]:
    """The answer as a JSON object that has ``key``, or a ServiceError saying it is not a
    worker's."""
    try:
        data = orjson.loads(answer)
    except orjson.JSONDecodeError:
        data = None
    if not isinstance(data, dict) or key not in data:
        raise ServiceError(
            f"{url} answered {answer[:80].decode('utf-8', 'replace')!r}, not as a "
            "profile-stream worker answers; check the URL"
        )
    return data


async def get_profile(
    base_url: str,
    user_id: str,
    *,
    token: str,
    kind: str = "user",
    attempts: int = 10,
    timeout_s: float = 10.0,
    provenance: bool = False,
    usage: bool = False,
    version: int | None = None,
    as_of: datetime | None = None,
    fields: Sequence[str] = (),
) -> dict[str, Any]:
    """One user's profile (or, with ``kind``, a team's, the assistant's...) as the worker
    answers it (``schemas.ProfileAnswer``: ``user_id``, ``version``, ``profile``...); with
    ``provenance``, where each field's value came from too; with ``usage``, the model calls
    and tokens spent on it (in all and today). With ``version`` or ``as_of`` (an aware time),
    the profile as it was then, from the revisions the worker keeps (and with ``fields``, only
    those fields: only they need to be kept; ``provenance`` and ``usage`` are then left out).

    Retries a 503 (a rebalance in progress) up to ``attempts`` times.

    Raises:
        ProfileNotFound: no profile for the user (or no such version, or none yet then).
        HistoryUnavailable: the kept revisions no longer hold that version or time; the
            message names the field and why.
        Refused: the worker answered another error status (401, 504, a 503 that lasted...),
            with the status and the worker's message.
        ServiceTimeout: the worker did not answer within ``timeout_s``.
        ServiceError: the worker cannot be reached, or what answered is not a worker.
        ConfigError: ``base_url`` is not an http(s) URL.
        InvalidRequest: ``as_of`` has no time zone (nothing is sent).
    """
    url = _profile_url(base_url, user_id, kind)
    past = _past(version, as_of, fields)
    what = "profile" if kind == "user" else f"{kind} profile"
    include = ",".join(name for name, on in (("provenance", provenance), ("usage", usage)) if on)
    answer = await _call(
        "GET",
        url + _query_of(({"include": include} if include and not past else {}) | past),
        token=token,
        ok=200,
        timeout_s=timeout_s,
        attempts=attempts,
        missing=ProfileNotFound(f"no {what} for {user_id!r} at {url}"),
        detailed=bool(past),
    )
    return _json_object(url, answer, "profile")


def _query_of(params: Mapping[str, str]) -> str:
    return "?" + urlencode(params) if params else ""


def _past(version: int | None, as_of: datetime | None, fields: Sequence[str]) -> dict[str, str]:
    """The query of an as-of read (empty for a read of the current profile)."""
    if as_of is not None and as_of.tzinfo is None:
        raise InvalidRequest("as_of needs a time zone: give an aware datetime")
    past = {"version": str(version)} if version is not None else {}
    past |= {"as_of": as_of.isoformat()} if as_of is not None else {}
    return past | {"fields": ",".join(fields)} if past and fields else past


async def get_history(
    base_url: str,
    user_id: str,
    *,
    token: str,
    field: str | None = None,
    attempts: int = 10,
    timeout_s: float = 10.0,
) -> dict[str, Any]:
    """A user's field revisions, oldest first (``GET /profiles/{user_id}/history``,
    ``schemas.HistoryAnswer``): ``{"history_from": ..., "fields": {name: {"revisions": [...],
    "truncated": ...}}}``, only ``field``'s when given. Raises as :func:`get_profile` does
    (``Refused`` 400 for a field the schema lacks)."""
    url = _profile_url(base_url, user_id, suffix="/history")
    answer = await _call(
        "GET",
        url + _query_of({"field": field} if field is not None else {}),
        token=token,
        ok=200,
        timeout_s=timeout_s,
        attempts=attempts,
        missing=ProfileNotFound(f"no profile for {user_id!r} at {url}"),
    )
    return _json_object(url, answer, "history_from")


async def get_prompt(
    base_url: str, user_id: str, *, token: str, attempts: int = 10, timeout_s: float = 10.0
) -> str:
    """The user's profile as a ``<User Profile>`` block for a system prompt
    (``GET /profiles/{user_id}/prompt``). Retries and raises as :func:`get_profile` does."""
    url = _profile_url(base_url, user_id, suffix="/prompt")
    answer = await _call(
        "GET",
        url,
        token=token,
        ok=200,
        timeout_s=timeout_s,
        attempts=attempts,
        missing=ProfileNotFound(f"no profile for {user_id!r} at {url}"),
    )
    return answer.decode("utf-8", "replace")


def _correction(
    values: Mapping[str, Any] | None,
    operations: Iterable[PatchOperation | Mapping[str, Any]],
    lock: Iterable[str],
    unlock: Iterable[str],
) -> bytes:
    ops = [PatchOperation.model_validate(op) for op in operations]
    for field, value in (values or {}).items():
        ops.append(PatchOperation(field=field, op="unset" if value is None else "set", value=value))
    correction = Correction(operations=ops, lock=list(lock), unlock=list(unlock))
    if not (correction.operations or correction.lock or correction.unlock):
        raise InvalidRequest("nothing to correct: give values, operations, lock or unlock")
    return correction.model_dump_json(exclude_defaults=True).encode()


async def correct_profile(
    base_url: str,
    user_id: str,
    *,
    token: str,
    values: Mapping[str, Any] | None = None,
    operations: Iterable[PatchOperation | Mapping[str, Any]] = (),
    lock: Iterable[str] = (),
    unlock: Iterable[str] = (),
    timeout_s: float = 10.0,
) -> str:
    """Correct a user's profile as an operator (``PATCH /profiles/{user_id}``, admin token);
    return the command id.

    ``values`` sets each field to its value (``None`` unsets it); ``operations`` are any patch
    operations (``{"field": "languages", "op": "add", "value": "Basque"}``). ``lock`` fields
    are never changed by extraction afterwards; ``unlock`` releases them. The worker checks
    the correction against the profile schema before it answers; like a forget, it applies in
    order with the user's messages, and a profile-updated event follows.

    Raises:
        InvalidRequest: nothing to correct, or an operation that is not a patch operation
            (nothing is sent).
        Refused: the worker refused: 400 with the schema's reason (an unknown field, a value
            the field refuses), 401 unknown token, 403 not an admin token, 503 commands off.
        ServiceTimeout: the worker did not answer within ``timeout_s``.
        ServiceError: the worker cannot be reached.
        ConfigError: ``base_url`` is not an http(s) URL.
    """
    url = _profile_url(base_url, user_id)
    try:
        body = _correction(values, operations, lock, unlock)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        raise InvalidRequest(f"not a correction: {where}: {first['msg']}") from None
    answer = await _call("PATCH", url, token=token, ok=202, timeout_s=timeout_s, body=body)
    return str(_json_object(url, answer, "command_id")["command_id"])


async def flush_profile(base_url: str, user_id: str, *, token: str, timeout_s: float = 10.0) -> str:
    """Ask a worker to extract a user's buffered messages now
    (``POST /profiles/{user_id}/flush``); return the command id.

    The worker answers once the command is in Kafka; the buffer is flushed when the command is
    applied, in order with the user's messages, and the new version's event follows.

    Raises:
        Refused: the worker refused (401 unknown token, 403 not an admin token, ...).
        ServiceTimeout: the worker did not answer within ``timeout_s``.
        ServiceError: the worker cannot be reached.
        ConfigError: ``base_url`` is not an http(s) URL.
    """
    url = _profile_url(base_url, user_id, suffix="/flush")
    answer = await _call("POST", url, token=token, ok=202, timeout_s=timeout_s)
    return str(_json_object(url, answer, "command_id")["command_id"])


async def forget_profile(
    base_url: str, user_id: str, *, token: str, timeout_s: float = 10.0
) -> str:
    """Ask a worker to forget a user (``DELETE /profiles/{user_id}``); return the command id.

    The worker answers once the command is in Kafka; the profile goes when the command is
    applied, in order with the user's messages, and a ``deleted`` event follows.

    Raises:
        Refused: the worker refused (401 unknown token, 403 not an admin token, ...).
        ServiceTimeout: the worker did not answer within ``timeout_s``.
        ServiceError: the worker cannot be reached.
        ConfigError: ``base_url`` is not an http(s) URL.
    """
    url = _profile_url(base_url, user_id)
    answer = await _call("DELETE", url, token=token, ok=202, timeout_s=timeout_s)
    return str(_json_object(url, answer, "command_id")["command_id"])


async def revert_profile(
    base_url: str,
    user_id: str,
    *,
    token: str,
    version: int,
    fields: Sequence[str] = (),
    lock: Sequence[str] = (),
    timeout_s: float = 10.0,
) -> str:
    """Ask a worker to give ``fields`` (all of them when empty) back their values at
    ``version``, and to lock ``lock`` (``POST /profiles/{user_id}/revert``, admin token);
    return the command id. Applied in order with the user's messages; a version the profile's
    revisions no longer hold is dead-lettered ``invalid_command`` (read it first with
    ``get_profile(version=..., fields=...)``). Raises as :func:`flush_profile` does (and
    ``Refused`` 400 for a body the worker refuses).
    """
    url = _profile_url(base_url, user_id, suffix="/revert")
    body = orjson.dumps({"version": version, "fields": list(fields), "lock": list(lock)})
    answer = await _call("POST", url, token=token, ok=202, timeout_s=timeout_s, body=body)
    return str(_json_object(url, answer, "command_id")["command_id"])
