"""Buffered flushes on the real stack: messages wait durably in the buffer table, their
offsets are committed, and each conversation costs one model call once idle, through kills
and rebalances.

Messages follow the fault tests' reference (``test_faults.script``): message i of a user adds
the item n<i>, so a user whose messages were all applied once, in order, ends with
[n00, n01, ...]; ``check_against_reference`` also checks one content per event id and
contiguous versions.
"""

import asyncio
import time
from typing import Any

import aiohttp
import orjson
import pytest

from streams.client import flush_profile
from tests.fakes.llm_server import FakeLLM

from .conftest import StartWorker
from .harness import ADMIN_TOKEN, Kafka, Names, decode, message
from .history import all_applied, check_against_reference, publish, script
from .test_cli import cli, cli_env
from .test_faults import FAST_FAILOVER

IDLE_S = 8.0
BUFFERED = {"PROFILE_STREAM_FLUSH_IDLE_S": str(IDLE_S), "PROFILE_STREAM_FLUSH_TICK_S": "0.2"}


def calls_per_user(fake: FakeLLM) -> dict[str, int]:
    counts: dict[str, int] = {}
    for request in fake.requests:
        user = request["messages"][0]["content"].rsplit(" ", 1)[-1]
        counts[user] = counts.get(user, 0) + 1
    return counts


async def flushes(url: str) -> float:
    """The worker's flushes so far, from its ``/metrics``."""
    async with aiohttp.ClientSession() as s, s.get(f"{url}/metrics") as r:
        text = await r.text()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("profile_stream_flushes_total{")
    )


async def test_a_conversation_waits_committed_and_costs_one_call_once_idle(
    start_worker: StartWorker, kafka: Kafka, names: Names, fake_llm: FakeLLM
) -> None:
    users, per_user = 3, 4
    script(fake_llm, users, per_user)
    await start_worker(**BUFFERED)
    sent = await publish(kafka, names, users, per_user)
    published = time.monotonic()
    await kafka.wait_committed(names.prefix, names.input, await kafka.end_offsets(names.input))
    committed_s = time.monotonic() - published
    # Acknowledged while buffered: a long wait holds neither commits nor read-ahead.
    assert fake_llm.requests == [], f"a model call before the idle wait ({committed_s:.1f}s)"
    records = await kafka.read(names.output, all_applied(len(sent)), timeout=60)
    fresh_s = time.monotonic() - published
    report = check_against_reference(records, sent, per_user)
    assert report["events"] == users  # one version per conversation
    assert calls_per_user(fake_llm) == {str(u): 1 for u in range(users)}
    assert all(len(e["source_message_ids"]) == per_user for e in decode(records))
    assert IDLE_S <= fresh_s < IDLE_S + 10, f"events {fresh_s:.1f}s after the messages"


async def test_kill_nine_while_buffered_loses_nothing(
    start_worker: StartWorker, kafka: Kafka, names: Names, fake_llm: FakeLLM
) -> None:
    users, per_user = 4, 5
    script(fake_llm, users, per_user)
    env = FAST_FAILOVER | BUFFERED
    worker = await start_worker(**env)
    sent = await publish(kafka, names, users, per_user)
    await kafka.wait_committed(names.prefix, names.input, await kafka.end_offsets(names.input))
    assert fake_llm.requests == []
    worker.kill()  # the messages exist only in the buffers now (and their changelog)
    # A new worker with an empty data dir: the buffers come back from the changelog.
    await start_worker(index=1, **env)
    records = await kafka.read(names.output, all_applied(len(sent)), timeout=90)
    report = check_against_reference(records, sent, per_user)
    assert report["events"] == users
    assert calls_per_user(fake_llm) == {str(u): 1 for u in range(users)}


@pytest.mark.faults
async def test_kill_nine_while_a_flush_is_at_the_model_applies_it_once(
    start_worker: StartWorker, kafka: Kafka, names: Names, fake_llm: FakeLLM
) -> None:
    users, per_user = 3, 4
    script(fake_llm, users, per_user)
    fake_llm.latency = lambda: 1.0  # below the tests' 2 s model timeout
    env = FAST_FAILOVER | BUFFERED | {"PROFILE_STREAM_FLUSH_IDLE_S": "1"}
    worker = await start_worker(**env)
    sent = await publish(kafka, names, users, per_user)
    deadline = time.monotonic() + 30
    while not fake_llm.requests:  # noqa: ASYNC110 - waiting for the model to be asked
        assert time.monotonic() < deadline, "no flush reached the model"
        await asyncio.sleep(0.05)
    worker.kill()  # the answers never come back to this worker
    asked_before_kill = len(fake_llm.requests)
    await start_worker(index=1, **env)
    records = await kafka.read(names.output, all_applied(len(sent)), timeout=90)
    report = check_against_reference(records, sent, per_user)
    assert report["events"] == users
    assert len(fake_llm.requests) > asked_before_kill  # asked again: nothing was applied
    print(f"\nflush killed at the model: {asked_before_kill} calls lost, applied once")


