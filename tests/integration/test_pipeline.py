"""The product's main promise, end to end on real Kafka, RocksDB and a scripted model."""

import random
from typing import Any

import aiohttp
import orjson

from tests.fakes.llm_server import FakeLLM

from .conftest import StartWorker
from .harness import ADMIN_TOKEN, PARTITIONS, READ_TOKEN, Kafka, Names, decode, message


async def http(
    method: str, url: str, token: str | None = READ_TOKEN, body: dict[str, Any] | None = None
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        aiohttp.ClientSession() as s,
        s.request(method, url, headers=headers, json=body) as r,
    ):
        text = await r.text()
        try:
            return r.status, orjson.loads(text)
        except orjson.JSONDecodeError:
            return r.status, text


def seed_script(fake: FakeLLM) -> None:
    fake.on(
        "I'm Alice from California",
        {"field": "name", "op": "set", "value": "Alice", "quote": "I'm Alice"},
        {"field": "location", "op": "set", "value": "California"},
        {"field": "timezone", "op": "set", "value": "America/Los_Angeles"},
    )
    fake.on("I speak Spanish too", {"field": "languages", "op": "add", "value": "Spanish"})


async def test_seed_conversation_builds_one_profile_in_two_versions(
    start_worker: StartWorker, kafka: Kafka, names: Names, fake_llm: FakeLLM
) -> None:
    seed_script(fake_llm)
    worker = await start_worker()
    first = message("alice", "I'm Alice from California")
    second = message("alice", "I speak Spanish too!")
    # A user's messages that arrive close together share one model call and one version;
    # these two come a reply apart, as in a conversation.
    await kafka.send(names.input, first)
    await kafka.read(names.output, lambda r: len(r) >= 1)
    await kafka.send(names.input, second)

    events = decode(await kafka.read(names.output, lambda r: len(r) >= 2))

    assert [e["event_id"] for e in events] == ["alice:1", "alice:2"]
    latest = events[1]["profile"]
    assert latest["name"] == "Alice"
    assert latest["timezone"] == "America/Los_Angeles"
    assert latest["languages"] == ["Spanish"]
    assert {c["field"]: c["evidence"]["message_id"] for c in events[0]["changes"]} == {
        "name": first["message_id"],
        "location": first["message_id"],
        "timezone": first["message_id"],
    }
    # The evidence names the message and the input record it was read from.
    [sent] = [r for r in await kafka.read(names.input, lambda r: len(r) >= 2) if r.offset == 1]
    assert events[1]["changes"] == [
        {
            "field": "languages",
            "op": "add",
            "old": [],
            "new": ["Spanish"],
            "evidence": {
                "message_id": second["message_id"],
                "quote": "I speak Spanish too",
                "topic": names.input,
                "partition": sent.partition,
                "offset": 1,
            },
        }
    ]
    assert orjson.loads(sent.value)["message_id"] == second["message_id"]
    status, body = await http("GET", f"{worker.url}/profiles/alice")
    assert status == 200
    assert body["version"] == 2 and body["profile"] == latest


async def test_messages_spread_over_partitions_end_in_one_profile(
    start_worker: StartWorker, kafka: Kafka, names: Names, fake_llm: FakeLLM
) -> None:
    """Kafka keeps no order across partitions, so a producer that ignores the user key loses
    publish order; the worker still applies each message once, to one profile, and a single
    value ends with the newest message's statement."""
    for i in range(50):
        fake_llm.on(
            f"topic number {i:02d}.",
            {"field": "common_topics", "op": "add", "value": f"t{i:02d}"},
            {"field": "last_conversation_summary", "op": "set", "value": f"chat {i}"},
        )
    await start_worker()
    rng = random.Random(7)
    sent = [
        message(
            "bob",
            f"Let's talk about topic number {i:02d}.",
            sent_at=f"2026-11-25T10:{i:02d}:00+00:00",
        )
        for i in range(50)
    ]
    for m in sent:
        await kafka.send(names.input, m, partition=rng.randrange(PARTITIONS))

    def all_applied(records: list[Any]) -> bool:
        return sum(len(e["source_message_ids"]) for e in decode(records)) >= 50

    events = decode(await kafka.read(names.output, all_applied))

    assert [e["version"] for e in events] == list(range(1, len(events) + 1))
    assert {e["user_id"] for e in events} == {"bob"}
    applied = [mid for e in events for mid in e["source_message_ids"]]
    assert sorted(applied) == sorted(m["message_id"] for m in sent)
    final = events[-1]["profile"]
    assert sorted(final["common_topics"]) == [f"t{i:02d}" for i in range(50)]
    assert final["last_conversation_summary"] == "chat 49"


