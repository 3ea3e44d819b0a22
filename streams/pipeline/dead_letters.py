"""Sending an input to the dead-letter topic, with its raw bytes and the policy's reason."""

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from streams.core.codecs import dead_letter_record, is_command
from streams.metrics import DEAD_LETTERS
from streams.pipeline.policy import DeadLetter
from streams.pipeline.ports import Sender, SourceMessage

__all__ = ["DEFAULT_MAX_REQUEST_BYTES", "DeadLetters"]

logger = logging.getLogger(__name__)

#: Faust's ``producer_max_request_size`` unless the worker is told otherwise (aiokafka refuses a
#: record over it before sending).
DEFAULT_MAX_REQUEST_BYTES = 1_000_000
# Room the producer's request takes besides the letter and the key: batch and record framing
# (about 100 bytes), with plenty to spare.
_FRAMING_BYTES = 8 * 1024


@dataclass(frozen=True)
class DeadLetters:
    """The dead-letter topic, as admission and apply use it.

    A letter is kept within what the producer sends (``max_request_bytes``, less the key and
    the framing), truncating the value if need be, and sent before the input is acknowledged:
    its delivery is awaited, so a commit never passes an input whose letter is not in Kafka.
    """

    topic: Sender
    #: The producer's max request size (Faust's ``producer_max_request_size``).
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES

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
            max_bytes=self.max_request_bytes - len(msg.key or b"") - _FRAMING_BYTES,
        )
        await (await self.topic.send(key=msg.key, value=record))
        DEAD_LETTERS.labels(decision.code).inc()
        size = len(msg.value or b"")
        logger.warning(
            "dead-lettered topic=%s partition=%d offset=%d user_id=%s reason=%s%s",
            msg.topic,
            msg.partition,
            msg.offset,
            user_id,
            decision.code,
            # Shorter than the value's base64 alone: the value was cut.
            f" truncated_from_bytes={size}" if len(record) < (size + 2) // 3 * 4 else "",
        )
