"""Reading and forgetting profiles over a worker's HTTP API: :func:`get_profile` and
:func:`forget_profile` (any worker; it routes to the owner)."""

import asyncio
from typing import Any
from urllib.parse import quote

import aiohttp

from streams.errors import ProfileNotFound, Refused, ServiceError

__all__ = ["forget_profile", "get_profile"]


async def get_profile(
    base_url: str,
    user_id: str,
    *,
    token: str,
    kind: str = "user",
    attempts: int = 10,
    timeout_s: float = 10.0,
) -> dict[str, Any]:
    """One user's profile (or, with ``kind``, a team's, the assistant's...) from any worker
    (it routes to the owner).

    Retries 503 (a rebalance in progress) honouring ``Retry-After``, up to ``attempts`` times.

    Raises:
        ProfileNotFound: the worker has no profile for the user.
        ServiceError: any other refusal or failure, with the status and the worker's message.
    """
    path = user_id if kind == "user" else f"{kind}/{user_id}"
    url = f"{base_url.rstrip('/')}/profiles/{path}"
    headers = {"Authorization": f"Bearer {token}"}
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for attempt in range(1, attempts + 1):
            try:
                async with session.get(url, headers=headers) as response:
                    if response.status == 200:
                        body: dict[str, Any] = await response.json(content_type=None)
                        return body
                    if response.status == 404:
                        raise ProfileNotFound(user_id)
                    text = await response.text()
                    if response.status != 503 or attempt == attempts:
                        raise ServiceError(f"{url} answered {response.status}: {text[:200]}")
                    delay = float(response.headers.get("Retry-After", "1"))
            except aiohttp.ClientError as exc:
                if attempt == attempts:
                    raise ServiceError(f"cannot reach {url} ({exc}); is a worker running?") from exc
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
        ServiceError: the worker cannot be reached.
    """
    url = f"{base_url.rstrip('/')}/profiles/{quote(user_id, safe='')}"
    headers = {"Authorization": f"Bearer {token}"}
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as session,
            session.delete(url, headers=headers) as response,
        ):
            text = await response.text()
            if response.status != 202:
                raise Refused(
                    f"{url} answered {response.status}: {text[:200]}", status=response.status
                )
            body: dict[str, Any] = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError) as exc:
        reason = str(exc) or type(exc).__name__
        raise ServiceError(f"cannot reach {url} ({reason}); is a worker running?") from exc
    return str(body["command_id"])
