"""Reading and forgetting profiles over a worker's HTTP API: :func:`get_profile` and
:func:`forget_profile` (any worker; it routes to the owner).

User ids (and kinds) are percent-quoted in every URL, so ``acme/alice`` or ``who?x`` name
exactly that user. Every failure is a :class:`~streams.errors.ProfileStreamError`: nothing
listening (or no connection within ``_CONNECT_S``) fails at once with the URL; a worker that
accepts but does not answer within ``timeout_s`` raises :class:`~streams.errors.ServiceTimeout`.
"""

import asyncio
from typing import Any
from urllib.parse import quote

import aiohttp

from streams.errors import ProfileNotFound, Refused, ServiceError, ServiceTimeout

__all__ = ["forget_profile", "get_profile"]

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
    attempts: int = 10,
    timeout_s: float = 10.0,
    provenance: bool = False,
) -> dict[str, Any]:
    """One user's profile (or, with ``kind``, a team's, the assistant's...) from any worker
    (it routes to the owner); with ``provenance``, where each field's value came from too.

    Retries 503 (a rebalance in progress) honouring ``Retry-After``, and a connection dropped
    mid-answer, up to ``attempts`` times; nothing listening is not retried.

    Raises:
        ProfileNotFound: the worker has no profile for the user.
        Refused: the worker answered another error status (401, 504, a 503 that lasted...),
            with the status and the worker's message.
        ServiceTimeout: the worker did not answer within ``timeout_s``.
        ServiceError: the worker cannot be reached.
    """
    url = _profile_url(base_url, user_id, kind)
    headers = {"Authorization": f"Bearer {token}"}
    params = {"include": "provenance"} if provenance else None
    async with aiohttp.ClientSession(timeout=_timeout(timeout_s)) as session:
        for attempt in range(1, attempts + 1):
            try:
                async with session.get(url, headers=headers, params=params) as response:
                    if response.status == 200:
                        body: dict[str, Any] = await response.json(content_type=None)
                        return body
                    if response.status == 404:
                        raise ProfileNotFound(user_id)
                    text = await response.text()
                    if response.status != 503 or attempt == attempts:
                        raise Refused(
                            f"{url} answered {response.status}: {text[:200]}",
                            status=response.status,
                        )
                    delay = float(response.headers.get("Retry-After", "1"))
            except (aiohttp.ClientConnectorError, aiohttp.ServerTimeoutError, TimeoutError) as exc:
                raise _failure(url, exc, timeout_s) from exc
            except aiohttp.ClientError as exc:
                if attempt == attempts:
                    raise _failure(url, exc, timeout_s) from exc
                delay = 1.0
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


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
