"""What a profile's model usage says: in all and for the day, charged on the input's time."""

from datetime import date, datetime, timedelta, timezone

import orjson

from schemas import ModelUsage, ProfileRecord, ProfileUsage
from streams.core.codecs import decode_record, encode
from streams.core.profile_schema import ProfileSchema
from streams.core.records import (
    Forget,
    deleted_event,
    forgotten,
    new_record,
    next_version,
    settled,
    source_key,
)
from streams.core.stored import format_of
from streams.core.usage import charge
from tests.unit.helpers import T0

SRC = source_key("chat-messages", 0)
ONE = ModelUsage(calls=1, prompt_tokens=500, completion_tokens=40)
TWO = ModelUsage(calls=2, prompt_tokens=900, completion_tokens=70)


def test_nothing_spent_charges_nothing() -> None:
    assert charge(None, ModelUsage(), T0) is None
    usage = charge(None, ONE, T0)
    assert charge(usage, ModelUsage(), T0 + timedelta(days=3)) == usage


def test_calls_of_one_day_add_up_in_the_day_and_in_all() -> None:
    usage = charge(charge(None, ONE, T0), TWO, T0 + timedelta(hours=1))
    assert usage == ProfileUsage(
        total=ModelUsage(calls=3, prompt_tokens=1400, completion_tokens=110),
        day=T0.date(),
        today=ModelUsage(calls=3, prompt_tokens=1400, completion_tokens=110),
    )


def test_a_new_day_starts_the_days_count_over() -> None:
    next_day = T0 + timedelta(days=1)
    usage = charge(charge(None, ONE, T0), TWO, next_day)
    assert usage is not None
    assert usage.day == next_day.date() and usage.today == TWO
    assert usage.total.calls == 3


def test_a_late_batch_of_an_earlier_day_counts_in_all_only() -> None:
    usage = charge(charge(None, ONE, T0 + timedelta(days=1)), TWO, T0)
    assert usage is not None
    assert usage.day == (T0 + timedelta(days=1)).date() and usage.today == ONE
    assert usage.total.calls == 3


def test_the_day_is_the_utc_day_of_the_input() -> None:
    # 23:30 on 1 March in New York is already 2 March in UTC.
    at = datetime(2026, 3, 1, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
    usage = charge(None, ONE, at)
    assert usage is not None and usage.day == date(2026, 3, 2)


def test_a_batch_that_cost_nothing_keeps_the_previous_releases_bytes(
    schema: ProfileSchema,
) -> None:
    record, _ = next_version(
        new_record("u1", schema.schema_id),
        None,
        offsets={SRC: 1},
        message_ids=["m1"],
        at=T0,
        spent=ModelUsage(),
    )
    assert record.usage is None and b'"format"' not in encode(record)


def test_a_charged_record_says_format_3_and_reads_back(schema: ProfileSchema) -> None:
    record = _charged(schema)
    raw = encode(record)
    assert raw.startswith(b'{"format":3,') and record.usage is not None
    assert decode_record(raw) == record
    assert orjson.loads(raw)["usage"]["today"] == {
        "calls": 1,
        "prompt_tokens": 500,
        "completion_tokens": 40,
    }


def _charged(schema: ProfileSchema) -> ProfileRecord:
    record, _ = next_version(
        new_record("u1", schema.schema_id),
        None,
        offsets={SRC: 1},
        message_ids=["m1"],
        at=T0,
        spent=ONE,
    )
    return record


def test_a_forget_drops_the_usage(schema: ProfileSchema) -> None:
    tombstone, _ = forgotten(_charged(schema), Forget(SRC, 2, "c1", T0, received_ms=0))
    assert tombstone.usage is None and format_of(tombstone) == 8  # a tombstone with its mark


def test_a_pending_deleted_event_settles_without_usage(schema: ProfileSchema) -> None:
    record = _charged(schema)
    pending = record.model_copy(update={"pending_event": deleted_event(record, "c1", T0)})
    tombstone = settled(pending)
    assert tombstone.usage is None and tombstone.forgotten_at is not None