async def test_buffers_move_with_their_partitions_on_a_rebalance(
    start_worker: StartWorker, kafka: Kafka, names: Names, fake_llm: FakeLLM
) -> None:
    users, per_user = 8, 3
    script(fake_llm, users, per_user)
    # No trigger fires by itself (a slow start of the second worker must not let the first
    # flush everything before the move); each buffer is flushed by a command, applied in its
    # user's partition by whoever owns it once the second worker has its share.
    env = BUFFERED | {
        "PROFILE_STREAM_FLUSH_IDLE_S": "3600",
        "PROFILE_STREAM_FLUSH_MAX_AGE_S": "3600",
    }
    first = await start_worker(**env)
    sent = await publish(kafka, names, users, per_user)
    await kafka.wait_committed(names.prefix, names.input, await kafka.end_offsets(names.input))
    second = await start_worker(index=1, **env)  # takes half the partitions, buffers included
    for user in sorted({m["user_id"] for m in sent}):
        await flush_profile(first.url, user, token=ADMIN_TOKEN)
    records = await kafka.read(names.output, all_applied(len(sent)), timeout=90)
    report = check_against_reference(records, sent, per_user)
    assert report["events"] == users
    assert calls_per_user(fake_llm) == {str(u): 1 for u in range(users)}
    by_worker: dict[str, Any] = {"first": await flushes(first.url)}
    by_worker["second"] = await flushes(second.url)
    assert by_worker["second"] > 0, f"the new owner flushed nothing: {by_worker}"
    assert sum(by_worker.values()) == users, by_worker


async def test_messages_too_big_for_one_changelog_write_together_are_buffered_and_flushed(
    start_worker: StartWorker, kafka: Kafka, names: Names, fake_llm: FakeLLM
) -> None:
    """Review F3 (proof p06) on the real stack: two messages of 600 kB (their metadata) fit one
    changelog write each, not together; a third would not fit one alone. A record holding its
    buffer (89ab65a) made the producer refuse its write and the worker crash at every
    redelivery; an entry per message does not, and the third is dead-lettered."""
    fake_llm.on("Spanish", {"field": "languages", "op": "add", "value": "Spanish"})
    worker = await start_worker(**BUFFERED)
    for text, size in (("Hello", 600_000), ("I speak Spanish", 600_000), ("French", 999_000)):
        await kafka.send(names.input, message("big", text, metadata={"blob": "x" * size}))
    (event,) = decode(await kafka.read(names.output, lambda r: len(r) >= 1))
    assert (event["user_id"], event["profile"]["languages"]) == ("big", ["Spanish"])
    assert len(event["source_message_ids"]) == 2
    (letter,) = decode(await kafka.read(names.dlq, lambda r: len(r) >= 1))
    assert letter["reason_code"] == "invalid_message", letter["reason"]
    assert worker.alive(), worker.tail()


async def test_an_operator_flushes_a_users_buffer_at_once(
    start_worker: StartWorker, kafka: Kafka, names: Names, fake_llm: FakeLLM
) -> None:
    users, per_user = 2, 3
    script(fake_llm, users, per_user)
    worker = await start_worker(**BUFFERED | {"PROFILE_STREAM_FLUSH_IDLE_S": "600"})
    sent = await publish(kafka, names, users, per_user)
    await kafka.wait_committed(names.prefix, names.input, await kafka.end_offsets(names.input))
    asked = time.monotonic()
    # One user through the client, the other from the command line, as an operator would.
    await flush_profile(worker.url, "user-00", token=ADMIN_TOKEN)
    flushed = await cli(cli_env(names, worker), "flush", "user-01", "--json")
    assert flushed.code == 0, flushed.err
    assert orjson.loads(flushed.out)["status"] == "accepted"
    records = await kafka.read(names.output, all_applied(len(sent)), timeout=60)
    assert time.monotonic() - asked < 30  # not the 600 s idle wait
    assert check_against_reference(records, sent, per_user)["events"] == users
    assert calls_per_user(fake_llm) == {"0": 1, "1": 1}
