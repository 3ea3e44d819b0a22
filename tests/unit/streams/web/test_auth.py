"""Who may call the web views."""

import pytest
from pydantic import SecretStr

from streams.web.auth import Scope, authorize

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
