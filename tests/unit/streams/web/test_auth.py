"""Who may call the web views: the decision, and the middleware that applies it."""

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from streams.web.auth import Guards, Scope, authorize, bearer_auth

READ = (SecretStr("read-token-1"), SecretStr("read-token-2"))
ADMIN = (SecretStr("admin-token"),)


def _auth(header: str | None, need: Scope, read=READ, admin=ADMIN) -> int | None:  # type: ignore[no-untyped-def]
    return authorize(header, need, read_tokens=read, admin_tokens=admin)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Bearer    ",
        "Basic read-token-1",
        "Token admin-token",
        "read-token-1",
        "Bearer read-token-3",
        "Bearer admin-token-but-longer",
        "Bearer admin",
        "Bearer ADMIN-TOKEN",
    ],
)
@pytest.mark.parametrize("need", ["read", "admin"])
def test_missing_or_unknown_credentials_get_401(header: str | None, need: Scope) -> None:
    assert _auth(header, need) == 401


@pytest.mark.parametrize(
    "header", ["Bearer read-token-1", "Bearer read-token-2", "bearer read-token-1"]
)
def test_read_tokens_may_read_but_not_administer(header: str) -> None:
    assert _auth(header, "read") is None
    assert _auth(header, "admin") == 403


@pytest.mark.parametrize("need", ["read", "admin"])
def test_admin_tokens_may_do_everything(need: Scope) -> None:
    assert _auth("Bearer admin-token", need) is None
    assert _auth("Bearer  admin-token ", need) is None


@pytest.mark.parametrize("header", [None, "Bearer ", "Bearer anything", "Bearer read-token-1"])
@pytest.mark.parametrize("need", ["read", "admin"])
def test_with_no_tokens_configured_everything_is_refused(header: str | None, need: Scope) -> None:
    assert _auth(header, need, read=(), admin=()) == 401


def test_an_empty_configured_token_does_not_open_the_door() -> None:
    assert _auth("Bearer ", "read", read=(SecretStr(""),), admin=()) == 401


# The middleware, alone on a bare aiohttp app: one guarded route, one open.

GUARDS: Guards = {"/things/{id}": {"GET": "read", "HEAD": "read", "DELETE": "admin"}}


@pytest.fixture
async def client() -> AsyncIterator[tuple[TestClient, list[str]]]:
    calls: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        calls.append(f"{request.method} {request.path}")
        return web.Response(text="handled")

    app = web.Application(middlewares=[bearer_auth(GUARDS, read_tokens=READ, admin_tokens=ADMIN)])
    app.router.add_route("GET", "/things/{id}", handler)
    app.router.add_route("HEAD", "/things/{id}", handler)
    app.router.add_route("DELETE", "/things/{id}", handler)
    app.router.add_route("PATCH", "/things/{id}", handler)  # not in GUARDS' scopes: admin
    app.router.add_route("GET", "/open", handler)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client, calls


def bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


@pytest.mark.parametrize(
    ("method", "token", "status", "message"),
    [
        ("GET", None, 401, "missing or unknown bearer token"),
        ("GET", "nope", 401, "missing or unknown bearer token"),
        ("DELETE", None, 401, "missing or unknown bearer token"),
        ("DELETE", "read-token-1", 403, "needs an admin token"),
        ("PATCH", None, 401, "missing or unknown bearer token"),
        ("PATCH", "read-token-1", 403, "needs an admin token"),
    ],
)
async def test_a_refused_call_never_reaches_the_handler(
    client: tuple[TestClient, list[str]], method: str, token: str | None, status: int, message: str
) -> None:
    test_client, calls = client
    async with test_client.request(method, "/things/1", headers=bearer(token)) as response:
        assert response.status == status
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert response.content_type == "application/json"
        assert await response.json() == {"error": message}
    assert calls == []


async def test_head_needs_what_get_needs(client: tuple[TestClient, list[str]]) -> None:
    test_client, calls = client
    async with test_client.head("/things/1") as response:
        assert response.status == 401
    async with test_client.head("/things/1", headers=bearer("read-token-2")) as response:
        assert response.status == 200
    assert calls == ["HEAD /things/1"]


@pytest.mark.parametrize(
    ("method", "path", "token"),
    [
        ("GET", "/things/1", "read-token-1"),
        ("GET", "/things/1", "admin-token"),
        ("DELETE", "/things/1", "admin-token"),
        ("PATCH", "/things/1", "admin-token"),
        ("GET", "/open", None),
    ],
)
async def test_a_granted_or_open_call_reaches_the_handler(
    client: tuple[TestClient, list[str]], method: str, path: str, token: str | None
) -> None:
    test_client, calls = client
    async with test_client.request(method, path, headers=bearer(token)) as response:
        assert response.status == 200 and await response.text() == "handled"
    assert calls == [f"{method} {path}"]


@pytest.mark.parametrize(
    ("method", "path", "status"), [("GET", "/nowhere", 404), ("POST", "/things/1", 405)]
)
async def test_what_matches_no_route_gets_aiohttps_answer_without_a_token(
    client: tuple[TestClient, list[str]], method: str, path: str, status: int
) -> None:
    test_client, calls = client
    async with test_client.request(method, path) as response:
        assert response.status == status
    assert calls == []
