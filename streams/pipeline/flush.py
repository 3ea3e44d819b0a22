"""A flush: the buffered messages of one subject to the model, merged, published as a version.

The messages go in chunks of one model call's bounds, each chunk seeing the profile the ones
before it made; the version names every message flushed. A flush whose extraction gives up
dead-letters each buffered message (as it was read when it is one of the batch's inputs, else
rebuilt from the buffer) and forgets their ids, so the same messages re-published from the
dead-letter topic are applied.
"""

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from schemas import (
    BufferedMessage,
    ChatMessage,
    FieldChange,
    ModelUsage,
    PatchOperation,
    ProfileRecord,
)
from streams.core.coverage import Ask, Coverage, per_turn
from streams.core.flushing import FlushPolicy, FlushReason
from streams.core.freshness import reflecting
from streams.core.grounding import Grounded, Repaired
from streams.core.guards import guard
from streams.core.history import Source, Trail
from streams.core.kinds import Kind
from streams.core.merge import Dropped, MergeResult, merge
from streams.core.records import dead_lettered, next_version
from streams.core.usage import add_usage
from streams.errors import ExtractionFailed
from streams.extract.base import Extractor
from streams.extract.calls import calls_of, following_up
from streams.metrics import (
    EXTRACTIONS,
    FLUSHES,
    MESSAGES_EXTRACTED,
    OPERATIONS_DROPPED,
    OPERATIONS_REPAIRED,
)
from streams.pipeline.buffer_store import BufferStore
from streams.pipeline.buffering import BufferedSource, chunks
from streams.pipeline.dead_letters import DeadLetters
from streams.pipeline.job import Job
from streams.pipeline.ownership import check_owned
from streams.pipeline.policy import DeadLetter, Stage, decide
from streams.pipeline.ports import SourceMessage
from streams.pipeline.publish import Publisher
from streams.pipeline.scheduler import Release

__all__ = ["ChunkedExtraction", "Flusher", "newest"]

logger = logging.getLogger(__name__)


@dataclass
class Flusher:
    """Flushes one kind's buffers (see the module docstring)."""

    kind: Kind
    extractor: Extractor
    publisher: Publisher
    dead_letters: DeadLetters
    policy: FlushPolicy
    #: Where the buffered messages are: a flush deletes them once its version is durable.
    buffers: BufferStore
    #: Revisions kept per field (PROFILE_STREAM_REVISIONS_PER_FIELD; 0: none).
    revisions_per_field: int = 0
    #: The worker's clock (seconds): the day a flush's model calls are charged to.
    clock: Callable[[], float] = time.time
    #: How far past its receipt a message's ``sent_at`` counts (PROFILE_STREAM_MAX_FUTURE_SKEW_S).
    max_future_skew_s: float = 300.0

    def __post_init__(self) -> None:
        self._extraction = ChunkedExtraction(self.kind, self.extractor, self.policy)

    async def flush(
        self,
        key: bytes,
        job: Job,
        record: ProfileRecord,
        migration: list[FieldChange],
        reason: FlushReason,
        release: Release,
        inputs: Mapping[str, SourceMessage] | None = None,
    ) -> ProfileRecord:
        """Extract the buffered messages and publish the next version; returns the record as
        stored. A flush that gives up dead-letters each buffered message: as it was read when
        it is one of this batch's ``inputs`` (by message id), else rebuilt from the buffer.

        Its model calls are counted once its version is written, or it stops, by ``reason``
        and outcome (:mod:`streams.extract.calls`)."""
        entries = record.buffer
        messages = [_as_received(e, self.max_future_skew_s) for e in entries]
        emptied = self.buffers.emptied(key, record)
        extracted = True
        with calls_of(str(reason)):
            try:
                result, spent = await self._extraction.extract(emptied, messages)
            except Exception as exc:  # noqa: BLE001 - _give_up raises what is not dead-lettered
                emptied = await self._give_up(key, emptied, entries, exc, release, inputs)
                result, spent, extracted = None, ModelUsage(), False
            release()  # the model is done with this batch; writing results needs no slot
            updated, event = next_version(
                emptied,
                result,
                offsets={},
                message_ids=[],
                at=newest(record, self.max_future_skew_s),
                migration=migration,
                spent=spent,
                sources=[m.message_id for m in messages],
                trail=self._trail(entries),
                # The day the model was paid, the day the budget is checked against: an old
                # sent_at (a client's clock, a backlog) would charge a day no check looks at.
                charged_at=datetime.fromtimestamp(self.clock(), UTC),
            )
            if extracted:  # what a read's freshness names, and a wait for a message looks for
                updated = reflecting(updated, record)
            # Durable before the entries go (with an event it is anyway: announced only once
            # durable).
            await self.publisher.publish(key, job.event, updated, event, durable=True)
            self.buffers.clear(key, job.event, updated.buffer_seq)
        FLUSHES.labels(str(reason)).inc()
        if event is not None:
            logger.info(
                "profile updated user_id=%s version=%d changes=%d messages=%d flush=%s",
                record.user_id,
                event.version,
                len(event.changes),
                len(messages),
                reason,
            )
        return updated

    async def _give_up(
        self,
        key: bytes,
        emptied: ProfileRecord,
        entries: Sequence[BufferedMessage],
        exc: Exception,
        release: Release,
        inputs: Mapping[str, SourceMessage] | None,
    ) -> ProfileRecord:
        """After a failed extraction: dead-letter the buffered messages when the policy says so
        (else raise ``exc``), and return ``emptied`` with their ids forgotten, so a replay of
        their dead letters is applied."""
        decision = decide(exc, Stage.BATCH)
        if not isinstance(decision, DeadLetter):
            raise exc
        release()
        EXTRACTIONS.labels("failed").inc()
        _log_failure(emptied.user_id, len(entries), exc, decision)
        await self.dead_letter(key, entries, decision, inputs)
        return dead_lettered(emptied, [entry.message.message_id for entry in entries])

    def _trail(self, entries: Sequence[BufferedMessage]) -> Trail:
        """The revisions to keep, each change placed at its buffered message's record."""
        places = {e.message.message_id: Source.of(e.source, e.offset) for e in entries}
        return Trail(self.revisions_per_field, places)

    async def dead_letter(
        self,
        key: bytes,
        entries: Sequence[BufferedMessage],
        decision: DeadLetter,
        inputs: Mapping[str, SourceMessage] | None = None,
    ) -> None:
        """Dead-letter buffered messages: as they were read when one of ``inputs`` (by message
        id), else rebuilt from the buffer."""
        check_owned("a dead letter")
        for entry in entries:
            source = (inputs or {}).get(entry.message.message_id)
            await self.dead_letters.send(
                source or BufferedSource.of(entry, key),
                decision,
                user_id=entry.message.user_id,
                message_id=entry.message.message_id,
            )


