"""Which chat messages of a batch are new to their subject: not applied (or buffered) before,
and not taken in before the subject's last forget.

A redelivery is recognised by the record's bookkeeping (``streams.core.records.applied_before``:
offsets, a copy's original offset, recent ids). A message taken in before a forget is
recognised by the forget mark (``streams.core.forget_mark``) even when that bookkeeping cannot
tell: a dead letter replayed (its id was dropped so that a replay applies), a re-routed or
forwarded copy arriving after the forget. Such a message is left out: acknowledged with its
batch, counted (``profile_stream_pre_forget_skipped_total``), logged at DEBUG, never applied.
"""

import logging

from schemas import ChatMessage, ForgetMark, ProfileRecord
from streams.core.forget_mark import before_forget, mark_of
from streams.core.records import applied_before, source_key
from streams.metrics import PRE_FORGET_SKIPPED
from streams.pipeline.job import Job

__all__ = ["fresh_messages"]

logger = logging.getLogger(__name__)


def fresh_messages(
    record: ProfileRecord, jobs: list[Job], *, margin_s: float
) -> list[tuple[Job, ChatMessage]]:
    """The batch's chat messages to apply. ``margin_s``: how long after a forget's record
    timestamp a message first taken in on another partition still counts as before it."""
    mark = mark_of(record)
    fresh = []
    for job in jobs:
        message = job.work.body
        if not isinstance(message, ChatMessage) or _applied(record, job, message):
            continue
        if mark is not None and before_forget(mark, job.work.seen, margin_ms=int(margin_s * 1000)):
            _skip(job, message, mark)
            continue
        fresh.append((job, message))
    return fresh


def _applied(record: ProfileRecord, job: Job, message: ChatMessage) -> bool:
    """Whether the message was applied or buffered before (a redelivery)."""
    source = source_key(*job.tp)
    return applied_before(record, source, job.offset, message.message_id, job.work.origin)


def _skip(job: Job, message: ChatMessage, mark: ForgetMark) -> None:
    seen = job.work.seen
    by = "offset" if seen.source in mark.offsets else "time"
    PRE_FORGET_SKIPPED.labels(by).inc()
    logger.debug(
        "skipped: taken in before a forget user_id=%s message_id=%s topic=%s partition=%d "
        "offset=%d first_seen=%s:%d first_seen_ms=%d by=%s",
        message.user_id,
        message.message_id,
        job.tp[0],
        job.tp[1],
        job.offset,
        seen.source,
        seen.offset,
        seen.at_ms,
        by,
    )
