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
  stops flowing in or every partition is read to the end (:mod:`streams.pipeline.coalescing`);
  a full scheduler (``max_pending`` held) ends every wait at once, since waiting then only
  holds memory;
- acknowledge a partition's jobs only in offset order, so a commit never passes a job that is
  still in flight (the flaw of Faust's ``concurrency=N``);
- bound the jobs held at once, by count (``max_pending``) and by bytes of the records
  (``max_pending_bytes``), so a slow model applies backpressure before memory runs out;
- fence on revoke (:meth:`KeyedScheduler.revoke`): drop the waiting jobs of revoked partitions
  without acknowledging them, give their running batches a grace, then cancel them; from then
  on their tokens are stale, so a store or an emit of theirs raises ``Fenced`` (see
  :mod:`streams.pipeline.ownership`); on assign nothing of an earlier ownership survives;
- never let a key's task die silently: an exception reaches ``on_fatal``.
"""

import asyncio
import logging
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field

from streams.metrics import FENCED_BATCHES, REVOKED_EVENTS
from streams.pipeline.coalescing import BacklogEnds, Windows
from streams.pipeline.job import Job, TopicPartition
from streams.pipeline.ownership import Fenced, Ownership, hold

__all__ = ["KeyedScheduler", "Release", "RevokeReport", "RunBatch", "SchedulerLimits"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SchedulerLimits:
    """How much runs at once and how jobs are merged."""

    max_in_flight: int = 64
    max_pending: int = 16384
    #: Bytes of the held records (a job over it alone is still admitted, alone).
    max_pending_bytes: int = 64 * 1024 * 1024
    window_s: float = 0.5
    catch_up_window_s: float = 2.0
    max_batch: int = 20
    #: Characters of message content per batch (what a model call carries).
    max_batch_chars: int = 12_000


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
    running: list[Job] = field(default_factory=list)


@dataclass
class RevokeReport:
    """What a revoke did: held events dropped unacknowledged, batches of the revoked partitions
    that finished within the grace, that were cancelled after it, that a write fenced."""

    dropped: int = 0
    finished: int = 0
    cancelled: int = 0
    fenced: int = 0


Release = Callable[[], None]
#: Runs one key's batch: ``run(key, jobs, release)``.
RunBatch = Callable[[bytes, list[Job], Release], Awaitable[None]]


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
        self._run, self._on_fatal, self.limits = run, on_fatal, limits
        self._slots = asyncio.Semaphore(limits.max_in_flight)
        self._freed = asyncio.Event()
        self._keys: dict[bytes, _KeyState] = {}
        self._order: dict[TopicPartition, deque[Job]] = defaultdict(deque)
        self._in_window: set[bytes] = set()
        self._last_submit = 0.0
        self._stopping = False
        self._held = self._held_bytes = 0
        self._revoking: set[TopicPartition] = set()
        self._fenced = 0
        self._timers: list[Job] = []  # submitted, maybe not finished (see timer_room)
        #: This worker's ownership of the partitions it reads; jobs carry its tokens.
        self.ownership = Ownership()
        #: Told by the agent whether each partition is read to its end (ends catch-up waits).
        self.backlog = BacklogEnds()
        self._windows = Windows(
            limits.window_s, limits.catch_up_window_s, self._last, self._full, self.backlog
        )
        self.counters = _Counters()

    async def submit(self, job: Job) -> None:
        """Queue ``job`` behind its key's earlier jobs; waits while the read-ahead is full.

        A job whose partition was revoked since it was read is dropped, unacknowledged."""
        if not await self._hold(job):
            return
        job.arrived = self._last_submit = asyncio.get_running_loop().time()
        state = self._state(job.key)
        state.waiting.append(job)
        if len(state.waiting) >= self.limits.max_batch or not job.coalesce:
            state.full.set()

    def submit_timer(self, job: Job) -> bool:
        """Queue a timer's job (:meth:`Job.flush`) behind its key's jobs (no read-ahead, no
        ack; see :meth:`timer_room`). False when its partition is not this worker's or is in
        its revoke grace (the token goes stale after it), or on stop."""
        if not self.ownership.owns(job.token) or self._stopping or job.tp in self._revoking:
            return False
        self._timers.append(job)
        job.arrived = asyncio.get_running_loop().time()
        state = self._state(job.key)
        state.waiting.append(job)
        state.full.set()
        return True

    def waiting(self, key: bytes) -> bool:
        """Whether an input of ``key`` (not a timer's job) is held, waiting for its batch."""
        return key in self._keys and any(not job.timer for job in self._keys[key].waiting)

    def timer_room(self) -> int:
        """Timer jobs the timer may submit now: 2 x ``max_in_flight`` outstanding at most."""
        self._timers = [j for j in self._timers if not j.done and self.ownership.owns(j.token)]
        return max(0, 2 * self.limits.max_in_flight - len(self._timers))

    def _state(self, key: bytes) -> _KeyState:
        """``key``'s state, with the task serving it started if it had none."""
        state = self._keys.get(key)
        if state is None:
            task = asyncio.create_task(self._serve(key), name=f"user-{key[:32]!r}")
            task.add_done_callback(self._check_task)
            state = self._keys[key] = _KeyState(task)
        return state

    async def skip(self, job: Job) -> None:
        """Record a job handled on the spot (dead-lettered, re-routed) in its partition's order."""
        if await self._hold(job):
            self._finish(job)

    async def revoke(self, tps: Collection[TopicPartition], grace_s: float) -> RevokeReport:
        """The partitions ``tps`` are leaving this worker: fence them.

        Their waiting jobs are dropped and no batch of theirs starts; their running batches get
        ``grace_s`` to finish (the worker owns the partitions until this returns: what they
        write is the new owner's starting point), then their tokens go stale and they are
        cancelled. Nothing of theirs is acknowledged any more: Kafka redelivers it all to the
        next owner, which skips what a batch finished in the grace already applied."""
        revoked = set(tps)
        report = RevokeReport()
        self._revoking |= revoked
        self.backlog.forget(revoked)
        running: list[asyncio.Task[None]] = []
        for state in self._keys.values():
            self._drop_waiting(state, revoked)
            if state.running and state.running[0].tp in revoked:
                running.append(state.task)
        fenced_before = self._fenced
        late: set[asyncio.Task[None]] = set()
        if running:
            _, late = await asyncio.wait(running, timeout=grace_s)
        self.ownership.revoke(revoked)  # from here on, any write of theirs raises Fenced
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)
        report.cancelled = len(late)
        report.fenced = self._fenced - fenced_before
        report.finished = len(running) - report.cancelled - report.fenced
        for tp in revoked:
            report.dropped += self._drop_partition(tp)
        self._revoking -= revoked
        FENCED_BATCHES.inc(report.cancelled + report.fenced)
        REVOKED_EVENTS.inc(report.dropped)
        return report

    def assign(self, tps: Collection[TopicPartition]) -> int:
        """The partitions ``tps`` are this worker's, as a new ownership: tokens of any earlier
        one are stale and nothing held for them survives. Returns the jobs dropped (0 after a
        revoke, which leaves nothing)."""
        assigned = set(tps)
        self.ownership.assign(assigned)
        self.backlog.forget(assigned)
        for state in self._keys.values():
            self._drop_waiting(state, assigned)
        return sum(self._drop_partition(tp) for tp in assigned)

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

    @property
    def pending_bytes(self) -> int:
        """Bytes of the records submitted and not yet acknowledged."""
        return self._held_bytes

    def _full(self, adding: int = 0) -> bool:
        """Whether the read-ahead is full (with ``adding`` more bytes); never with nothing held,
        so one record over ``max_pending_bytes`` still gets through, alone."""
        limits = self.limits
        if self._held == 0:
            return False
        return (
            self._held >= limits.max_pending or self._held_bytes + adding > limits.max_pending_bytes
        )

    async def _hold(self, job: Job) -> bool:
        """Wait for room, then hold ``job``; False (nothing held) when its partition was revoked
        since it was read."""
        while self._full(job.size):
            self._freed.clear()
            await self._freed.wait()
        if job.tp in self._revoking or not self.ownership.owns(job.token):
            REVOKED_EVENTS.inc()
            return False
        self._held += 1
        self._held_bytes += job.size
        self._order[job.tp].append(job)
        if self._full():
            for key in self._in_window:
                self._keys[key].full.set()  # the next submit waits for room: run what is held
            self._in_window.clear()
        return True

    def _release(self, job: Job) -> None:
        self._held -= 1
        self._held_bytes -= job.size
        self._freed.set()

    @staticmethod
    def _drop_waiting(state: _KeyState, tps: set[TopicPartition]) -> None:
        """Drop ``state``'s waiting jobs of ``tps`` (still held, and counted, until their
        partition's order is dropped); wake its coalescing wait: nothing is left to gather."""
        kept = [job for job in state.waiting if job.tp not in tps]
        if len(kept) < len(state.waiting):
            state.waiting.clear()
            state.waiting.extend(kept)
            state.full.set()

    def _drop_partition(self, tp: TopicPartition) -> int:
        """Forget every held job of ``tp``, unacknowledged; returns how many."""
        order = self._order.pop(tp, None) or deque()
        for job in order:
            self._release(job)
        return len(order)

    async def _serve(self, key: bytes) -> None:
        state = self._keys[key]
        queue = state.waiting
        try:
            while queue and not self._stopping:
                await self._coalesce_window(key, state, queue[0])
                await self._slots.acquire()  # before taking the batch: waiting lets it grow
                if self._stopping or not queue:  # stopping, or its jobs were revoked meanwhile
                    self._slots.release()
                    break
                batch = state.running = self._take(queue)
                state.full.clear()
                if queue and (len(queue) >= self.limits.max_batch or not queue[0].coalesce):
                    state.full.set()
                await self._run_fenced(key, batch)
                state.running = []
        finally:
            if self._keys.get(key) is state:
                del self._keys[key]

    async def _run_fenced(self, key: bytes, batch: list[Job]) -> None:
        """Run ``batch`` under its jobs' ownership; finish them, unless a write was fenced."""
        hold(self.ownership, batch[0].token)
        try:
            await self._run_counted(key, batch)
        except Fenced as fenced:
            self._fenced += 1
            if batch[0].tp not in self._revoking:  # outside a revoke, which counts its own
                FENCED_BATCHES.inc()
            logger.info("batch fenced, not acknowledged: %s, events=%d", fenced, len(batch))
            return
        for job in batch:
            self._finish(job)

    async def _coalesce_window(self, key: bytes, state: _KeyState, first: Job) -> None:
        if not first.coalesce:
            return
        self._in_window.add(key)
        try:
            await self._windows.wait(first, state.full)
        finally:
            self._in_window.discard(key)

    def _last(self) -> float:
        return self._last_submit

    def _take(self, queue: deque[Job]) -> list[Job]:
        first = queue.popleft()
        batch = [first]
        if not first.coalesce:
            return batch
        chars = first.chars
        while queue and queue[0].coalesce and len(batch) < self.limits.max_batch:
            if chars + queue[0].chars > self.limits.max_batch_chars:
                break
            if queue[0].token != first.token:  # one ownership per batch
                break
            chars += queue[0].chars
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
        if job.on_done is not None:
            job.on_done()
        if job.timer:
            return  # nothing read, nothing to acknowledge
        if job.tp in self._revoking or job.tp not in self._order:
            return  # revoked: never acknowledged, dropped with its partition's order
        order = self._order[job.tp]
        while order and order[0].done:
            head = order.popleft()
            head.ack()
            self._release(head)
        if not order:
            del self._order[job.tp]

    def _check_task(self, task: asyncio.Task[None]) -> None:
        exc = None if task.cancelled() else task.exception()
        if exc is not None:
            logger.critical("a user's batch task failed: %r", exc, exc_info=exc)
            self._on_fatal(exc)
