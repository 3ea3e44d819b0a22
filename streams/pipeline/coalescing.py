"""How long a user's next batch waits for more of the user's messages before it runs.

A fresh message waits the coalescing window from its arrival. One that already waited in Kafka
at least the catch-up window (the worker is behind) waits that long instead, so a backlog's
messages of one user share calls. That longer wait ends early once nothing more was submitted
for a quarter of it (the backlog stopped flowing in), or once every partition the worker reads
is read to its end (:class:`BacklogEnds`): the rest of the backlog is held already, so waiting
on gathers nothing. Not at the end of the user's own partition: batches that start while other
partitions are still read slow that reading down (Faust holds back events while its producer
buffer is full), so their users' waits would end on the idle rule with part of their backlog
(0.23-0.25 calls per message instead of 0.20 in the bench's short plumbing run). The scheduler
ends any wait at once through the key's event (a full batch, a command, a full scheduler, a
stop).

Pure asyncio; :class:`streams.pipeline.scheduler.KeyedScheduler` runs it.
"""

import asyncio
from collections.abc import Callable, Collection
from dataclasses import dataclass

from streams.pipeline.job import Job, TopicPartition

__all__ = ["BacklogEnds", "Windows"]

# A catch-up wait ends early once nothing was submitted for this part of it: the backlog is
# read (or stalled), so waiting longer gathers nothing.
_CATCH_UP_IDLE_FRACTION = 0.25


class BacklogEnds:
    """Whether every partition read so far is read to its end, and the catch-up waits."""

    def __init__(self) -> None:
        self._reading: set[TopicPartition] = set()  # an event of it read, not at its end
        self._ended = False  # told of an end at all: a scheduler nobody tells never is
        self._waits: set[asyncio.Event] = set()

    def read_to(self, tp: TopicPartition, *, end: bool) -> None:
        """Whether ``tp`` is read to its end now (told after each of its events); once every
        partition is, the catch-up waits end."""
        if not end:
            self._reading.add(tp)
            return
        self._reading.discard(tp)
        self._ended = True
        if not self._reading and self._waits:
            for wake in self._waits:
                wake.set()
            self._waits.clear()

    def forget(self, tps: Collection[TopicPartition]) -> None:
        """``tps`` are no longer read here (revoked, or assigned anew)."""
        self._reading.difference_update(tps)

    @property
    def at_end(self) -> bool:
        """Whether every partition read so far was read to its end by its last event."""
        return self._ended and not self._reading

    def waiting(self, wake: asyncio.Event) -> None:
        """Set ``wake`` once every partition is read to its end."""
        self._waits.add(wake)

    def done(self, wake: asyncio.Event) -> None:
        """``wake``'s wait is over."""
        self._waits.discard(wake)


@dataclass
class Windows:
    """The coalescing and catch-up windows of one scheduler (see the module docstring)."""

    window_s: float
    catch_up_window_s: float
    #: The loop time of the scheduler's last submit.
    last_submit: Callable[[], float]
    #: Whether the scheduler holds all it may (no wait then: it would only hold memory).
    held_full: Callable[[], bool]
    ends: BacklogEnds

    async def wait(self, first: Job, wake: asyncio.Event) -> None:
        """Wait until ``first``'s batch should run: its window is over, or ``wake`` is set."""
        window, idle = self.window_s, float("inf")
        catching_up = first.waited_s >= self.catch_up_window_s > window
        if catching_up:
            if self.ends.at_end:
                return  # the rest of its backlog is held already
            # Behind anyway: let the backlog gather, while it still flows in.
            window = self.catch_up_window_s
            idle = window * _CATCH_UP_IDLE_FRACTION
            self.ends.waiting(wake)
        loop = asyncio.get_running_loop()
        try:
            while not self.held_full():
                delay = min(first.arrived + window, self.last_submit() + idle) - loop.time()
                if delay <= 0:
                    return
                try:
                    await asyncio.wait_for(wake.wait(), delay)
                    return
                except TimeoutError:
                    pass
        finally:
            if catching_up:
                self.ends.done(wake)
