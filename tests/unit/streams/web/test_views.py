"""The views as a worker mounts them: a real Faust app's web server, served in-process by
aiohttp's test server; the table, the command topic and the partition owner are fakes."""

import orjson
import pytest
from faust.web import View

from streams.core.codecs import COMMAND_HEADER, decode_command
from streams.core.freshness import Waited
from streams.core.signing import SIGNATURE_HEADER
from streams.web.probes import Health
from streams.web.profiles import KindView, ProfileView, PromptView
from streams.web.views import OPEN, READ, READ_OR_ADMIN, TABLE, _bound

from .conftest import ADMIN_TOKEN, MAX_BODY, READ_TOKEN, Served, accepted_by_workers

PROTECTED = [
    ("GET", "/profiles/zed"),
    ("HEAD", "/profiles/zed"),
    ("DELETE", "/profiles/zed"),
    ("PATCH", "/profiles/zed"),
    ("GET", "/profiles/zed/prompt"),
    ("POST", "/profiles/zed/refresh"),
    ("GET", "/profiles/zed?wait_for=m1"),
    ("GET", "/profiles/team/t1"),
    ("GET", "/profiles/nokind/t1"),
    ("GET", "/profiles/" + "u" * 300),
]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
@pytest.mark.parametrize("token", [None, "wrong"])
async def test_every_profile_route_wants_a_known_token_before_anything_else(
    served: Served, method: str, path: str, token: str | None
) -> None:
    status, body, headers = await served.call(method, path, token, b"x" * (MAX_BODY + 1))
    assert status == 401 and headers["WWW-Authenticate"] == "Bearer"
    assert body in ({"error": "missing or unknown bearer token"}, b"")  # HEAD has no body
    assert served.commands.sent == []
    assert served.fresh.calls == []


@pytest.mark.parametrize("method", ["DELETE", "PATCH"])
async def test_changing_a_profile_wants_an_admin_token(served: Served, method: str) -> None:
    status, body, _ = await served.call(method, "/profiles/zed", READ_TOKEN, b"{}")
    assert (status, body) == (403, {"error": "needs an admin token"})
    assert served.commands.sent == []


@pytest.mark.parametrize("path", ["/healthz", "/metrics", "/readyz"])
async def test_probes_need_no_token(served: Served, path: str) -> None:
    # /readyz answers 500 here: the consumer of an app that never started raises.
    assert (await served.call("GET", path))[0] not in (401, 403)


async def test_healthz_says_ok(served: Served) -> None:
    assert (await served.call("GET", "/healthz"))[:2] == (200, {"status": "ok"})


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/profiles", 404), ("GET", "/profiles/", 404), ("POST", "/profiles/zed", 405)],
)
async def test_no_listing_route_and_no_other_methods(
    served: Served, method: str, path: str, status: int
) -> None:
    assert (await served.call(method, path, ADMIN_TOKEN))[0] == status


@pytest.mark.parametrize("token", [READ_TOKEN, ADMIN_TOKEN])
async def test_a_profile_is_read_here_as_json(served: Served, token: str) -> None:
    status, body, _ = await served.call("GET", "/profiles/zed", token)
    assert status == 200 and body["user_id"] == "zed" and body["profile"]["name"] == "Zed"
    assert "kind" not in body and "provenance" not in body
    status, body, _ = await served.call("GET", "/profiles/zed?include=provenance", token)
    assert body["provenance"] == {}


async def test_the_prompt_is_text(served: Served) -> None:
    status, body, _ = await served.call("GET", "/profiles/zed/prompt", READ_TOKEN)
    assert status == 200 and b"<User Profile>" in body and b"Zed" in body


async def test_other_kinds_are_read_by_kind_and_subject(served: Served) -> None:
    status, body, _ = await served.call("GET", "/profiles/team/t1", READ_TOKEN)
    assert status == 200 and body["kind"] == "team" and body["profile"]["name"] == "T1"
    status, body, _ = await served.call("GET", "/profiles/galaxy/t1", READ_TOKEN)
    assert (status, body) == (
        404,
        {"error": "no profile kind 'galaxy'; this worker has ['team', 'user']"},
    )


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/profiles/nobody", "no user profile for this subject"),
        ("/profiles/nobody/prompt", "no profile for this user"),
        ("/profiles/team/t9", "no team profile for this subject"),
    ],
)
async def test_an_absent_profile_is_404(served: Served, path: str, message: str) -> None:
    assert (await served.call("GET", path, READ_TOKEN))[:2] == (404, {"error": message})


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/profiles/{}"),
        ("DELETE", "/profiles/{}"),
        ("PATCH", "/profiles/{}"),
        ("GET", "/profiles/{}/prompt"),
        ("GET", "/profiles/galaxy/{}"),
    ],
)
async def test_an_overlong_subject_is_400(served: Served, method: str, path: str) -> None:
    status, body, _ = await served.call(method, path.format("u" * 257), ADMIN_TOKEN, b"{}")
    assert (status, body) == (400, {"error": "user id longer than 256 characters"})


