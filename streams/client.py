"""A small client for apps on the other side of the stream: publish messages, read profiles."""

import asyncio
from typing import Any

import aiohttp

from .errors import ProfileNotFound, ServiceError

__all__ = ["get_profile"]


async def get_profile(
    base_url: str,
    user_id: str,
    *,
    token: str,
    attempts: int = 10,
    timeout_s: float = 10.0,
) -> dict[str, Any]:
    """One user's profile from any worker (it routes to the owner).

    Retries 503 (a rebalance in progress) honouring ``Retry-After``, up to ``attempts`` times.

    Raises:
        ProfileNotFound: the worker has no profile for the user.
        ServiceError: any other refusal or failure, with the status and the worker's message.
    """
    url = f"{base_url.rstrip('/')}/profiles/{user_id}"
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
