"""What other apps import to talk to profile-stream.

The client an app keeps: :class:`ProfileStreamClient` (sync) and
:class:`AsyncProfileStreamClient`, configured once (:class:`ClientConfig`, from arguments or
``PROFILE_STREAM_*`` variables), holding one HTTP session and one Kafka producer: publish chat
turns, read profiles (now, as they were, or once a message is reflected: read-your-writes),
follow profile events, correct, flush, roll back and forget.

The one-shot module functions (``publish_turn``, ``get_profile``...) do the same per call,
opening a producer or a session each time: for scripts, not for a chat app's every turn.
Nothing here prints. Every error is a :class:`ProfileStreamError`. Imports no Faust; depends
on ``schemas``, ``streams.core`` codecs, ``streams.errors``, ``streams.kafka_security``
(:class:`KafkaConnection`: servers, TLS and SASL, built from the same ``PROFILE_STREAM_KAFKA_*``
variables as the worker's), aiokafka and aiohttp only.

:mod:`streams.client.langgraph_store` (LangGraph's store interface over profiles) is not imported
here: it needs the ``langgraph`` extra."""

from streams.client.client import AsyncProfileStreamClient
from streams.client.config import ClientConfig
from streams.client.events import ProfileEvents
from streams.client.http import (
    correct_profile,
    flush_profile,
    forget_profile,
    get_history,
    get_profile,
    get_prompt,
    refresh_profile,
    revert_profile,
)
from streams.client.messages import Turn, publish, publish_turn
from streams.client.sync import ProfileStreamClient, SyncProfileEvents
from streams.errors import (
    BrokerUnavailable,
    ConfigError,
    HistoryUnavailable,
    InvalidRequest,
    ProfileNotFound,
    ProfileNotFresh,
    ProfileStreamError,
    Refused,
    ServiceError,
    ServiceTimeout,
    TopicMissing,
    UnsupportedOperation,
    WorkerUnreachable,
)
from streams.kafka_security import KafkaConnection

__all__ = [
    "AsyncProfileStreamClient",
    "BrokerUnavailable",
    "ClientConfig",
    "ConfigError",
    "HistoryUnavailable",
    "InvalidRequest",
    "KafkaConnection",
    "ProfileEvents",
    "ProfileNotFound",
    "ProfileNotFresh",
    "ProfileStreamClient",
    "ProfileStreamError",
    "Refused",
    "ServiceError",
    "ServiceTimeout",
    "SyncProfileEvents",
    "TopicMissing",
    "Turn",
    "UnsupportedOperation",
    "WorkerUnreachable",
    "correct_profile",
    "flush_profile",
    "forget_profile",
    "get_history",
    "get_profile",
    "get_prompt",
    "publish",
    "publish_turn",
    "refresh_profile",
    "revert_profile",
]
