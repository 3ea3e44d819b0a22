"""Profile history on the real stack: field revisions read back as of every version and time,
a rollback then a new message, a forget that leaves no revision, and a replay that gives the
same revisions and events (real Kafka, RocksDB, workers and the scripted model)."""

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import orjson
from aiokafka.structs import ConsumerRecord

from tests.fakes.llm_server import FakeLLM

from .conftest import StartWorker
from .harness import ADMIN_TOKEN, Kafka, Names, decode, message
from .test_cli import cli, cli_env
from .test_pipeline import http

T0 = datetime.fromisoformat("2026-11-25T10:00:00+00:00")
PLACES = [("I live in Lyon", "Lyon"), ("I moved to Paris", "Paris"), ("Now I live in Oslo", "Oslo")]


def script(fake: FakeLLM) -> None:
    for text, city in PLACES:
        fake.on(text, {"field": "location", "op": "set", "value": city, "quote": text})
    fake.on("Call me Ann", {"field": "name", "op": "set", "value": "Ann", "quote": "Call me Ann"})
    fake.on("Now in Rome", {"field": "location", "op": "set", "value": "Rome"})


def said(n: int, text: str) -> dict[str, Any]:
    """Ann's message ``m<n>``, sent at T0 + n hours."""
    sent = (T0 + timedelta(hours=n)).isoformat()
    return message("ann", text, message_id=f"m{n}", sent_at=sent)


async def one_by_one(kafka: Kafka, names: Names, texts: list[str]) -> None:
    """Send ``texts`` as m1, m2..., each once the previous one's event is out, so each message
    is its own version."""
    for n, text in enumerate(texts, 1):
        await kafka.send(names.input, said(n, text))
        await kafka.read(names.output, lambda r, n=n: len(r) >= n)


def last_stored(records: list[ConsumerRecord[bytes, bytes]]) -> bytes:
    """The last value the table's changelog holds for ann (empty if none yet)."""
    values = [r.value for r in records if r.key == b"ann" and r.value is not None]
    return values[-1] if values else b""


def places(records: list[ConsumerRecord[bytes, bytes]]) -> dict[str, tuple[int, int]]:
    """Input id (message or command) to the partition and offset of its record."""
    found = {}
    for record in records:
        body = orjson.loads(record.value)
        found[body.get("message_id") or body["command_id"]] = (record.partition, record.offset)
    return found


async def test_a_field_changed_several_times_reads_as_of_each_version_and_each_time_between(
    start_worker: StartWorker, kafka: Kafka, names: Names, fake_llm: FakeLLM
) -> None:
    script(fake_llm)
    worker = await start_worker()
    await one_by_one(kafka, names, [text for text, _ in PLACES] + ["Call me Ann"])
    events = decode(await kafka.read(names.output, lambda r: len(r) >= 4))
    assert [e["version"] for e in events] == [1, 2, 3, 4]
    url = f"{worker.url}/profiles/ann"

    for event in events:  # as of each version: the profile its event announced
        status, body = await http("GET", f"{url}?version={event['version']}")
        assert status == 200, body
        assert body["profile"] == event["profile"] and body["current_version"] == 4
        assert datetime.fromisoformat(body["updated_at"]) == datetime.fromisoformat(
            event["updated_at"]
        )
        between = datetime.fromisoformat(event["updated_at"]) + timedelta(minutes=30)
        status, body = await http("GET", f"{url}?as_of={between.isoformat().replace('+', '%2B')}")
        assert (status, body["version"], body["profile"]) == (
            200,
            event["version"],
            event["profile"],
        )
    status, body = await http("GET", f"{url}?as_of=2026-11-25T10:59:59Z")
    assert (status, body["error"]) == (
        404,
        "the profile had no version yet at 2026-11-25T10:59:59+00:00",
    )

    # Each revision, and each event's evidence, names the input record it came from.
    where = places(await kafka.read(names.input, lambda r: len(r) >= 4))
    status, body = await http("GET", f"{url}/history?field=location")
    location = body["fields"]["location"]
    assert status == 200 and not location["truncated"] and body["history_from"] == 0
    assert [(r["version"], r["op"], r["value"]) for r in location["revisions"]] == [
        (1, "set", "Lyon"),
        (2, "set", "Paris"),
        (3, "set", "Oslo"),
    ]
    for n, revision in enumerate(location["revisions"], 1):
        evidence = revision["evidence"]
        assert evidence["message_id"] == f"m{n}" and evidence["quote"] == PLACES[n - 1][0]
        assert (evidence["topic"], (evidence["partition"], evidence["offset"])) == (
            names.input,
            where[f"m{n}"],
        )
        assert events[n - 1]["changes"][0]["evidence"] == evidence

    # The same through the CLI, which reads the worker's table, not the topic.
    env = cli_env(names, worker)
    listed = await cli(env, "history", "ann", "--field", "location")
    assert listed.code == 0, listed.err
    assert [line.split()[:4] for line in listed.lines] == [
        [f"v{n}", revision["at"], "set", f'"{city}"']
        for n, (revision, (_, city)) in enumerate(
            zip(location["revisions"], PLACES, strict=True), 1
        )
    ]
    assert f"from m2 ({names.input}/{where['m2'][0]}@{where['m2'][1]})" in listed.lines[1]
    got = await cli(env, "get", "ann", "--as-of", "2026-11-25T12:30:00Z")
    assert got.code == 0 and "version 2 of 4" in got.out and "location: Paris" in got.out
    shown = await cli(env, "show-source", "ann:2", "location")
    assert shown.code == 0, shown.err
    assert orjson.loads(shown.lines[-1]) == said(2, "I moved to Paris")
    versions = await cli(env, "history", "ann")
    assert [line.split()[0] for line in versions.lines] == ["v1", "v2", "v3", "v4"]


