"""A job: one consumed event on its way through the scheduler, with what admission made of it."""

from collections.abc import Callable
from dataclasses import dataclass

from schemas import ChatMessage
from streams.pipeline.admission import Admitted
from streams.pipeline.ownership import Token, TopicPartition
from streams.pipeline.ports import EventHandle

__all__ = ["Job", "TopicPartition"]


@dataclass(eq=False)
class Job:
    """One input event: the consumed event, its admitted work, and how the scheduler batches it.

    A job without work (``admitted`` is None) was handled at admission (dead-lettered,
    re-routed); it only keeps its place in its partition's acknowledgement order.
    """

    key: bytes
    tp: TopicPartition
    offset: int
    event: EventHandle
    admitted: Admitted | None = None
    #: Bytes of the record (key and value): what holding the job costs, for the read-ahead bound.
    size: int = 0
    #: Characters of the chat message's content: what it adds to a model call, for batching.
    chars: int = 0
    #: The ownership of ``tp`` the job was read under (None: never fenced; tests).
    token: Token | None = None
    #: Chat messages may share a batch; an operator command runs alone.
    coalesce: bool = True
    #: Seconds the event waited in Kafka before it was submitted (0 when unknown).
    waited_s: float = 0.0
    arrived: float = 0.0
    done: bool = False
    #: A flush the timer asks for (no input event): it checks the subject's buffer, flushes
    #: it if due, and has nothing to acknowledge.
    timer: bool = False
    #: A timer's job a reader asked for (``POST .../refresh``): the buffer is flushed now,
    #: whatever the triggers say.
    forced: bool = False
    #: Called once the job is done (a refresh's reader waits for it).
    on_done: Callable[[], None] | None = None

    @classmethod
    def flush(
        cls,
        key: bytes,
        tp: TopicPartition,
        event: EventHandle,
        token: Token | None,
        *,
        forced: bool = False,
        on_done: Callable[[], None] | None = None,
    ) -> "Job":
        """The timer's job for ``key``'s buffer (``forced``: a reader's refresh); ``event``
        only routes the table write to ``tp`` (it stands for no input)."""
        return cls(
            key=key,
            tp=tp,
            offset=-1,
            event=event,
            token=token,
            coalesce=False,
            timer=True,
            forced=forced,
            on_done=on_done,
        )

    @classmethod
    def of(
        cls,
        event: EventHandle,
        admitted: Admitted | None,
        *,
        now: float,
        token: Token | None = None,
    ) -> "Job":
        """The job for ``event``; ``now`` is the wall clock (seconds) at submission, ``token``
        the ownership taken when the event came out of the stream."""
        msg = event.message
        body = admitted.body if admitted is not None else None
        return cls(
            key=admitted.key if admitted is not None else b"",
            tp=(msg.topic, msg.partition),
            offset=msg.offset,
            event=event,
            admitted=admitted,
            size=len(msg.value or b"") + len(msg.key or b""),
            chars=len(body.content) if isinstance(body, ChatMessage) else 0,
            token=token,
            coalesce=isinstance(body, ChatMessage),
            waited_s=now - msg.timestamp if msg.timestamp else 0.0,
        )

    @property
    def work(self) -> Admitted:
        """The admitted work of a submitted job (a skipped job is never run)."""
        if self.admitted is None:
            raise ValueError(f"job at {self.tp} offset {self.offset} was not admitted")
        return self.admitted

    def ack(self) -> None:
        """Acknowledge the event: its offset may be committed once every earlier one is."""
        self.event.ack()
