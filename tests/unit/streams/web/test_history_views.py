"""The history views as a worker mounts them: as-of reads, a field's revisions, and revert
commands (the served app and its fakes are ``test_views``')."""

from datetime import datetime, timedelta

import orjson
import pytest

from schemas import HistoryAnswer, PatchOperation, ProfileRecord
from streams.core.codecs import decode_command, encode
from streams.core.history import Source, Trail
from streams.core.merge import merge
from streams.core.records import new_record, next_version
from tests.unit.helpers import T0

from .conftest import ADMIN_TOKEN, READ_TOKEN, SCHEMA, Served, accepted_by_workers


def ann(cities: list[str], keep: int = 10) -> bytes:
    """Ann's record after saying she lives in each of ``cities`` in turn (version n at T0+n h)."""
    record = new_record("ann", SCHEMA.schema_id)
    for n, city in enumerate(cities, 1):
        op = PatchOperation(field="location", op="set", value=city, message_id=f"m{n}")
        when = T0 + timedelta(hours=n)
        result = merge(record.profile, {}, (), [op], SCHEMA, evidence={f"m{n}": when})
        record, _ = next_version(
            record,
            result,
            offsets={},
            message_ids=[f"m{n}"],
            at=when,
            trail=Trail(keep, {f"m{n}": Source("chat-messages", 1, 10 + n)}),
        )
    return encode(record)


@pytest.fixture
def history(served: Served) -> Served:
    served.users[b"ann"] = ann(["Lyon", "Paris", "Oslo"])
    return served


@pytest.mark.parametrize(
    ("query", "version", "location"),
    [
        ("version=1", 1, "Lyon"),
        ("version=2", 2, "Paris"),
        ("version=3", 3, "Oslo"),
        ("as_of=2026-01-01T14:30:00Z", 2, "Paris"),
        ("as_of=2026-01-01T15:30:00%2B01:00", 2, "Paris"),
        ("as_of=2026-01-01T15:30:00+01:00", 2, "Paris"),  # an unquoted '+' arrives as a space
        ("as_of=2099-01-01T00:00:00Z", 3, "Oslo"),
    ],
)
async def test_a_profile_reads_as_it_was(
    history: Served, query: str, version: int, location: str
) -> None:
    status, body, _ = await history.call("GET", f"/profiles/ann?{query}", READ_TOKEN)
    assert status == 200, body
    assert (body["version"], body["current_version"]) == (version, 3)
    assert body["profile"] == SCHEMA.empty() | {"location": location}
    assert datetime.fromisoformat(body["updated_at"]) == T0 + timedelta(hours=version)


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ("version=4", 404, "no version 4: the profile is at version 3"),
        ("version=0", 400, "version must be a whole number from 1"),
        ("version=x", 400, "version must be a whole number from 1"),
        ("as_of=yesterday", 400, "as_of must be an RFC 3339 time"),
        ("as_of=2026-01-01T12:00:00", 400, "as_of must be an RFC 3339 time"),
        ("as_of=2026-01-01T12:30:00Z", 404, "the profile had no version yet"),
        ("version=1&as_of=2026-01-01T12:30:00Z", 400, "give version or as_of, not both"),
        ("version=1&fields=shoe_size", 400, "unknown fields ['shoe_size']"),
    ],
)
async def test_an_as_of_read_it_cannot_answer_says_why(
    history: Served, query: str, status: int, message: str
) -> None:
    got, body, _ = await history.call("GET", f"/profiles/ann?{query}", READ_TOKEN)
    assert got == status and body["error"].startswith(message), body


async def test_what_the_bound_dropped_is_410_naming_the_field_and_the_setting(
    history: Served,
) -> None:
    history.users[b"ann"] = ann(["Lyon", "Paris", "Oslo"], keep=1)
    status, body, _ = await history.call("GET", "/profiles/ann?version=1", READ_TOKEN)
    assert status == 410
    assert "'location' at version 1 is no longer kept" in body["error"]
    assert "PROFILE_STREAM_REVISIONS_PER_FIELD" in body["error"]
    # the fields that are kept still read: only what is asked for needs to be kept
    status, body, _ = await history.call("GET", "/profiles/ann?version=1&fields=name", READ_TOKEN)
    assert status == 200 and body["profile"] == {"name": None}


