"""Sending a view request to the worker that owns the user's partition.

Faust's ``table_route`` asks the producer for the partition, which fails with a TypeError on a
worker that has not yet produced to the changelog (no metadata). We compute the partition with
Kafka's own partitioner and take the owner from the assignor's table metadata instead.

A forwarded request carries ``X-Profile-Stream-Forwarded``, so a worker that receives one and
does not own the key either refuses it (503) rather than forwarding it again: one hop at most.
The forward has its own timeout (``PROFILE_STREAM_PROXY_TIMEOUT_S``), below the client's.
"""

import logging

import aiohttp
import faust
from faust.web import Request, Response, View

from streams.core.partitioning import partition_for
from streams.web.responses import RETRY_AFTER, error

__all__ = ["FORWARDED_HEADER", "PROXY_TIMEOUT_S", "owner_of", "proxy"]

logger = logging.getLogger(__name__)
_FORWARDED = ("Authorization", "Accept")
#: Set on every forwarded request; a request that has it is never forwarded again.
FORWARDED_HEADER = "X-Profile-Stream-Forwarded"
#: Seconds a forward may take (the default of ``PROFILE_STREAM_PROXY_TIMEOUT_S``).
PROXY_TIMEOUT_S = 5.0


def owner_of(app: faust.App, table_name: str, key: bytes, partitions: int) -> str | None:
    """The canonical URL of the worker whose active partition holds ``key``, if known."""
    partition = partition_for(key, partitions)
    for host, topics in app.router.table_metadata(table_name).items():
        if any(partition in parts for parts in topics.values()):
            return str(host)
    return None


async def proxy(
    app: faust.App,
    view: View,
    request: Request,
    owner: str,
    *,
    timeout_s: float = PROXY_TIMEOUT_S,
) -> Response:
    """Forward the request (a GET, or a refresh's POST without a body) to ``owner`` and answer
    with its status, type and body.

    504 if the owner does not answer within ``timeout_s``; 503 (retry) if it cannot be reached.
    """
    url = owner.rstrip("/") + str(request.rel_url)
    headers = {h: request.headers[h] for h in _FORWARDED if h in request.headers}
    headers[FORWARDED_HEADER] = "1"
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    try:
        forward = app.http_client.request(request.method, url, headers=headers, timeout=timeout)
        async with forward as response:
            body = await response.read()
            extra = {k: response.headers[k] for k in ("Retry-After",) if k in response.headers}
            return view.bytes(
                body, content_type=response.content_type, status=response.status, headers=extra
            )
    except TimeoutError:
        logger.warning("forward timed out after %gs owner=%s", timeout_s, owner)
        return error(view, 504, f"the profile's owner {owner} did not answer within {timeout_s:g}s")
    except aiohttp.ClientError as exc:
        logger.warning("forward failed owner=%s: %s", owner, exc)
        return error(
            view, 503, f"the profile's owner {owner} cannot be reached ({exc}); retry", RETRY_AFTER
        )
