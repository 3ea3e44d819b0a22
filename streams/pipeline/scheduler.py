"""Many users in flight, one batch at a time per user, acknowledgements in offset order.

Pure asyncio (no Faust): the agent submits jobs; this module decides when each user's next
batch runs and which offsets are safe to acknowledge.

Responsibilities:
- per key, run batches strictly one after another, in submission (offset) order;
- across keys, run at most ``max_in_flight`` batches at once;
- coalesce a key's jobs that arrive within ``window_s`` of its first waiting job, or while its
  previous batch runs, into one batch (bounded by ``max_batch`` jobs and ``max_batch_size``);
- while catching up (the first job waited in Kafka at least ``catch_up_window_s``), wait that
  long instead, so a backlog's messages of one user share calls, but not once the backlog
  stops flowing in; a full scheduler (``max_pending`` held) ends every wait at once, since
  waiting then only holds memory;
- acknowledge a partition's jobs only in offset order, so a commit never passes a job that is
  still in flight (the flaw of Faust's ``concurrency=N``);
- bound the jobs held at once (``max_pending``), so a slow model applies backpressure;
- never let a key's task die silently: an exception reaches ``on_fatal``.
"""

import asyncio
import logging
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from streams.pipeline.job import Job, TopicPartition

__all__ = ["KeyedScheduler", "Release", "RunBatch", "SchedulerLimits"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SchedulerLimits:
    """How much runs at once and how jobs are merged."""

    max_in_flight: int = 64
    max_pending: int = 16384
    window_s: float = 0.5
    catch_up_window_s: float = 2.0
    max_batch: int = 20
    max_batch_size: int = 12_000


@dataclass
class _Counters:
    """Batches holding a slot now (the in-flight gauge)."""

    in_flight: int = 0


@dataclass
class _KeyState:
    """A key with jobs: those waiting for its next batch, the task serving them, and the event
    that ends its coalescing wait early (a full batch, a command, a full scheduler, a stop)."""

    task: asyncio.Task[None]
    waiting: deque[Job] = field(default_factory=deque)
    full: asyncio.Event = field(default_factory=asyncio.Event)


Release = Callable[[], None]
#: Runs one key's batch: ``run(key, jobs, release)``.
RunBatch = Callable[[bytes, list[Job], Release], Awaitable[None]]
# A catch-up wait ends early once nothing was submitted for this part of it: the backlog is
# read (or stalled), so waiting longer gathers nothing.
_CATCH_UP_IDLE_FRACTION = 0.25


class KeyedScheduler:
    """See the module docstring. ``run(key, jobs, release)`` must handle its own input errors;
    it may call ``release()`` once the slow part (the model call) is over, so the next batch
    can start while this one writes its results. A finished job is acknowledged
    (``Job.ack``) once every earlier job of its partition is."""

    def __init__(
        self,
        run: RunBatch,
        on_fatal: Callable[[BaseException], None],
        limits: SchedulerLimits = SchedulerLimits(),
    ) -> None:
        self._run, self._on_fatal = run, on_fatal
        self.limits = limits
        self._slots = asyncio.Semaphore(limits.max_in_flight)
        self._room = asyncio.Semaphore(limits.max_pending)
        self._keys: dict[bytes, _KeyState] = {}
        self._order: dict[TopicPartition, deque[Job]] = defaultdict(deque)
        self._in_window: set[bytes] = set()
        self._last_submit = 0.0
        self._stopping = False
        self._held = 0
        self.counters = _Counters()

    async def submit(self, job: Job) -> None:
        """Queue ``job`` behind its key's earlier jobs; waits while ``max_pending`` are held."""
        await self._hold(job)
        job.arrived = self._last_submit = asyncio.get_running_loop().time()
        state = self._keys.get(job.key)
        if state is None:
            task = asyncio.create_task(self._serve(job.key), name=f"user-{job.key[:32]!r}")
            task.add_done_callback(self._check_task)
            state = self._keys[job.key] = _KeyState(task)
        state.waiting.append(job)
        if len(state.waiting) >= self.limits.max_batch or not job.coalesce:
            state.full.set()

    async def skip(self, job: Job) -> None:
        """Record a job handled on the spot (dead-lettered, re-routed) in its partition's order."""
        await self._hold(job)
        self._finish(job)

    async def stop(self, grace_s: float) -> int:
        """Start no more batches; give the running ones ``grace_s`` to finish, then cancel them.

        Jobs not finished stay unacknowledged, so Kafka redelivers them to the next owner.
        Returns how many batches had to be cancelled."""
        self._stopping = True
        for state in self._keys.values():
            state.full.set()  # end the coalescing waits: they would only start batches
        tasks = [state.task for state in self._keys.values()]
        if not tasks:
            return 0
        _, late = await asyncio.wait(tasks, timeout=grace_s)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)
        return len(late)

    @property
    def pending(self) -> int:
        """Jobs submitted and not yet acknowledged."""
        return self._held

    async def _hold(self, job: Job) -> None:
        await self._room.acquire()
        self._held += 1
        self._order[job.tp].append(job)
        if self._held >= self.limits.max_pending:
            for key in self._in_window:
                self._keys[key].full.set()  # the next submit waits for room: run what is held
            self._in_window.clear()

    async def _serve(self, key: bytes) -> None:
        state = self._keys[key]
        queue = state.waiting
        while queue and not self._stopping:
            await self._coalesce_window(key, state, queue[0])
            await self._slots.acquire()  # before taking the batch: waiting lets it grow
            if self._stopping:
                self._slots.release()
                break
            batch = self._take(queue)
            state.full.clear()
            if queue and (len(queue) >= self.limits.max_batch or not queue[0].coalesce):
                state.full.set()
            await self._run_counted(key, batch)
            for job in batch:
                self._finish(job)
        del self._keys[key]

    async def _coalesce_window(self, key: bytes, state: _KeyState, first: Job) -> None:
        if not first.coalesce:
            return
        loop = asyncio.get_running_loop()
        window, idle = self.limits.window_s, float("inf")
        if first.waited_s >= self.limits.catch_up_window_s > window:
            # Behind anyway: let the backlog gather, while it still flows in.
            window = self.limits.catch_up_window_s
            idle = window * _CATCH_UP_IDLE_FRACTION
        self._in_window.add(key)
        try:
            while self._held < self.limits.max_pending:
                delay = min(first.arrived + window, self._last_submit + idle) - loop.time()
                if delay <= 0:
                    return
                try:
                    await asyncio.wait_for(state.full.wait(), delay)
                    return
                except TimeoutError:
                    pass
        finally:
            self._in_window.discard(key)

    def _take(self, queue: deque[Job]) -> list[Job]:
        first = queue.popleft()
        batch = [first]
        if not first.coalesce:
            return batch
        size = first.size
        while queue and queue[0].coalesce and len(batch) < self.limits.max_batch:
            if size + queue[0].size > self.limits.max_batch_size:
                break
            size += queue[0].size
            batch.append(queue.popleft())
        return batch

    async def _run_counted(self, key: bytes, batch: list[Job]) -> None:
        """Run holding a slot until ``release`` (called by ``run``, or at the end at the latest)."""
        c = self.counters
        c.in_flight += 1
        held = True

        def release() -> None:
            nonlocal held
            if held:
                held = False
                c.in_flight -= 1
                self._slots.release()

        try:
            await self._run(key, batch, release)
        finally:
            release()

    def _finish(self, job: Job) -> None:
        job.done = True
        order = self._order[job.tp]
        while order and order[0].done:
            head = order.popleft()
            head.ack()
            self._held -= 1
            self._room.release()
        if not order:
            del self._order[job.tp]

    def _check_task(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            logger.critical("a user's batch task failed: %r", exc, exc_info=exc)
            self._on_fatal(exc)