@dataclass(frozen=True)
class ChunkedExtraction:
    """One kind's messages to the model in chunks of one call's bounds (``policy``), merged:
    what a flush does before it publishes, and all that ``profile-stream eval --mode direct``
    does, so the evaluation measures the worker's own prompt, parsing and merge."""

    kind: Kind
    extractor: Extractor
    policy: FlushPolicy
    #: False only in ``profile-stream eval``'s ``guards=off`` variant: the merge alone, to
    #: measure what the guards (``streams.core.guards``) do. A worker always guards.
    guards: bool = True

    async def extract(
        self, record: ProfileRecord, messages: list[ChatMessage]
    ) -> tuple[MergeResult | None, ModelUsage]:
        """The merged result of ``messages``, asked in chunks of one model call's bounds, each
        chunk seeing the profile the ones before it made. After each call the turns it did not
        reach are asked again, within the policy's ``follow_ups``; with ``per_turn`` each source
        turn is a call of its own, the chunk's messages before it as context
        (:mod:`streams.core.coverage`)."""
        combined: MergeResult | None = None
        spent = ModelUsage()
        bounds = self.policy.max_messages, self.policy.max_chars
        roles = self.kind.schema.source_roles
        coverage = Coverage(self.policy.follow_ups, roles)
        for chunk in chunks(messages, *bounds):
            if any(m.role in roles for m in chunk):
                MESSAGES_EXTRACTED.inc(len(chunk))
            for ask in per_turn(chunk, roles) if self.policy.per_turn else [Ask(chunk)]:
                follow_up = False
                while ask.messages:
                    check_owned("a model call")  # a partition gone: no call for the rest
                    if combined is not None:
                        record = record.model_copy(
                            update={"profile": combined.profile, "provenance": combined.provenance}
                        )
                    with following_up(follow_up):
                        result, kept, cost = await self._extract(record, ask)
                    spent = add_usage(spent, cost)
                    combined = _combined(combined, result)
                    ask, follow_up = Ask(coverage.next_ask(ask.messages, kept)), True
        return combined, spent

    async def _extract(
        self, record: ProfileRecord, ask: Ask
    ) -> tuple[MergeResult | None, list[PatchOperation], ModelUsage]:
        """The merged result (None when no message is the user's own: nothing to learn), the
        operations the guards kept, and what the model calls for it cost."""
        messages = ask.messages
        own = [m for m in messages if m.role in self.kind.schema.source_roles]
        if not own:
            return None, [], ModelUsage()
        extraction = await self.extractor.extract(
            record.profile or self.kind.schema.empty(),
            messages,
            self.kind.schema,
            subject=record.user_id,
            kind=self.kind.name,
            context=ask.context,
        )
        schema = self.kind.schema
        guarded = (
            guard(extraction.operations, messages, schema.source_roles, fields=list(schema.fields))
            if self.guards
            else Grounded(list(extraction.operations))
        )
        result = merge(
            record.profile,
            record.provenance,
            record.locked,
            guarded.operations,
            schema,
            evidence={m.message_id: m.sent_at for m in own},
        )
        EXTRACTIONS.labels("ok").inc()
        dropped = guarded.dropped + result.dropped
        _count(record.user_id, extraction.malformed, dropped)
        _count_repairs(guarded.repaired)
        # The guards' drops ride in the result too: the evaluation judges each dropped value.
        return replace(result, dropped=dropped), guarded.operations, extraction.usage


