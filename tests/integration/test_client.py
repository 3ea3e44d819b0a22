"""The app-side client on real Kafka: publish keyed by user, and a profile-event subscription
that resumes after a restart without gaps and delivers each event once."""

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from schemas import ChatMessage, ProfileEvent
from streams.client import (
    AsyncProfileStreamClient,
    BrokerUnavailable,
    ClientConfig,
    KafkaConnection,
    ProfileEvents,
    ProfileNotFound,
    ProfileStreamClient,
    Refused,
    correct_profile,
    forget_profile,
    get_profile,
    get_prompt,
    publish,
)
from streams.core.codecs import encode
from streams.core.partitioning import partition_for
from tests.fakes.llm_server import FakeLLM

from .conftest import StartWorker
from .harness import ADMIN_TOKEN, BOOTSTRAP, PARTITIONS, READ_TOKEN, Kafka, Names, decode, message

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
COMMITTED_OPENAPI = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
USERS = [f"user-{i}" for i in range(5)]


async def create_topic(name: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=PARTITIONS, replication_factor=1)])
    finally:
        await admin.close()


def event(user_id: str, version: int) -> ProfileEvent:
    return ProfileEvent.model_validate(
        {
            "event_id": f"{user_id}:{version}",
            "type": "updated",
            "user_id": user_id,
            "version": version,
            "profile": {"common_topics": [f"t{version}"]},
            "source_message_ids": [f"{user_id}-m{version}"],
            "updated_at": T0 + timedelta(minutes=version),
            "schema": "UserProfile@1",
        }
    )


async def produce_events(kafka: Kafka, topic: str, events: list[ProfileEvent]) -> None:
    for e in events:
        await kafka.send(topic, encode(e), key=e.user_id.encode())


@pytest.fixture
async def topic(names: Names, kafka: Kafka) -> AsyncIterator[str]:
    await create_topic(names.output)
    yield names.output


async def take(events: ProfileEvents, count: int) -> list[str]:
    return [(await anext(events)).event_id for _ in range(count)]


async def drain(events: ProfileEvents) -> list[str]:
    """Every event until the subscription has been idle for its idle timeout."""
    return [e.event_id async for e in events]


async def test_a_subscription_restarted_mid_stream_resumes_without_gaps_or_duplicates(
    topic: str, kafka: Kafka, names: Names
) -> None:
    sent = [event(u, v) for v in range(1, 7) for u in USERS]  # 30 events on several partitions
    await produce_events(kafka, topic, sent)
    group = f"{names.prefix}-app"

    async with ProfileEvents(
        bootstrap=BOOTSTRAP, topic=topic, group_id=group, from_beginning=True
    ) as events:
        first = await take(events, 12)

    # A worker that redelivers: copies (same id, same bytes) of one event the app has already
    # seen and of one it has not seen yet.
    seen_dup = next(e for e in sent if e.event_id == first[0])
    unseen_dup = next(e for e in sent if e.event_id not in first)
    await produce_events(kafka, topic, [seen_dup, unseen_dup])

    async with ProfileEvents(
        bootstrap=BOOTSTRAP, topic=topic, group_id=group, idle_timeout_s=3
    ) as events:
        rest = await drain(events)

    assert len(first) == len(set(first)) and len(rest) == len(set(rest))
    assert set(first).isdisjoint(rest)
    assert sorted(first + rest) == sorted(e.event_id for e in sent)
    ends = await kafka.end_offsets(topic)
    assert await kafka.committed(group, topic) == ends


async def test_leaving_on_an_exception_does_not_commit_the_event_in_hand(
    topic: str, kafka: Kafka, names: Names
) -> None:
    await produce_events(kafka, topic, [event("solo", v) for v in range(1, 5)])
    group = f"{names.prefix}-app"
    with pytest.raises(RuntimeError):
        async with ProfileEvents(
            bootstrap=BOOTSTRAP, topic=topic, group_id=group, from_beginning=True
        ) as events:
            assert await take(events, 2) == ["solo:1", "solo:2"]
            raise RuntimeError("the app failed while handling solo:2")

    async with ProfileEvents(
        bootstrap=BOOTSTRAP, topic=topic, group_id=group, idle_timeout_s=3
    ) as events:
        assert await drain(events) == ["solo:2", "solo:3", "solo:4"]


async def test_a_user_filter_and_a_forgotten_user_whose_versions_start_again(
    topic: str, kafka: Kafka
) -> None:
    """After ``deleted`` a user's versions restart at 1 with new bytes: not a duplicate."""
    deleted = event("ann", 3).model_copy(update={"event_id": "ann:3", "type": "deleted"})
    reborn = event("ann", 1).model_copy(update={"profile": {"name": "Ann"}})
    history = [event("ann", 1), event("bob", 1), event("ann", 2), deleted, reborn]
    await produce_events(kafka, topic, history)

    async with ProfileEvents(
        bootstrap=BOOTSTRAP, topic=topic, user_id="ann", from_beginning=True, idle_timeout_s=3
    ) as events:
        got = [(e.event_id, e.type) async for e in events]

    assert got == [("ann:1", "updated"), ("ann:2", "updated"), ("ann:3", "deleted")] + [
        ("ann:1", "updated")
    ]


