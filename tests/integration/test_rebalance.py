"""Partitions move while batches are at a slow model: fencing on revoke (DESIGN.md, invariant 1).

The group is scaled up and down (workers started, stopped with SIGTERM, killed with -9) while a
backlog waits at a model that takes seconds per call. Over every event read from the output
topic: no event id with two contents, each user's versions 1..n without a gap, no message
applied in two versions, nothing lost; and a forget sent while its partition moves stays
forgotten. Figures are printed with ``-s``.
"""

import asyncio
import random
import re
import time
from collections import defaultdict
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from streams.core.signing import command_headers
from tests.fakes.llm_server import FakeLLM

from .conftest import StartWorker
from .harness import BOOTSTRAP, Kafka, Names, WorkerProcess
from .test_faults import FAST_FAILOVER, check_against_reference, publish, script

pytestmark = pytest.mark.faults

#: Several seconds per model call, jittered; the client's timeout is above the slowest call.
SLOW = {
    "PROFILE_STREAM_LLM_TIMEOUT_S": "15",
    "PROFILE_STREAM_MAX_BATCH_MESSAGES": "2",
    "PROFILE_STREAM_COALESCE_WINDOW_S": "0",
    "PROFILE_STREAM_CATCH_UP_WINDOW_S": "0",
}
_REVOKED = re.compile(
    r"dropped=(\d+), batches finished in the \S+ grace=(\d+) cancelled=(\d+) fenced=(\d+)"
)


async def read_all(topic: str, done: Any, timeout: float, quiet_s: float = 8.0) -> list[Any]:
    """Every record of ``topic`` once ``done(records)`` holds and nothing new came for
    ``quiet_s`` (a stale writer's late event must be seen), or whatever was read at timeout."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=BOOTSTRAP, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    records: list[Any] = []
    try:
        deadline = time.monotonic() + timeout
        last_new = time.monotonic()
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            for part in batch.values():
                records.extend(part)
                last_new = time.monotonic()
            if done(records) and time.monotonic() - last_new >= quiet_s:
                break
    finally:
        await consumer.stop()
    return records


def figures(records: list[Any], sent: list[dict[str, Any]]) -> dict[str, int]:
    """What went wrong, counted (the assertions come after, so a failing run reports)."""
    contents: dict[str, set[bytes]] = defaultdict(set)
    events: dict[str, dict[str, Any]] = {}
    for r in records:
        event = orjson.loads(r.value)
        contents[event["event_id"]].add(r.value)
        events[event["event_id"]] = event
    versions: dict[str, set[int]] = defaultdict(set)
    applied: dict[str, set[int]] = defaultdict(set)
    for e in events.values():
        versions[e["user_id"]].add(e["version"])
        for m in e["source_message_ids"]:
            applied[m].add(e["version"])
    gaps = sum(v != set(range(1, len(v) + 1)) for v in versions.values())
    return {
        "records": len(records),
        "event_ids": len(contents),
        "two_contents": sum(len(c) > 1 for c in contents.values()),
        "exact_duplicates": len(records) - sum(len(c) for c in contents.values()),
        "users_with_gaps": gaps,
        "applied_twice": sum(len(v) > 1 for v in applied.values()),
        "lost": sum(m["message_id"] not in applied for m in sent),
    }


def revokes(workers: list[WorkerProcess]) -> str:
    """What the workers' revokes did, summed from their logs."""
    revokes, totals = 0, [0, 0, 0, 0]
    for log in {w.log for w in workers}:
        for found in _REVOKED.finditer(log.read_text(errors="replace")):
            revokes += 1
            totals = [t + int(n) for t, n in zip(totals, found.groups(), strict=True)]
    dropped, finished, cancelled, fenced = totals
    return (
        f"{revokes} revokes: held events dropped {dropped}, batches finished in the grace "
        f"{finished}, cancelled after it {cancelled}, fenced at a write {fenced}"
    )


def two_contents(records: list[Any]) -> list[str]:
    """The event ids seen with two contents, each with the types and sources of its contents."""
    seen: dict[str, dict[bytes, dict[str, Any]]] = defaultdict(dict)
    for r in records:
        event = orjson.loads(r.value)
        seen[event["event_id"]][r.value] = event
    return [
        f"{event_id}: " + " | ".join(f"{e['type']} {e['source_message_ids']}" for e in c.values())
        for event_id, c in seen.items()
        if len(c) > 1
    ]


class Group:
    """The workers of one test, scaled up and down; ``moves`` counts the rebalances caused."""

    def __init__(self, start_worker: StartWorker, env: dict[str, str], rng: random.Random):
        self.start_worker, self.env, self.rng = start_worker, env, rng
        self.live: list[WorkerProcess] = []
        self.all: list[WorkerProcess] = []
        self.moves = 0
        self._next = 0

    async def up(self) -> None:
        # Not /readyz: with more workers than partitions to spread, a member may get none.
        worker = await self.start_worker(self._next, ready=not self.live, **self.env)
        self._next += 1
        deadline = time.monotonic() + 60
        while "Successfully synced group" not in worker.log.read_text(errors="replace"):
            worker.check()
            assert time.monotonic() < deadline, f"worker did not join:\n{worker.tail()}"
            await asyncio.sleep(0.2)
        self.live.append(worker)
        self.all.append(worker)
        self.moves += 1

    async def down(self, kill: bool) -> None:
        worker = self.live.pop(self.rng.randrange(len(self.live)))
        if kill:
            await asyncio.to_thread(worker.kill)
        else:
            await worker.terminate()
        self.moves += 1