async def test_a_rollback_then_a_new_message_and_the_bound_says_what_it_dropped(
    start_worker: StartWorker, kafka: Kafka, names: Names, fake_llm: FakeLLM
) -> None:
    script(fake_llm)
    worker = await start_worker(PROFILE_STREAM_REVISIONS_PER_FIELD="2")
    await one_by_one(kafka, names, [text for text, _ in PLACES])
    url = f"{worker.url}/profiles/ann"
    status, body = await http("GET", f"{url}?version=1")
    assert status == 410
    assert "'location' at version 1 is no longer kept" in body["error"]
    assert "PROFILE_STREAM_REVISIONS_PER_FIELD" in body["error"]
    env = cli_env(names, worker)
    refused = await cli(env, "revert", "ann", "--version", "1", "--field", "location")
    assert refused.code == 1 and "no longer kept" in refused.err

    reverted = await cli(env, "revert", "ann", "--version", "2", "--field", "location", "--lock")
    assert reverted.code == 0, reverted.err
    command_id = reverted.out.strip()
    events = decode(await kafka.read(names.output, lambda r: len(r) >= 4))
    assert len(events) == 4  # the refused revert sent nothing
    (change,) = events[3]["changes"]
    assert (change["field"], change["op"], change["old"], change["new"]) == (
        "location",
        "revert",
        "Oslo",
        "Paris",
    )
    assert change["restored_version"] == 2 and change["evidence"]["message_id"] == command_id
    assert (
        change["evidence"]["offset"]
        == places(await kafka.read(names.input, lambda r: len(r) >= 4))[command_id][1]
    )

    # The next message applies on top of the rolled-back profile; the lock holds the revert.
    await kafka.send(names.input, said(5, "Call me Ann. Now in Rome"))
    events = decode(await kafka.read(names.output, lambda r: len(r) >= 5))
    assert events[4]["profile"]["name"] == "Ann" and events[4]["profile"]["location"] == "Paris"
    status, body = await http("GET", f"{url}/history?field=location")
    location = body["fields"]["location"]
    assert location["truncated"]
    assert [(r["version"], r["op"], r["value"]) for r in location["revisions"]] == [
        (3, "set", "Oslo"),
        (4, "revert", "Paris"),
    ]
    status, body = await http("GET", f"{url}?version=3")
    assert (status, body["profile"]["location"], body["profile"]["name"]) == (200, "Oslo", None)
    status, body = await http("GET", f"{url}?version=4")
    assert (body["profile"]["location"], body["profile"]["name"]) == ("Paris", None)


