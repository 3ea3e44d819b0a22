"""What other apps import to talk to profile-stream: publish chat messages
(:mod:`~streams.client.messages`), follow profile events (:mod:`~streams.client.events`), read
and forget profiles (:mod:`~streams.client.http`). Nothing here prints. Imports no Faust;
depends on ``schemas``, ``streams.core`` codecs, ``streams.errors``, aiokafka and aiohttp only."""

from streams.client.events import ProfileEvents
from streams.client.http import forget_profile, get_profile
from streams.client.messages import publish
from streams.errors import (
    BrokerUnavailable,
    ProfileNotFound,
    ProfileStreamError,
    Refused,
    ServiceError,
    ServiceTimeout,
    TopicMissing,
)

__all__ = [
    "BrokerUnavailable",
    "ProfileEvents",
    "ProfileNotFound",
    "ProfileStreamError",
    "Refused",
    "ServiceError",
    "ServiceTimeout",
    "TopicMissing",
    "forget_profile",
    "get_profile",
    "publish",
]
