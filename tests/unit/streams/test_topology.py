"""TopicSender and changelog_acked: Faust's and aiokafka's producer errors (at send, at delivery,
at a changelog write) become ours."""

import asyncio
from typing import Any, cast

import faust
import pytest
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    NotLeaderForPartitionError,
    TopicAuthorizationFailedError,
)
from faust.exceptions import ProducerSendError

from streams.errors import BrokerUnavailable, SendRejected
from streams.faust_glue import ProfileTable
from streams.pipeline.policy import Exit, Stage, decide
from streams.topology import TopicSender, changelog_acked


def _wrapped(exc: Exception) -> ProducerSendError:
    """What Faust raises: ``ProducerSendError(...) from exc``."""
    try:
        raise ProducerSendError(f"Error while sending: {exc!r}") from exc
    except ProducerSendError as wrapped:
        return wrapped


class FakeTopic:
    """A Faust topic whose ``send`` raises ``fail``, or returns a delivery failed with
    ``fail_delivery``."""

    def __init__(
        self, fail: Exception | None = None, fail_delivery: Exception | None = None
    ) -> None:
        self.fail, self.fail_delivery = fail, fail_delivery

    def get_topic_name(self) -> str:
        return "chat-messages-dlq"

    async def send(
        self, *, key: bytes | None, value: bytes, partition: int | None, headers: Any
    ) -> "asyncio.Future[Any]":
        if self.fail is not None:
            raise self.fail
        delivery: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.fail_delivery is not None:
            delivery.set_exception(self.fail_delivery)
        else:
            delivery.set_result("metadata")
        return delivery


def _sender(topic: FakeTopic) -> TopicSender:
    return TopicSender(cast(faust.TopicT, topic))


REFUSED = [
    MessageSizeTooLargeError("The message is 1200383 bytes when serialized"),
    TopicAuthorizationFailedError(),
]
PASSING = [KafkaConnectionError("down"), KafkaTimeoutError(), NotLeaderForPartitionError()]


@pytest.mark.parametrize("wrap", [True, False], ids=["faust", "aiokafka"])
@pytest.mark.parametrize("cause", REFUSED + PASSING, ids=repr)
async def test_a_failed_send_raises_our_error_and_the_policy_exits(
    cause: Exception, wrap: bool
) -> None:
    sender = _sender(FakeTopic(fail=_wrapped(cause) if wrap else cause))
    expected = SendRejected if cause in REFUSED else BrokerUnavailable
    with pytest.raises(expected) as raised:
        await sender.send(key=b"u", value=b"v")
    assert "chat-messages-dlq" in str(raised.value) and type(cause).__name__ in str(raised.value)
    for stage in Stage:
        assert isinstance(decide(raised.value, stage), Exit)


@pytest.mark.parametrize("cause", REFUSED + PASSING, ids=repr)
async def test_a_failed_delivery_raises_our_error_when_awaited(cause: Exception) -> None:
    delivery = await _sender(FakeTopic(fail_delivery=cause)).send(key=b"u", value=b"v")
    expected = SendRejected if cause in REFUSED else BrokerUnavailable
    with pytest.raises(expected):
        await delivery


async def test_a_delivered_record_gives_its_metadata() -> None:
    delivery = await _sender(FakeTopic()).send(key=b"u", value=b"v")
    assert await delivery == "metadata"


def test_faust_does_not_make_its_send_error_a_kafka_error() -> None:
    # Why TopicSender catches both (code review A4).
    from aiokafka.errors import KafkaError

    assert not issubclass(ProducerSendError, KafkaError)


class FakeTable:
    """A profile table whose changelog write failed with ``fail``."""

    name = "profiles"

    def __init__(self, fail: Exception) -> None:
        self.fail = fail

    async def changelog_acked(self, key: bytes) -> None:
        raise self.fail


@pytest.mark.parametrize("cause", REFUSED + PASSING, ids=repr)
async def test_a_failed_changelog_write_raises_our_error(cause: Exception) -> None:
    acked = changelog_acked(cast(ProfileTable, FakeTable(cause)))
    expected = SendRejected if cause in REFUSED else BrokerUnavailable
    with pytest.raises(expected, match="changelog of table profiles"):
        await acked(b"alice")
