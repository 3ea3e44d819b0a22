"""The HTTP client against an aiohttp server playing a worker: ids reach the route they name,
and every failure (nothing listening, a worker that hangs) is a quick ProfileStreamError."""

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from streams.client import (
    ConfigError,
    InvalidRequest,
    ProfileNotFound,
    ProfileStreamError,
    Refused,
    ServiceError,
    ServiceTimeout,
    correct_profile,
    forget_profile,
    get_profile,
    get_prompt,
)

Seen = list[tuple[str, dict[str, str]]]


REFUSALS = {
    ("gone", "*"): lambda: web.json_response({"error": "no profile"}, status=404),
    ("boom", "*"): lambda: web.json_response({"error": "bug"}, status=500),
    ("html", "*"): lambda: web.Response(text="<html>hello</html>", content_type="text/html"),
    ("strict", "PATCH"): lambda: web.json_response(
        {"error": "unknown fields ['shoe']"}, status=400
    ),
}


@pytest.fixture
async def worker() -> AsyncIterator[tuple[str, Seen]]:
    """A worker with the real routes' shapes; records (route, match_info) of each request.

    User ``slow`` hangs; ``busy`` answers 503 once; ``gone`` 404; ``boom`` 500; ``html`` is
    answered by something that is not a worker; ``strict`` refuses a PATCH (400). A PATCH's
    body is recorded as the route's last item.
    """
    seen: Seen = []
    busy = [True]

    async def answer(route: str, request: web.Request) -> web.Response:
        info = dict(request.match_info)
        seen.append((route, info))
        subject = info.get("user_id") or info["subject"]
        if subject == "slow":
            await asyncio.sleep(5)
        refusal = REFUSALS.get((subject, request.method)) or REFUSALS.get((subject, "*"))
        if refusal is not None:
            return refusal()
        if subject == "busy" and busy[0]:
            busy[0] = False
            return web.json_response(
                {"error": "rebalancing"}, status=503, headers={"Retry-After": "0"}
            )
        if request.method == "PATCH":
            seen.append(("body", {"json": (await request.read()).decode()}))
        if request.method in ("DELETE", "PATCH"):
            return web.json_response({"command_id": "c1", "status": "accepted"}, status=202)
        if route == "prompt":
            return web.Response(text=f"<User Profile>\nname: {subject}\n</User Profile>")
        return web.json_response({"user_id": subject, "version": 1, "profile": {}})

    async def user(request: web.Request) -> web.Response:
        return await answer("user", request)

    async def prompt(request: web.Request) -> web.Response:
        return await answer("prompt", request)

    async def kind(request: web.Request) -> web.Response:
        return await answer("kind", request)

    app = web.Application()
    app.router.add_route("*", "/profiles/{user_id}", user)
    app.router.add_get("/profiles/{user_id}/prompt", prompt)
    app.router.add_get("/profiles/{kind}/{subject}", kind)
    async with TestServer(app) as server:
        yield str(server.make_url("")), seen


@pytest.mark.parametrize("user_id", ["acme/alice", "who?x", "x/prompt", "a#b", "50%", "é ü"])
async def test_get_reads_exactly_the_user_named_whatever_the_id_holds(
    worker: tuple[str, Seen], user_id: str
) -> None:
    url, seen = worker
    body = await get_profile(url, user_id, token="t")
    assert body["user_id"] == user_id
    assert seen == [("user", {"user_id": user_id})]


async def test_get_of_a_kind_quotes_the_subject(worker: tuple[str, Seen]) -> None:
    url, seen = worker
    assert (await get_profile(url, "a/b?c", token="t", kind="team"))["user_id"] == "a/b?c"
    assert seen == [("kind", {"kind": "team", "subject": "a/b?c"})]


async def test_forget_quotes_the_user_too(worker: tuple[str, Seen]) -> None:
    url, seen = worker
    assert await forget_profile(url, "acme/alice?x", token="t") == "c1"
    assert seen == [("user", {"user_id": "acme/alice?x"})]


async def test_a_503_is_retried_and_other_statuses_are_refusals(worker: tuple[str, Seen]) -> None:
    url, _ = worker
    assert (await get_profile(url, "busy", token="t"))["user_id"] == "busy"
    with pytest.raises(ProfileNotFound):
        await get_profile(url, "gone", token="t")
    with pytest.raises(Refused, match="answered 500") as refused:
        await get_profile(url, "boom", token="t")
    assert refused.value.status == 500


