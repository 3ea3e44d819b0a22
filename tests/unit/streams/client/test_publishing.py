"""Publishing turns: what a turn sends (an empty assistant text, as a tool-calling turn has,
sends nothing for the assistant), what a bad argument raises, and how many producers a client
starts for many publishes, against a stand-in for aiokafka's producer."""

import asyncio
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from aiokafka.errors import KafkaConnectionError

from streams.client import (
    AsyncProfileStreamClient,
    BrokerUnavailable,
    ClientConfig,
    InvalidRequest,
    ProfileStreamClient,
    Turn,
    publish_turn,
)
from streams.client import producer as producer_module


class FakeProducer:
    """aiokafka's producer as far as :class:`Producer` uses it; every instance is recorded."""

    made: list["FakeProducer"] = []
    fail_sends = False

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.sent: list[tuple[str, bytes | None, dict[str, Any]]] = []
        self.started = self.stopped = False
        self.requests = 0
        FakeProducer.made.append(self)

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    async def send(self, topic: str, value: bytes, *, key: bytes | None, headers: Any) -> Any:
        return await self.send_batch([(key, value)], topic, partition=-1)

    def create_batch(self) -> "FakeBatch":
        return FakeBatch()

    async def partitions_for(self, topic: str) -> set[int]:
        return set(range(8))

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> Any:
        if FakeProducer.fail_sends:
            raise KafkaConnectionError("broker gone")
        self.requests += 1
        self.sent.extend((topic, key, orjson.loads(value)) for key, value in batch)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


class FakeBatch(list[tuple[bytes | None, bytes]]):
    def append(  # type: ignore[override]
        self, *, key: bytes | None, value: bytes, timestamp: None, headers: Any
    ) -> object:
        super().append((key, value))
        return object()


@pytest.fixture
def producers(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[FakeProducer]]:
    FakeProducer.made, FakeProducer.fail_sends = [], False
    monkeypatch.setattr(producer_module, "AIOKafkaProducer", FakeProducer)
    yield FakeProducer.made


def _config() -> ClientConfig:
    return ClientConfig(url="http://127.0.0.1:6066", token="t")


async def test_a_client_keeps_one_idempotent_producer_for_all_its_publishes(
    producers: list[FakeProducer],
) -> None:
    async with AsyncProfileStreamClient(_config()) as client:
        assert producers == []  # started on the first publish, not before
        turns = [await client.publish_turn("alice", f"turn {n}", "ok") for n in range(20)]
        assert client.producers_started == 1
    [producer] = producers
    assert producer.kwargs["enable_idempotence"] and producer.kwargs["acks"] == "all"
    assert producer.stopped and producer.requests == 20  # a turn's two messages in one
    sent = [(topic, key, value["message_id"]) for topic, key, value in producer.sent]
    assert sent == [
        ("chat-messages", b"alice", message_id)
        for turn in turns
        for message_id in (turn.user_message_id, turn.assistant_message_id)
    ]


async def test_the_one_shot_function_starts_and_stops_a_producer_per_call(
    producers: list[FakeProducer],
) -> None:
    for n in range(3):
        await publish_turn("alice", f"turn {n}", "ok", bootstrap="k:9092")
    assert len(producers) == 3 and all(p.stopped for p in producers)


async def test_an_empty_assistant_text_sends_the_user_message_alone(
    producers: list[FakeProducer],
) -> None:
    async with AsyncProfileStreamClient(_config()) as client:
        tool_call = await client.publish_turn("alice", "weather in Lisbon?", "", turn_id="t1")
        none = await client.publish_turn("alice", "thanks", None, turn_id="t2")
        last = await client.publish_turn("alice", "bye", "Bye!", end_of_conversation=True)
    assert tool_call == Turn("t1:user", None) and tool_call.last_message_id == "t1:user"
    assert none == Turn("t2:user", None)
    values = [value for _, _, value in producers[0].sent]
    assert [v["role"] for v in values] == ["user", "user", "user", "assistant"]
    assert [v.get("end_of_conversation", False) for v in values] == [False] * 3 + [True]
    assert last.last_message_id == values[-1]["message_id"]


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        (("alice", "  ", "fine"), "publish_turn: user_message: .*blank"),
        (("", "hi", "hello"), "publish_turn: user_id: String should have at least 1"),
        (("x" * 300, "hi", "hello"), "publish_turn: user_id: .*at most 256"),
    ],
)
async def test_a_bad_argument_is_an_invalid_request_naming_it_and_nothing_is_sent(
    producers: list[FakeProducer], arguments: tuple[str, str, str], words: str
) -> None:
    async with AsyncProfileStreamClient(_config()) as client:
        with pytest.raises(InvalidRequest, match=words):
            await client.publish_turn(*arguments)
    with pytest.raises(InvalidRequest, match=words):
        await publish_turn(*arguments, bootstrap="k:9092")
    assert producers == []


async def test_a_failed_send_drops_the_producer_and_the_next_publish_starts_another(
    producers: list[FakeProducer],
) -> None:
    async with AsyncProfileStreamClient(_config()) as client:
        await client.publish_turn("alice", "one", "ok")
        FakeProducer.fail_sends = True
        with pytest.raises(BrokerUnavailable, match="after 0 records were confirmed"):
            await client.publish_turn("alice", "two", "ok")
        FakeProducer.fail_sends = False
        await client.publish_turn("alice", "three", "ok")
        assert client.producers_started == 2
    assert all(p.stopped for p in producers)


async def test_the_sync_client_keeps_one_producer_too(producers: list[FakeProducer]) -> None:
    def app() -> int:
        with ProfileStreamClient(_config()) as client:
            for n in range(5):
                client.publish_turn("bob", f"turn {n}", "ok")
            return client.producers_started

    assert await asyncio.to_thread(app) == 1
    assert len(producers[0].sent) == 10 and producers[0].stopped
