"""The Faust app: topics, the profile table, the one agent, and the views, built from settings.

A thin shell: every decision about an event is in :mod:`streams.pipeline.processor`.
"""

import asyncio
import functools
import logging
import os
import time
import weakref
from dataclasses import dataclass
from typing import Any, cast

import faust
import redis.asyncio as aioredis
from aiokafka.errors import KafkaError
from faust.streams import _current_event

from schemas import ChatMessage
from streams import metrics
from streams.core.kinds import Kind, load_kinds
from streams.extract.base import Extractor
from streams.extract.cache import CachedExtractor
from streams.extract.llm import LLMExtractor
from streams.extract.ratelimit import Limit, RateLimiter
from streams.extract.rules import RuleExtractor
from streams.faust_glue import keep_fetched_events_on_resume
from streams.pipeline.processor import Processor, Work
from streams.pipeline.scheduler import Job, KeyedScheduler, SchedulerLimits
from streams.settings import Settings
from streams.web.views import register_views

__all__ = ["create_worker"]

logger = logging.getLogger(__name__)
_CRASH_EXIT = 70


def _extractor(settings: Settings) -> Extractor:
    """The rule extractor, or the model behind the shared rate limit and result cache."""
    if settings.extractor_kind != "openai":
        return RuleExtractor()
    redis = aioredis.from_url(settings.redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)
    limits = [
        Limit(name, per_minute, burst=max(1.0, per_minute / 60))
        for name, per_minute in (
            ("requests", settings.llm_requests_per_min),
            ("tokens", settings.llm_tokens_per_min),
        )
        if per_minute > 0
    ]
    limiter = RateLimiter(redis, limits, settings.app_id) if limits else None
    return CachedExtractor(LLMExtractor(settings, limiter), redis, settings.app_id)


def _faust_app(settings: Settings) -> faust.App:
    return faust.App(
        settings.app_id,
        broker=settings.broker_url,
        store="rocksdb://",
        datadir=str(settings.data_dir),
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        table_standby_replicas=settings.standby_replicas,
        processing_guarantee="at_least_once",
        # Do not wait on stop for every held event (up to MAX_PENDING, minutes with a slow
        # model): running batches get _STOP_GRACE_S, the rest is redelivered to the next owner.
        stream_wait_empty=False,
        # aiokafka keeps one produce request in flight per broker; with 16 KiB batches a busy
        # worker's changelog and events queued up behind it (Faust's producer buffer full,
        # admission paused). Bigger batches per request doubled bench plumbing throughput.
        producer_max_batch_size=_PRODUCER_BATCH_BYTES,
        # A dead worker's partitions move after this long; heartbeats keep a live one.
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.session_timeout_s / 10,
        consumer_auto_offset_reset="earliest",
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_bind=settings.web_bind,
        web_tables_enabled=False,  # /table/ would serve every profile to anyone
        web_stats_enabled=False,
        web_graph_enabled=False,
        autodiscover=False,
        logging_config=None,
    )


def _raw_topic(app: faust.App, name: str, settings: Settings, **kw: Any) -> faust.TopicT:
    return app.topic(
        name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.partitions,
        internal=True,
        **kw,
    )


