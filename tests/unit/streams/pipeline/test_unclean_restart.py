"""The review's proofs p03 (F1) and p04 (F8), through the pipeline: a worker killed between its
local write and the changelog's acknowledgement restarts on its data dir; the partition then
moves. The real-stack version is tests/integration/test_unclean_restart.py."""

import asyncio
from typing import Any

from streams.core.flushing import FlushPolicy
from streams.pipeline.flush_clock import buffers_in
from streams.pipeline.job import Job

from .durable_table import DurableTable
from .fakes import Event, Pipeline, Topic, chat


def _on(
    table: DurableTable,
    flushing: FlushPolicy | None = None,
    output: Topic | None = None,
    buffers: DurableTable | None = None,
) -> Pipeline:
    p = Pipeline(flushing=flushing)
    p.table = p.publisher.table = p.updater.table = table
    p.publisher.changelog_acked = table.changelog_acked
    p.updater._flusher.publisher = p.publisher  # noqa: SLF001 - the flusher's own publisher
    if buffers is not None:
        # The buffer table lives in the same data dir: it crashes and restarts with the profiles.
        p.buffer_table = p.buffers.table = buffers
        p.buffers._changelog_acked = buffers.changelog_acked  # noqa: SLF001
    if output is not None:
        p.output = p.publisher.output = output
    return p


async def _killed_mid_write(p: Pipeline, table: DurableTable, *jobs: Job) -> None:
    """Run a batch until its changelog write is in flight, then kill -9 the worker."""
    table.hold = True
    task = asyncio.create_task(p.updater.apply(jobs[0].key, list(jobs)))
    await asyncio.wait_for(table.in_flight.wait(), 5)
    table.crash()
    task.cancel()


def _buffered(
    p: Pipeline, tp: tuple[str, int], policy: FlushPolicy
) -> list[tuple[bytes, Any, float]]:
    return list(buffers_in(p.table.items(), p.buffer_table.items(), {tp}, policy))


async def test_a_buffered_message_redelivered_after_a_restart_is_not_lost_when_it_moves() -> None:
    flushing = FlushPolicy(idle_s=30.0, max_age_s=300.0)
    table, buffers = DurableTable(), DurableTable()
    a = _on(table, flushing, buffers=buffers)
    m1 = chat("m1", "name=Alice", offset=0)
    # Offset 0 is never committed; the buffered entry's write is in flight at the kill.
    await _killed_mid_write(a, buffers, Job.of(Event(m1), await a.admit(m1), now=m1.timestamp))
    table.crash()

    table, buffers = table.restarted(), buffers.restarted()
    again = _on(table, flushing, buffers=buffers)
    await again.feed(m1)  # redelivered, acknowledged
    b = _on(table.moved(), flushing, buffers=buffers.moved())
    b.clock.rebuild(_buffered(b, (m1.topic, m1.partition), flushing))
    b.now += 3600
    await b.tick()
    assert [e["profile"]["name"] for e in b.output.values] == ["Alice"]


async def test_a_version_stored_but_never_durable_is_not_announced_after_a_restart() -> None:
    m1, m2 = chat("m1", "name=Ann", offset=0), chat("m2", "name=Bea", offset=1)
    table = DurableTable()
    a = _on(table)
    out = a.output
    jobs = [Job.of(Event(r), await a.admit(r), now=r.timestamp) for r in (m1, m2)]
    # One batch [m1, m2]: its pending version 1 ("Bea") stored locally, never acknowledged.
    await _killed_mid_write(a, table, *jobs)

    table = table.restarted()
    again = _on(table, output=out)
    # m1 redelivered; a second kill -9 before its writes are acknowledged.
    await _killed_mid_write(again, table, Job.of(Event(m1), await again.admit(m1), now=0))

    b = _on(table.moved(), output=out)
    await b.feed(m1)
    await b.feed(m2)
    contents: dict[str, set[str]] = {}
    for event in out.values:
        contents.setdefault(event["event_id"], set()).add(event["profile"]["name"])
    assert all(len(names) == 1 for names in contents.values()), contents
