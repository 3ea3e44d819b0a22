"""The one error policy: what the worker does when handling an input raises.

Admission and a user's batch ask :func:`decide`, and act on its answer:

- :class:`Skip`: nothing more to do (a batch cancelled on stop stays unacknowledged, so Kafka
  redelivers it to the next owner);
- :class:`DeadLetter`: the input goes to the dead-letter topic with the reason, and the
  partition goes on (DESIGN invariant 4: a bad event never stops a partition);
- :class:`Exit`: stop the process at once, committing nothing more, so every unacknowledged
  event is redelivered after the restart (invariant 2: nothing lost).

An error that may pass (``ProfileStreamError.retriable``, or an OS-level network error) never
dead-letters an input: the input is fine, so the worker exits and reads it again.
"""

import asyncio
import logging
import os
from dataclasses import dataclass
from enum import Enum
from typing import NoReturn, cast

from schemas import DeadLetterReason
from streams.errors import ExtractionFailed, InvalidEvent, ProfileStreamError

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
    """What to do about ``exc``, raised while handling an input at ``stage``."""
    if isinstance(exc, asyncio.CancelledError):
        return Skip("cancelled on stop; left unacknowledged for the next owner")
    if isinstance(exc, InvalidEvent):
        return DeadLetter(cast(DeadLetterReason, exc.code), exc.reason, user_id=exc.user_id)
    if isinstance(exc, ExtractionFailed):
        return DeadLetter("extraction_failed", str(exc), attempts=exc.attempts)
    if stage is Stage.BATCH:
        # A batch has already paid for its extraction; an unknown failure there is a bug or an
        # outage, and dead-lettering would hide it: exit, and the batch is applied again.
        return _batch_crash(exc)
    if _may_pass(exc):
        return Exit(f"cannot reach Kafka: {exc!r}")
    # A bug met by one event must not stop the rest of the partition.
    return DeadLetter("internal_error", repr(exc))


def _batch_crash(exc: BaseException) -> Exit:
    """The exit for a batch that failed outside the dead-letter cases."""
    return Exit(f"a user's batch failed outside the dead-letter policy: {exc!r}")


def _may_pass(exc: BaseException) -> bool:
    if isinstance(exc, ProfileStreamError):
        return exc.retriable
    return isinstance(exc, OSError | TimeoutError)


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
    """The scheduler's ``on_fatal``: a batch task died of what its batch did not dead-letter."""
    exit_for_redelivery(_batch_crash(exc))
