"""The Faust app, wired from settings: topics, tables, one agent per profile kind, and hooks.

Wiring only. What happens to an event is in :mod:`streams.pipeline`, in the order it happens:
admission, the keyed scheduler, apply, publish, acknowledgement. Topics and tables are declared
in :mod:`streams.topology`; every touch of Faust internals is in :mod:`streams.faust_glue`.
"""

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Set
from dataclasses import dataclass
from typing import Any, cast

import faust

from streams import metrics
from streams.core.flushing import FlushPolicy
from streams.core.kinds import Kind, load_kinds
from streams.extract.base import Extractor
from streams.extract.cache import CachedExtractor
from streams.extract.llm import LLMExtractor
from streams.extract.ratelimit import RateLimiter, limits_from_settings
from streams.extract.redis_client import redis_client
from streams.extract.rules import RuleExtractor
from streams.faust_app import faust_app
from streams.faust_glue import (
    EndOffsets,
    ProfileTable,
    actives_ready,
    commit_open_transactions,
    committed_offset,
    consumer_lag,
    exactly_once,
    in_source_transaction,
    keep_fetched_events_on_resume,
    make_event_current,
    outside_transactions,
    partition_event,
    read_to_end,
)
from streams.flush_timer import FlushTimer
from streams.group import joining_the_group
from streams.local_state import record_clean_stop
from streams.pipeline.admission import Admission
from streams.pipeline.apply import ProfileUpdater
from streams.pipeline.buffer_store import BufferStore
from streams.pipeline.dead_letters import DeadLetters
from streams.pipeline.flush_clock import FlushClock
from streams.pipeline.job import Job
from streams.pipeline.policy import exit_on_batch_crash
from streams.pipeline.publish import Publisher
from streams.pipeline.read_your_writes import ReadYourWrites, Waiting
from streams.pipeline.scheduler import KeyedScheduler, RevokeReport, SchedulerLimits
from streams.settings import Settings
from streams.topology import (
    Topics,
    TopicSender,
    buffer_table,
    changelog_acked,
    declare_topics,
    profile_table,
)
from streams.web.views import register_views

__all__ = ["create_worker"]

logger = logging.getLogger(__name__)

# How long running batches may finish on stop before they are cancelled (and redelivered).
_STOP_GRACE_S = 10.0


def create_worker(settings: Settings) -> faust.App:
    """Build the app for ``settings``; nothing connects until the worker starts."""
    kinds = load_kinds(settings.kinds_file, settings.profile_model)
    app = faust_app(settings)
    keep_fetched_events_on_resume(app)  # else recovery can drop fetched input events
    joining_the_group(app, settings)
    topics = declare_topics(app, settings)
    extractor = _extractor(settings)
    lanes = [_lane(app, settings, topics, kind, extractor, len(kinds)) for kind in kinds]
    # The user lane hands a chat message on to every other kind it names.
    lanes[0].admission.forwards = [
        (lane.kind, TopicSender(outside_transactions(app, lane.source))) for lane in lanes[1:]
    ]
    end_offsets = EndOffsets(app)
    fresh = lanes[0].fresh = _read_your_writes(settings, lanes[0], end_offsets, app)
    for lane in lanes:
        _agent(app, lane)
    _gauges(app, settings, lanes)
    app.timer(settings.flush_tick_s)(_flush_due(app, lanes))
    if exactly_once(app):
        app.timer(app.conf.broker_commit_interval)(_commit_transactions(app))
    app.task(_declare_outputs(topics))
    app.on_before_shutdown.connect(_shut_down(app, lanes, extractor, end_offsets, settings))
    app.on_partitions_revoked.connect(_on_revoked(app, lanes, settings.revoke_grace_s, fresh))
    app.on_partitions_assigned.connect(_on_assigned(lanes, fresh))
    tables = {lane.kind.name: (lane.kind, lane.table) for lane in lanes}
    buffers = {lane.kind.name: lane.buffers for lane in lanes}
    commands = outside_transactions(app, topics.chat)  # inputs: any partition, no fencing
    register_views(app, tables, commands, settings, fresh=fresh, buffers=buffers)
    return app


@dataclass
class _Lane:
    """One kind's path: its source topic and table, its admission, and the scheduler that runs
    its batches (apply, publish) and acknowledges its events."""

    kind: Kind
    source: faust.TopicT
    table: ProfileTable
    #: The buffered messages of ``table``'s subjects, one entry each (docs/state.md).
    buffers: ProfileTable
    admission: Admission
    scheduler: KeyedScheduler
    updater: ProfileUpdater
    #: The buffered subjects of this worker's partitions, and when each is due.
    timer: FlushTimer
    fresh: ReadYourWrites | None = None  # the user lane's: told what the agent hands on


