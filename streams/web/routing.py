"""Sending a view request to the worker that owns the user's partition.

Faust's ``table_route`` asks the producer for the partition, which fails with a TypeError on a
worker that has not yet produced to the changelog (no metadata). We compute the partition with
Kafka's own partitioner and take the owner from the assignor's table metadata instead.
"""

import logging

import faust
from faust.web import Request, Response, View

from streams.core.partitioning import partition_for

__all__ = ["owner_of", "proxy"]

logger = logging.getLogger(__name__)
_FORWARDED = ("Authorization", "Accept")


def owner_of(app: faust.App, table_name: str, key: bytes, partitions: int) -> str | None:
    """The canonical URL of the worker whose active partition holds ``key``, if known."""
    partition = partition_for(key, partitions)
    for host, topics in app.router.table_metadata(table_name).items():
        if any(partition in parts for parts in topics.values()):
            return str(host)
    return None


async def proxy(app: faust.App, view: View, request: Request, owner: str) -> Response:
    """Forward a GET to ``owner`` and answer with its status, type and body."""
    url = owner.rstrip("/") + str(request.rel_url)
    headers = {h: request.headers[h] for h in _FORWARDED if h in request.headers}
    async with app.http_client.get(url, headers=headers) as response:
        body = await response.read()
        extra = {k: response.headers[k] for k in ("Retry-After",) if k in response.headers}
        return view.bytes(
            body, content_type=response.content_type, status=response.status, headers=extra
        )