def _combined(before: MergeResult | None, result: MergeResult | None) -> MergeResult | None:
    """``result`` after ``before``: the latest profile, the changes and drops of both."""
    if result is None or before is None:
        return result or before
    changes, dropped = before.changes + result.changes, before.dropped + result.dropped
    return MergeResult(result.profile, result.provenance, changes, dropped)


def _log_failure(user_id: str, messages: int, exc: Exception, decision: DeadLetter) -> None:
    """Say why a flush gave up: the cause, and the reason unless it may quote the model's words
    (a refusal's text is in the dead letter only)."""
    cause = exc.cause if isinstance(exc, ExtractionFailed) else type(exc).__name__
    logger.warning(
        "extraction failed user_id=%s messages=%d code=%s cause=%s attempts=%d reason=%s",
        user_id,
        messages,
        decision.code,
        cause,
        decision.attempts,
        "(in the dead letter)" if cause == "refused" else decision.reason,
        exc_info=None if isinstance(exc, ExtractionFailed) else exc,  # a bug: its traceback
    )


def _count(user_id: str, malformed: list[str], dropped: list[Dropped]) -> None:
    """Count the operations not applied by reason; each is logged at DEBUG with its field (the
    value and quote are the user's words, never logged)."""
    OPERATIONS_DROPPED.labels("malformed").inc(len(malformed))
    for d in dropped:
        OPERATIONS_DROPPED.labels(d.code).inc()
        logger.debug(
            "operation dropped user_id=%s field=%s op=%s reason=%s",
            user_id,
            d.operation.field,
            d.operation.op,
            d.code,
        )
    if malformed or dropped:
        logger.info(
            "dropped operations user_id=%s count=%d reasons=%s",
            user_id,
            len(malformed) + len(dropped),
            sorted({d.code for d in dropped} | ({"malformed"} if malformed else set())),
        )


def _count_repairs(repaired: list[Repaired]) -> None:
    for r in repaired:
        OPERATIONS_REPAIRED.labels(r.code).inc()
        logger.debug(
            "operation repaired field=%s op=%s reason=%s", r.operation.field, r.operation.op, r.code
        )


def newest(record: ProfileRecord, skew_s: float) -> datetime:
    """When the newest buffered message was sent (the time a flush's version takes)."""
    return max(_as_received(entry, skew_s).sent_at for entry in record.buffer)


def _as_received(entry: BufferedMessage, skew_s: float) -> ChatMessage:
    """The entry's message, its ``sent_at`` at most ``skew_s`` past its receipt (``received``:
    its record's timestamp, never past the worker's clock when buffered). Admission refuses a
    ``sent_at`` far ahead of the record's timestamp, but a producer whose clock is ahead stamps
    both: its message would then be "newer" than every later one and keep its values for good
    (review F4). ``received`` is stored with the entry, so a restored buffer decides the same."""
    limit = datetime.fromtimestamp(entry.received + skew_s, UTC)
    if entry.message.sent_at <= limit:
        return entry.message
    return entry.message.model_copy(update={"sent_at": limit})
