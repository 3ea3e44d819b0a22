"""Model calls on the real stack are what the triggers say, run after run: one call per user and
conversation, and ``profile_stream_model_calls_total`` counts exactly the requests the model
server received, by flush reason and outcome.

Each user replays the same conversations: the first ones are flushed when the next one begins
(``new_conversation``), the last one by its ``end_of_conversation`` marker (an app that knows
when a chat closes), so nothing waits for the idle trigger.
"""

import asyncio
import time
from collections import Counter
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes.llm_server import FakeLLM

from .conftest import StartWorker
from .harness import Kafka, Names, decode, message

USERS, CONVERSATIONS, TURNS = 3, 3, 4
DEFAULTS = {"PROFILE_STREAM_FLUSH_IDLE_S": "60"}  # the default (the harness sets 0)


def conversations(users: int = USERS, turns: int = TURNS) -> list[dict[str, Any]]:
    """Each user's conversations in order, a user turn then an assistant turn, all at once."""
    sent = []
    for u in range(users):
        for c in range(CONVERSATIONS):
            for t in range(turns):
                last = c == CONVERSATIONS - 1 and t == turns - 1
                sent.append(
                    message(
                        f"calls-{u}",
                        f"user {u} conversation {c} turn {t} likes topic{c}",
                        role="user" if t % 2 == 0 else "assistant",
                        conversation_id=f"c{c}",
                        sent_at=f"2026-11-25T09:{c:02d}:{t:02d}+00:00",
                        **({"end_of_conversation": True} if last else {}),
                    )
                )
    return sent


async def scrape(url: str) -> list[Any]:
    async with aiohttp.ClientSession() as s, s.get(f"{url}/metrics") as r:
        return list(text_string_to_metric_families(await r.text()))


def model_calls(families: list[Any]) -> Counter[tuple[str, str]]:
    """``profile_stream_model_calls_total`` by (reason, outcome)."""
    counts: Counter[tuple[str, str]] = Counter()
    for family in families:
        for sample in family.samples:
            if sample.name == "profile_stream_model_calls_total":
                counts[sample.labels["reason"], sample.labels["outcome"]] += int(sample.value)
    return counts


def settled(families: list[Any], published: int) -> bool:
    """Every message read, nothing buffered, held or at the model (as ``eval`` waits)."""
    values = {s.name: s.value for f in families for s in f.samples if not s.labels}
    read = sum(s.value for f in families for s in f.samples if s.name == _EVENTS_IN)
    return read >= published and all(values.get(g, 1) == 0 for g in _IDLE)


_EVENTS_IN = "profile_stream_events_in_total"
_VERSIONS = "profile_stream_profile_versions_written_total"
_IDLE = [
    "profile_stream_" + g
    for g in ("consumer_lag", "buffered_users", "in_flight_extractions", "pending_events")
]


def script(fake: FakeLLM) -> None:
    for c in range(CONVERSATIONS):
        fake.on(f"likes topic{c}", {"field": "common_topics", "op": "add", "value": f"topic{c}"})


async def replay(
    start_worker: StartWorker,
    kafka: Kafka,
    names: Names,
    fake: FakeLLM,
    sent: list[dict[str, Any]],
    **env: str,
) -> Counter[tuple[str, str]]:
    """Publish ``sent`` to a fresh worker; once it has settled, return its counted calls
    (checked against what the server received)."""
    script(fake)
    worker = await start_worker(**DEFAULTS | env)
    await kafka.send_all(names.input, sent)
    deadline = time.monotonic() + 90
    streak = 0
    while streak < 2:  # twice in a row: a flush may be between two of its steps
        assert time.monotonic() < deadline, f"not settled: {worker.log}"
        await asyncio.sleep(0.3)
        families = await scrape(worker.url)
        streak = streak + 1 if settled(families, len(sent)) else 0
    versions = sum(s.value for f in families for s in f.samples if s.name == _VERSIONS)
    records = await kafka.read(names.output, lambda r: len(r) >= versions)
    flushed = Counter(i for e in decode(records) for i in e["source_message_ids"])
    assert max(flushed.values(), default=1) == 1, "a message in two versions"
    counted = model_calls(families)
    assert sum(counted.values()) == len(fake.requests), (counted, len(fake.requests))
    return counted


@pytest.mark.parametrize("run", [1, 2])
async def test_a_replay_at_the_default_settings_makes_one_call_per_user_and_conversation(
    start_worker: StartWorker, kafka: Kafka, names: Names, fake_llm: FakeLLM, run: int
) -> None:
    counted = await replay(start_worker, kafka, names, fake_llm, conversations())
    assert len(fake_llm.requests) == USERS * CONVERSATIONS, f"run {run}"
    assert counted == {
        ("new_conversation", "ok"): USERS * (CONVERSATIONS - 1),
        ("end_of_conversation", "ok"): USERS,
    }


async def test_a_model_slower_than_the_idle_trigger_still_makes_one_call_per_conversation(
    start_worker: StartWorker, kafka: Kafka, names: Names, fake_llm: FakeLLM
) -> None:
    # The held-out run's shape, scaled down: a backlog read at once, a model slower than the idle
    # trigger, a user's 21 messages past the scheduler's batch of 20: when the first batch ends,
    # its records are older than the trigger, but the user's last message is already read and
    # waiting. Each conversation must still be one call.
    fake_llm.latency = lambda: 0.8
    sent = conversations(turns=7)
    counted = await replay(
        start_worker, kafka, names, fake_llm, sent, PROFILE_STREAM_FLUSH_IDLE_S="1"
    )
    assert len(fake_llm.requests) == USERS * CONVERSATIONS, counted
    assert {outcome for _, outcome in counted} == {"ok"}
