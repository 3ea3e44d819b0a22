"""What the worker does with input events: admit (decode, check, route), then apply a user's
batch (extract, merge, store, emit).

Nothing raised by an input escapes: a bad event or a failed extraction goes to the dead-letter
topic, so one event never stops a partition. This is the one place that decides that.
"""

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from schemas import (
    ChatMessage,
    DeadLetterReason,
    FieldChange,
    ProfileCommand,
    ProfileEvent,
    ProfileRecord,
)
from streams.core.codecs import (
    dead_letter_record,
    decode_command,
    decode_message,
    decode_record,
    encode,
    is_command,
)
from streams.core.commands import apply_command
from streams.core.kinds import Kind
from streams.core.merge import MergeResult, merge
from streams.core.migration import migrate
from streams.core.partitioning import partition_for
from streams.core.profile_schema import ProfileSchema
from streams.core.records import applied_before, new_record, next_version, source_key
from streams.errors import ExtractionFailed, InvalidEvent
from streams.extract.base import Extractor
from streams.metrics import DEAD_LETTERS, EVENTS_IN, EXTRACTIONS, MESSAGES_EXTRACTED, VERSIONS
from streams.settings import Settings

__all__ = ["Processor", "Sender", "SourceMessage", "Work"]

logger = logging.getLogger(__name__)


class SourceMessage(Protocol):
    """The parts of a consumed Kafka record the processor reads (Faust's ``Message`` has them)."""

    topic: str
    partition: int
    offset: int
    timestamp: float
    key: bytes | None
    value: bytes | None
    headers: Any


class Sender(Protocol):
    """Something that produces to a topic (a Faust topic)."""

    async def send(self, *, key: bytes | None, value: bytes) -> Any:
        """Produce one record."""
        ...


@dataclass(frozen=True)
class Work:
    """An admitted event: its source, the user key, the decoded body, and the event handle
    that must be current when the table is written (Faust routes the write by it)."""

    msg: SourceMessage
    key: bytes
    body: ChatMessage | ProfileCommand
    handle: Any = None


async def _written_now(key: bytes) -> None:
    return None