async def test_a_forget_leaves_no_revision_behind(
    start_worker: StartWorker, kafka: Kafka, names: Names, fake_llm: FakeLLM
) -> None:
    script(fake_llm)
    worker = await start_worker()
    await one_by_one(kafka, names, ["I live in Lyon", "I moved to Paris"])
    url = f"{worker.url}/profiles/ann"
    assert (await http("DELETE", url, ADMIN_TOKEN))[0] == 202
    events = decode(await kafka.read(names.output, lambda r: len(r) >= 3))
    assert events[2]["type"] == "deleted"
    for path in ("/history", "?version=1", "/history?field=location"):
        assert (await http("GET", url + path))[0] == 404

    marker = last_stored(
        await kafka.read(names.changelog, lambda r: b'"forgotten_at"' in last_stored(r))
    )
    assert b"history" not in marker and b"Lyon" not in marker and b"Paris" not in marker

    # A message after the forget starts a profile whose history starts at the deleted version.
    await kafka.send(names.input, said(4, "Call me Ann"))
    await kafka.read(names.output, lambda r: len(r) >= 4)
    status, body = await http("GET", f"{url}/history")
    assert status == 200 and body["history_from"] == 3 and set(body["fields"]) == {"name"}
    status, body = await http("GET", f"{url}?version=2")
    assert status == 410 and "starts at version 3" in body["error"]
    latest = last_stored(await kafka.read(names.changelog, lambda r: b'"Ann"' in last_stored(r)))
    assert b"Lyon" not in latest and b"Paris" not in latest


async def test_a_replay_gives_the_same_revisions_and_events(
    start_worker: StartWorker, kafka: Kafka, names: Names, fake_llm: FakeLLM
) -> None:
    script(fake_llm)
    one_per_batch = {"PROFILE_STREAM_MAX_BATCH_MESSAGES": "1"}  # versions do not hang on timing
    worker = await start_worker(**one_per_batch)
    for n, (text, _) in enumerate(PLACES, 1):
        await kafka.send(names.input, said(n, text))
    await kafka.read(names.output, lambda r: len(r) >= 3)
    revert = {"version": 1, "fields": ["location"]}
    assert (await http("POST", f"{worker.url}/profiles/ann/revert", ADMIN_TOKEN, revert))[0] == 202
    await kafka.read(names.output, lambda r: len(r) >= 4)
    await kafka.send(names.input, said(5, "Call me Ann"))
    first = await kafka.read(names.output, lambda r: len(r) >= 5)
    history = (await http("GET", f"{worker.url}/profiles/ann/history"))[1]
    assert [r["op"] for r in history["fields"]["location"]["revisions"]] == [
        "set",
        "set",
        "set",
        "revert",
    ]
    ends = await kafka.end_offsets(names.input)
    await kafka.wait_committed(names.prefix, names.input, ends)
    worker.stop()

    # The group's offsets reset: everything is delivered again and skipped as applied.
    await kafka.rewind(names.prefix, names.input)
    calls = len(fake_llm.requests)
    worker = await start_worker(index=0, **one_per_batch)
    assert await kafka.wait_committed(names.prefix, names.input, ends) == ends
    assert (await http("GET", f"{worker.url}/profiles/ann/history"))[1] == history
    again = await kafka.read(names.output, lambda r: len(r) >= 5, timeout=5)
    assert [r.value for r in again] == [r.value for r in first] and len(fake_llm.requests) == calls
    worker.stop()

    # A new app replays the same input into an empty table: the same events, byte for byte,
    # and the same revisions.
    replay = f"{names.prefix}-replay"
    worker = await start_worker(index=1, PROFILE_STREAM_APP_ID=replay, **one_per_batch)
    await kafka.wait_committed(replay, names.input, ends)
    both = await kafka.read(names.output, lambda r: len(r) >= 10)
    contents: dict[str, set[bytes]] = defaultdict(set)
    for record in both:
        contents[orjson.loads(record.value)["event_id"]].add(record.value)
    assert sorted(contents) == [f"ann:{v}" for v in range(1, 6)]
    assert all(len(c) == 1 for c in contents.values()), "an event id with two contents"
    assert (await http("GET", f"{worker.url}/profiles/ann/history"))[1] == history