async def test_the_sync_client_follows_users_events_apart_from_a_teams_under_the_same_key(
    topic: str, kafka: Kafka
) -> None:
    """User ``team/x`` and team ``x`` share the key ``team/x`` and their event ids."""
    user = event("team/x", 1)
    team = event("x", 1).model_copy(update={"event_id": "team/x:1", "kind": "team"})
    await kafka.send(topic, encode(user), key=b"team/x")
    await kafka.send(topic, encode(team), key=b"team/x")
    config = ClientConfig(kafka=KafkaConnection(BOOTSTRAP), events_topic=topic)

    def follow(**options: Any) -> list[tuple[str, str]]:  # sync code, as in a script
        with (
            ProfileStreamClient(config) as client,
            client.subscribe(from_beginning=True, idle_timeout_s=3, **options) as events,
        ):
            return [(e.kind, e.user_id) for e in events]

    assert await asyncio.to_thread(follow, user_id="team/x") == [("user", "team/x")]
    assert await asyncio.to_thread(follow, kind="team", user_id="x") == [("team", "x")]
    assert await asyncio.to_thread(follow, kind=None) == [("user", "team/x"), ("team", "x")]


async def test_publish_keys_by_user_on_kafkas_default_partition(topic: str, kafka: Kafka) -> None:
    messages = [
        ChatMessage(
            message_id=f"m{i}",
            user_id=USERS[i % len(USERS)],
            role="user",
            content=f"hello {i}",
            sent_at=T0,
        )
        for i in range(20)
    ]
    progress: list[int] = []

    sent = await publish(messages, bootstrap=BOOTSTRAP, topic=topic, on_sent=progress.append)

    assert sent == 20 and progress[-1] == 20
    records = await kafka.read(topic, lambda r: len(r) >= 20)
    for r in records:
        assert r.partition == partition_for(r.key, PARTITIONS)
        assert ChatMessage.model_validate_json(r.value).user_id == r.key.decode()
    firsts = [ChatMessage.model_validate_json(r.value) for r in records if r.key == b"user-0"]
    assert [m.message_id for m in firsts] == ["m0", "m5", "m10", "m15"]


async def test_a_client_publishes_every_turn_over_one_producer_in_order_on_its_partition(
    topic: str, kafka: Kafka
) -> None:
    config = ClientConfig(kafka=KafkaConnection(BOOTSTRAP), input_topic=topic)
    async with AsyncProfileStreamClient(config) as client:
        turns = [
            await client.publish_turn(USERS[n % 2], f"turn {n}", "ok" if n % 3 else "")
            for n in range(12)
        ]
        assert client.producers_started == 1
    records = await kafka.read(topic, lambda r: len(r) >= 20)  # 12 turns, 4 tool calls
    assert all(r.partition == partition_for(r.key, PARTITIONS) for r in records)
    for parity, user in enumerate(USERS[:2]):
        ids = [
            ChatMessage.model_validate_json(r.value).message_id
            for r in records
            if r.key == user.encode()
        ]
        assert ids == [
            message_id
            for t in turns[parity::2]
            for message_id in (t.user_message_id, t.assistant_message_id)
            if message_id is not None
        ]


async def test_an_unreachable_broker_is_one_clear_error() -> None:
    with pytest.raises(
        BrokerUnavailable,
        match=r"127\.0\.0\.1:1 .*is it running\? \(PROFILE_STREAM_KAFKA_BOOTSTRAP",
    ):
        await publish([], bootstrap="127.0.0.1:1", topic="nowhere")
    with pytest.raises(BrokerUnavailable, match=r"127\.0\.0\.1:1"):
        await ProfileEvents(bootstrap="127.0.0.1:1", topic="nowhere").start()


async def test_user_ids_with_slash_and_question_mark_are_read_and_forgotten_as_named(
    start_worker: StartWorker, kafka: Kafka, names: Names, fake_llm: FakeLLM
) -> None:
    # Unquoted, "who?x" would read "who" and "acme/alice" the kind route of a kind "acme".
    said = {"who": "I'm Bob", "who?x": "I'm Alice", "acme/alice": "I'm Carol"}
    for name in ("Bob", "Alice", "Carol"):
        fake_llm.on(f"I'm {name}", {"field": "name", "op": "set", "value": name})
    worker = await start_worker()
    for user, text in said.items():
        await kafka.send(names.input, message(user, text))
    await kafka.read(names.output, lambda r: len(r) >= len(said))
    for user, text in said.items():
        body = await get_profile(worker.url, user, token=READ_TOKEN)
        assert (body["user_id"], body["profile"]["name"]) == (user, text.removeprefix("I'm "))

    await forget_profile(worker.url, "who?x", token=ADMIN_TOKEN)
    events = decode(await kafka.read(names.output, lambda r: len(r) >= len(said) + 1))
    # Read across partitions, the events are in no global order: the forget is the one deletion.
    assert len(events) == len(said) + 1
    deleted = [(e["user_id"], e["type"]) for e in events if e["type"] == "deleted"]
    assert deleted == [("who?x", "deleted")]
    with pytest.raises(ProfileNotFound):
        await get_profile(worker.url, "who?x", token=READ_TOKEN)
    assert (await get_profile(worker.url, "who", token=READ_TOKEN))["profile"]["name"] == "Bob"