@dataclass
class Processor:
    """Applies input events to the profile table and emits events; see the module docstring."""

    settings: Settings
    kind: Kind
    extractor: Extractor
    table: MutableMapping[bytes, bytes]
    output: Sender
    dead_letters: Sender
    reroute: Sender
    bind: Callable[[Any], None] = lambda handle: None
    #: Waits until the table's last changelog write of a key is in Kafka.
    written: Callable[[bytes], Awaitable[None]] = field(default=_written_now)
    #: Other kinds a chat message may update, with the topic keyed by their subject.
    forwards: list[tuple[Kind, Sender]] = field(default_factory=list)

    @property
    def schema(self) -> ProfileSchema:
        """The schema of this processor's kind."""
        return self.kind.schema

    async def admit(self, msg: SourceMessage, handle: Any = None) -> Work | None:
        """The event as work for its subject, or None when it was dead-lettered or re-routed."""
        if not self.kind.is_user:
            return await self._admit_subject(msg, handle)
        try:
            body = self._decode(msg)
            if isinstance(body, ChatMessage):
                self._check_time(msg, body)
            key = self._user_key(msg, body.user_id)
            if msg.key is None or msg.partition != partition_for(key, self.settings.partitions):
                await self._reroute(msg, key, body)
                return None
            EVENTS_IN.labels("command" if isinstance(body, ProfileCommand) else "chat").inc()
            if isinstance(body, ChatMessage):
                await self._forward(msg, body)
            return Work(msg, key, body, handle)
        except InvalidEvent as exc:
            await self.dead_letter(msg, exc.code, exc.reason, user_id=exc.user_id)  # type: ignore[arg-type]
            return None

    def _decode(self, msg: SourceMessage) -> ChatMessage | ProfileCommand:
        if is_command(msg.headers):
            return decode_command(msg.value)
        return decode_message(msg.value, max_content_chars=self.settings.max_content_chars)

    async def _forward(self, msg: SourceMessage, body: ChatMessage) -> None:
        """Hand the message to each other kind it names, keyed by that kind's subject."""
        for kind, topic in self.forwards:
            subject = kind.subject_of(body)
            if subject is not None and body.role in kind.schema.source_roles:
                assert msg.value is not None  # noqa: S101 - decoded above
                await topic.send(key=subject.encode(), value=msg.value)

    async def _admit_subject(self, msg: SourceMessage, handle: Any) -> Work | None:
        """A message forwarded to this kind's topic, keyed by its subject (or a command)."""
        try:
            body = self._decode(msg)
        except InvalidEvent as exc:
            await self.dead_letter(msg, exc.code, exc.reason, user_id=exc.user_id)  # type: ignore[arg-type]
            return None
        subject = body.user_id if isinstance(body, ProfileCommand) else self.kind.subject_of(body)
        if subject is None or msg.key != subject.encode():
            await self.dead_letter(
                msg,
                "key_mismatch",
                f"not keyed by its {self.kind.name} subject",
                user_id=body.user_id,
            )
            return None
        EVENTS_IN.labels(f"kind:{self.kind.name}").inc()
        return Work(msg, msg.key, body, handle)

    async def run(
        self, key: bytes, works: list[Work], release: Callable[[], None] = lambda: None
    ) -> None:
        """Apply one user's batch: consecutive chat messages, or a single command.

        ``release`` is called once no model call is left, freeing the in-flight slot.
        """
        first = works[0].body
        record = self._load(key, key.decode())
        if record.pending_event is not None:
            record = await self._settle(key, works[0], record)
        record, migration = migrate(record, self.schema)
        if isinstance(first, ProfileCommand):
            release()
            await self._command(works[0], first, record, migration)
        else:
            await self._chats(key, works, record, migration, release)

    def _check_time(self, msg: SourceMessage, message: ChatMessage) -> None:
        """Refuse a ``sent_at`` far ahead of the broker's timestamp: it would win every field.

        Compared with the record's timestamp, not the clock, so a replay decides the same.
        """
        ahead = message.sent_at.timestamp() - msg.timestamp
        if ahead > self.settings.max_future_skew_s:
            raise InvalidEvent(
                "invalid_message",
                f"sent_at is {ahead:.0f}s ahead of the record's timestamp (limit "
                f"{self.settings.max_future_skew_s:.0f}s, PROFILE_STREAM_MAX_FUTURE_SKEW_S); "
                "fix the producer's clock",
                user_id=message.user_id,
            )

    def _user_key(self, msg: SourceMessage, user_id: str) -> bytes:
        key = user_id.encode()
        if msg.key is not None and msg.key != key:
            raise InvalidEvent(
                "key_mismatch",
                "the record key names another user than the body's user_id; "
                "publish with key = user_id",
                user_id=user_id,
            )
        return key

    def _load(self, key: bytes, user_id: str) -> ProfileRecord:
        raw = self.table.get(key)
        if raw is not None:
            return decode_record(raw)
        return new_record(user_id, self.schema.schema_id, self.kind.name)

    async def _reroute(
        self, msg: SourceMessage, key: bytes, body: ChatMessage | ProfileCommand
    ) -> None:
        if isinstance(body, ProfileCommand):
            raise InvalidEvent(
                "invalid_command", "command is not on its user's partition", user_id=body.user_id
            )
        assert msg.value is not None  # noqa: S101 - decoded above
        await self.reroute.send(key=key, value=msg.value)
        EVENTS_IN.labels("rerouted").inc()
        logger.info(
            "re-routed by user id topic=%s partition=%d offset=%d user_id=%s message_id=%s",
            msg.topic,
            msg.partition,
            msg.offset,
            body.user_id,
            body.message_id,
        )

    async def _chats(
        self,
        key: bytes,
        works: list[Work],
        record: ProfileRecord,
        migration: list[FieldChange],
        release: Callable[[], None],
    ) -> None:
        fresh = [
            (w, w.body)
            for w in works
            if isinstance(w.body, ChatMessage)
            and not applied_before(
                record, source_key(w.msg.topic, w.msg.partition), w.msg.offset, w.body.message_id
            )
        ]
        if not fresh:
            return
        messages = [m for _, m in fresh]
        try:
            result = await self._extract(record, messages)
        except ExtractionFailed as exc:
            release()
            EXTRACTIONS.labels("failed").inc()
            for w, m in fresh:
                await self.dead_letter(
                    w.msg,
                    "extraction_failed",
                    str(exc),
                    user_id=m.user_id,
                    message_id=m.message_id,
                    attempts=exc.attempts,
                )
            return
        release()  # the model is done with this batch; writing results needs no slot
        offsets: dict[str, int] = {}
        for w, _ in fresh:
            offsets[source_key(w.msg.topic, w.msg.partition)] = w.msg.offset
        updated, event = next_version(
            record,
            result,
            offsets=offsets,
            message_ids=[m.message_id for m in messages],
            at=max(m.sent_at for m in messages),
            migration=migration,
        )
        await self._publish(key, fresh[-1][0], updated, event)
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
    ) -> MergeResult | None:
        """The merged result, or None when no message is the user's own (nothing to learn)."""
        own = [m for m in messages if m.role in self.schema.source_roles]
        if not own:
            return None
        MESSAGES_EXTRACTED.inc(len(messages))
        extraction = await self.extractor.extract(
            record.profile or self.schema.empty(), messages, self.schema
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
        return result

    async def _store(self, key: bytes, work: Work, record: ProfileRecord) -> None:
        self.bind(work.handle)
        self.table[key] = encode(record)

    async def _publish(
        self,
        key: bytes,
        work: Work,
        record: ProfileRecord,
        event: ProfileEvent | None,
        *,
        delete: bool = False,
    ) -> None:
        """Store ``record`` and emit ``event`` so that, wherever the worker is killed, every
        version's event is emitted at least once and none before its version is durable."""
        if event is None:
            await self._store(key, work, record)
            return
        await self._store(key, work, record.model_copy(update={"pending_event": event}))
        await self.written(key)  # the changelog holds the version before anyone hears of it
        await self._emit(key, event)  # delivered before this user's next batch starts
        if delete:
            self.bind(work.handle)
            del self.table[key]  # a tombstone on the changelog, so compaction drops the data
        else:
            await self._store(key, work, record)

    async def _settle(self, key: bytes, work: Work, record: ProfileRecord) -> ProfileRecord:
        """Emit the event a killed worker left pending, then carry on from its record."""
        event = record.pending_event
        assert event is not None  # noqa: S101
        await self._emit(key, event)
        logger.info("re-emitted pending event user_id=%s version=%d", record.user_id, event.version)
        if event.type == "deleted":
            await self.extractor.forget(record.user_id)
            self.bind(work.handle)
            del self.table[key]
            return new_record(record.user_id, self.schema.schema_id, self.kind.name)
        settled = record.model_copy(update={"pending_event": None})
        await self._store(key, work, settled)
        return settled

    async def _command(
        self,
        work: Work,
        command: ProfileCommand,
        record: ProfileRecord,
        migration: list[FieldChange],
    ) -> None:
        try:
            outcome = apply_command(
                command,
                record,
                self.schema,
                source=source_key(work.msg.topic, work.msg.partition),
                offset=work.msg.offset,
                exists=work.key in self.table,
                migration=migration,
            )
        except InvalidEvent as exc:
            await self.dead_letter(work.msg, exc.code, exc.reason, user_id=command.user_id)  # type: ignore[arg-type]
            return
        if outcome is None:
            return
        if outcome.delete:
            cached = await self.extractor.forget(command.user_id)
            logger.info("forgetting user_id=%s cache_entries=%d", command.user_id, cached)
        await self._publish(work.key, work, outcome.record, outcome.event, delete=outcome.delete)

    async def _emit(self, key: bytes, event: ProfileEvent) -> None:
        """Produce ``event`` (keyed by user id, or ``kind/subject``) and await its delivery."""
        out_key = key if self.kind.is_user else self.kind.event_key(key.decode())
        await (await self.output.send(key=out_key, value=encode(event)))
        VERSIONS.labels(event.type).inc()

    async def dead_letter(
        self,
        msg: SourceMessage,
        code: DeadLetterReason,
        reason: str,
        *,
        user_id: str | None = None,
        message_id: str | None = None,
        attempts: int = 0,
    ) -> None:
        """Send ``msg`` with its raw bytes and the reason to the dead-letter topic."""
        record = dead_letter_record(
            code=code,
            reason=reason,
            topic=msg.topic,
            partition=msg.partition,
            offset=msg.offset,
            key=msg.key,
            value=msg.value,
            failed_at=datetime.now(UTC),
            user_id=user_id,
            message_id=message_id,
            attempts=attempts,
            command=is_command(msg.headers),
            headers=msg.headers,
        )
        await self.dead_letters.send(key=msg.key, value=record)
        DEAD_LETTERS.labels(code).inc()
        logger.warning(
            "dead-lettered topic=%s partition=%d offset=%d user_id=%s reason=%s",
            msg.topic,
            msg.partition,
            msg.offset,
            user_id,
            code,
        )
