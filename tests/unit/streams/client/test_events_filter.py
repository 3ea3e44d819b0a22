"""Which events a subscription delivers: by kind (users only by default) and by subject, on
the decoded event, so user ``team/x`` and team ``x`` (whose events share the key ``team/x``)
never see each other's events."""

from datetime import UTC, datetime

import pytest
from aiokafka.structs import ConsumerRecord

from schemas import ProfileEvent
from streams.client import ProfileEvents
from streams.core.codecs import encode


def _record(offset: int, kind: str, subject: str) -> ConsumerRecord[bytes, bytes]:
    key = subject if kind == "user" else f"{kind}/{subject}"
    event = ProfileEvent(
        event_id=f"{key}:1",
        type="updated",
        kind=kind,
        user_id=subject,
        version=1,
        profile={},
        updated_at=datetime(2026, 12, 6, tzinfo=UTC),
        schema_id=f"{kind}/v1",
    )
    value = encode(event)
    return ConsumerRecord(
        "profile-updated", 0, offset, 0, 0, key.encode(), value, None, len(key), len(value), []
    )


RECORDS = [_record(0, "user", "team/x"), _record(1, "team", "x"), _record(2, "user", "alice")]


@pytest.mark.parametrize(
    ("kind", "user_id", "delivered"),
    [
        ("user", None, [("user", "team/x"), ("user", "alice")]),
        ("user", "team/x", [("user", "team/x")]),
        ("team", "x", [("team", "x")]),
        ("team", None, [("team", "x")]),
        (None, None, [("user", "team/x"), ("team", "x"), ("user", "alice")]),
    ],
)
def test_a_subscription_delivers_its_kind_and_subject_only(
    kind: str | None, user_id: str | None, delivered: list[tuple[str, str]]
) -> None:
    events = ProfileEvents(bootstrap="k:9092", kind=kind, user_id=user_id)
    accepted = [events._accept(record) for record in RECORDS]
    assert [(e.kind, e.user_id) for e in accepted if e is not None] == delivered
