"""Applying one user's batch: load the record, ask the model, merge, version, publish.

A batch is consecutive chat messages of one subject, or one operator command. The record is
loaded (a version a killed worker left pending is finished first) and migrated to the current
schema; messages already applied (a redelivery) are left out; the rest go to the extractor in
one call, its operations are merged, and the next version is published.

Errors go through :mod:`streams.pipeline.policy`. An extraction that gives up, or a command
the schema refuses, is dead-lettered; any other error but an infrastructure failure is a bug
met by this batch: every input of the batch is dead-lettered as ``internal_error`` and the
batch is done (acknowledged), so the partition goes on. An infrastructure failure, or a
failure to send the dead letters, leaves the batch unacknowledged and reaches the scheduler's
``on_fatal``, with a note naming the batch's inputs.
"""

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from schemas import ChatMessage, FieldChange, ModelUsage, ProfileCommand, ProfileRecord
from streams.core.codecs import decode_record
from streams.core.commands import apply_command
from streams.core.history import Source, Trail
from streams.core.kinds import Kind
from streams.core.merge import MergeResult, merge
from streams.core.migration import migrate
from streams.core.origin import origin_of
from streams.core.profile_schema import ProfileSchema
from streams.core.records import applied_before, new_record, next_version, source_key
from streams.extract.base import Extractor
from streams.metrics import EXTRACTIONS, MESSAGES_EXTRACTED
from streams.pipeline.dead_letters import DeadLetters
from streams.pipeline.job import Job
from streams.pipeline.policy import DeadLetter, Stage, decide
from streams.pipeline.publish import Publisher
from streams.pipeline.scheduler import Release

__all__ = ["ProfileUpdater"]

logger = logging.getLogger(__name__)


def _no_slot() -> None:
    return None


