"""What other apps import to talk to profile-stream: publish chat messages, follow profile
events, read and forget profiles. Imports no Faust; depends on ``schemas``, ``streams.core``
codecs, ``streams.errors``, aiokafka and aiohttp only."""

from streams.client.api import (
    BrokerUnavailable,
    ProfileEvents,
    Refused,
    TopicMissing,
    forget_profile,
    get_profile,
    publish,
)

__all__ = [
    "BrokerUnavailable",
    "ProfileEvents",
    "Refused",
    "TopicMissing",
    "forget_profile",
    "get_profile",
    "publish",
]
