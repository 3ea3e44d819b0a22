"""Reading, forgetting and rolling back profiles over a worker's HTTP API: :func:`get_profile`
(now, or as it was at a version or time), :func:`get_history`, :func:`forget_profile` and
:func:`revert_profile` (any worker; it routes to the owner).

User ids (and kinds) are percent-quoted in every URL, so ``acme/alice`` or ``who?x`` name
exactly that user. Every failure is a :class:`~streams.errors.ProfileStreamError`: nothing
listening (or no connection within ``_CONNECT_S``) fails at once with the URL; a worker that
accepts but does not answer within ``timeout_s`` raises :class:`~streams.errors.ServiceTimeout`.
"""

import asyncio
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson

from streams.errors import (
    HistoryUnavailable,
    ProfileNotFound,
    Refused,
    ServiceError,
    ServiceTimeout,
)

__all__ = ["forget_profile", "get_history", "get_profile", "revert_profile"]

#: Seconds to open a connection: a worker that listens accepts at once.
_CONNECT_S = 2.0


def _timeout(timeout_s: float) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=timeout_s, sock_connect=min(_CONNECT_S, timeout_s))


def _profile_url(base_url: str, user_id: str, kind: str = "user") -> str:
    subject = quote(user_id, safe="")
    path = subject if kind == "user" else f"{quote(kind, safe='')}/{subject}"
    return f"{base_url.rstrip('/')}/profiles/{path}"


def _failure(url: str, exc: BaseException, timeout_s: float) -> ServiceError:
    """The client error for a request to ``url`` that failed with ``exc``."""
    reason = str(exc) or type(exc).__name__
    if isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ServerTimeoutError):
        # Refused, no such host, or no connection within _CONNECT_S (the only socket timeout).
        return ServiceError(f"cannot connect to {url} ({reason}); is a worker listening there?")
    if isinstance(exc, TimeoutError):
        return ServiceTimeout(
            f"{url} accepted the connection but did not answer within {timeout_s:g}s; "
            "is the worker overloaded or stuck?"
        )
    return ServiceError(f"cannot reach {url} ({reason}); is a worker running?")


async def get_profile(
    base_url: str,
    user_id: str,
    *,
    token: str,
    kind: str = "user",
    version: int | None = None,
    as_of: datetime | None = None,
    fields: Sequence[str] = (),
    attempts: int = 10,
    timeout_s: float = 10.0,
) -> dict[str, Any]:
    """One user's profile (or, with ``kind``, a team's, the assistant's...) from any worker
    (it routes to the owner); with ``version`` or ``as_of`` (an aware time), as it was then,
    and with ``fields`` as well, only those fields (only they need to be kept).

    Retries 503 (a rebalance in progress) honouring ``Retry-After``, and a connection dropped
    mid-answer, up to ``attempts`` times; nothing listening is not retried.

    Raises:
        ProfileNotFound: the worker has no profile for the user (or no such version, or none
            yet at that time).
        HistoryUnavailable: the profile's kept revisions no longer hold that version or time.
        Refused: the worker answered another error status (401, 504, a 503 that lasted...),
            with the status and the worker's message.
        ServiceTimeout: the worker did not answer within ``timeout_s``.
        ServiceError: the worker cannot be reached.
    """
    params: dict[str, str] = {}
    if version is not None:
        params["version"] = str(version)
    if as_of is not None:
        if as_of.tzinfo is None:
            raise ValueError("as_of needs a time zone (an aware datetime)")
        params["as_of"] = as_of.isoformat()
    if fields and params:
        params["fields"] = ",".join(fields)
    url = _profile_url(base_url, user_id, kind)
    return await _get_json(url, params, user_id, token, attempts, timeout_s)