async def test_either_of_two_workers_answers_every_user_forwarding_at_most_once(
    start_worker: StartWorker, kafka: Kafka, names: Names, fake_llm: FakeLLM
) -> None:
    fake_llm.on("I'm", {"field": "name", "op": "set", "value": "Someone"})
    workers = [await start_worker(0), await start_worker(1)]
    users = [f"u{i}/{i}?" for i in range(8)]  # spread over the partitions, so both own some
    for user in users:
        await kafka.send(names.input, message(user, "I'm Someone, hi"))  # a grounded name
    await kafka.read(names.output, lambda r: len(r) >= len(users))
    for worker in workers:
        for user in users:
            body = await get_profile(worker.url, user, token=READ_TOKEN)
            assert (body["user_id"], body["profile"]["name"]) == (user, "Someone")


async def test_a_correction_locks_a_field_against_extraction_and_the_prompt_shows_it(
    start_worker: StartWorker, kafka: Kafka, names: Names, fake_llm: FakeLLM
) -> None:
    fake_llm.on("I'm Alice", {"field": "name", "op": "set", "value": "Alice"})
    fake_llm.on(
        "Call me Al",
        {"field": "name", "op": "set", "value": "Al"},
        {"field": "languages", "op": "add", "value": "Spanish"},
    )
    worker = await start_worker()
    user = "acme/ann?1"  # quoted in every URL, or PATCH would reach another route
    await kafka.send(names.input, message(user, "I'm Alice"))
    await kafka.read(names.output, lambda r: len(r) >= 1)

    with pytest.raises(Refused) as read_only:
        await correct_profile(worker.url, user, token=READ_TOKEN, lock=["name"])
    assert read_only.value.status == 403
    with pytest.raises(Refused, match="shoe_size") as unknown:
        await correct_profile(worker.url, user, token=ADMIN_TOKEN, values={"shoe_size": 42})
    assert unknown.value.status == 400

    command_id = await correct_profile(
        worker.url, user, token=ADMIN_TOKEN, values={"name": "Ann"}, lock=["name"]
    )
    events = decode(await kafka.read(names.output, lambda r: len(r) >= 2))
    assert (events[1]["source_message_ids"], events[1]["profile"]["name"]) == ([command_id], "Ann")

    await kafka.send(names.input, message(user, "Call me Al, I speak Spanish"))
    events = decode(await kafka.read(names.output, lambda r: len(r) >= 3))
    assert (events[2]["profile"]["name"], events[2]["profile"]["languages"]) == ("Ann", ["Spanish"])
    body = await get_profile(worker.url, user, token=READ_TOKEN)
    assert (body["version"], body["locked"]) == (3, ["name"])

    prompt = await get_prompt(worker.url, user, token=READ_TOKEN)
    assert prompt.splitlines() == [
        "<User Profile>",
        "name: Ann",
        "languages: Spanish",
        "</User Profile>",
    ]
    with pytest.raises(ProfileNotFound, match="no profile for 'nobody'"):
        await get_prompt(worker.url, "nobody", token=READ_TOKEN)


async def test_a_worker_serves_its_openapi_document_and_answers_as_it_says(
    start_worker: StartWorker, kafka: Kafka, names: Names, fake_llm: FakeLLM
) -> None:
    fake_llm.on("I'm Dee", {"field": "name", "op": "set", "value": "Dee"})
    worker = await start_worker()
    await kafka.send(names.input, message("dee", "I'm Dee"))
    await kafka.read(names.output, lambda r: len(r) >= 1)
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{worker.url}/openapi.json") as answer:  # no token
            assert answer.status == 200
            document = await answer.json()
        committed = orjson.loads(COMMITTED_OPENAPI.read_bytes())
        assert document == committed | {"info": committed["info"] | document["info"]}

        read = {"Authorization": f"Bearer {READ_TOKEN}"}
        for path, subject in (
            ("/profiles/dee", "/profiles/{user_id}"),
            ("/profiles/dee/prompt", "/profiles/{user_id}/prompt"),
            ("/healthz", "/healthz"),
            ("/readyz", "/readyz"),
        ):
            async with session.get(f"{worker.url}{path}", headers=read) as answer:
                documented = document["paths"][subject]["get"]["responses"]
                assert answer.status == 200 and "200" in documented, path
            async with session.post(f"{worker.url}{path}", headers=read) as answer:
                assert answer.status == 405 and "post" not in document["paths"][subject], path