async def test_redelivered_messages_change_nothing_and_emit_nothing(
    start_worker: StartWorker, kafka: Kafka, names: Names, fake_llm: FakeLLM
) -> None:
    seed_script(fake_llm)
    worker = await start_worker()
    for n, text in enumerate(("I'm Alice from California", "I speak Spanish too!"), 1):
        await kafka.send(names.input, message("carol", text))
        before = await kafka.read(names.output, lambda r, n=n: len(r) >= n)
    worker.stop()
    await kafka.rewind(names.prefix, names.input)
    calls_before = len(fake_llm.requests)

    worker = await start_worker(index=0)
    ends = await kafka.end_offsets(names.input)
    await kafka.read(names.input, lambda r: True)  # the input is there to be re-read
    committed = await kafka.wait_committed(names.prefix, names.input, ends)
    assert committed == ends
    assert "re-routed" not in worker.tail(400)

    after = await kafka.read(names.output, lambda r: len(r) >= 2)
    assert [(r.key, r.value) for r in after] == [(r.key, r.value) for r in before]
    assert len(fake_llm.requests) == calls_before


async def test_forget_then_new_message_starts_from_empty_and_lock_survives_extraction(
    start_worker: StartWorker, kafka: Kafka, names: Names, fake_llm: FakeLLM
) -> None:
    seed_script(fake_llm)
    fake_llm.on("Call me Ally", {"field": "name", "op": "set", "value": "Ally"})
    worker = await start_worker()
    url = f"{worker.url}/profiles/dave"
    await kafka.send(names.input, message("dave", "I'm Alice from California"))
    await kafka.read(names.output, lambda r: len(r) >= 1)

    status, _ = await http(
        "PATCH",
        url,
        ADMIN_TOKEN,
        {"operations": [{"field": "name", "op": "set", "value": "Dave"}], "lock": ["name"]},
    )
    assert status == 202
    await kafka.send(names.input, message("dave", "Call me Ally"))
    await kafka.send(names.input, message("dave", "I speak Spanish too"))
    events = decode(await kafka.read(names.output, lambda r: len(r) >= 3))
    assert events[-1]["profile"]["name"] == "Dave"
    assert events[-1]["profile"]["languages"] == ["Spanish"]

    status, _ = await http("DELETE", url, ADMIN_TOKEN)
    assert status == 202
    events = decode(await kafka.read(names.output, lambda r: len(r) >= 4))
    assert events[-1]["type"] == "deleted" and events[-1]["profile"] is None
    assert (await http("GET", url))[0] == 404

    await kafka.send(names.input, message("dave", "I speak Spanish too"))
    events = decode(await kafka.read(names.output, lambda r: len(r) >= 5))
    assert events[-1]["profile"]["name"] is None
    assert events[-1]["profile"]["languages"] == ["Spanish"]


async def test_profile_views_refuse_missing_or_wrong_tokens(
    start_worker: StartWorker, kafka: Kafka, names: Names, fake_llm: FakeLLM
) -> None:
    seed_script(fake_llm)
    worker = await start_worker()
    await kafka.send(names.input, message("erin", "I'm Alice from California"))
    await kafka.read(names.output, lambda r: len(r) >= 1)
    url = f"{worker.url}/profiles/erin"
    for token in (None, "wrong"):
        for method, path in (
            ("GET", url),
            ("GET", url + "/prompt"),
            ("DELETE", url),
            ("PATCH", url),
        ):
            status, body = await http(method, path, token, {} if method == "PATCH" else None)
            assert status == 401, (method, path, token, body)
    assert (await http("DELETE", url, READ_TOKEN))[0] == 403
    assert (await http("GET", url, READ_TOKEN))[0] == 200
    status, text = await http("GET", url + "/prompt", READ_TOKEN)
    assert status == 200 and "name: Alice" in text
    assert (await http("GET", f"{worker.url}/table/profiles/erin", ADMIN_TOKEN))[0] == 404
