"""Forget that stays forgotten: a tombstone remembers what was applied (real Kafka, RocksDB)."""

from collections import defaultdict
from typing import Any

import aiohttp
import orjson

from tests.fakes.llm_server import FakeLLM, Fault

from .conftest import StartWorker
from .harness import ADMIN_TOKEN, READ_TOKEN, Kafka, Names, decode, message
from .test_cli import cli, cli_env
from .test_metrics import scrape


async def http(method: str, url: str, token: str) -> int:
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as s, s.request(method, url, headers=headers) as r:
        await r.read()
        return r.status


def check_history(raw: list[bytes], user: str) -> list[dict[str, Any]]:
    """Every event of ``user``: one content per event id, versions 1..n without a gap."""
    contents: dict[str, set[bytes]] = defaultdict(set)
    events = []
    for value in raw:
        event = orjson.loads(value)
        if event["user_id"] == user:
            contents[event["event_id"]].add(value)
            events.append(event)
    assert all(len(c) == 1 for c in contents.values()), "an event id with two contents"
    versions = sorted({e["version"] for e in events})
    assert versions == list(range(1, len(versions) + 1)), versions
    return events


async def speaks_welsh_from_empty(
    kafka: Kafka, names: Names, message_id: str, types: list[str]
) -> None:
    """erin says "I speak Welsh" after her forget: it starts a profile from empty, and her
    events are then of ``types``, versions 1 to n."""
    await kafka.send(names.input, message("erin", "I speak Welsh", message_id=message_id))
    raw = [r.value for r in await kafka.read(names.output, lambda r: len(r) >= len(types))]
    events = check_history(raw, "erin")
    expected = [(f"erin:{n}", type_) for n, type_ in enumerate(types, 1)]
    assert [(e["event_id"], e["type"]) for e in events] == expected
    fresh = events[-1]["profile"]
    assert fresh["languages"] == ["Welsh"] and fresh["name"] is None and fresh["location"] is None


async def test_forget_then_redelivery_of_older_messages_does_not_bring_the_profile_back(
    start_worker: StartWorker, kafka: Kafka, names: Names, fake_llm: FakeLLM
) -> None:
    fake_llm.on("I'm Erin", {"field": "name", "op": "set", "value": "Erin"})
    fake_llm.on("I live in Oslo", {"field": "location", "op": "set", "value": "Oslo"})
    fake_llm.on("I speak Norwegian", {"field": "languages", "op": "add", "value": "Norwegian"})
    fake_llm.on("I speak Welsh", {"field": "languages", "op": "add", "value": "Welsh"})
    worker = await start_worker()
    url = f"{worker.url}/profiles/erin"
    for n, text in enumerate(("I'm Erin", "I live in Oslo", "I speak Norwegian"), 1):
        await kafka.send(names.input, message("erin", text, message_id=f"m{n}"))
        await kafka.read(names.output, lambda r, n=n: len(r) >= n)  # one version each
    assert await http("DELETE", url, ADMIN_TOKEN) == 202  # a signed forget on the input topic
    before = await kafka.read(names.output, lambda r: len(r) >= 4)
    assert [orjson.loads(r.value)["type"] for r in before] == ["updated"] * 3 + ["deleted"]
    ends = await kafka.end_offsets(names.input)
    await kafka.wait_committed(names.prefix, names.input, ends)
    worker.stop()

    # The group's offsets go back to before m1: m1..m3 and the forget are delivered again.
    await kafka.rewind(names.prefix, names.input)
    calls_before = len(fake_llm.requests)
    worker = await start_worker(index=0)
    url = f"{worker.url}/profiles/erin"
    assert await kafka.wait_committed(names.prefix, names.input, ends) == ends
    assert await http("GET", url, READ_TOKEN) == 404
    assert len(fake_llm.requests) == calls_before  # nothing redelivered went to the model
    after = await kafka.read(names.output, lambda r: len(r) >= 4)
    assert [r.value for r in after] == [r.value for r in before]  # no event, none again

    # A message after the forget starts from empty, at the version after the deleted event.
    await speaks_welsh_from_empty(kafka, names, "m5", ["updated"] * 3 + ["deleted", "updated"])
    assert await http("GET", url, READ_TOKEN) == 200


async def test_a_dead_letter_replayed_after_the_forget_does_not_bring_the_profile_back(
    start_worker: StartWorker, kafka: Kafka, names: Names, fake_llm: FakeLLM
) -> None:
    fake_llm.on("I'm Erin", {"field": "name", "op": "set", "value": "Erin"})
    fake_llm.on(
        "I live in Oslo",
        {"field": "location", "op": "set", "value": "Oslo"},
        faults=[Fault(status=400, times=1)],  # the model refuses it once: dead-lettered
    )
    fake_llm.on("I speak Welsh", {"field": "languages", "op": "add", "value": "Welsh"})
    worker = await start_worker()
    url = f"{worker.url}/profiles/erin"
    await kafka.send(names.input, message("erin", "I'm Erin", message_id="m1"))
    await kafka.read(names.output, lambda r: len(r) >= 1)
    await kafka.send(names.input, message("erin", "I live in Oslo", message_id="m2"))
    await kafka.read(names.dlq, lambda r: [d["message_id"] for d in decode(r)] == ["m2"])
    assert await http("DELETE", url, ADMIN_TOKEN) == 202
    await kafka.read(names.output, lambda r: len(r) >= 2)
    skipped = "profile_stream_pre_forget_skipped_total{by=offset}"
    before = (await scrape(worker.url)).get(skipped, 0.0)

    # The operator replays the dead letters after the outage, with the real CLI.
    replayed = await cli(cli_env(names, worker), "dlq", "replay", "--all", "--json")
    assert replayed.code == 0, replayed.err
    assert len(orjson.loads(replayed.out)["replayed"]) == 1
    ends = await kafka.end_offsets(names.input)
    assert await kafka.wait_committed(names.prefix, names.input, ends) == ends
    assert await http("GET", url, READ_TOKEN) == 404
    assert fake_llm.calls_for("I live in Oslo") == 1  # the replay never reached the model
    assert (await scrape(worker.url)).get(skipped, 0.0) == before + 1

    # A message after the forget builds a new profile without anything from before it.
    await speaks_welsh_from_empty(kafka, names, "m3", ["updated", "deleted", "updated"])