def _lane(
    app: faust.App,
    settings: Settings,
    topics: Topics,
    kind: Kind,
    extractor: Extractor,
    lanes: int,
) -> _Lane:
    source = topics.source_of(kind)
    table = profile_table(app, kind, settings)
    buffers = buffer_table(app, kind, settings)
    dead_letters = DeadLetters(
        TopicSender(outside_transactions(app, topics.dead_letters)),
        max_request_bytes=app.conf.producer_max_request_size,
    )
    publisher = Publisher(
        kind,
        table,
        # In the transaction of the source partition, with the table writes (invariant 1).
        TopicSender(in_source_transaction(app, topics.output)),
        purge=functools.partial(extractor.forget, kind=kind.name),
        make_event_current=make_event_current,
        changelog_acked=changelog_acked(table),
    )
    clock = FlushClock()
    updater = ProfileUpdater(
        kind,
        extractor,
        table,
        publisher,
        dead_letters,
        flushing=_flushing(settings),
        on_buffer=clock.set,
        revisions_per_field=settings.revisions_per_field,
        max_future_skew_s=settings.max_future_skew_s,
        buffers=BufferStore(
            buffers,
            make_event_current=make_event_current,
            changelog_acked=changelog_acked(buffers),
        ),
    )
    scheduler = KeyedScheduler(updater.apply, exit_on_batch_crash, _limits(settings, lanes))
    updater.waiting = scheduler.waiting  # no idle flush while the user's next message waits
    reroute = TopicSender(outside_transactions(app, topics.chat))
    admission = Admission(settings, kind, dead_letters, reroute=reroute)
    timer = FlushTimer(
        kind.name,
        source.get_topic_name(),
        table,
        buffers,
        scheduler,
        updater.flushing,
        clock,
    )
    return _Lane(kind, source, table, buffers, admission, scheduler, updater, timer)


def _read_your_writes(
    settings: Settings, lane: _Lane, end_offsets: EndOffsets, app: faust.App
) -> ReadYourWrites:
    """The user lane's waits for freshness, told of each write of its table."""
    fresh = ReadYourWrites(
        lane.table,
        lane.scheduler,
        settings.input_topic,
        settings.partitions,
        end_offset=end_offsets,
        event_for=partition_event,
        waiting=Waiting(settings.max_waiting_reads),
        start_of=functools.partial(committed_offset, app),
    )
    lane.updater.publisher.on_stored = fresh.stored
    return fresh


def _flushing(settings: Settings) -> FlushPolicy:
    return FlushPolicy(
        idle_s=settings.flush_idle_s,
        max_age_s=settings.flush_max_age_s,
        max_messages=settings.max_batch_messages,
        max_chars=settings.max_batch_chars,
        daily_tokens=settings.user_daily_tokens,
        max_buffered=settings.max_buffered_messages,
        follow_ups=settings.follow_up_calls,
        per_turn=settings.extract_per_turn,
    )


def _limits(settings: Settings, lanes: int) -> SchedulerLimits:
    return SchedulerLimits(
        max_in_flight=settings.max_in_flight,
        max_pending=settings.max_pending,
        max_pending_bytes=max(1, settings.max_pending_bytes // lanes),  # a worker's budget
        window_s=settings.coalesce_window_s,
        catch_up_window_s=settings.catch_up_window_s,
        max_batch=settings.max_batch_messages,
        max_batch_chars=settings.max_batch_chars,
    )


def _agent(app: faust.App, lane: _Lane) -> None:
    name = "profiles" if lane.kind.is_user else f"profiles-{lane.kind.name}"

    async def consume(stream: faust.StreamT[bytes]) -> None:
        # Acks are the scheduler's: in offset order, once an event is fully applied.
        async for event in cast(Any, stream).noack().events():
            # The ownership it is read under, before any await: a revoke during admission
            # makes the job stale, so it is dropped, not run for a partition gone elsewhere.
            token = lane.scheduler.ownership.token((event.message.topic, event.message.partition))
            admitted = await lane.admission.admit(event.message)
            job = Job.of(event, admitted, now=time.time(), token=token)
            await (lane.scheduler.skip if admitted is None else lane.scheduler.submit)(job)
            # A backlog read to its end is all held: its catch-up waits gather nothing more.
            lane.scheduler.backlog.read_to(job.tp, end=read_to_end(app, event.message))
            if lane.fresh is not None:
                lane.fresh.passed(job.tp, job.offset)

    app.agent(lane.source, name=name)(consume)


def _extractor(settings: Settings) -> Extractor:
    """The rule extractor, or the model behind the shared rate limit and result cache."""
    if settings.extractor_kind != "openai":
        return RuleExtractor()
    redis = redis_client(settings)
    limits = limits_from_settings(settings)
    limiter = RateLimiter(redis, limits, settings.app_id) if limits else None
    return CachedExtractor(LLMExtractor(settings, limiter), redis, settings.app_id)


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
        "pending_bytes",
        "Bytes of the input records held, not yet acknowledged",
        lambda: sum(lane.scheduler.pending_bytes for lane in lanes),
    )
    metrics.gauge(
        "buffered_users",
        "Users whose messages wait in a buffer on this worker",
        lambda: sum(len(lane.timer.clock) for lane in lanes),
    )
    metrics.gauge(
        "consumer_lag",
        "Input events not yet committed, over assigned partitions",
        lambda: consumer_lag(app, settings.input_topic),
    )