async def test_a_profile_without_revisions_reads_only_now(history: Served) -> None:
    status, body, _ = await history.call("GET", "/profiles/zed?version=1", READ_TOKEN)
    assert status == 410 and "keeps no revisions" in body["error"]
    status, body, _ = await history.call("GET", "/profiles/zed?version=2", READ_TOKEN)
    assert status == 200 and body["profile"]["name"] == "Zed"


async def test_a_fields_revisions_are_listed_oldest_first_with_their_source(
    history: Served,
) -> None:
    status, body, _ = await history.call("GET", "/profiles/ann/history?field=location", READ_TOKEN)
    assert status == 200
    HistoryAnswer.model_validate(body)
    location = body["fields"]["location"]
    assert (body["version"], body["history_from"], location["truncated"]) == (3, 0, False)
    assert [(r["version"], r["op"], r["value"]) for r in location["revisions"]] == [
        (1, "set", "Lyon"),
        (2, "set", "Paris"),
        (3, "set", "Oslo"),
    ]
    assert location["revisions"][1]["evidence"] == {
        "message_id": "m2",
        "quote": "",
        "topic": "chat-messages",
        "partition": 1,
        "offset": 12,
    }
    status, body, _ = await history.call("GET", "/profiles/ann/history", READ_TOKEN)
    assert status == 200 and set(body["fields"]) == {"location"}
    status, body, _ = await history.call("GET", "/profiles/ann/history?field=name", READ_TOKEN)
    assert (status, body["fields"]) == (200, {"name": {"revisions": [], "truncated": False}})


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/profiles/ann/history?field=shoe_size", 400, "no field 'shoe_size'"),
        ("/profiles/nobody/history", 404, "no profile for this user"),
    ],
)
async def test_history_of_what_does_not_exist(
    history: Served, path: str, status: int, message: str
) -> None:
    got, body, _ = await history.call("GET", path, READ_TOKEN)
    assert got == status and body["error"].startswith(message)


async def test_revert_sends_a_signed_revert_command(history: Served) -> None:
    request = {"version": 2, "fields": ["location"], "lock": ["location"]}
    status, body, _ = await history.call(
        "POST", "/profiles/ann/revert", ADMIN_TOKEN, orjson.dumps(request)
    )
    assert status == 202 and body["status"] == "accepted"
    [(key, value, headers)] = history.commands.sent
    command = decode_command(value)
    assert (key, command.type, command.version) == (b"ann", "revert", 2)
    assert (command.fields, command.lock) == (("location",), ("location",))
    assert accepted_by_workers(key, value, headers)


@pytest.mark.parametrize(
    ("token", "data", "status", "message"),
    [
        (READ_TOKEN, b'{"version": 1}', 403, "needs an admin token"),
        (ADMIN_TOKEN, b"{}", 400, "invalid revert"),
        (ADMIN_TOKEN, b'{"version": 0}', 400, "invalid revert"),
        (ADMIN_TOKEN, b'{"version": 1, "fields": ["shoe_size"]}', 400, "unknown fields"),
        (ADMIN_TOKEN, b"[1]", 400, "body must be"),
    ],
)
async def test_a_bad_revert_is_refused_and_sends_nothing(
    history: Served, token: str, data: bytes, status: int, message: str
) -> None:
    got, body, _ = await history.call("POST", "/profiles/ann/revert", token, data)
    assert got == status and body["error"].startswith(message), body
    assert history.commands.sent == []


def test_history_records_kept_in_the_fake_table_are_real_records() -> None:
    record = ProfileRecord.model_validate_json(ann(["Lyon"]))
    assert record.history["location"].revisions[0].evidence.offset == 11