def create_worker(settings: Settings) -> faust.App:
    """Build the app for ``settings``; nothing connects until the worker starts."""
    kinds = load_kinds(settings.kinds_file, settings.profile_model)
    app = _faust_app(settings)
    keep_fetched_events_on_resume(app)  # else recovery can drop fetched input events
    # Declared (created when missing) before the consumer subscribes, with our partition count.
    # Operator commands share it, so they are ordered with the user's messages.
    chat = _raw_topic(app, settings.input_topic, settings)
    output = _raw_topic(app, settings.output_topic, settings)
    dead_letters = _raw_topic(app, settings.dlq_topic, settings)
    extractor = _extractor(settings)
    lanes: list[_Lane] = []
    for kind in kinds:
        # Another kind's messages are re-keyed by its subject on a topic of its own, so one
        # team's updates are serialized whatever partitions its members' messages were on.
        source = (
            chat
            if kind.is_user
            else _raw_topic(app, kind.topic(settings.app_id, settings.input_topic), settings)
        )
        table = _ProfileTable(
            app,
            name="profiles" if kind.is_user else f"profiles-{kind.name}",
            key_type=bytes,
            value_type=bytes,
            partitions=settings.partitions,
            options=_ROCKSDB_OPTIONS,
            beacon=app.tables.beacon,
        )
        app.tables.add(table)
        processor = Processor(
            settings=settings,
            kind=kind,
            extractor=extractor,
            table=table,
            output=output,
            dead_letters=dead_letters,
            reroute=chat,
            bind=_bind_current_event,
            written=table.written,
        )
        lanes.append(_Lane(kind, source, table, processor, _scheduler(processor, settings)))
    lanes[0].processor.forwards = [(lane.kind, lane.source) for lane in lanes[1:]]
    for lane in lanes:
        _agent(app, lane)
    _gauges(app, settings, lanes)

    async def declare_outputs() -> None:
        # Subscribers may start before the first event; let them find the topics.
        await output.maybe_declare()
        await dead_letters.maybe_declare()

    app.task(declare_outputs)

    async def shut_down(sender: Any, /, *_: Any, signal: Any, **__: Any) -> None:
        # The consumer has stopped and committed what is acknowledged; tables are still open.
        cancelled = sum(
            await asyncio.gather(*(lane.scheduler.stop(_STOP_GRACE_S) for lane in lanes))
        )
        if cancelled:
            logger.warning(
                "stopping: %d batches cancelled after %.0fs; their events are redelivered",
                cancelled,
                _STOP_GRACE_S,
            )
        await extractor.close()

    app.on_before_shutdown.connect(shut_down)
    register_views(app, {lane.kind.name: (lane.kind, lane.table) for lane in lanes}, chat, settings)
    return app


class _ProfileTable(faust.Table[bytes, bytes]):
    """A table that can wait for the changelog write of one key, not for every pending send.

    A batch makes its version durable before announcing it; flushing the whole producer for
    that cost a quarter of the worker's CPU under load.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending: dict[bytes, asyncio.Future[Any]] = {}

    def send_changelog(self, *args: Any, **kwargs: Any) -> Any:
        future = super().send_changelog(*args, **kwargs)
        key = args[1] if len(args) > 1 else kwargs["key"]
        self._pending[key] = future
        future.add_done_callback(functools.partial(self._forget, key))
        return future

    def _forget(self, key: bytes, future: asyncio.Future[Any]) -> None:
        if self._pending.get(key) is future:
            del self._pending[key]

    async def written(self, key: bytes) -> None:
        """Return once the last changelog write of ``key`` is acknowledged by Kafka."""
        future = self._pending.get(key)
        if future is not None:
            await future


@dataclass
class _Lane:
    """One kind's pipeline: its source topic, table, processor and scheduler."""

    kind: Kind
    source: faust.TopicT
    table: Any
    processor: Processor
    scheduler: KeyedScheduler[tuple[Any, Work | None]]


def _scheduler(processor: Processor, settings: Settings) -> KeyedScheduler[tuple[Any, Work | None]]:
    return KeyedScheduler(
        run=lambda key, jobs, release: processor.run(
            key, [w for _, w in (j.payload for j in jobs) if w], release
        ),
        ack=lambda job: job.payload[0].ack(),
        on_fatal=_fatal,
        limits=SchedulerLimits(
            max_in_flight=settings.max_in_flight,
            max_pending=settings.max_pending,
            window_s=settings.coalesce_window_s,
            catch_up_window_s=settings.catch_up_window_s,
            max_batch=settings.max_batch_messages,
            max_batch_size=settings.max_batch_chars,
        ),
    )


