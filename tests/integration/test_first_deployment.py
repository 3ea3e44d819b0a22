"""A first deployment on a topic with history: where a new group starts, what the worker says it
is about to extract, and a restart that keeps its partitions (static membership)."""

import asyncio
import re
import time
from datetime import UTC, datetime
from typing import Any

import orjson

from streams.client.kafka_io import ensure_topics
from tests.fakes.llm_server import FakeLLM

from .conftest import StartWorker
from .harness import BOOTSTRAP, PARTITIONS, Kafka, Names, WorkerProcess, decode, message

#: Users whose keys cover every partition of a 4-partition topic.
USERS = ["ann", "ben", "cat", "dan", "eve", "fay"]
_FIRST_START = re.compile(
    r"first start topic=(?P<topic>\S+) new_partitions=(?P<partitions>\d+) "
    r"start_from=(?P<start>\S+) to_extract=(?P<to_extract>\d+) skipped=(?P<skipped>\d+)"
)


async def publish(kafka: Kafka, topic: str, messages: list[dict[str, Any]], at_ms: int) -> None:
    """Publish ``messages`` keyed by user, stamped ``at_ms`` (the record's CreateTime)."""
    for m in messages:
        await kafka.producer.send_and_wait(
            topic, orjson.dumps(m), key=m["user_id"].encode(), timestamp_ms=at_ms
        )


def batch(tag: str, at_ms: int) -> list[dict[str, Any]]:
    """One message per user, ``<tag> <user>``, sent at ``at_ms``."""
    sent_at = datetime.fromtimestamp(at_ms / 1000, UTC).isoformat()
    return [message(u, f"{tag} {u}", sent_at=sent_at) for u in USERS]


def script(fake: FakeLLM, *tags: str) -> None:
    """Each tag's messages set the user's name to the tag: every extraction shows in an event."""
    for tag in tags:
        fake.on(tag, {"field": "name", "op": "set", "value": tag.title()})


def first_starts(log_text: str) -> list[dict[str, str]]:
    return [m.groupdict() for m in _FIRST_START.finditer(log_text)]


def sources(records: list[Any]) -> set[str]:
    return {m for e in decode(records) for m in e["source_message_ids"]}


async def test_latest_skips_the_retained_history_and_a_restart_resumes_where_it_committed(
    start_worker: StartWorker, kafka: Kafka, names: Names, fake_llm: FakeLLM
) -> None:
    await ensure_topics([names.input], partitions=PARTITIONS, replication=1, bootstrap=BOOTSTRAP)
    now_ms = int(time.time() * 1000)
    history = batch("history", now_ms) + batch("history again", now_ms)
    await publish(kafka, names.input, history, now_ms)
    script(fake_llm, "history", "after", "down")

    worker = await start_worker(PROFILE_STREAM_START_FROM="latest")
    (said,) = first_starts(worker.log.read_text())
    assert said == {
        "topic": names.input,
        "partitions": str(PARTITIONS),
        "start": "latest",
        "to_extract": "0",
        "skipped": str(len(history)),
    }
    after = batch("after", int(time.time() * 1000))
    await publish(kafka, names.input, after, int(time.time() * 1000))
    records = await kafka.read(
        names.output, lambda r: sources(r) >= {m["message_id"] for m in after}
    )
    assert sources(records) == {m["message_id"] for m in after}
    assert fake_llm.calls_for("history") == 0

    # Stopped and started again, the group resumes at its committed offsets: "latest" is where
    # a new group starts, never a reason to skip what came while the worker was down.
    await worker.terminate()
    down = batch("down", int(time.time() * 1000))
    await publish(kafka, names.input, down, int(time.time() * 1000))
    again = await start_worker(PROFILE_STREAM_START_FROM="latest")
    records = await kafka.read(
        names.output, lambda r: sources(r) >= {m["message_id"] for m in down}
    )
    assert sources(records) == {m["message_id"] for m in after + down}
    assert fake_llm.calls_for("history") == 0
    assert len(first_starts(again.log.read_text())) == 1  # the first start only, not this one


async def test_a_start_time_extracts_only_the_messages_stamped_at_or_after_it(
    start_worker: StartWorker, kafka: Kafka, names: Names, fake_llm: FakeLLM
) -> None:
    await ensure_topics([names.input], partitions=PARTITIONS, replication=1, bootstrap=BOOTSTRAP)
    now_ms = int(time.time() * 1000)
    old_ms, recent_ms, start_ms = now_ms - 600_000, now_ms - 60_000, now_ms - 300_000
    old, recent = batch("old", old_ms), batch("recent", recent_ms)
    await publish(kafka, names.input, old, old_ms)
    await publish(kafka, names.input, recent, recent_ms)
    script(fake_llm, "old", "recent", "later")
    start = datetime.fromtimestamp(start_ms / 1000, UTC).isoformat()

    worker = await start_worker(PROFILE_STREAM_START_FROM=start)
    (said,) = first_starts(worker.log.read_text())
    assert said == {
        "topic": names.input,
        "partitions": str(PARTITIONS),
        "start": start,
        "to_extract": str(len(recent)),
        "skipped": str(len(old)),
    }
    later = batch("later", int(time.time() * 1000))
    await publish(kafka, names.input, later, int(time.time() * 1000))
    wanted = {m["message_id"] for m in recent + later}
    # One user's messages are applied in partition order: an old one would come first.
    records = await kafka.read(names.output, lambda r: sources(r) >= wanted)
    assert sources(records) == wanted
    assert fake_llm.calls_for("old") == 0


