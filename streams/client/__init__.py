"""What other apps import to talk to profile-stream: publish chat messages or a whole chat turn
(:mod:`~streams.client.messages`), follow profile events (:mod:`~streams.client.events`), read,
correct and forget profiles, or render one for a system prompt (:mod:`~streams.client.http`).
Nothing here prints. Every error is a :class:`ProfileStreamError`. Imports no Faust;
depends on ``schemas``, ``streams.core`` codecs, ``streams.errors``, ``streams.kafka_security``
(:class:`KafkaConnection`: servers, TLS and SASL, built from the same ``PROFILE_STREAM_KAFKA_*``
variables as the worker's), aiokafka and aiohttp only.

:mod:`streams.client.langgraph_store` (LangGraph's store interface over profiles) is not imported
here: it needs the ``langgraph`` extra."""

from streams.client.events import ProfileEvents
from streams.client.http import (
    correct_profile,
    flush_profile,
    forget_profile,
    get_profile,
    get_prompt,
)
from streams.client.messages import publish, publish_turn
from streams.errors import (
    BrokerUnavailable,
    ConfigError,
    InvalidRequest,
    ProfileNotFound,
    ProfileStreamError,
    Refused,
    ServiceError,
    ServiceTimeout,
    TopicMissing,
    UnsupportedOperation,
)
from streams.kafka_security import KafkaConnection

__all__ = [
    "BrokerUnavailable",
    "ConfigError",
    "InvalidRequest",
    "KafkaConnection",
    "ProfileEvents",
    "ProfileNotFound",
    "ProfileStreamError",
    "Refused",
    "ServiceError",
    "ServiceTimeout",
    "TopicMissing",
    "UnsupportedOperation",
    "correct_profile",
    "flush_profile",
    "forget_profile",
    "get_profile",
    "get_prompt",
    "publish",
    "publish_turn",
]