async def get_history(
    base_url: str,
    user_id: str,
    *,
    token: str,
    field: str | None = None,
    attempts: int = 10,
    timeout_s: float = 10.0,
) -> dict[str, Any]:
    """A user's field revisions (``field``'s alone when given), oldest first, from any worker:
    ``{"history_from": ..., "fields": {name: {"revisions": [...], "truncated": ...}}}``, or
    with ``field`` its ``revisions`` and ``truncated`` at the top.

    Raises: as :func:`get_profile` (``Refused`` with status 400 for a field the schema lacks).
    """
    url = _profile_url(base_url, user_id) + "/history"
    params = {"field": field} if field is not None else {}
    return await _get_json(url, params, user_id, token, attempts, timeout_s)


async def _get_json(
    url: str,
    params: Mapping[str, str],
    user_id: str,
    token: str,
    attempts: int,
    timeout_s: float,
) -> dict[str, Any]:
    """The JSON a worker answers a GET with; retries as :func:`get_profile` says."""
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(timeout=_timeout(timeout_s)) as session:
        for attempt in range(1, attempts + 1):
            try:
                async with session.get(url, headers=headers, params=params) as response:
                    if response.status == 200:
                        body: dict[str, Any] = await response.json(content_type=None)
                        return body
                    text = await response.text()
                    if response.status != 503 or attempt == attempts:
                        raise _refusal(url, response.status, text, user_id, bool(params))
                    delay = float(response.headers.get("Retry-After", "1"))
            except (aiohttp.ClientConnectorError, aiohttp.ServerTimeoutError, TimeoutError) as exc:
                raise _failure(url, exc, timeout_s) from exc
            except aiohttp.ClientError as exc:
                if attempt == attempts:
                    raise _failure(url, exc, timeout_s) from exc
                delay = 1.0
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def _refusal(url: str, status: int, text: str, user_id: str, detailed: bool) -> Exception:
    """The error for an answer with an error ``status``: for a 404, the worker's own message
    when the request asked for more than the profile (a version, a time, a field), else the
    user id."""
    if status == 404:
        return ProfileNotFound(_message(text) if detailed else user_id)
    if status == 410:
        return HistoryUnavailable(_message(text))
    return Refused(f"{url} answered {status}: {text[:200]}", status=status)


def _message(text: str) -> str:
    """The ``error`` of a worker's JSON answer, else the text."""
    try:
        return str(orjson.loads(text)["error"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return text[:200]


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
    """
    url = _profile_url(base_url, user_id)
    headers = {"Authorization": f"Bearer {token}"}
    try:
        async with (
            aiohttp.ClientSession(timeout=_timeout(timeout_s)) as session,
            session.delete(url, headers=headers) as response,
        ):
            text = await response.text()
            if response.status != 202:
                raise Refused(
                    f"{url} answered {response.status}: {text[:200]}", status=response.status
                )
            body: dict[str, Any] = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise _failure(url, exc, timeout_s) from exc
    return str(body["command_id"])


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
    ``version``, and to lock ``lock`` (``POST /profiles/{user_id}/revert``); return the command
    id. Applied in order with the user's messages; a version the profile's revisions no longer
    hold is dead-lettered ``invalid_command`` (read it first with ``get_profile(version=...)``).

    Raises:
        Refused: the worker refused (400 a bad body, 401, 403 not an admin token, 503 no
            command key).
        ServiceTimeout: the worker did not answer within ``timeout_s``.
        ServiceError: the worker cannot be reached.
    """
    url = _profile_url(base_url, user_id) + "/revert"
    headers = {"Authorization": f"Bearer {token}"}
    body = {"version": version, "fields": list(fields), "lock": list(lock)}
    try:
        async with (
            aiohttp.ClientSession(timeout=_timeout(timeout_s)) as session,
            session.post(url, headers=headers, json=body) as response,
        ):
            text = await response.text()
            if response.status != 202:
                raise Refused(
                    f"{url} answered {response.status}: {text[:200]}", status=response.status
                )
            answer: dict[str, Any] = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise _failure(url, exc, timeout_s) from exc
    return str(answer["command_id"])
