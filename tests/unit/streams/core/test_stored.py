"""Stored records written by the release after this one (or before it) are read, not refused."""

import logging
from datetime import UTC, date, datetime
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from schemas import (
    BUFFER_STORE_FORMAT,
    FORGET_MARK_FORMAT,
    LAST_MESSAGE_FORMAT,
    RECORD_FORMAT,
    REVISIONS_FORMAT,
    TOMBSTONE_FORMAT,
    USAGE_FORMAT,
    Evidence,
    FieldChange,
    ForgetMark,
    LastMessage,
    ProfileRecord,
    ProfileUsage,
    Provenance,
    SetAside,
)
from streams.core import stored
from streams.core.codecs import decode_record, encode
from streams.core.records import deleted_event

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _forget_warnings() -> None:
    stored._warned.clear()


def current() -> ProfileRecord:
    record = ProfileRecord(
        user_id="u1",
        schema_id="UserProfile/v1",
        version=3,
        profile={"name": "Alice", "languages": ["English"]},
        provenance={"name": Provenance(message_id="m1", at=T0)},
        locked=("name",),
        applied={"chat-messages:0": 7},
        recent_message_ids=("m1", "m2"),
        updated_at=T0,
        set_aside={"age": SetAside(value="x", reason="not an int", schema_id="UserProfile/v0")},
    )
    change = FieldChange(field="name", op="set", new="Alice", evidence=Evidence(message_id="m1"))
    event = deleted_event(record, "c1", T0).model_copy(update={"changes": [change]})
    return record.model_copy(update={"pending_event": event})


def newer(**extra_at: Any) -> bytes:
    """``current()`` as a newer release might write it: one more field at each given place."""
    body = orjson.loads(encode(current()))
    body |= extra_at.pop("top", {})
    body["pending_event"] |= extra_at.pop("pending_event", {})
    body["pending_event"]["changes"][0]["evidence"] |= extra_at.pop("evidence", {})
    body["provenance"]["name"] |= extra_at.pop("provenance", {})
    assert not extra_at
    return orjson.dumps(body)


def test_fields_of_a_newer_release_are_ignored_and_the_known_data_is_intact(
    caplog: pytest.LogCaptureFixture,
) -> None:
    raw = newer(
        top={"tier": "gold", "format": RECORD_FORMAT + 1},
        pending_event={"trace_id": "t-1"},
        evidence={"confidence": 0.9},
        provenance={"model": "gpt-x"},
    )
    with caplog.at_level(logging.WARNING, logger=stored.__name__):
        record = decode_record(raw)
    assert record == current()  # format comes back as the one of the fields it still holds
    assert record.format == 1
    logged = caplog.text
    for name in ("'tier'", "'pending_event.trace_id'", "'pending_event.confidence'"):
        assert name in logged
    assert "'provenance.model'" in logged and f"format {RECORD_FORMAT + 1}" in logged
    assert "gold" not in logged and "gpt-x" not in logged and "Alice" not in logged


def test_each_unknown_name_is_logged_once_not_once_per_record(
    caplog: pytest.LogCaptureFixture,
) -> None:
    raw = newer(top={"tier": "gold"})
    with caplog.at_level(logging.WARNING, logger=stored.__name__):
        for _ in range(50):
            decode_record(raw)
        decode_record(newer(top={"tier": "gold", "region": "eu"}))
    assert [r.getMessage().count("'tier'") for r in caplog.records] == [1, 0]
    assert "'region'" in caplog.records[1].getMessage()


def test_a_record_written_before_format_existed_reads_as_format_1() -> None:
    body = orjson.loads(encode(current()))
    assert "format" not in body
    assert decode_record(orjson.dumps(body)).format == 1


def test_current_records_are_byte_stable_and_have_the_bytes_the_release_before_wrote() -> None:
    raw = encode(current())
    assert encode(decode_record(raw)) == raw
    # format 1 is left out, so the release before this one (strict) reads what we write
    assert b'"format"' not in raw
    assert encode(current().model_copy(update={"format": 2})).startswith(b'{"format":2,')


def test_a_broken_record_still_raises() -> None:
    body = orjson.loads(encode(current()))
    del body["schema_id"]
    body["tier"] = "gold"  # unknown fields do not hide a missing one
    with pytest.raises(ValidationError):
        decode_record(orjson.dumps(body))
    with pytest.raises(ValidationError):
        decode_record(b"not json")


def test_writing_stays_strict() -> None:
    with pytest.raises(ValidationError):
        ProfileRecord(user_id="u", schema_id="s", tier="gold")  # type: ignore[call-arg]


def test_a_tombstone_says_format_2_and_other_records_keep_the_previous_releases_bytes() -> None:
    raw = encode(current())
    assert b"forgotten_at" not in raw and b'"format"' not in raw
    at = datetime(2026, 12, 1, tzinfo=UTC)
    tombstone = current().model_copy(update={"forgotten_at": at, "format": TOMBSTONE_FORMAT})
    raw = encode(tombstone)
    assert raw.startswith(b'{"format":2,') and b'"forgotten_at":"2026-12-01T00:00:00Z"' in raw
    assert decode_record(raw) == tombstone


def test_a_record_claims_the_highest_format_among_the_features_it_holds() -> None:
    usage = ProfileUsage(day=date(2026, 11, 25))
    assert stored.format_of(current()) == 1
    assert stored.format_of(current().model_copy(update={"usage": usage})) == USAGE_FORMAT
    with_history = current().model_copy(update={"history_from": 0})
    assert stored.format_of(with_history) == REVISIONS_FORMAT
    both = with_history.model_copy(update={"usage": usage})
    assert stored.format_of(both) == REVISIONS_FORMAT
    last = LastMessage(message_id="m1", sent_at=datetime(2026, 11, 25, tzinfo=UTC))
    reflecting = both.model_copy(update={"last_message": last})
    assert stored.format_of(reflecting) == LAST_MESSAGE_FORMAT
    split = reflecting.model_copy(update={"buffer_seq": 3})
    assert stored.format_of(split) == BUFFER_STORE_FORMAT
    marked = split.model_copy(update={"forget_mark": ForgetMark(at_ms=0)})
    assert stored.format_of(marked) == FORGET_MARK_FORMAT == RECORD_FORMAT