@dataclass
class ProfileUpdater:
    """Applies one kind's batches to its table (the scheduler's ``run``)."""

    kind: Kind
    extractor: Extractor
    #: The profile table, read here; every write goes through ``publisher``.
    table: Mapping[bytes, bytes]
    publisher: Publisher
    dead_letters: DeadLetters
    #: Revisions kept per field (PROFILE_STREAM_REVISIONS_PER_FIELD; 0: none).
    revisions_per_field: int = 0

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
            for job in jobs:
                body = job.work.body
                message_id = body.message_id if isinstance(body, ChatMessage) else None
                await self.dead_letters.send(
                    job.work.msg, decision, user_id=body.user_id, message_id=message_id
                )

    async def _apply(self, key: bytes, jobs: list[Job], release: Release) -> None:
        first = jobs[0]
        record = self._load(key)
        if record.pending_event is not None:
            record = await self.publisher.resume(key, first.event, record)
        record, migration = migrate(record, self.schema)
        command = first.work.body
        if isinstance(command, ProfileCommand):
            release()
            await self._command(first, command, record, migration)
        else:
            await self._apply_messages(key, jobs, record, migration, release)

    def _load(self, key: bytes) -> ProfileRecord:
        raw = self.table.get(key)
        if raw is not None:
            return decode_record(raw)
        return new_record(key.decode(), self.schema.schema_id, self.kind.name)

    async def _apply_messages(
        self,
        key: bytes,
        jobs: list[Job],
        record: ProfileRecord,
        migration: list[FieldChange],
        release: Release,
    ) -> None:
        fresh = _not_applied(record, jobs)
        if not fresh:
            return
        messages = [message for _, message in fresh]
        try:
            result, spent = await self._extract(record, messages)
        except Exception as exc:
            decision = decide(exc, Stage.BATCH)
            if not isinstance(decision, DeadLetter):
                raise
            release()
            EXTRACTIONS.labels("failed").inc()
            for job, message in fresh:
                await self.dead_letters.send(
                    job.work.msg, decision, user_id=message.user_id, message_id=message.message_id
                )
            return
        release()  # the model is done with this batch; writing results needs no slot
        offsets = {source_key(*job.tp): job.offset for job, _ in fresh}
        updated, event = next_version(
            record,
            result,
            offsets=offsets | _origins(job for job, _ in fresh),
            message_ids=[m.message_id for m in messages],
            at=max(m.sent_at for m in messages),
            migration=migration,
            spent=spent,
            trail=Trail(
                self.revisions_per_field,
                {m.message_id: Source(*job.tp, job.offset) for job, m in fresh},
            ),
        )
        await self.publisher.publish(key, fresh[-1][0].event, updated, event)
        if event is not None:
            logger.info(
                "profile updated user_id=%s version=%d changes=%d messages=%d",
                record.user_id,
                event.version,
                len(event.changes),
                len(messages),
            )

    async def _extract(
        self, record: ProfileRecord, messages: list[ChatMessage]
    ) -> tuple[MergeResult | None, ModelUsage]:
        """The merged result (None when no message is the user's own: nothing to learn), and
        what the model calls for it cost."""
        own = [m for m in messages if m.role in self.schema.source_roles]
        if not own:
            return None, ModelUsage()
        MESSAGES_EXTRACTED.inc(len(messages))
        extraction = await self.extractor.extract(
            record.profile or self.schema.empty(),
            messages,
            self.schema,
            subject=record.user_id,
            kind=self.kind.name,
        )
        result = merge(
            record.profile,
            record.provenance,
            record.locked,
            extraction.operations,
            self.schema,
            evidence={m.message_id: m.sent_at for m in own},
        )
        EXTRACTIONS.labels("ok").inc()
        dropped = len(extraction.malformed) + len(result.dropped)
        if dropped:
            logger.warning(
                "dropped invalid operations user_id=%s count=%d reasons=%s",
                record.user_id,
                dropped,
                sorted({d.reason.split(":")[0] for d in result.dropped}),
            )
        return result, extraction.usage

    async def _command(
        self,
        job: Job,
        command: ProfileCommand,
        record: ProfileRecord,
        migration: list[FieldChange],
    ) -> None:
        try:
            outcome = apply_command(
                command,
                record,
                self.schema,
                source=source_key(*job.tp),
                offset=job.offset,
                exists=job.key in self.table,
                migration=migration,
                trail=Trail(
                    self.revisions_per_field, {command.command_id: Source(*job.tp, job.offset)}
                ),
            )
        except Exception as exc:
            decision = decide(exc, Stage.BATCH)
            if not isinstance(decision, DeadLetter):
                raise
            await self.dead_letters.send(job.work.msg, decision, user_id=command.user_id)
            return
        if outcome is None:
            return
        if outcome.forgets:
            cached = await self.extractor.forget(command.user_id, kind=self.kind.name)
            logger.info("forgetting user_id=%s cache_entries=%d", command.user_id, cached)
        await self.publisher.publish(job.key, job.event, outcome.record, outcome.event)


def _origins(jobs: Iterable[Job]) -> dict[str, int]:
    """The original offsets of the re-routed or forwarded copies among ``jobs``."""
    origins: dict[str, int] = {}
    for job in jobs:
        origin = origin_of(job.work.msg.headers)
        if origin is not None:
            origins[origin[0]] = max(origin[1], origins.get(origin[0], -1))
    return origins


def _not_applied(record: ProfileRecord, jobs: list[Job]) -> list[tuple[Job, ChatMessage]]:
    """The batch's chat messages not applied before (a redelivery is left out)."""
    fresh = []
    for job in jobs:
        message = job.work.body
        if isinstance(message, ChatMessage) and not applied_before(
            record,
            source_key(*job.tp),
            job.offset,
            message.message_id,
            origin_of(job.work.msg.headers),
        ):
            fresh.append((job, message))
    return fresh


def _where(jobs: list[Job]) -> str:
    """The inputs of a batch, for a log line: one partition, consecutive offsets."""
    topic, partition = jobs[0].tp
    offsets = f"{jobs[0].offset}" if len(jobs) == 1 else f"{jobs[0].offset}..{jobs[-1].offset}"
    return f"topic={topic} partition={partition} offsets={offsets}"