async def test_scaling_the_group_during_a_slow_backlog_gives_no_event_id_two_contents(
    start_worker: StartWorker, kafka: Kafka, names: Names, fake_llm: FakeLLM
) -> None:
    users, per_user = 16, 16
    script(fake_llm, users, per_user)
    rng = random.Random(20261216)
    fake_llm.latency = lambda: rng.uniform(2.0, 5.0)
    group = Group(start_worker, FAST_FAILOVER | SLOW, rng)
    await group.up()
    group.moves = 0  # the first worker's assignment is no move
    sent = await publish(kafka, names, users, per_user)
    await kafka.read(names.output, lambda r: len(r) >= users // 2, timeout=90)
    for step in ("up", "up", "term", "kill", "up", "term", "up", "kill"):
        if step == "up":
            await group.up()
        else:
            await group.down(kill=step == "kill")
        await asyncio.sleep(rng.uniform(2.0, 6.0))  # a random moment, batches at the model
    at_model_during_moves = len(fake_llm.requests)
    total = len(sent)

    def done(records: list[Any]) -> bool:
        return len({m for r in records for m in orjson.loads(r.value)["source_message_ids"]}) >= (
            total
        )

    records = await read_all(names.output, done, timeout=300)
    report = figures(records, sent)
    print(
        f"\nrebalance: {group.moves} moves, {total} messages, {users} users, "
        f"{len(fake_llm.requests)} model calls ({at_model_during_moves} during the moves); "
        f"events {report['records']} ({report['event_ids']} ids), two contents "
        f"{report['two_contents']}, exact duplicates {report['exact_duplicates']}, users with "
        f"gaps {report['users_with_gaps']}, messages applied twice {report['applied_twice']}, "
        f"lost {report['lost']}; {revokes(group.all)}"
    )
    assert group.moves >= 5
    assert report["two_contents"] == 0, report
    check_against_reference(records, sent, per_user)
    assert report["lost"] == 0 and report["applied_twice"] == 0


def forget(user: str, names: Names) -> tuple[bytes, list[tuple[str, bytes]]]:
    value = orjson.dumps(
        {
            "command_id": f"forget-{user}",
            "type": "forget",
            "user_id": user,
            "requested_at": "2026-12-16T00:00:00Z",
        }
    )
    return value, command_headers(user.encode(), value, names.command_signing, time.time())


async def test_a_forget_sent_while_its_partition_moves_stays_forgotten(
    start_worker: StartWorker, kafka: Kafka, names: Names, fake_llm: FakeLLM
) -> None:
    users, per_user = 12, 8
    script(fake_llm, users, per_user)
    rng = random.Random(1216)
    fake_llm.latency = lambda: rng.uniform(2.0, 4.0)
    group = Group(start_worker, FAST_FAILOVER | SLOW, rng)
    await group.up()
    group.moves = 0
    sent = await publish(kafka, names, users, per_user)
    forgotten = [f"user-{u:02d}" for u in range(0, users, 2)]
    await kafka.read(names.output, lambda r: len(r) >= users // 2, timeout=90)
    for user in forgotten:  # behind the user's backlog, while batches are at the model
        value, headers = forget(user, names)
        await kafka.send(names.input, value, key=user.encode(), headers=headers)
    for step in ("up", "term", "up", "kill", "up"):
        if step == "up":
            await group.up()
        else:
            await group.down(kill=step == "kill")
        await asyncio.sleep(rng.uniform(1.0, 4.0))

    def done(records: list[Any]) -> bool:
        deleted = {orjson.loads(r.value)["user_id"] for r in records if b'"deleted"' in r.value}
        return deleted >= set(forgotten)

    records = await read_all(names.output, done, timeout=240)
    report = figures(records, sent)
    came_back = []
    for user in forgotten:
        seen = [orjson.loads(r.value) for r in records if r.key == user.encode()]
        deleted_at = max((i for i, e in enumerate(seen) if e["type"] == "deleted"), default=None)
        if deleted_at is None or any(e["type"] == "updated" for e in seen[deleted_at + 1 :]):
            came_back.append(user)
    print(
        f"\nforget during moves: {group.moves} moves, {len(forgotten)} forgets, events "
        f"{report['records']}, two contents {report['two_contents']}, profiles back after "
        f"their forget {len(came_back)} {came_back}; {revokes(group.all)}"
    )
    for line in two_contents(records):
        print("  two contents:", line)
    assert group.moves >= 3
    assert came_back == [], "a forgotten profile came back"
    assert report["two_contents"] == 0, report  # needs the forget tombstone (issue 16 item 2)
