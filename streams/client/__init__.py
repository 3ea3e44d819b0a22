"""What other apps import to talk to profile-stream: publish chat messages or a whole chat turn
(:mod:`~streams.client.messages`), follow profile events (:mod:`~streams.client.events`), read
profiles (now or as they were) and their revisions, correct, roll back and forget them, or
render one for a system prompt (:mod:`~streams.client.http`).
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
    get_history,
    get_profile,
    get_prompt,
    revert_profile,
)
from streams.client.messages import publish, publish_turn
from streams.errors import (
    BrokerUnavailable,
    ConfigError,
    HistoryUnavailable,
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
    "HistoryUnavailable",
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
    "get_history",
    "get_profile",
    "get_prompt",
    "publish",
    "publish_turn",
    "revert_profile",
]
