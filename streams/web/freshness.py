"""Read-your-writes in the views: ``GET /profiles/{user_id}?wait_for=<message_id>`` and
``POST /profiles/{user_id}/refresh``, both with ``timeout_s``.

The waiting itself happens on the worker that owns the user (``streams.pipeline.
read_your_writes``, reached through :class:`FreshReads`); a worker that does not own the user
forwards the request there with the wait added to its forward timeout. This module reads the
query, runs the wait, and turns how it ended into the answer: nothing (go on and render the
profile), 504 naming what to do, or 503 when the worker is busy or lost the user.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from faust.web import Request, Response, View

from streams.core.freshness import Waited
from streams.web.responses import RETRY_AFTER, error

__all__ = [
    "REFRESH_TIMEOUT",
    "WAIT_TIMEOUT",
    "FreshReads",
    "Timeout",
    "after_refresh",
    "after_wait",
    "timeout_of",
]


class FreshReads(Protocol):
    """The owner's waits for freshness (``streams.pipeline.read_your_writes.ReadYourWrites``)."""

    async def reflected(self, subject: str, message_id: str, timeout_s: float) -> Waited:
        """Wait until ``subject``'s profile reflects the message ``message_id``."""
        ...

    async def refresh(self, subject: str, timeout_s: float) -> Waited:
        """Flush ``subject``'s buffer now and wait until that flush is applied."""
        ...


@dataclass(frozen=True)
class Timeout:
    """The ``timeout_s`` a waiting request takes: its default and its largest value."""

    default_s: float
    most_s: float


WAIT_TIMEOUT = Timeout(10.0, 30.0)
REFRESH_TIMEOUT = Timeout(30.0, 60.0)

#: Waits a view runs before rendering: None to go on, else the answer.
Before = Callable[[], Awaitable[Response | None]]


def timeout_of(request: Request, bounds: Timeout) -> float:
    """The request's ``timeout_s``, or the default.

    Raises:
        ValueError: not a number from 0 to ``bounds.most_s``.
    """
    text = request.query.get("timeout_s")
    if text is None:
        return bounds.default_s
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= bounds.most_s:
        raise ValueError(f"timeout_s must be a number from 0 to {bounds.most_s:g}, not {text!r}")
    return value


def after_wait(
    view: View, fresh: FreshReads, user_id: str, message_id: str, timeout_s: float
) -> Before:
    """The wait of ``?wait_for=message_id``, and its answer when it does not end fresh."""

    async def wait() -> Response | None:
        waited = await fresh.reflected(user_id, message_id, timeout_s)
        late = (
            f"message {message_id!r} is not reflected in the profile after {timeout_s:g}s: it "
            "may wait in the user's buffer for the idle trigger (PROFILE_STREAM_FLUSH_IDLE_S); "
            f"POST /profiles/{{user_id}}/refresh extracts it now, or pass a longer timeout_s"
        )
        return _refusal(view, waited, late)

    return wait


def after_refresh(view: View, fresh: FreshReads, user_id: str, timeout_s: float) -> Before:
    """The refresh of ``POST .../refresh``, and its answer when it does not end fresh."""

    async def refresh() -> Response | None:
        waited = await fresh.refresh(user_id, timeout_s)
        late = (
            f"the refresh was not applied within {timeout_s:g}s (the user's partition is "
            "behind, or the model is slow); retry with a longer timeout_s"
        )
        return _refusal(view, waited, late)

    return refresh


def _refusal(view: View, waited: Waited, late: str) -> Response | None:
    match waited:
        case Waited.FRESH:
            return None
        case Waited.TIMED_OUT:
            return error(view, 504, late)
        case Waited.BUSY:
            return error(
                view,
                503,
                "too many reads wait on this worker (PROFILE_STREAM_MAX_WAITING_READS); retry, "
                "or read without waiting",
                RETRY_AFTER,
            )
        case _:
            return error(
                view, 503, "the user's partition moved to another worker; retry", RETRY_AFTER
            )
