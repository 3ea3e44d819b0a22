"""Read-your-writes on the real stack, with the default flush settings (60 s of quiet): a
message waits in its user's buffer; a read says so (freshness); ``?wait_for`` does not flush
and times out with 504 at once; a refresh with a read token extracts it with one model call and
answers the profile that reflects it."""

import asyncio
import statistics
import time
from typing import Any

import aiohttp

from streams.client import publish_turn
from streams.settings import Settings
from tests.fakes.llm_server import FakeLLM

from .conftest import StartWorker
from .harness import BOOTSTRAP, READ_TOKEN, Names

#: The worker's default idle trigger, given explicitly: the integration harness sets 0.
DEFAULT_IDLE = str(Settings.model_fields["flush_idle_s"].default)
AUTH = {"Authorization": f"Bearer {READ_TOKEN}"}


async def call(method: str, url: str) -> tuple[int, Any, float]:
    """Status, JSON body and seconds taken of one request with the read token."""
    started = time.monotonic()
    async with aiohttp.ClientSession() as s, s.request(method, url, headers=AUTH) as r:
        return r.status, await r.json(), time.monotonic() - started


async def test_a_buffered_message_is_reflected_after_a_refresh_with_one_model_call(
    start_worker: StartWorker, names: Names, fake_llm: FakeLLM
) -> None:
    assert DEFAULT_IDLE == "60.0"
    fake_llm.on("I'm Alice", {"field": "name", "op": "set", "value": "Alice"})
    worker = await start_worker(PROFILE_STREAM_FLUSH_IDLE_S=DEFAULT_IDLE)
    profile = f"{worker.url}/profiles/alice"
    said, answered = await publish_turn(
        "alice", "I'm Alice", "Hello Alice!", bootstrap=BOOTSTRAP, topic=names.input
    )

    status, body, took = await call("GET", f"{profile}?wait_for={said}&timeout_s=1")
    assert status == 504, body
    assert f"message {said!r} is not reflected" in body["error"] and "refresh" in body["error"]
    assert took < 3
    status, body, _ = await call("GET", profile)  # buffered, and the answer says so
    assert status == 200 and body["freshness"]["buffered_messages"] == 2
    assert body["freshness"]["last_message_id"] is None and fake_llm.requests == []

    status, body, _ = await call("POST", f"{profile}/refresh?timeout_s=30&include=usage")
    assert status == 200, body
    assert body["profile"]["name"] == "Alice"
    assert body["freshness"]["buffered_messages"] == 0
    assert body["freshness"]["last_message_id"] == answered  # the turn's newest message
    assert body["usage"]["total"]["calls"] == 1 and len(fake_llm.requests) == 1

    status, body, took = await call("GET", f"{profile}?wait_for={said}&timeout_s=1")
    assert status == 200 and body["profile"]["name"] == "Alice" and took < 1
    # Nothing buffered any more: a refresh answers at once and costs no call.
    status, body, _ = await call("POST", f"{profile}/refresh?include=usage")
    assert status == 200 and body["usage"]["total"]["calls"] == 1
    assert len(fake_llm.requests) == 1


async def test_refresh_latency_with_the_fake_model(
    start_worker: StartWorker, names: Names, fake_llm: FakeLLM
) -> None:
    """Publish a turn, refresh at once: each refresh reflects its turn with one model call.
    The time it took is printed, not asserted (docs/contracts.md, "Read-your-writes", quotes
    it; run with -s to see it)."""
    fake_llm.on("I'm Bea", {"field": "name", "op": "set", "value": "Bea"})
    worker = await start_worker(PROFILE_STREAM_FLUSH_IDLE_S=DEFAULT_IDLE)
    rounds, seconds = 20, []
    for i in range(rounds):
        user = f"bea-{i}"
        await publish_turn(user, "I'm Bea", "Hi!", bootstrap=BOOTSTRAP, topic=names.input)
        status, body, took = await call("POST", f"{worker.url}/profiles/{user}/refresh")
        assert status == 200 and body["profile"]["name"] == "Bea", body
        seconds.append(took)
    assert len(fake_llm.requests) == rounds  # one model call per refresh
    p50, worst = statistics.median(seconds), max(seconds)
    print(f"\nrefresh after publish_turn: p50 {p50 * 1000:.0f} ms, max {worst * 1000:.0f} ms")


async def test_without_a_refresh_the_idle_trigger_reflects_the_turn_after_a_minute(
    start_worker: StartWorker, names: Names, fake_llm: FakeLLM
) -> None:
    """The other side of the trade-off: no refresh, so no extra call, and the turn is reflected
    once the user has been quiet for the default 60 s; a waiting read wakes when it is."""
    fake_llm.on("I'm Cy", {"field": "name", "op": "set", "value": "Cy"})
    worker = await start_worker(PROFILE_STREAM_FLUSH_IDLE_S=DEFAULT_IDLE)
    said, _ = await publish_turn("cy", "I'm Cy", "Hi!", bootstrap=BOOTSTRAP, topic=names.input)
    published = time.monotonic()
    for _ in range(4):  # 30 s a wait, the longest a read may wait
        status, body, _ = await call(
            "GET", f"{worker.url}/profiles/cy?wait_for={said}&timeout_s=30"
        )
        if status == 200:
            break
        assert status == 504, body
    took = time.monotonic() - published
    assert status == 200 and body["profile"]["name"] == "Cy", body
    assert body["freshness"]["buffered_messages"] == 0 and len(fake_llm.requests) == 1
    assert took >= float(DEFAULT_IDLE)
    print(f"\nidle trigger after publish_turn: {took:.1f} s")


async def call_settled(method: str, url: str) -> tuple[int, Any]:
    """As :func:`call`, again while the worker answers 503 (a rebalance settling)."""
    for _ in range(60):
        status, body, _ = await call(method, url)
        if status != 503:
            return status, body
        await asyncio.sleep(1)  # the worker's Retry-After
    return status, body


async def test_any_worker_refreshes_forwarding_to_the_owner(
    start_worker: StartWorker, names: Names, fake_llm: FakeLLM
) -> None:
    fake_llm.on("I'm Dee", {"field": "name", "op": "set", "value": "Dee"})
    workers = [await start_worker(i, PROFILE_STREAM_FLUSH_IDLE_S=DEFAULT_IDLE) for i in range(2)]
    users = [f"dee-{i}" for i in range(8)]  # spread over the partitions: both workers own some
    for user in users:
        await publish_turn(user, "I'm Dee", "Hi!", bootstrap=BOOTSTRAP, topic=names.input)
    for user in users:
        for worker in workers:  # one of the two forwards the POST to the other
            status, body = await call_settled("POST", f"{worker.url}/profiles/{user}/refresh")
            assert status == 200 and body["profile"]["name"] == "Dee", body
            assert body["freshness"]["buffered_messages"] == 0
    assert len(fake_llm.requests) == len(users)  # the second refresh of each found nothing
