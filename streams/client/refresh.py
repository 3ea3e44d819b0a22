"""Read-your-writes from an app: ``POST /profiles/{user_id}/refresh`` (see docs/contracts.md,
"Read-your-writes"). The LangGraph store's ``arefresh`` and the example use it."""

from typing import Any
from urllib.parse import quote

import aiohttp
import orjson

from streams.errors import Refused, ServiceError

__all__ = ["refresh_profile"]


async def refresh_profile(
    base_url: str, user_id: str, *, token: str, timeout_s: float = 30.0
) -> dict[str, Any] | None:
    """The user's profile once every message of the user published before the call is
    extracted (``POST /profiles/{user_id}/refresh``, a read token: the worker flushes the
    user's buffer now, at most one model call, none when nothing is buffered), as
    ``GET /profiles/{user_id}`` answers it, with ``freshness``; None when there is none.

    Raises:
        Refused: another status than 200 or 404 (504: not applied within ``timeout_s``).
        ServiceError: the worker cannot be reached or did not answer.
    """
    url = f"{base_url.rstrip('/')}/profiles/{quote(user_id, safe='')}/refresh"
    headers = {"Authorization": f"Bearer {token}"}
    # The worker answers 504 after timeout_s: the client waits a little longer than that.
    limit = aiohttp.ClientTimeout(total=timeout_s + 5.0)
    try:
        async with (
            aiohttp.ClientSession(timeout=limit) as session,
            session.post(url, params={"timeout_s": f"{timeout_s:g}"}, headers=headers) as answer,
        ):
            body = await answer.read()
            if answer.status == 404:
                return None
            if answer.status != 200:
                raise Refused(
                    f"{url} answered {answer.status}: {body[:200]!r}", status=answer.status
                )
            answer_json: dict[str, Any] = orjson.loads(body)
            return answer_json
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ServiceError(
            f"cannot refresh at {url} ({exc!r}); is a worker listening there?"
        ) from exc