def _flush_due(app: faust.App, lanes: list[_Lane]) -> Callable[[], Awaitable[None]]:
    async def flush_due() -> None:
        # Never lets an error end the timer: a buffer left is flushed at a later tick.
        try:
            now = time.time()
            for lane in lanes:
                await lane.timer.tick(now, actives_ready(app))
        except Exception:
            logger.exception("flush timer failed; buffers due are flushed at the next tick")

    return flush_due


def _commit_transactions(app: faust.App) -> Callable[[], Awaitable[None]]:
    async def commit_transactions() -> None:
        # Faust commits a transaction only when its offsets move: a timer's flush, or batches
        # waiting behind a slow one, would stay unseen until the broker aborts them.
        try:
            await commit_open_transactions(app)
        except Exception as exc:  # noqa: BLE001 - fenced (another owner) or broken: stop
            logger.error("cannot commit the open transactions: %r; stopping", exc)  # noqa: TRY400
            await app.crash(exc)

    return commit_transactions


def _declare_outputs(topics: Topics) -> Callable[[], Awaitable[None]]:
    async def declare_outputs() -> None:
        # Subscribers may start before the first event; let them find the topics.
        await topics.output.maybe_declare()
        await topics.dead_letters.maybe_declare()

    return declare_outputs


def _shut_down(
    app: faust.App,
    lanes: list[_Lane],
    extractor: Extractor,
    end_offsets: EndOffsets,
    settings: Settings,
) -> Callable[..., Awaitable[None]]:
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
        await end_offsets.close()
        if exactly_once(app):  # else what the last batches wrote is aborted with the producer
            await app.producer.flush()
            await commit_open_transactions(app)
        # No batch runs any more: the local stores stop changing here.
        await record_clean_stop(app, settings.data_dir)

    return shut_down


def _tps(partitions: Set[Any]) -> set[tuple[str, int]]:
    return {(tp.topic, tp.partition) for tp in partitions}


def _on_revoked(
    app: faust.App, lanes: list[_Lane], grace_s: float, fresh: ReadYourWrites
) -> Callable[..., Awaitable[None]]:
    async def on_revoked(sender: Any, revoked: Set[Any], /, *_: Any, **__: Any) -> None:
        # Faust awaits this before the partitions go: fence them (DESIGN.md, invariant 1).
        tps = _tps(revoked)
        for lane in lanes:
            lane.timer.revoked(tps)
        fresh.forget(tps)
        reports = await asyncio.gather(*(lane.scheduler.revoke(tps, grace_s) for lane in lanes))
        total = RevokeReport()
        for report in reports:
            total.dropped += report.dropped
            total.finished += report.finished
            total.cancelled += report.cancelled
            total.fenced += report.fenced
        # What the grace's batches produced is in Kafka (committed, under exactly-once: Faust
        # stops the producers of revoked partitions without a commit) before the next owner
        # starts. A zombie's commit is refused here, and the worker stops.
        await app.producer.flush()
        if exactly_once(app):
            await commit_open_transactions(app)
        logger.info(
            "revoked partitions=%d: held events dropped=%d, batches finished in the %.0fs "
            "grace=%d cancelled=%d fenced=%d",
            len(tps),
            total.dropped,
            grace_s,
            total.finished,
            total.cancelled,
            total.fenced,
        )

    return on_revoked


def _on_assigned(lanes: list[_Lane], fresh: ReadYourWrites) -> Callable[..., Awaitable[None]]:
    async def on_assigned(sender: Any, assigned: Set[Any], /, *_: Any, **__: Any) -> None:
        tps = _tps(assigned)
        leftovers = sum(lane.scheduler.assign(tps) for lane in lanes)
        for lane in lanes:
            lane.timer.assigned(tps)  # a new ownership: read what the restored tables hold
        fresh.forget(tps)
        logger.info("assigned partitions=%d (left over from before: %d)", len(tps), leftovers)

    return on_assigned
