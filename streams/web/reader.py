"""Reading one kind's profiles where they live: here, or at the worker that owns the partition.

A profile is served only by the worker whose active table partition holds it; any other worker
forwards the request there (``streams.web.routing``), once: a forwarded request that is not
served here either (the owner changed while it travelled) is answered 503. While the group
rebalances or tables recover, nobody knows reliably, so the answer is 503 with ``Retry-After``.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import faust
from faust.types import TableT
from faust.web import Request, Response, View

from schemas import ProfileRecord
from streams.core.codecs import decode_record
from streams.core.kinds import Kind
from streams.core.migration import migrate
from streams.faust_glue import tables_recovered
from streams.web.responses import RETRY_AFTER, error
from streams.web.routing import FORWARDED_HEADER, PROXY_TIMEOUT_S, owner_of, proxy

__all__ = ["Here", "Placement", "ProfileReader", "Remote", "Unavailable", "place"]


@dataclass(frozen=True)
class Here:
    """This worker owns the partition: read the table."""


@dataclass(frozen=True)
class Remote:
    """Another worker owns the partition: forward to its canonical URL."""

    url: str


@dataclass(frozen=True)
class Unavailable:
    """Nobody can answer right now; ``reason`` is what the client is told with its 503."""

    reason: str


Placement = Here | Remote | Unavailable


def place(owner: str | None, *, here: str) -> Placement:
    """Where a request for a key whose partition is owned by ``owner`` is answered.

    Args:
        owner: the owner's canonical URL from the assignor's metadata, None if unknown.
        here: this worker's canonical URL.
    """
    if owner is None:
        return Unavailable("partition owner unknown; try again")
    if owner.rstrip("/") == here.rstrip("/"):
        return Here()
    return Remote(owner)


class ProfileReader:
    """One kind's profiles, read from the worker that owns them.

    Responsibilities:
    - say where a subject is served (``locate``): here, at another worker, or nowhere yet;
    - read a stored record here as the current schema sees it (``stored``);
    - answer a view's request from here or from the owner (``answer``).
    """

    def __init__(
        self,
        app: faust.App,
        kind: Kind,
        table: TableT[bytes, bytes],
        partitions: int,
        *,
        proxy_timeout_s: float = PROXY_TIMEOUT_S,
    ) -> None:
        self.app = app
        self.kind = kind
        self.table = table
        self.partitions = partitions
        self.proxy_timeout_s = proxy_timeout_s

    def locate(self, subject: str) -> Placement:
        """Where ``subject``'s profile is served right now."""
        if self.app.rebalancing or not tables_recovered(self.app):
            # Asked first: during a rebalance the assignor's metadata may still be the old one.
            return Unavailable("rebalancing; try again")
        owner = owner_of(self.app, self.table.name, subject.encode(), self.partitions)
        return place(owner, here=str(self.app.conf.canonical_url))

    def stored(self, subject: str) -> ProfileRecord | None:
        """The record in this worker's table, migrated; None if absent, being forgotten or
        forgotten (a tombstone answers as an unknown user does)."""
        raw = self.table.get(subject.encode())
        if raw is None:
            return None
        record = decode_record(raw)
        pending = record.pending_event
        if record.forgotten_at is not None or (pending is not None and pending.type == "deleted"):
            return None
        return migrate(record, self.kind.schema)[0]

    async def answer(
        self,
        view: View,
        request: Request,
        subject: str,
        render: Callable[[ProfileRecord | None], Response],
        *,
        before: Callable[[], Awaitable[Response | None]] | None = None,
        wait_s: float = 0.0,
    ) -> Response:
        """``render`` of the stored record if it lives here, else the owner's answer or a 503.

        ``before``: a wait to run here first (read-your-writes), answering instead of
        ``render`` when it returns a response; a forward waits ``wait_s`` more for it. A
        request already forwarded once is not forwarded again: 503, and the client retries.
        """
        match self.locate(subject):
            case Unavailable(reason):
                return error(view, 503, reason, RETRY_AFTER)
            case Remote(_) if FORWARDED_HEADER in request.headers:
                return error(view, 503, "owner changed during forwarding, retry", RETRY_AFTER)
            case Remote(url):
                timeout_s = self.proxy_timeout_s + wait_s
                return await proxy(self.app, view, request, url, timeout_s=timeout_s)
            case _:
                if before is not None and (answer := await before()) is not None:
                    return answer
                return render(self.stored(subject))
