"""The HTTP client against an aiohttp server playing a worker: ids reach the route they name,
and every failure (nothing listening, a worker that hangs) is a quick ProfileStreamError."""

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from streams.client import (
    ProfileNotFound,
    ProfileStreamError,
    Refused,
    ServiceError,
    ServiceTimeout,
    forget_profile,
    get_profile,
)

Seen = list[tuple[str, dict[str, str]]]


@pytest.fixture
async def worker() -> AsyncIterator[tuple[str, Seen]]:
    """A worker with the real routes' shapes; records (route, match_info) of each request.

    User ``slow`` hangs; ``busy`` answers 503 once; ``gone`` 404; ``boom`` 500.
    """
    seen: Seen = []
    busy = [True]

    async def answer(route: str, request: web.Request) -> web.Response:
        info = dict(request.match_info)
        seen.append((route, info))
        subject = info.get("user_id") or info["subject"]
        if subject == "slow":
            await asyncio.sleep(5)
        if subject == "gone":
            return web.json_response({"error": "no profile"}, status=404)
        if subject == "boom":
            return web.json_response({"error": "bug"}, status=500)
        if subject == "busy" and busy[0]:
            busy[0] = False
            return web.json_response(
                {"error": "rebalancing"}, status=503, headers={"Retry-After": "0"}
            )
        if request.method == "DELETE":
            return web.json_response({"command_id": "c1", "status": "accepted"}, status=202)
        return web.json_response({"user_id": subject, "version": 1})

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
