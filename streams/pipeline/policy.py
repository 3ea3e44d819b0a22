"""The one error policy: what the worker does when handling an input raises.

Admission and a user's batch ask :func:`decide`, and act on its answer:

- :class:`Skip`: nothing more to do (a batch cancelled on stop stays unacknowledged, so Kafka
  redelivers it to the next owner);
- :class:`DeadLetter`: the input goes to the dead-letter topic with the reason, and the
  partition goes on (DESIGN invariant 4: a bad event never stops a partition);
- :class:`Exit`: stop the process at once, committing nothing more, so every unacknowledged
  event is redelivered after the restart (invariant 2: nothing lost).

Only infrastructure failures exit: an error that may pass (``ProfileStreamError.retriable``,
an OS-level network error, a timeout) never dead-letters an input, since the input is fine and
the worker reads it again after the restart; and a record Kafka refuses for good
(:class:`SendRejected`) stops the worker rather than be committed past, since the input could
then be neither applied nor dead-lettered. Any other error, at admission or in a batch, is a
bug met by those inputs: they are dead-lettered as ``internal_error`` (the reason names the
exception type, never its message, which may quote the input) and the partition goes on.
"""

import asyncio
import logging
import os
from dataclasses import dataclass
from enum import Enum
from typing import NoReturn, cast

from schemas import DeadLetterReason
from streams.errors import ExtractionFailed, InvalidEvent, ProfileStreamError, SendRejected

__all__ = [
    "CRASH_EXIT_CODE",
    "DeadLetter",
    "Decision",
    "Exit",
    "Skip",
    "Stage",
    "decide",
    "exit_for_redelivery",
    "exit_on_batch_crash",
    "undeliverable",
]

logger = logging.getLogger(__name__)

#: The exit status of :func:`exit_for_redelivery` (EX_SOFTWARE); supervisors restart on it.
CRASH_EXIT_CODE = 70


class Stage(Enum):
    """Where the error was met."""

    #: Decoding, checking and routing one input event.
    ADMISSION = "admission"
    #: Applying a user's batch: extraction, an operator command, storing, emitting.
    BATCH = "batch"


@dataclass(frozen=True)
class Skip:
    """Nothing to do: the input is left as it is."""

    reason: str


@dataclass(frozen=True)
class DeadLetter:
    """Send the input to the dead-letter topic with ``code`` and ``reason``."""

    code: DeadLetterReason
    reason: str
    user_id: str | None = None
    #: Model calls spent on it before giving up (0 when none were made).
    attempts: int = 0


@dataclass(frozen=True)
class Exit:
    """Stop the worker at once; unacknowledged events are redelivered after the restart."""

    reason: str


Decision = Skip | DeadLetter | Exit


def decide(exc: BaseException, stage: Stage) -> Decision:
    """What to do about ``exc``, raised while handling an input at ``stage``.

    Both stages decide alike today; ``stage`` says where the error was met.
    """
    if isinstance(exc, asyncio.CancelledError):
        return Skip("cancelled on stop; left unacknowledged for the next owner")
    if isinstance(exc, InvalidEvent):
        return DeadLetter(cast(DeadLetterReason, exc.code), exc.reason, user_id=exc.user_id)
    if isinstance(exc, ExtractionFailed):
        return DeadLetter("extraction_failed", str(exc), attempts=exc.attempts)
    if isinstance(exc, SendRejected):
        return Exit(
            f"{exc}; the input can be neither applied nor dead-lettered, so the partition is "
            "not committed past it: fix the limit or the permission named, then restart"
        )
    if _may_pass(exc):
        return Exit(f"an infrastructure failure ({stage.value}): {exc!r}")
    # A bug met by these inputs must not stop the rest of the partition.
    return DeadLetter(
        "internal_error", f"unexpected {type(exc).__name__} ({stage.value}); see the worker log"
    )


def undeliverable(exc: BaseException, where: str = "") -> Exit:
    """The exit for inputs that can be neither applied nor dead-lettered: ``exc`` was raised
    while handling them or sending their dead letters, and ``where`` names them."""
    decision = decide(exc, Stage.BATCH)
    reason = (
        decision.reason
        if isinstance(decision, Exit)
        else f"an input could be neither applied nor dead-lettered: {exc!r}"
    )
    return Exit(f"{reason} ({where})" if where else reason)


def _may_pass(exc: BaseException) -> bool:
    if isinstance(exc, ProfileStreamError):
        return exc.retriable
    return isinstance(exc, OSError | TimeoutError) or _from_kafka_client(exc)


#: Packages whose errors are the broker's or the stream runtime's, never an input's. The
#: wiring turns them into ours (``streams.topology``); one that slips through still exits, so
#: a batch whose write may not have reached Kafka is never acknowledged.
_INFRASTRUCTURE_PACKAGES = frozenset({"aiokafka", "faust", "mode"})


def _from_kafka_client(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if type(seen).__module__.partition(".")[0] in _INFRASTRUCTURE_PACKAGES:
            return True
        seen = seen.__cause__
    return False


def exit_for_redelivery(decision: Exit) -> NoReturn:
    """Stop at once, committing nothing more: unacknowledged events come back after restart.

    Letting the agent raise would make Faust skip the event (it commits past it), losing it.
    """
    logger.critical(
        "stopping: %s; unacknowledged events are redelivered after restart", decision.reason
    )
    logging.shutdown()
    os._exit(CRASH_EXIT_CODE)


def exit_on_batch_crash(exc: BaseException) -> NoReturn:
    """The scheduler's ``on_fatal``: a batch raised what its batch could not dead-letter (an
    infrastructure failure, or a failure while dead-lettering)."""
    exit_for_redelivery(undeliverable(exc, "; ".join(getattr(exc, "__notes__", ()))))
