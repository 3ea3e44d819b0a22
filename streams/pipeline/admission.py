"""Admission: decode an input event, check it, route it, and hand it on as :class:`Admitted`.

For the user kind (the input topic): decode (a chat message, or an operator command marked by
a header), refuse a ``sent_at`` far in the future, re-route a message that sits on another
user's partition, and forward a chat message to every other kind whose subject it names. For
another kind (its own topic, keyed by subject): decode and check the key.

What cannot be admitted is handled here, as :mod:`streams.pipeline.policy` decides: it is
dead-lettered, or the worker exits for redelivery. Nothing raised by an input escapes.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from schemas import ChatMessage, ProfileCommand
from streams.core.codecs import decode_command, decode_message, is_command
from streams.core.forget_mark import FirstSeen, first_seen_in
from streams.core.kinds import Kind
from streams.core.origin import origin_headers, origin_of
from streams.core.partitioning import partition_for
from streams.core.signing import require_authentic_command
from streams.errors import InvalidEvent
from streams.metrics import EVENTS_IN
from streams.pipeline.dead_letters import DeadLetters
from streams.pipeline.policy import (
    DeadLetter,
    Decision,
    Exit,
    Stage,
    decide,
    exit_for_redelivery,
    undeliverable,
)
from streams.pipeline.ports import CopySender, SourceMessage
from streams.settings import Settings

__all__ = ["Admission", "Admitted"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Admitted:
    """An input event admitted for its subject: its record, the subject's key, the body, and
    for a copy a worker re-routed or forwarded, the ``applied`` key and offset of its original
    (``streams.core.origin``; checked here, None for anything else). ``first_seen``: where and
    when the message was first taken in, which a forget mark is compared with
    (``streams.core.forget_mark``; None: the record itself, at its timestamp)."""

    msg: SourceMessage
    key: bytes
    body: ChatMessage | ProfileCommand
    origin: tuple[str, int] | None = None
    first_seen: FirstSeen | None = None

    @property
    def seen(self) -> FirstSeen:
        """Where and when the message was first taken in."""
        if self.first_seen is not None:
            return self.first_seen
        msg = self.msg
        return FirstSeen.of(msg.topic, msg.partition, msg.offset, msg.timestamp)


@dataclass
class Admission:
    """Admits one kind's input events; see the module docstring."""

    settings: Settings
    kind: Kind
    dead_letters: DeadLetters
    #: The input topic, where a misplaced chat message is re-published under its user's key.
    reroute: CopySender
    #: Other kinds a chat message may update, with the topic keyed by their subject.
    forwards: list[tuple[Kind, CopySender]] = field(default_factory=list)
    #: What the policy's :class:`Exit` does (the process exits; tests record it instead).
    on_exit: Callable[[Exit], None] = exit_for_redelivery
    #: The worker's clock (seconds): a message is first seen no later than when it is read.
    clock: Callable[[], float] = time.time

    async def admit(self, msg: SourceMessage) -> Admitted | None:
        """The event as work for its subject, or None when it was handled here (dead-lettered,
        re-routed)."""
        try:
            return await self._admit_or_refuse(msg)
        except Exception as exc:  # noqa: BLE001 - the policy decides; one event never stops a partition
            decision = decide(exc, Stage.ADMISSION)
            _log_internal_error(msg, decision, exc)
        try:
            await self._act(msg, decision)
        except Exception as exc:  # noqa: BLE001 - neither admitted nor dead-lettered: stop
            await self._act(msg, undeliverable(exc))
        return None

    async def _admit_or_refuse(self, msg: SourceMessage) -> Admitted | None:
        """Admit, or dead-letter an invalid event (sending it may fail like anything else)."""
        try:
            if self.kind.is_user:
                return await self._admit_user_event(msg)
            return await self._admit_subject_event(msg)
        except InvalidEvent as exc:
            await self._act(msg, decide(exc, Stage.ADMISSION))
            return None

    async def _admit_user_event(self, msg: SourceMessage) -> Admitted | None:
        body = self._decode(msg)
        if isinstance(body, ChatMessage):
            self._check_time(msg, body)
        key = _user_key(msg, body.user_id)
        if msg.key is None or msg.partition != partition_for(key, self.settings.partitions):
            await self._reroute(msg, key, body)
            return None
        EVENTS_IN.labels("command" if isinstance(body, ProfileCommand) else "chat").inc()
        if isinstance(body, ChatMessage):
            await self._forward(msg, body)
        return self._admitted(msg, key, body)

    async def _admit_subject_event(self, msg: SourceMessage) -> Admitted:
        """A message forwarded to this kind's topic, keyed by its subject (or a command)."""
        body = self._decode(msg)
        subject = body.user_id if isinstance(body, ProfileCommand) else self.kind.subject_of(body)
        if subject is None or msg.key != subject.encode():
            raise InvalidEvent(
                "key_mismatch", f"not keyed by its {self.kind.name} subject", user_id=body.user_id
            )
        EVENTS_IN.labels(f"kind:{self.kind.name}").inc()
        return self._admitted(msg, msg.key, body)

    def _admitted(
        self, msg: SourceMessage, key: bytes, body: ChatMessage | ProfileCommand
    ) -> Admitted:
        origin = self._origin(msg)
        return Admitted(msg, key, body, origin, self._first_seen(msg, origin))

    def _first_seen(self, msg: SourceMessage, origin: tuple[str, int] | None) -> FirstSeen:
        """Where and when ``msg``'s message was first taken in: as its header says (a copy of
        this release, a replayed dead letter), else at a sealed copy's original (a copy of the
        release before), else this record; no later than the record's timestamp or now."""
        seen = first_seen_in(msg.headers)
        if seen is not None:
            return seen
        at = min(msg.timestamp, self.clock())
        if origin is None:
            return FirstSeen.of(msg.topic, msg.partition, msg.offset, at)
        # The applied key of an original partition is "origin:<topic>:<partition>".
        return FirstSeen(origin[0].removeprefix("origin:"), origin[1], int(at * 1000))

    def _origin(self, msg: SourceMessage) -> tuple[str, int] | None:
        """Where a copy came from, when a worker of this deployment sealed it: a producer's
        origin header alone would let it hide later copies (``streams.core.origin``)."""
        return origin_of(msg.headers, msg.key, msg.value, self.settings.command_signing)

    def _decode(self, msg: SourceMessage) -> ChatMessage | ProfileCommand:
        if is_command(msg.headers):
            # Produce rights on the input topic are not admin rights: only a signed command
            # changes a profile (DESIGN invariant 6). Its age is taken at the record's timestamp,
            # not the worker's clock, so a replay of the topic (an offset reset, a new app id
            # rebuilding profiles) decides as the first reading did; a captured command produced
            # again carries a new timestamp and is too old.
            require_authentic_command(
                msg.key, msg.value, msg.headers, self.settings.command_signing, msg.timestamp
            )
            return decode_command(msg.value)
        return decode_message(
            msg.value,
            max_content_chars=self.settings.max_content_chars,
            framing=self.settings.input_framing,
        )

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

    async def _reroute(
        self, msg: SourceMessage, key: bytes, body: ChatMessage | ProfileCommand
    ) -> None:
        if isinstance(body, ProfileCommand):
            raise InvalidEvent(
                "invalid_command", "command is not on its user's partition", user_id=body.user_id
            )
        assert msg.value is not None  # noqa: S101 - decoded above
        # To the partition named here, not the producer's count: partitions added at run time
        # would otherwise send the copy back to a partition this check calls wrong, for ever.
        # The origin header lets the user's lane skip a second copy sent again after a crash.
        # Delivered before the input is acknowledged: a copy Kafka lost would lose the message.
        await (
            await self.reroute.send(
                key=key,
                value=msg.value,
                partition=partition_for(key, self.settings.partitions),
                headers=self._origin_headers(msg, key),
            )
        )
        EVENTS_IN.labels("rerouted").inc()
        logger.info(
            "re-routed by user id topic=%s partition=%d offset=%d user_id=%s message_id=%s",
            msg.topic,
            msg.partition,
            msg.offset,
            body.user_id,
            body.message_id,
        )

    async def _forward(self, msg: SourceMessage, body: ChatMessage) -> None:
        """Hand the message to each other kind it names, keyed by that kind's subject; every
        copy is delivered before the input can be acknowledged."""
        deliveries = []
        for kind, topic in self.forwards:
            subject = kind.subject_of(body)
            if subject is not None and body.role in kind.schema.source_roles:
                assert msg.value is not None  # noqa: S101 - decoded above
                sent = await topic.send(
                    key=subject.encode(),
                    value=msg.value,
                    headers=self._origin_headers(msg, subject.encode()),
                )
                deliveries.append(sent)
        for delivery in deliveries:
            await delivery

    def _origin_headers(self, msg: SourceMessage, key: bytes) -> list[tuple[str, bytes]]:
        """The sealed origin of a copy of ``msg`` sent under ``key``, and where its message was
        first taken in (carried on, so a forget mark judges the copy as the original)."""
        signing = self.settings.command_signing
        sealed = origin_headers(
            msg.topic, msg.partition, msg.offset, key=key, value=msg.value, signing=signing
        )
        return [*sealed, self._first_seen(msg, self._origin(msg)).header()]

    async def _act(self, msg: SourceMessage, decision: Decision) -> None:
        if isinstance(decision, DeadLetter):
            await self.dead_letters.send(msg, decision)
        elif isinstance(decision, Exit):
            self.on_exit(
                Exit(
                    f"{decision.reason} (while admitting topic={msg.topic} "
                    f"partition={msg.partition} offset={msg.offset})"
                )
            )


def _user_key(msg: SourceMessage, user_id: str) -> bytes:
    key = user_id.encode()
    if msg.key is not None and msg.key != key:
        raise InvalidEvent(
            "key_mismatch",
            "the record key names another user than the body's user_id; publish with key = user_id",
            user_id=user_id,
        )
    return key


def _log_internal_error(msg: SourceMessage, decision: Decision, exc: Exception) -> None:
    if isinstance(decision, DeadLetter) and decision.code == "internal_error":
        logger.error(
            "internal error topic=%s partition=%d offset=%d",
            msg.topic,
            msg.partition,
            msg.offset,
            exc_info=exc,
        )
