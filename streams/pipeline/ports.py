"""What the pipeline needs from the outside, as protocols: a consumed record, the handle of a
consumed event, and a topic to produce to.

Faust's ``Message``, ``Event`` and ``Topic`` have these shapes; the unit tests use plain objects.
"""

from typing import Any, Protocol

__all__ = ["CopySender", "EventHandle", "Sender", "SourceMessage"]


class SourceMessage(Protocol):
    """The parts of a consumed Kafka record the pipeline reads."""

    topic: str
    partition: int
    offset: int
    timestamp: float
    key: bytes | None
    value: bytes | None
    headers: Any


class EventHandle(Protocol):
    """A consumed event: its record, and the acknowledgement that lets its offset be committed.

    It is also what must be current in a task when the table is written: Faust routes a table
    write to the partition of the current event.
    """

    @property
    def message(self) -> SourceMessage:
        """The consumed record."""
        ...

    def ack(self) -> Any:
        """Mark the event done; its offset is committed once every earlier one is."""
        ...


class Sender(Protocol):
    """Something that produces to a topic; ``send`` returns a future of the delivery."""

    async def send(self, *, key: bytes | None, value: bytes) -> Any:
        """Produce one record."""
        ...


class CopySender(Protocol):
    """A topic that admission re-publishes copies of input to: to a partition it names, with
    headers that say where the copy came from."""

    async def send(
        self,
        *,
        key: bytes | None,
        value: bytes,
        partition: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> Any:
        """Produce one record, to ``partition`` when given."""
        ...