def _agent(app: faust.App, lane: _Lane) -> None:
    name = "profiles" if lane.kind.is_user else f"profiles-{lane.kind.name}"

    async def consume(stream: faust.StreamT[bytes]) -> None:
        # Acks are the scheduler's: in offset order, once an event is fully applied.
        async for event in cast(Any, stream).noack().events():
            await _admit(lane.processor, lane.scheduler, event)

    app.agent(lane.source, name=name)(consume)


def _gauges(app: faust.App, settings: Settings, lanes: list[_Lane]) -> None:
    metrics.gauge(
        "in_flight_extractions",
        "Batches running now",
        lambda: sum(lane.scheduler.counters.in_flight for lane in lanes),
    )
    metrics.gauge(
        "pending_events",
        "Events held, not yet acknowledged",
        lambda: sum(lane.scheduler.pending for lane in lanes),
    )
    metrics.gauge(
        "consumer_lag",
        "Input events not yet committed, over assigned partitions",
        lambda: _lag(app, settings.input_topic),
    )


_PRODUCER_BATCH_BYTES = 512 * 1024
_STOP_GRACE_S = 10.0

# Faust's defaults (2 GiB block cache per partition database) do not fit many partitions.
_ROCKSDB_OPTIONS = {
    "block_cache_size": 32 * 1024**2,
    "write_buffer_size": 8 * 1024**2,
    "max_open_files": 512,
}


async def _admit(
    processor: Processor, scheduler: KeyedScheduler[tuple[Any, Work | None]], event: Any
) -> None:
    msg = event.message
    work: Work | None = None
    try:
        work = await processor.admit(msg, event)
    except (KafkaError, OSError, TimeoutError) as exc:
        _exit_for_redelivery(
            f"cannot reach Kafka while processing topic={msg.topic} partition={msg.partition} "
            f"offset={msg.offset}: {exc!r}"
        )
    except Exception as exc:  # noqa: BLE001 - a bug on one event must not stop the rest
        logger.exception(
            "internal error topic=%s partition=%d offset=%d", msg.topic, msg.partition, msg.offset
        )
        await processor.dead_letter(msg, "internal_error", repr(exc))
    job = Job(
        key=work.key if work else b"",
        tp=(msg.topic, msg.partition),
        offset=msg.offset,
        payload=(event, work),
        size=len(msg.value or b""),
        coalesce=work is not None and isinstance(work.body, ChatMessage),
        waited_s=time.time() - msg.timestamp if msg.timestamp else 0.0,
    )
    if work is None:
        await scheduler.skip(job)
    else:
        await scheduler.submit(job)


def _lag(app: faust.App, topic: str) -> float:
    consumer = cast(Any, app.consumer)
    lag = 0
    for tp in consumer.assignment():
        highwater = consumer.highwater(tp) if tp.topic == topic else None
        if highwater is not None:  # None until the first fetch of the partition
            committed = consumer._committed_offset.get(tp) or 0  # noqa: SLF001 - no public API
            lag += max(0, highwater - committed)
    return float(lag)


def _bind_current_event(event: Any) -> None:
    """Make ``event`` current in this task, so a table write goes to its partition.

    Faust finds the partition of a table write from the task-local current event; our batches
    run in their own tasks, so they set it themselves (Faust's private setter, one place).
    """
    _current_event.set(weakref.ref(event) if event is not None else None)


def _fatal(exc: BaseException) -> None:
    _exit_for_redelivery(f"a user's batch failed outside the dead-letter policy: {exc!r}")


def _exit_for_redelivery(reason: str) -> None:
    """Stop at once, committing nothing more: unacknowledged events come back after restart.

    Letting the agent raise would make Faust skip the event (it commits past it), losing it.
    """
    logger.critical("stopping: %s; unacknowledged events are redelivered after restart", reason)
    logging.shutdown()
    os._exit(_CRASH_EXIT)
