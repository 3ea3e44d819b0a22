"""The long-lived clients against an aiohttp server playing a worker of the read-your-writes
contract (/work/coord/ryw-contract.md): typed answers, one pooled connection for many calls,
``wait_for`` and refresh with their timeouts, admin calls, and the sync twin doing the same."""

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from schemas import Freshness, HistoryAnswer, ProfileAnswer
from streams.client import (
    AsyncProfileStreamClient,
    ClientConfig,
    ConfigError,
    InvalidRequest,
    ProfileNotFound,
    ProfileNotFresh,
    ProfileStreamClient,
    ProfileStreamError,
    ServiceError,
    ServiceTimeout,
    get_profile,
    refresh_profile,
)


class FakeWorker:
    """The contract's answers: ``alice`` reflects message ``m1`` (not ``m9``: a 504 after the
    asked timeout); a refresh applies the buffer; ``ghost`` has no profile. Records each
    request's method, path, query, token and client port."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self.buffered = 2
        self.include: list[str] = []
        spent = {"calls": 2, "prompt_tokens": 300, "completion_tokens": 40}
        self.usage = {"total": spent, "day": "2026-12-06", "today": spent}

    def answer(self, user_id: str) -> dict[str, Any]:
        return {
            "user_id": user_id,
            "version": 3,
            "updated_at": "2026-12-06T10:00:00Z",
            "schema": "user/v1",
            "profile": {"name": "Alice", "languages": ["Spanish"]},
            "locked": [],
            "freshness": {
                "buffered_messages": self.buffered,
                "last_message_id": "m1",
                "last_message_at": "2026-12-06T10:00:00Z",
            },
            "a_key_of_a_newer_worker": True,
        } | ({"usage": self.usage} if "usage" in self.include else {})

    async def handle(self, request: web.Request) -> web.Response:
        user_id = request.match_info["user_id"]
        peer = request.transport.get_extra_info("peername") if request.transport else None
        self.seen.append(
            {
                "method": request.method,
                "path": request.path,
                "query": dict(request.query),
                "token": request.headers.get("Authorization"),
                "port": peer[1] if peer else None,
                "body": (await request.read()).decode(),
            }
        )
        if user_id == "ghost":
            return web.json_response({"error": "no profile"}, status=404)
        self.include = request.query.get("include", "").split(",")
        if request.path.endswith("/history"):
            return web.json_response(
                {"user_id": user_id, "version": 3, "history_from": 1, "fields": {}}
            )
        if request.method in ("PATCH", "DELETE") or request.path.endswith(("/flush", "/revert")):
            return web.json_response({"command_id": "c1", "status": "accepted"}, status=202)
        if request.path.endswith("/refresh"):
            self.buffered = 0
        elif request.query.get("wait_for") == "m9":
            await asyncio.sleep(float(request.query["timeout_s"]))
            return web.json_response(
                {"error": "message 'm9' is not reflected yet; pass refresh or a longer timeout"},
                status=504,
            )
        return web.json_response(self.answer(user_id))


@pytest.fixture
async def worker() -> AsyncIterator[tuple[str, FakeWorker]]:
    fake = FakeWorker()
    app = web.Application()
    app.router.add_route("*", "/profiles/{user_id}", fake.handle)
    app.router.add_route("*", "/profiles/{user_id}/{view}", fake.handle)
    async with TestServer(app) as server:
        yield str(server.make_url("")).rstrip("/"), fake


def _config(url: str, **fields: Any) -> ClientConfig:
    return ClientConfig(url=url, token="read", admin_token="admin", **fields)


async def test_answers_are_typed_with_freshness_and_unknown_keys_are_left_out(
    worker: tuple[str, FakeWorker],
) -> None:
    url, _ = worker
    async with AsyncProfileStreamClient(_config(url)) as client:
        profile = await client.get("alice")
        history = await client.history("alice", field="name")
        spent = await client.get("alice", usage=True)
    assert isinstance(profile, ProfileAnswer) and isinstance(history, HistoryAnswer)
    assert spent.usage is not None and spent.usage.total.prompt_tokens == 300
    assert spent.usage.day is not None and spent.usage.day.isoformat() == "2026-12-06"
    assert profile.profile["name"] == "Alice" and profile.schema_id == "user/v1"
    assert profile.freshness == Freshness(
        buffered_messages=2, last_message_id="m1", last_message_at=profile.updated_at
    )


async def test_many_calls_share_one_pooled_connection(worker: tuple[str, FakeWorker]) -> None:
    url, fake = worker
    async with AsyncProfileStreamClient(_config(url)) as client:
        for _ in range(5):
            await client.get("alice")
        await client.prompt("alice")
        await client.forget("alice")
    ports = {seen["port"] for seen in fake.seen}
    assert len(fake.seen) == 7 and len(ports) == 1, ports


async def test_wait_for_asks_the_worker_to_wait_and_a_504_is_profile_not_fresh(
    worker: tuple[str, FakeWorker],
) -> None:
    url, fake = worker
    async with AsyncProfileStreamClient(_config(url)) as client:
        profile = await client.get("alice", wait_for="m1", wait_s=5)
        assert profile.freshness is not None and profile.freshness.last_message_id == "m1"
        with pytest.raises(ProfileNotFresh, match="'m9'.*pass refresh") as late:
            await client.get("alice", wait_for="m9", wait_s=0.2)
    assert fake.seen[0]["query"] == {"wait_for": "m1", "timeout_s": "5"}
    assert (late.value.message_id, late.value.timeout_s) == ("m9", 0.2)
    assert isinstance(late.value, ServiceTimeout) and late.value.retriable


async def test_refresh_posts_with_the_read_token_and_answers_the_applied_profile(
    worker: tuple[str, FakeWorker],
) -> None:
    url, fake = worker
    async with AsyncProfileStreamClient(_config(url)) as client:
        profile = await client.refresh("alice", wait_s=20)
    assert profile.freshness is not None and profile.freshness.buffered_messages == 0
    [seen] = fake.seen
    assert (seen["method"], seen["path"], seen["query"]) == (
        "POST",
        "/profiles/alice/refresh",
        {"timeout_s": "20"},
    )
    assert seen["token"] == "Bearer read"


async def test_the_one_shot_functions_take_the_same_paths(worker: tuple[str, FakeWorker]) -> None:
    url, fake = worker
    body = await get_profile(url, "alice", token="t", wait_for="m1")
    assert body["freshness"]["last_message_id"] == "m1"
    assert (await refresh_profile(url, "alice", token="t"))["freshness"]["buffered_messages"] == 0
    assert [s["path"] for s in fake.seen] == ["/profiles/alice", "/profiles/alice/refresh"]


@pytest.mark.parametrize(
    ("call", "words"),
    [
        ({"wait_for": "m1", "wait_s": 31}, "wait_s must be between 0 and 30"),
        ({"wait_for": "m1", "version": 2}, "wait_for waits for the profile now"),
    ],
)
async def test_a_wait_the_contract_does_not_offer_is_refused_before_sending(
    worker: tuple[str, FakeWorker], call: dict[str, Any], words: str
) -> None:
    url, fake = worker
    async with AsyncProfileStreamClient(_config(url)) as client:
        with pytest.raises(InvalidRequest, match=words):
            await client.get("alice", **call)
    assert fake.seen == []


async def test_admin_calls_use_the_admin_token_and_need_one(
    worker: tuple[str, FakeWorker],
) -> None:
    url, fake = worker
    async with AsyncProfileStreamClient(_config(url)) as client:
        assert await client.correct("alice", values={"name": "Ana"}, lock=["name"]) == "c1"
        assert await client.flush("alice") == "c1"
        assert await client.revert("alice", version=2, fields=["name"]) == "c1"
    assert {s["token"] for s in fake.seen} == {"Bearer admin"}
    assert orjson.loads(fake.seen[0]["body"]) == {
        "operations": [{"field": "name", "op": "set", "value": "Ana"}],
        "lock": ["name"],
    }
    async with AsyncProfileStreamClient(ClientConfig(url=url, token="read")) as reader:
        with pytest.raises(ConfigError, match="no admin token: pass admin_token="):
            await reader.forget("alice")
    assert len(fake.seen) == 3


async def test_every_failure_is_a_profile_stream_error(worker: tuple[str, FakeWorker]) -> None:
    url, _ = worker
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        nowhere = f"http://127.0.0.1:{sock.getsockname()[1]}"
    async with AsyncProfileStreamClient(_config(url)) as client:
        with pytest.raises(ProfileNotFound, match="no profile for 'ghost'"):
            await client.get("ghost")
    async with AsyncProfileStreamClient(_config(nowhere)) as client:
        with pytest.raises(ServiceError, match=f"cannot connect to {nowhere}") as down:
            await client.get("alice")
    assert isinstance(down.value, ProfileStreamError)


async def test_an_answer_of_another_shape_is_named_not_parsed() -> None:
    async def odd(request: web.Request) -> web.Response:
        return web.json_response({"user_id": "x", "profile": {}})

    app = web.Application()
    app.router.add_get("/profiles/{user_id}", odd)
    async with TestServer(app) as server:
        url = str(server.make_url("")).rstrip("/")
        async with AsyncProfileStreamClient(_config(url)) as client:
            with pytest.raises(ServiceError, match="not a ProfileAnswer: version: Field required"):
                await client.get("x")


async def test_the_sync_client_runs_the_same_calls_on_one_loop_of_its_own(
    worker: tuple[str, FakeWorker],
) -> None:
    url, fake = worker

    def app() -> tuple[ProfileAnswer, ProfileAnswer]:  # sync code, as in a Flask view
        with ProfileStreamClient(_config(url)) as client:
            before, after = client.get("alice"), client.refresh("alice")
            with pytest.raises(ProfileNotFound):
                client.get("ghost")
            assert client.forget("alice") == "c1"
        return before, after

    before, after = await asyncio.to_thread(app)  # the fake worker answers on this loop

    assert before.profile["name"] == "Alice"
    assert before.freshness is not None and before.freshness.buffered_messages == 2
    assert after.freshness is not None and after.freshness.buffered_messages == 0
    assert len(fake.seen) == 4 and len({s["port"] for s in fake.seen}) == 1
