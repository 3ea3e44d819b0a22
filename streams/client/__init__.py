"""What other apps import to talk to profile-stream: publish chat messages
(:mod:`~streams.client.messages`), follow profile events (:mod:`~streams.client.events`), read
profiles (now or as they were), their revisions, forget and roll them back
(:mod:`~streams.client.http`). Nothing here prints. Imports no Faust;
depends on ``schemas``, ``streams.core`` codecs, ``streams.errors``, ``streams.kafka_security``
(:class:`KafkaConnection`: servers, TLS and SASL, built from the same ``PROFILE_STREAM_KAFKA_*``
variables as the worker's), aiokafka and aiohttp only."""

from streams.client.events import ProfileEvents
from streams.client.http import forget_profile, get_history, get_profile, revert_profile
from streams.client.messages import publish
from streams.errors import (
    BrokerUnavailable,
    HistoryUnavailable,
    ProfileNotFound,
    ProfileStreamError,
    Refused,
    ServiceError,
    ServiceTimeout,
    TopicMissing,
)
from streams.kafka_security import KafkaConnection

__all__ = [
    "BrokerUnavailable",
    "HistoryUnavailable",
    "KafkaConnection",
    "ProfileEvents",
    "ProfileNotFound",
    "ProfileStreamError",
    "Refused",
    "ServiceError",
    "ServiceTimeout",
    "TopicMissing",
    "forget_profile",
    "get_history",
    "get_profile",
    "publish",
    "revert_profile",
]
