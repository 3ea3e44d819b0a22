"""The client's reads of the past and its rollback, against an aiohttp server playing a worker:
what reaches the worker (path, query, body) and what its refusals become."""

from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from streams.client import (
    HistoryUnavailable,
    ProfileNotFound,
    Refused,
    get_history,
    get_profile,
    revert_profile,
)

Seen = list[dict[str, Any]]


@pytest.fixture
async def worker() -> AsyncIterator[tuple[str, Seen]]:
    """Version 9 is dropped (410), version 50 does not exist (404), user ``reader`` may not
    revert (403); everything else answers with what it was asked."""
    seen: Seen = []

    async def profile(request: web.Request) -> web.Response:
        query = dict(request.query)
        seen.append({"path": request.path, "query": query})
        if query.get("version") == "9":
            return web.json_response(
                {"error": "'location' at version 9 is no longer kept"}, status=410
            )
        if query.get("version") == "50":
            return web.json_response({"error": "no version 50: the profile is at 12"}, status=404)
        return web.json_response({"user_id": request.match_info["user_id"], "profile": {}, **query})

    async def history(request: web.Request) -> web.Response:
        seen.append({"path": request.path, "query": dict(request.query)})
        field = request.query.get("field")
        return web.json_response({"history_from": 0, "fields": {field: {}} if field else {}})

    async def revert(request: web.Request) -> web.Response:
        seen.append({"path": request.path, "body": await request.json()})
        if request.match_info["user_id"] == "reader":
            return web.json_response({"error": "needs an admin token"}, status=403)
        return web.json_response({"command_id": "c7", "status": "accepted"}, status=202)

    app = web.Application()
    app.router.add_get("/profiles/{user_id}", profile)
    app.router.add_get("/profiles/{user_id}/history", history)
    app.router.add_post("/profiles/{user_id}/revert", revert)
    async with TestServer(app) as server:
        yield str(server.make_url("")), seen


async def test_as_of_reads_send_the_version_or_the_time_with_its_offset(
    worker: tuple[str, Seen],
) -> None:
    url, seen = worker
    body = await get_profile(url, "a/b", token="t", version=3)
    assert (body["user_id"], body["version"]) == ("a/b", "3")
    paris = timezone(timedelta(hours=1))
    body = await get_profile(url, "a/b", token="t", as_of=datetime(2026, 11, 25, 10, tzinfo=paris))
    assert body["as_of"] == "2026-11-25T10:00:00+01:00"  # the '+' arrives as a '+'
    body = await get_profile(url, "a/b", token="t", version=3, fields=["name", "location"])
    assert body["fields"] == "name,location"
    with pytest.raises(ValueError, match="time zone"):
        await get_profile(url, "a", token="t", as_of=datetime(2026, 11, 25))  # noqa: DTZ001 - naive on purpose


async def test_a_dropped_version_is_history_unavailable_and_a_missing_one_not_found(
    worker: tuple[str, Seen],
) -> None:
    url, _ = worker
    with pytest.raises(HistoryUnavailable, match="'location' at version 9 is no longer kept"):
        await get_profile(url, "ann", token="t", version=9)
    with pytest.raises(ProfileNotFound, match="no version 50: the profile is at 12"):
        await get_profile(url, "ann", token="t", version=50)


async def test_history_names_the_field(worker: tuple[str, Seen]) -> None:
    url, seen = worker
    assert list((await get_history(url, "ann", token="t", field="location"))["fields"]) == [
        "location"
    ]
    assert seen[-1]["query"] == {"field": "location"}
    await get_history(url, "ann", token="t")
    assert seen[-1]["query"] == {} and seen[-1]["path"] == "/profiles/ann/history"


async def test_revert_posts_the_version_fields_and_locks(worker: tuple[str, Seen]) -> None:
    url, seen = worker
    command_id = await revert_profile(
        url, "ann", token="t", version=4, fields=["location"], lock=["location"]
    )
    assert command_id == "c7"
    assert seen[-1]["body"] == {"version": 4, "fields": ["location"], "lock": ["location"]}
    with pytest.raises(Refused, match="answered 403") as refused:
        await revert_profile(url, "reader", token="t", version=4)
    assert refused.value.status == 403
