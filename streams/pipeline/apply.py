"""Applying one user's batch: load the record, buffer the messages, flush, version, publish.

A batch is consecutive chat messages of one subject, one operator command, or a flush the
timer asks for. The record is loaded (a version a killed worker left pending is finished
first) and migrated to the current schema; messages already applied or buffered (a
redelivery) are left out; the rest join the subject's buffer in its record. When a trigger
holds (``streams.core.flushing``) the buffer is flushed: its messages go to the extractor (one
call per batch's worth), the operations are merged, and the next version is published. A
buffer that stays is stored durably (its changelog write acknowledged) before the batch's
inputs are acknowledged, and the flush clock is told when it is due.

Errors go through :mod:`streams.pipeline.policy`. An extraction that gives up, or a command
the schema refuses, is dead-lettered; any other error but an infrastructure failure is a bug
met by this batch: every input of the batch is dead-lettered as ``internal_error`` and the
batch is done (acknowledged), so the partition goes on. An infrastructure failure, or a
failure to send the dead letters, leaves the batch unacknowledged and reaches the scheduler's
``on_fatal``, with a note naming the batch's inputs.
"""

import functools
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from schemas import BufferedMessage, ChatMessage, FieldChange, ProfileCommand, ProfileRecord
from streams.core.codecs import decode_record
from streams.core.commands import apply_command
from streams.core.flushing import (
    FlushPolicy,
    FlushReason,
    due_at,
    next_day,
    over_budget,
    reason_after,
    reason_before,
)
from streams.core.history import Source, Trail
from streams.core.kinds import Kind
from streams.core.migration import migrate
from streams.core.profile_schema import ProfileSchema
from streams.core.records import (
    buffered,
    dead_lettered,
    new_record,
    next_version,
    restored,
    source_key,
)
from streams.core.signing import signed_at_ms
from streams.extract.base import Extractor
from streams.metrics import BUDGET_DEFERRALS
from streams.pipeline.buffer_store import BufferStore
from streams.pipeline.buffering import entry_of, oversized
from streams.pipeline.dead_letters import DeadLetters
from streams.pipeline.flush import Flusher, newest
from streams.pipeline.fresh import fresh_messages
from streams.pipeline.job import Job, TopicPartition
from streams.pipeline.policy import DeadLetter, Stage, decide
from streams.pipeline.ports import EventHandle
from streams.pipeline.publish import Publisher
from streams.pipeline.scheduler import Release

__all__ = ["ProfileUpdater"]

logger = logging.getLogger(__name__)


def _no_slot() -> None:
    return None


def _no_clock(key: bytes, tp: TopicPartition, due: float | None) -> None:
    return None


#: Tells the flush clock when a subject's buffer is due (None: it is empty).
OnBuffer = Callable[[bytes, TopicPartition, float | None], None]