async def test_the_default_extracts_the_whole_history_and_says_how_much_first(
    start_worker: StartWorker, kafka: Kafka, names: Names, fake_llm: FakeLLM
) -> None:
    await ensure_topics([names.input], partitions=PARTITIONS, replication=1, bootstrap=BOOTSTRAP)
    now_ms = int(time.time() * 1000)
    history = batch("history", now_ms)
    await publish(kafka, names.input, history, now_ms)
    script(fake_llm, "history")

    worker = await start_worker()
    records = await kafka.read(
        names.output, lambda r: sources(r) >= {m["message_id"] for m in history}
    )
    assert len(decode(records)) == len(history)
    log = worker.log.read_text()
    (said,) = first_starts(log)
    assert (said["start"], said["to_extract"], said["skipped"]) == (
        "earliest",
        str(len(history)),
        "0",
    )


_JOINED = re.compile(r"Joined group '\S+' \(generation (\d+)\)")
#: Faust's table of the assignment aiokafka received, one row per topic.
_ASSIGNED_ROW = r"\| {topic} +\| (\{{[^}}]*\}}) +\|"


def generations(text: str) -> list[int]:
    return [int(g) for g in _JOINED.findall(text)]


def input_partitions(text: str, topic: str) -> list[str]:
    """Each assignment's input partitions, as Faust prints them (``{0-1}``), oldest first."""
    return re.findall(_ASSIGNED_ROW.format(topic=re.escape(topic)), text)


async def settled(workers: list[Any], timeout: float = 60.0) -> int:
    """Wait until every worker is ready in the same, latest generation; returns it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        latest = [generations(w.log.read_text()) for w in workers]
        if all(latest) and len({g[-1] for g in latest}) == 1:
            for w in workers:
                await w.wait_ready()
            if [generations(w.log.read_text())[-1] for w in workers] == [g[-1] for g in latest]:
                return latest[0][-1]
        await asyncio.sleep(0.5)
    raise AssertionError(f"group not settled after {timeout}s: {latest}")


async def test_a_worker_restarted_under_its_instance_id_gets_its_partitions_back_alone(
    start_worker: StartWorker, kafka: Kafka, names: Names, fake_llm: FakeLLM
) -> None:
    script(fake_llm, "before", "back", "gone")
    static = {"PROFILE_STREAM_SESSION_TIMEOUT_S": "20"}
    a = await start_worker(0, PROFILE_STREAM_GROUP_INSTANCE_ID="worker-a", **static)
    b = await start_worker(1, PROFILE_STREAM_GROUP_INSTANCE_ID="worker-b", **static)
    generation = await settled([a, b])
    await publish(
        kafka, names.input, batch("before", int(time.time() * 1000)), int(time.time() * 1000)
    )
    await kafka.read(names.output, lambda r: len(r) >= len(USERS))
    a_before = input_partitions(a.log.read_text(), names.input)[-1]
    b_mark = len(b.log.read_text())

    # A rolling restart of one pod: SIGTERM, then the same instance id, port and data dir.
    stopped_at = time.monotonic()
    await a.terminate()
    a_log_mark = len(a.log.read_text())
    a = WorkerProcess(a.env, a.log, a.port).start()
    try:
        await a.wait_ready()
        back_after = time.monotonic() - stopped_at
        rejoined = a.log.read_text()[a_log_mark:]
        # The group did not rebalance: the restarted worker joined the same generation (a
        # rebalance makes a new one), with the partitions it had; the other worker heard nothing.
        assert generations(rejoined) == [generation]
        assert input_partitions(rejoined, names.input) == [a_before]
        assert "revoked partitions" not in b.log.read_text()[b_mark:]
        assert generations(b.log.read_text()[b_mark:]) == []
        back = batch("back", int(time.time() * 1000))
        await publish(kafka, names.input, back, int(time.time() * 1000))
        await kafka.read(names.output, lambda r: sources(r) >= {m["message_id"] for m in back})

        # Gone for good, its partitions wait for the session timeout, then move in one rebalance.
        await a.terminate()
        gone_at = time.monotonic()
        gone = batch("gone", int(time.time() * 1000))
        await publish(kafka, names.input, gone, int(time.time() * 1000))
        await kafka.read(
            names.output, lambda r: sources(r) >= {m["message_id"] for m in gone}, timeout=90
        )
        moved_after = time.monotonic() - gone_at
        assert generations(b.log.read_text()[b_mark:]) == [generation + 1]
        assert 20 * 0.8 <= moved_after, "moved before the session timeout"
        print(
            f"\nstatic membership: restart back in {back_after:.1f}s, no rebalance; "
            f"a worker gone for good: its partitions processed again after {moved_after:.1f}s "
            "(session timeout 20 s)"
        )
    finally:
        a.stop()


async def test_a_second_worker_under_the_same_instance_id_stops_naming_the_setting(
    start_worker: StartWorker, kafka: Kafka, names: Names, fake_llm: FakeLLM
) -> None:
    script(fake_llm, "still")
    first = await start_worker(0, PROFILE_STREAM_GROUP_INSTANCE_ID="same-name")
    second = await start_worker(1, ready=False, PROFILE_STREAM_GROUP_INSTANCE_ID="same-name")
    # The broker hands it the first worker's partitions, made for the first worker's address.
    assert await second.wait_exit(60), "the second worker is still running"
    assert second.proc is not None and second.proc.returncode == 70
    said = second.tail()
    assert "PROFILE_STREAM_GROUP_INSTANCE_ID=same-name is that worker's" in said
    assert first.url.removeprefix("http://") in said
    # The first one goes on.
    still = batch("still", int(time.time() * 1000))
    await publish(kafka, names.input, still, int(time.time() * 1000))
    await kafka.read(names.output, lambda r: sources(r) >= {m["message_id"] for m in still})
    assert first.alive()
