"""Sending an input to the dead-letter topic, with its raw bytes and the policy's reason."""

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from streams.core.codecs import dead_letter_record, is_command
from streams.metrics import DEAD_LETTERS
from streams.pipeline.policy import DeadLetter
from streams.pipeline.ports import Sender, SourceMessage

__all__ = ["DeadLetters"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeadLetters:
    """The dead-letter topic, as admission and apply use it."""

    topic: Sender

    async def send(
        self,
        msg: SourceMessage,
        decision: DeadLetter,
        *,
        user_id: str | None = None,
        message_id: str | None = None,
    ) -> None:
        """Send ``msg`` as it was, with the decision's code and reason.

        ``user_id`` defaults to the one the decision names (an invalid event may name none).
        """
        user_id = user_id if user_id is not None else decision.user_id
        record = dead_letter_record(
            code=decision.code,
            reason=decision.reason,
            topic=msg.topic,
            partition=msg.partition,
            offset=msg.offset,
            key=msg.key,
            value=msg.value,
            failed_at=datetime.now(UTC),
            user_id=user_id,
            message_id=message_id,
            attempts=decision.attempts,
            command=is_command(msg.headers),
            headers=msg.headers,
        )
        await self.topic.send(key=msg.key, value=record)
        DEAD_LETTERS.labels(decision.code).inc()
        logger.warning(
            "dead-lettered topic=%s partition=%d offset=%d user_id=%s reason=%s",
            msg.topic,
            msg.partition,
            msg.offset,
            user_id,
            decision.code,
        )