async def test_a_worker_that_hangs_raises_service_timeout_naming_it(
    worker: tuple[str, Seen],
) -> None:
    url, _ = worker
    started = time.monotonic()
    with pytest.raises(ServiceTimeout, match=r"did not answer within 0\.3s") as raised:
        await get_profile(url, "slow", token="t", timeout_s=0.3)
    assert isinstance(raised.value, ProfileStreamError) and raised.value.retriable
    with pytest.raises(ServiceTimeout):
        await forget_profile(url, "slow", token="t", timeout_s=0.3)
    assert time.monotonic() - started < 2


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A local port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    yield port


async def test_nothing_listening_fails_at_once_naming_the_url(closed_port: int) -> None:
    url = f"http://127.0.0.1:{closed_port}"
    started = time.monotonic()
    for call in (get_profile(url, "u", token="t"), forget_profile(url, "u", token="t")):
        with pytest.raises(ServiceError, match=f"cannot connect to {url}/profiles/u") as raised:
            await call
        assert not isinstance(raised.value, ServiceTimeout)
    assert time.monotonic() - started < 1  # not ten attempts a second apart


async def test_the_prompt_is_read_from_the_users_prompt_route(worker: tuple[str, Seen]) -> None:
    url, seen = worker
    text = await get_prompt(url, "a/b?c", token="t")
    assert text == "<User Profile>\nname: a/b?c\n</User Profile>"
    assert seen == [("prompt", {"user_id": "a/b?c"})]
    with pytest.raises(ProfileNotFound, match="no profile for 'gone'"):
        await get_prompt(url, "gone", token="t")


async def test_a_correction_patches_the_named_user_with_values_operations_and_locks(
    worker: tuple[str, Seen],
) -> None:
    url, seen = worker
    command_id = await correct_profile(
        url,
        "acme/ana",
        token="t",
        values={"name": "Ana", "timezone": None},
        operations=[{"field": "languages", "op": "add", "value": "Basque"}],
        lock=["name"],
        unlock=["timezone"],
    )
    assert command_id == "c1"
    [(route, info), (kind, body)] = seen
    assert (route, info, kind) == ("user", {"user_id": "acme/ana"}, "body")
    assert orjson.loads(body["json"]) == {
        "operations": [
            {"field": "languages", "op": "add", "value": "Basque"},
            {"field": "name", "op": "set", "value": "Ana"},
            {"field": "timezone", "op": "unset"},
        ],
        "lock": ["name"],
        "unlock": ["timezone"],
    }


async def test_a_correction_the_worker_refuses_carries_its_reason(
    worker: tuple[str, Seen],
) -> None:
    url, _ = worker
    with pytest.raises(Refused, match=r"answered 400: unknown fields \['shoe'\]$") as refused:
        await correct_profile(url, "strict", token="t", lock=["shoe"])
    assert refused.value.status == 400


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        ({}, "nothing to correct"),
        ({"operations": [{"field": "name", "op": "explode"}]}, "not a correction: op:"),
    ],
)
async def test_a_correction_that_says_nothing_valid_is_refused_before_sending(
    worker: tuple[str, Seen], arguments: dict[str, Any], words: str
) -> None:
    url, seen = worker
    with pytest.raises(InvalidRequest, match=words):
        await correct_profile(url, "u", token="t", **arguments)
    assert seen == []


async def test_something_that_is_not_a_worker_is_named_not_parsed(
    worker: tuple[str, Seen],
) -> None:
    url, _ = worker
    for call in (
        get_profile(url, "html", token="t"),
        forget_profile(url, "html", token="t"),
    ):
        with pytest.raises(ServiceError, match="'<html>hello</html>', not as a profile-stream"):
            await call


@pytest.mark.parametrize("base", ["localhost:6066", "ftp://host", "", "http://"])
async def test_a_url_that_is_not_http_is_refused_at_once(base: str) -> None:
    calls = [
        get_profile(base, "u", token="t"),
        get_prompt(base, "u", token="t"),
        correct_profile(base, "u", token="t", lock=["name"]),
        forget_profile(base, "u", token="t"),
    ]
    for call in calls:
        with pytest.raises(ConfigError, match="is not an http\\(s\\) URL; give it as http://"):
            await call


async def test_every_failure_of_every_call_is_a_profile_stream_error(
    worker: tuple[str, Seen], closed_port: int
) -> None:
    url, _ = worker
    nowhere = f"http://127.0.0.1:{closed_port}"
    calls = [
        get_profile(url, "boom", token="t"),
        get_profile(url, "gone", token="t"),
        get_profile(url, "html", token="t"),
        get_prompt(url, "slow", token="t", timeout_s=0.2),
        get_prompt(nowhere, "u", token="t"),
        correct_profile(url, "strict", token="t", lock=["x"]),
        correct_profile(nowhere, "u", token="t", lock=["x"]),
        correct_profile(url, "u", token="t"),
        forget_profile("nope", "u", token="t"),
    ]
    for call in calls:
        with pytest.raises(ProfileStreamError):
            await call
