"""The guarantee scenario: exactly-once (Kafka transactions) beside at-least-once (the default),
in the same run, each worker on its own app id, with the fake model.

- **Backlog**: 2 messages of each of the plumbing scenario's users (2,000 events short, 4,000
  full), model latency 0, coalescing off (one call per message), through a worker of each
  guarantee in turn, twice (at-least-once, exactly-once, at-least-once,
  exactly-once), so a slow spell of the shared machine falls on both; events/s = events / (the
  group's last commit − the first event in), i.e. until a subscriber has seen everything; worker
  CPU seconds in that window per 1,000 events; each guarantee's rounds are summed (all their
  events over all their time), and each round is kept in the results.
- **Latency**: the latency scenario's open loop at 20 events/s (well below what either worker
  keeps up with, so the figure is the pipeline's delay, not a queue), over 400 users with
  L = 0.5 s, into a worker of each guarantee, on an input of its own; the time from
  publication to the moment a ``read_committed`` subscriber *receives* the event naming the
  message (a transaction's events are visible only once it commits, so record timestamps
  would flatter exactly-once).
"""

import asyncio
import time
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

from ..metrics import percentile
from ..progress import log
from ..topics import BOOTSTRAP, Committed, create_topics, end_offsets
from ..workers import first_admitted
from ..workloads import synthetic
from .latency import _open_loop
from .stage import Config, Stage, worker_stats

__all__ = ["GUARANTEES", "guarantee_run"]

GUARANTEES = ("at_least_once", "exactly_once")
_ROUNDS = 2
#: Events/s of the open loop: 100 (the latency scenario's) queues up on a busy shared machine.
_RATE = 20.0
#: Messages per user of the backlog: the whole plumbing backlog takes minutes per worker on a
#: shared machine, four workers in a row.
_PER_USER = 2


class _Subscriber:
    """A ``read_committed`` consumer of an output topic from its start, noting when each
    source message id is first received."""

    def __init__(self, topic: str) -> None:
        self.received: dict[str, float] = {}
        self._consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=BOOTSTRAP,
            group_id=None,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
        )
        self._task: asyncio.Task[None] | None = None
        self._want, self._enough = 0, asyncio.Event()

    async def start(self) -> None:
        await self._consumer.start()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            batch = await self._consumer.getmany(timeout_ms=100)
            now = time.time()
            for records in batch.values():
                for r in records:
                    for mid in orjson.loads(r.value or b"{}").get("source_message_ids") or ():
                        self.received.setdefault(mid, now)
            if self._want and len(self.received) >= self._want:
                self._enough.set()

    async def until(self, count: int, timeout: float) -> None:
        """Return once ``count`` message ids were received, or after ``timeout``."""
        self._want = count
        if len(self.received) >= count:
            return
        try:
            await asyncio.wait_for(self._enough.wait(), timeout)
        except TimeoutError:
            log(f"guarantee: {len(self.received)} of {count} events received")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._consumer.stop()


def _app(st: Stage, guarantee: str, suffix: str) -> dict[str, str]:
    app_id = f"{st.names.prefix}-{suffix}"
    return {
        "app_id": app_id,
        "output_topic": f"{app_id}-updated",
        "dlq_topic": f"{app_id}-dlq",
        "processing_guarantee": guarantee,
    }


async def _backlog(st: Stage, cfg: Config, n: int, guarantee: str, r: int) -> dict[str, Any]:
    """One worker of ``guarantee`` over the preloaded input, to its last commit."""
    fake = await st.fake("0")
    names = _app(st, guarantee, f"b{r}-{guarantee[:1]}")
    worker = await st.worker(
        fake.url,
        name=f"backlog-{r}-{guarantee}",
        max_in_flight=cfg.in_flight,
        coalesce_window_s=0,
        catch_up_window_s=0,
        **names,
    )
    started = asyncio.create_task(first_admitted(worker))
    done = await st.until_committed(worker, f"guarantee {guarantee}", group=names["app_id"])
    first_in = await started
    window = done - first_in
    assert worker.sampler is not None
    cpu = worker.sampler.cpu_between(first_in, done)
    await worker.terminate()
    log(f"guarantee: {guarantee} {n / window:,.0f} events/s, {cpu / n * 1000:.2f} CPU s/1,000")
    return {"events_per_s": n / window, "window_s": window, "cpu_s_per_1000": cpu / n * 1000}


async def _latency(st: Stage, cfg: Config, guarantee: str) -> dict[str, Any]:
    total = int(_RATE * cfg.latency_duration_s)
    messages = synthetic(cfg.latency_users, -(-total // cfg.latency_users), tag=guarantee)[:total]
    names = _app(st, guarantee, f"l-{guarantee[:1]}")
    source = f"{names['app_id']}-chat"
    await create_topics([source])
    fake = await st.fake(str(cfg.model_latency_s))
    worker = await st.worker(
        fake.url,
        name=f"latency-{guarantee}",
        input_topic=source,
        max_in_flight=cfg.in_flight,
        **names,
    )
    subscriber = _Subscriber(names["output_topic"])
    await subscriber.start()
    try:
        sent, offered, _ = await _open_loop(source, messages, _RATE)
        async with Committed(names["app_id"], source) as committed:
            await committed.wait_for(await end_offsets(source), cfg.timeout_s, watch=[worker])
        await subscriber.until(len(sent), timeout=30)
    finally:
        await subscriber.stop()
    lats = [subscriber.received[m] - ts for m, ts in sent.items() if m in subscriber.received]
    stats = worker_stats(worker)
    await worker.terminate()
    result = {
        "messages": total,
        "offered_per_s": offered,
        "received": len(lats),
        "p50_s": percentile(lats, 0.5),
        "p99_s": percentile(lats, 0.99),
        **stats,
    }
    log(f"guarantee: {guarantee} latency p50 {result['p50_s']:.2f}s p99 {result['p99_s']:.2f}s")
    return result


async def guarantee_run(cfg: Config, results: dict[str, Any]) -> None:
    messages = synthetic(cfg.plumbing_users, _PER_USER, tag="g")
    async with Stage("guarantee", cfg) as st:
        await st.preload(messages)
        rounds: dict[str, list[dict[str, Any]]] = {g: [] for g in GUARANTEES}
        for r in range(_ROUNDS):
            for guarantee in GUARANTEES:
                rounds[guarantee].append(await _backlog(st, cfg, len(messages), guarantee, r))
        out: dict[str, Any] = {"events": len(messages), "rounds": rounds}
        for guarantee in GUARANTEES:
            out[guarantee] = {"latency": await _latency(st, cfg, guarantee)}
        results["guarantee"] = out