@dataclass
class ProfileUpdater:
    """Applies one kind's batches to its table (the scheduler's ``run``)."""

    kind: Kind
    extractor: Extractor
    #: The profile table, read here; every write goes through ``publisher``.
    table: Mapping[bytes, bytes]
    publisher: Publisher
    dead_letters: DeadLetters
    #: When buffers are flushed; the default (idle 0) flushes every batch as it comes.
    flushing: FlushPolicy = field(default_factory=lambda: FlushPolicy(idle_s=0.0))
    on_buffer: OnBuffer = _no_clock
    #: The worker's clock (seconds), against the record timestamps the triggers count from.
    clock: Callable[[], float] = time.time
    #: Revisions kept per field (PROFILE_STREAM_REVISIONS_PER_FIELD; 0: none).
    revisions_per_field: int = 0
    #: The buffered messages, one entry each (the default keeps them in memory, for tests).
    buffers: BufferStore = field(default_factory=lambda: BufferStore({}))
    #: The clock skew a producer is allowed (PROFILE_STREAM_MAX_FUTURE_SKEW_S): seconds after a
    #: forget's record timestamp within which a message first taken in on another partition
    #: still counts as before it, and past its receipt that a message's ``sent_at`` may count.
    max_future_skew_s: float = 300.0
    #: Whether an input of the subject is read and waits for its batch (the scheduler's
    #: :meth:`~streams.pipeline.scheduler.KeyedScheduler.waiting`): no idle nor age flush then.
    waiting: Callable[[bytes], bool] | None = None

    def __post_init__(self) -> None:
        self._flusher = Flusher(
            self.kind,
            self.extractor,
            self.publisher,
            self.dead_letters,
            self.flushing,
            self.buffers,
            revisions_per_field=self.revisions_per_field,
            clock=self.clock,
            max_future_skew_s=self.max_future_skew_s,
        )

    @property
    def schema(self) -> ProfileSchema:
        """The schema of this kind."""
        return self.kind.schema

    async def apply(self, key: bytes, jobs: list[Job], release: Release = _no_slot) -> None:
        """Apply one subject's batch: consecutive chat messages, or a single command.

        ``release`` is called once no model call is left, freeing the in-flight slot.
        """
        try:
            await self._apply_or_dead_letter(key, jobs, release)
        except Exception as exc:
            exc.add_note(_where(jobs))
            raise

    async def _apply_or_dead_letter(self, key: bytes, jobs: list[Job], release: Release) -> None:
        try:
            await self._apply(key, jobs, release)
        except Exception as exc:
            decision = decide(exc, Stage.BATCH)
            if not isinstance(decision, DeadLetter):
                raise
            release()
            logger.error("internal error in a batch %s", _where(jobs), exc_info=exc)
            if jobs[0].timer:
                await self._dead_letter_buffer(key, jobs[0], decision)
                return
            for job in jobs:
                body = job.work.body
                message_id = body.message_id if isinstance(body, ChatMessage) else None
                await self.dead_letters.send(
                    job.work.msg, decision, user_id=body.user_id, message_id=message_id
                )

    async def _dead_letter_buffer(self, key: bytes, job: Job, decision: DeadLetter) -> None:
        """Dead-letter the buffered messages a timer's flush failed on, and empty the buffer,
        so a bug met by one buffer is not met again at every tick."""
        record = await self._load(key, job.event)
        await self._flusher.dead_letter(key, record.buffer, decision)
        if record.buffer:
            ids = [entry.message.message_id for entry in record.buffer]
            emptied = dead_lettered(self.buffers.emptied(key, record), ids)
            await self.publisher.publish(key, job.event, emptied, None, durable=True)
            self.buffers.clear(key, job.event, emptied.buffer_seq)
        self.on_buffer(key, job.tp, None)

    async def _apply(self, key: bytes, jobs: list[Job], release: Release) -> None:
        first = jobs[0]
        record = await self._load(key, first.event)
        if record.pending_event is not None:
            record = await self.publisher.resume(key, first.event, record)
            # A worker killed after a flush's or forget's record, before its clear.
            self.buffers.clear(key, first.event, record.buffer_seq)
        record, migration = migrate(record, self.schema)
        if first.timer:
            reason = self._due_now(key, record, forced=first.forced)
            if reason is not None:
                record = await self._flusher.flush(key, first, record, migration, reason, release)
        elif isinstance(command := first.work.body, ProfileCommand):
            record = await self._apply_command(key, first, command, record, migration, release)
        else:
            record = await self._apply_messages(key, jobs, record, migration, release)
        self.on_buffer(key, first.tp, self._due(record))

    def _due_now(
        self, key: bytes, record: ProfileRecord, *, forced: bool = False
    ) -> FlushReason | None:
        """Why ``key``'s buffer must be flushed now (``forced``: a reader's refresh asks, and
        there is a buffer), unless the user's daily budget is spent."""
        waiting = self.waiting is not None and self.waiting(key)  # joins first: reason_after
        reason = reason_after(record.buffer, self.flushing, self.clock(), waiting=waiting)
        if forced and record.buffer:
            reason = FlushReason.REFRESH
        if reason is not None and over_budget(record.usage, self.flushing, self.clock()):
            BUDGET_DEFERRALS.inc()
            logger.info(
                "flush deferred: daily token budget spent user_id=%s buffered=%d reason=%s",
                record.user_id,
                len(record.buffer),
                reason,
            )
            return None
        return reason

    def _due(self, record: ProfileRecord) -> float | None:
        """When the timer must look at the buffer again: its trigger, or the next UTC day for
        a user over budget."""
        if record.buffer and over_budget(record.usage, self.flushing, self.clock()):
            return next_day(self.clock())
        return due_at(record.buffer, self.flushing)

    async def _apply_command(
        self,
        key: bytes,
        job: Job,
        command: ProfileCommand,
        record: ProfileRecord,
        migration: list[FieldChange],
        release: Release,
    ) -> ProfileRecord:
        """A forget drops the buffer with the profile; any other command follows the messages
        before it, so the buffer is flushed first."""
        if command.type != "forget" and record.buffer:
            record = await self._flusher.flush(
                key, job, record, migration, FlushReason.COMMAND, release
            )
            migration = []
        release()
        if command.type == "flush":
            return record
        return await self._command(job, command, record, migration)

    async def _load(self, key: bytes, handle: EventHandle | None) -> ProfileRecord:
        """The subject's record with its buffer read from the buffer table (a record of the
        single-record release is converted first: docs/state.md)."""
        record = self._stored(key)
        if record.buffer:
            record = await self._convert(key, handle, record)
        return restored(record, self.buffers.entries(key, record.buffer_seq))

    def _stored(self, key: bytes) -> ProfileRecord:
        """The subject's record as the table holds it (a new one if none)."""
        raw = self.table.get(key)
        if raw is None:
            return new_record(key.decode(), self.schema.schema_id, self.kind.name)
        return decode_record(raw)

    async def _convert(
        self, key: bytes, handle: EventHandle | None, record: ProfileRecord
    ) -> ProfileRecord:
        """Move the buffer a record of formats 4 to 6 holds into the buffer table: the entries
        first (durable), then the record without them. Both writes are the same again if the
        worker dies in between, so a crash converts again on the next touch, losing nothing."""
        written = self.buffers.write(key, handle, record, stored=0)
        await self.buffers.durable(written)
        await self.publisher.publish(key, handle, record, None)
        logger.info(
            "buffer moved to the buffer table user_id=%s entries=%d", record.user_id, len(written)
        )
        return record.model_copy(update={"buffer": ()})

    async def _apply_messages(
        self,
        key: bytes,
        jobs: list[Job],
        record: ProfileRecord,
        migration: list[FieldChange],
        release: Release,
    ) -> ProfileRecord:
        """Buffer the batch's new messages, flushing when a trigger holds; returns the record
        as stored."""
        fresh = fresh_messages(record, jobs, margin_s=self.max_future_skew_s)
        if not fresh:
            return record
        spent = over_budget(record.usage, self.flushing, self.clock())
        taken = []
        for job, message in fresh:
            if spent and len(record.buffer) >= self.flushing.max_buffered:
                await self._refuse_over_budget(job, message, len(record.buffer))
                continue
            entry = entry_of(job, message, self.clock())
            if not await self._fits(job, message, entry):
                continue
            before = None if spent else reason_before(record.buffer, message, self.flushing)
            if before is not None:
                record = await self._flusher.flush(key, job, record, migration, before, _no_slot)
                migration = []
            record = buffered(record, [entry])
            taken.append(job)
        if not taken:
            return record
        last = taken[-1]
        reason = self._due_now(key, record)
        if reason is not None:
            inputs = {message.message_id: job.work.msg for job, message in fresh}
            return await self._flusher.flush(key, last, record, migration, reason, release, inputs)
        release()
        version = functools.partial(
            next_version,
            offsets={},
            message_ids=[],
            at=newest(record, self.max_future_skew_s),
            trail=Trail(self.revisions_per_field),
        )
        updated, event = version(record, None, migration=migration)
        # Only the new entries are written; the record only when it changed (a migration) or
        # is new, and as stored, without what this buffer's entries stand for: were its write
        # durable and theirs not, a redelivery would be skipped as applied, and a read would
        # take a buffered message for an extracted one. Durable before the inputs are
        # acknowledged: from here on only the buffer has them.
        written = self.buffers.write(key, last.event, updated)
        if event is not None or key not in self.table:
            stored, changes = migrate(self._stored(key), self.schema)
            await self.publisher.publish(
                key, last.event, *version(stored, None, migration=changes), durable=True
            )
        await self.buffers.durable(written)
        return updated

    async def _fits(self, job: Job, message: ChatMessage, entry: BufferedMessage) -> bool:
        """Whether ``entry`` fits one changelog write; if not, the message is dead-lettered: a
        write the producer refuses would crash the worker at every redelivery."""
        decision = oversized(entry, job.key, self.dead_letters.max_request_bytes)
        if decision is not None:
            await self.dead_letters.send(
                job.work.msg, decision, user_id=message.user_id, message_id=message.message_id
            )
        return decision is None

    async def _refuse_over_budget(self, job: Job, message: ChatMessage, held: int) -> None:
        """Dead-letter a message its user's full buffer cannot take (over budget)."""
        reason = (
            f"the user's buffer holds {held} messages (PROFILE_STREAM_MAX_BUFFERED_MESSAGES) "
            "while the daily token budget (PROFILE_STREAM_USER_DAILY_TOKENS) is spent; "
            "re-publish from the dead-letter topic after 00:00 UTC, or raise the budget"
        )
        decision = DeadLetter("over_budget", reason, user_id=message.user_id)
        await self.dead_letters.send(
            job.work.msg, decision, user_id=message.user_id, message_id=message.message_id
        )

    async def _command(
        self,
        job: Job,
        command: ProfileCommand,
        record: ProfileRecord,
        migration: list[FieldChange],
    ) -> ProfileRecord:
        try:
            outcome = apply_command(
                command,
                record,
                self.schema,
                source=source_key(*job.tp),
                offset=job.offset,
                exists=job.key in self.table or bool(record.buffer),
                migration=migration,
                signed_ms=signed_at_ms(job.work.msg.headers),
                received_ms=int(job.work.msg.timestamp * 1000),
                trail=Trail(
                    self.revisions_per_field, {command.command_id: Source(*job.tp, job.offset)}
                ),
            )
        except Exception as exc:
            decision = decide(exc, Stage.BATCH)
            if not isinstance(decision, DeadLetter):
                raise
            await self.dead_letters.send(job.work.msg, decision, user_id=command.user_id)
            return record
        if outcome is None:
            return record
        final = outcome.record
        if outcome.forgets:
            cached = await self.extractor.forget(command.user_id, kind=self.kind.name)
            logger.info("forgetting user_id=%s cache_entries=%d", command.user_id, cached)
            final = final.model_copy(
                update={"buffer_seq": self.buffers.emptied(job.key, record).buffer_seq}
            )
        # Durable before the command is acknowledged, also without an event (a forget of a
        # subject without a profile only moves its mark on).
        await self.publisher.publish(job.key, job.event, final, outcome.event, durable=True)
        if outcome.forgets:
            self.buffers.clear(job.key, job.event, final.buffer_seq)
        return final


def _where(jobs: list[Job]) -> str:
    """The inputs of a batch, for a log line: one partition, consecutive offsets."""
    topic, partition = jobs[0].tp
    offsets = f"{jobs[0].offset}" if len(jobs) == 1 else f"{jobs[0].offset}..{jobs[-1].offset}"
    return f"topic={topic} partition={partition} offsets={offsets}"
