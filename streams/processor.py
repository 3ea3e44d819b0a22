"""What the worker does with one input event: decode, route, extract, merge, store, emit.

The Faust agent hands every event here; nothing raised by an input escapes, so one bad event
never stops a partition. This is the one place that decides dead-letter or crash.
"""

import logging
from collections.abc import MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from schemas import ChatMessage, DeadLetterReason, ProfileCommand, ProfileRecord

from .codecs import dead_letter as dead_letter_record
from .codecs import decode_command, decode_message, decode_record, encode
from .errors import ExtractionFailed, InvalidEvent
from .extraction import Extractor
from .merge import merge
from .partitioning import partition_for
from .profile_schema import ProfileSchema
from .records import applied_before, commit, deleted_event, new_record, source_key
from .settings import Settings

__all__ = ["COMMAND_HEADER", "Processor", "Sender", "SourceMessage", "is_command"]

logger = logging.getLogger(__name__)

#: Marks an operator command on the input topic; chat messages carry no such header.
COMMAND_HEADER = ("profile-stream-type", b"command")


def is_command(headers: Any) -> bool:
    """Whether a record's headers (Faust gives a list of pairs or a mapping) mark a command."""
    pairs = headers.items() if isinstance(headers, dict) else (headers or ())
    return any(name == COMMAND_HEADER[0] and value == COMMAND_HEADER[1] for name, value in pairs)


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


@dataclass
class Processor:
    """Applies input events to the profile table and emits events; see the module docstring."""

    settings: Settings
    schema: ProfileSchema
    extractor: Extractor
    table: MutableMapping[bytes, bytes]
    output: Sender
    dead_letters: Sender
    reroute: Sender

    async def handle(self, msg: SourceMessage) -> None:
        """Process one event; failures go to the dead-letter topic, never up."""
        try:
            if is_command(msg.headers):
                await self._command(msg)
            else:
                await self._chat(msg)
        except InvalidEvent as exc:
            await self.dead_letter(msg, exc.code, exc.reason, user_id=exc.user_id)  # type: ignore[arg-type]
        except ExtractionFailed as exc:
            await self.dead_letter(msg, "extraction_failed", str(exc))

    def _user_key(self, msg: SourceMessage, user_id: str) -> bytes | None:
        """The table key, or None when the event sits on the wrong partition and was re-routed."""
        key = user_id.encode()
        if msg.key is not None and msg.key != key:
            raise InvalidEvent(
                "key_mismatch",
                "the record key names another user than the body's user_id; "
                "publish with key = user_id",
                user_id=user_id,
            )
        return key

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

    def _misplaced(self, msg: SourceMessage, key: bytes) -> bool:
        return msg.key is None or msg.partition != partition_for(key, self.settings.partitions)

    def _load(self, key: bytes, user_id: str) -> ProfileRecord:
        raw = self.table.get(key)
        return decode_record(raw) if raw is not None else new_record(user_id, self.schema.schema_id)

    async def _chat(self, msg: SourceMessage) -> None:
        message = decode_message(msg.value, max_content_chars=self.settings.max_content_chars)
        self._check_time(msg, message)
        key = self._user_key(msg, message.user_id)
        assert key is not None  # noqa: S101
        if self._misplaced(msg, key):
            await self._reroute(msg, key, message)
            return
        record = self._load(key, message.user_id)
        source = source_key(msg.topic, msg.partition)
        if applied_before(record, source, msg.offset, message.message_id):
            logger.debug(
                "skip already applied user_id=%s message_id=%s offset=%d",
                message.user_id,
                message.message_id,
                msg.offset,
            )
            return
        result = None
        if message.role == "user":  # other turns are context only, never facts about the user
            extraction = await self.extractor.extract(
                record.profile or self.schema.empty(), [message], self.schema
            )
            result = merge(
                record.profile,
                record.provenance,
                record.locked,
                extraction.operations,
                self.schema,
                evidence={message.message_id: message.sent_at},
            )
            self._log_dropped(message, len(extraction.malformed) + len(result.dropped))
        updated, event = commit(
            record,
            result,
            offsets={source: msg.offset},
            message_ids=[message.message_id],
            at=message.sent_at,
        )
        self.table[key] = encode(updated)
        if event is not None:
            await self.output.send(key=key, value=encode(event))
            logger.info(
                "profile updated user_id=%s version=%d changes=%d",
                message.user_id,
                event.version,
                len(event.changes),
            )

    async def _reroute(self, msg: SourceMessage, key: bytes, message: ChatMessage) -> None:
        assert msg.value is not None  # noqa: S101 - decoded above
        await self.reroute.send(key=key, value=msg.value)
        logger.info(
            "re-routed by user id topic=%s partition=%d offset=%d user_id=%s message_id=%s",
            msg.topic,
            msg.partition,
            msg.offset,
            message.user_id,
            message.message_id,
        )

    async def _command(self, msg: SourceMessage) -> None:
        command = decode_command(msg.value)
        key = self._user_key(msg, command.user_id)
        assert key is not None  # noqa: S101
        if self._misplaced(msg, key):
            raise InvalidEvent(
                "invalid_command", "command is on the wrong partition", user_id=command.user_id
            )
        if command.type == "forget":
            await self._forget(key, command)
        else:
            await self._correct(msg, key, command)

    async def _forget(self, key: bytes, command: ProfileCommand) -> None:
        raw = self.table.get(key)
        if raw is None:
            return
        record = decode_record(raw)
        del self.table[key]  # a tombstone on the changelog, so compaction drops the data
        event = deleted_event(record, command.command_id, command.requested_at)
        await self.output.send(key=key, value=encode(event))
        logger.info("profile forgotten user_id=%s", command.user_id)

    async def _correct(self, msg: SourceMessage, key: bytes, command: ProfileCommand) -> None:
        record = self._load(key, command.user_id)
        ops = [
            op.model_copy(update={"message_id": op.message_id or command.command_id})
            for op in command.operations
        ]
        result = merge(
            record.profile,
            record.provenance,
            record.locked,
            ops,
            self.schema,
            evidence={command.command_id: command.requested_at},
            by="operator",
        )
        if result.dropped:
            raise InvalidEvent(
                "invalid_command",
                "; ".join(d.reason for d in result.dropped),
                user_id=command.user_id,
            )
        unknown = [f for f in (*command.lock, *command.unlock) if f not in self.schema.fields]
        if unknown:
            raise InvalidEvent(
                "invalid_command", f"cannot lock unknown fields {unknown}", user_id=command.user_id
            )
        locked = tuple(sorted((set(record.locked) | set(command.lock)) - set(command.unlock)))
        updated, event = commit(
            record,
            result,
            offsets={source_key(msg.topic, msg.partition): msg.offset},
            message_ids=[command.command_id],
            at=command.requested_at,
            locked=locked,
        )
        self.table[key] = encode(updated)
        if event is not None:
            await self.output.send(key=key, value=encode(event))

    def _log_dropped(self, message: ChatMessage, count: int) -> None:
        if count:
            logger.warning(
                "dropped invalid operations user_id=%s message_id=%s count=%d",
                message.user_id,
                message.message_id,
                count,
            )

    async def dead_letter(
        self,
        msg: SourceMessage,
        code: DeadLetterReason,
        reason: str,
        *,
        user_id: str | None = None,
    ) -> None:
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
        )
        await self.dead_letters.send(key=msg.key, value=record)
        logger.warning(
            "dead-lettered topic=%s partition=%d offset=%d user_id=%s reason=%s",
            msg.topic,
            msg.partition,
            msg.offset,
            user_id,
            code,
        )