async def test_while_not_settled_reads_are_503_with_retry_after(served: Served) -> None:
    served.recovered[0] = False
    status, body, headers = await served.call("GET", "/profiles/zed", READ_TOKEN)
    assert (status, body, headers["Retry-After"]) == (503, {"error": "rebalancing; try again"}, "1")
    served.recovered[0], served.owner[0] = True, None
    status, body, _ = await served.call("GET", "/profiles/team/t1", READ_TOKEN)
    assert (status, body) == (503, {"error": "partition owner unknown; try again"})


async def test_delete_sends_a_forget_command_keyed_by_the_user(served: Served) -> None:
    status, body, _ = await served.call("DELETE", "/profiles/zed", ADMIN_TOKEN)
    assert status == 202 and body["status"] == "accepted"
    [(key, value, headers)] = served.commands.sent
    command = decode_command(value)
    assert (key, command.type, command.user_id) == (b"zed", "forget", "zed")
    assert [name for name, _ in headers] == [COMMAND_HEADER[0], SIGNATURE_HEADER]
    assert COMMAND_HEADER in headers and accepted_by_workers(key, value, headers)
    assert body["command_id"] == command.command_id


async def test_patch_sends_the_parsed_correction(served: Served) -> None:
    patch = {"operations": [{"field": "name", "op": "set", "value": "Zee"}], "lock": ["name"]}
    status, body, _ = await served.call("PATCH", "/profiles/zed", ADMIN_TOKEN, orjson.dumps(patch))
    assert status == 202
    [(key, value, headers)] = served.commands.sent
    command = decode_command(value)
    assert (key, command.type, command.lock) == (b"zed", "correct", ("name",))
    assert accepted_by_workers(key, value, headers)
    assert command.operations[0].value == "Zee" and body["command_id"] == command.command_id


@pytest.mark.parametrize(
    ("data", "status", "message"),
    [
        (b"not json", 400, "body is not JSON"),
        (b'{"lock": ["shoe_size"]}', 400, "unknown fields ['shoe_size']"),
        (b'{"pad": "' + b"x" * MAX_BODY + b'"}', 413, f"body over {MAX_BODY} bytes"),
    ],
)
async def test_a_bad_patch_is_refused_and_sends_nothing(
    served: Served, data: bytes, status: int, message: str
) -> None:
    got, body, _ = await served.call("PATCH", "/profiles/zed", ADMIN_TOKEN, data)
    assert got == status and body["error"].startswith(message)
    assert served.commands.sent == []


@pytest.mark.parametrize("command_keys", [()])
@pytest.mark.parametrize(("method", "data"), [("DELETE", None), ("PATCH", b"{}")])
async def test_without_command_keys_commands_are_503_and_nothing_is_sent(
    served: Served, method: str, data: bytes | None
) -> None:
    status, body, _ = await served.call(method, "/profiles/zed", ADMIN_TOKEN, data)
    assert status == 503 and "PROFILE_STREAM_COMMAND_KEYS is not set" in body["error"]
    assert served.commands.sent == []


def test_the_prompt_route_comes_before_the_kind_route_and_probes_are_open() -> None:
    table = TABLE
    paths = [route.path for route in table]
    assert paths.index("/profiles/{user_id}/prompt") < paths.index("/profiles/{kind}/{subject}")
    scopes = {route.path: route.scopes for route in table}
    assert scopes["/profiles/{user_id}"] == READ_OR_ADMIN
    assert scopes["/profiles/{user_id}/prompt"] == scopes["/profiles/{kind}/{subject}"] == READ
    assert scopes["/healthz"] == scopes["/readyz"] == scopes["/metrics"] == OPEN
    assert scopes["/openapi.json"] == OPEN
    assert {route.view.__name__ for route in table} >= {"ProfileView", "PromptView", "KindView"}


def test_a_bound_view_is_a_fresh_subclass_and_a_misspelt_dependency_fails_at_once() -> None:
    bound = _bound(PromptView, reader="r")
    assert issubclass(bound, PromptView) and bound is not PromptView
    assert bound.reader == "r" and not hasattr(PromptView, "reader")  # type: ignore[comparison-overlap]
    assert issubclass(_bound(Health), View)
    with pytest.raises(TypeError, match="KindView takes"):
        _bound(KindView, reader="r")
    with pytest.raises(TypeError, match="ProfileView takes"):
        _bound(ProfileView, reader="r", commands="c")


async def test_a_current_read_says_how_fresh_the_profile_is(served: Served) -> None:
    status, body, _ = await served.call("GET", "/profiles/zed", READ_TOKEN)
    assert status == 200
    assert body["freshness"] == {
        "buffered_messages": 0,
        "last_message_id": None,
        "last_message_at": None,
    }


async def test_wait_for_waits_on_the_owner_then_answers_the_profile(served: Served) -> None:
    status, body, _ = await served.call("GET", "/profiles/zed?wait_for=m1&timeout_s=2", READ_TOKEN)
    assert status == 200 and body["profile"]["name"] == "Zed"
    assert served.fresh.calls == [("reflected", "zed", "m1", "2")]
    await served.call("GET", "/profiles/zed?wait_for=m1", READ_TOKEN)
    assert served.fresh.calls[-1] == ("reflected", "zed", "m1", "10")  # the default


async def test_a_wait_that_times_out_is_504_saying_what_to_do(served: Served) -> None:
    served.fresh.outcome = Waited.TIMED_OUT
    status, body, _ = await served.call(
        "GET", "/profiles/zed?wait_for=m1&timeout_s=0.5", READ_TOKEN
    )
    assert status == 504
    assert "'m1' is not reflected in the profile after 0.5s" in body["error"]
    assert "/refresh" in body["error"] and "longer timeout_s" in body["error"]


@pytest.mark.parametrize("outcome", [Waited.BUSY, Waited.NOT_OWNER])
async def test_a_busy_or_moved_owner_is_503_to_retry(served: Served, outcome: Waited) -> None:
    served.fresh.outcome = outcome
    for method, path in (("GET", "/profiles/zed?wait_for=m1"), ("POST", "/profiles/zed/refresh")):
        status, body, headers = await served.call(method, path, READ_TOKEN)
        assert status == 503 and headers["Retry-After"] == "1"
    assert "PROFILE_STREAM_MAX_WAITING_READS" in body["error"] or outcome is Waited.NOT_OWNER


@pytest.mark.parametrize(
    "query", ["timeout_s=-1", "timeout_s=61", "timeout_s=soon", "timeout_s=nan"]
)
async def test_a_bad_timeout_is_400_and_waits_for_nothing(served: Served, query: str) -> None:
    status, body, _ = await served.call("POST", f"/profiles/zed/refresh?{query}", READ_TOKEN)
    assert status == 400 and "timeout_s must be a number from 0 to 60" in body["error"]
    status, _, _ = await served.call("GET", f"/profiles/zed?wait_for=m1&{query}", READ_TOKEN)
    assert status == 400
    assert served.fresh.calls == []


async def test_wait_for_is_a_current_read_only(served: Served) -> None:
    status, body, _ = await served.call("GET", "/profiles/zed?wait_for=m1&version=1", READ_TOKEN)
    assert (status, body) == (400, {"error": "wait_for reads the profile now: no version or as_of"})


@pytest.mark.parametrize("token", [READ_TOKEN, ADMIN_TOKEN])
async def test_refresh_takes_a_read_token_and_answers_the_profile(
    served: Served, token: str
) -> None:
    status, body, _ = await served.call("POST", "/profiles/zed/refresh?timeout_s=5", token)
    assert status == 200 and body["profile"]["name"] == "Zed" and "freshness" in body
    assert served.fresh.calls == [("refresh", "zed", "5")]
    assert served.commands.sent == []  # no command: the owner flushes, no key needed


async def test_a_refresh_that_times_out_is_504(served: Served) -> None:
    served.fresh.outcome = Waited.TIMED_OUT
    status, body, _ = await served.call("POST", "/profiles/zed/refresh?timeout_s=1", READ_TOKEN)
    assert status == 504 and "was not applied within 1s" in body["error"]
