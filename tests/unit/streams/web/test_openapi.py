"""The OpenAPI document is the worker's real routes and nothing else, each answer the views
give fits the contract the document names for it, and docs/openapi.json is what the workers
serve for the default profile model."""

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import BaseModel

from schemas import (
    CommandAccepted,
    ErrorAnswer,
    HistoryAnswer,
    Liveness,
    ModelUsage,
    ProfileAnswer,
    ProfileRecord,
    ProfileUsage,
    Provenance,
    Readiness,
    SetAside,
    UsageAnswer,
    UserProfile,
)
from streams.core.profile_schema import load_profile_schema
from streams.web.openapi import OPENAPI, build, render
from streams.web.profiles import ProfileView, profile_body
from streams.web.views import READ, TABLE

from .conftest import ADMIN_TOKEN, READ_TOKEN, SCHEMA, Served

ROOT = Path(__file__).resolve().parents[4]
COMMITTED = ROOT / "docs" / "openapi.json"
CONTRACTS: dict[str, type[BaseModel]] = {
    m.__name__: m
    for m in (ProfileAnswer, CommandAccepted, ErrorAnswer, HistoryAnswer, Liveness, Readiness)
}
REGENERATE = ".venv/bin/python -m streams.web.openapi docs/openapi.json"


def test_the_committed_document_is_what_workers_serve_for_the_default_profile() -> None:
    committed = json.loads(COMMITTED.read_text())
    version = committed["info"]["version"]  # whatever release wrote it; the rest must agree
    built = render(build(TABLE, profile_model=UserProfile, version=version))
    assert COMMITTED.read_text() == built, f"docs/openapi.json is stale: run `{REGENERATE}`"
    assert committed["openapi"] == OPENAPI == "3.1.0"


async def test_every_mounted_route_and_method_is_documented_and_nothing_else(
    served: Served,
) -> None:
    status, document, _ = await served.call("GET", "/openapi.json")  # no token needed
    assert status == 200
    documented = {
        (path, method.upper()) for path, item in document["paths"].items() for method in item
    }
    app = served.client.app
    assert app is not None
    mounted = {
        (route.resource.canonical, route.method)
        for route in app.router.routes()
        if route.resource is not None
    }
    # Faust mounts HEAD on every view; without a GET it only answers 405: not an operation.
    mounted = {(p, m) for p, m in mounted if m != "HEAD" or (p, "GET") in mounted}
    assert documented == mounted
    assert list(document["paths"]) == [route.path for route in TABLE]
    assert document == orjson.loads(render(build(TABLE, profile_model=SCHEMA.model)))


def test_each_operation_says_the_token_it_needs_as_the_auth_middleware_decides() -> None:
    document = build(TABLE, profile_model=UserProfile)
    for route in TABLE:
        for method, operation in document["paths"][route.path].items():
            scope = route.scopes.get(method.upper())
            assert operation.get("x-profile-stream-scope") == scope, (route.path, method)
            assert operation["security"] == ([{"bearerAuth": []}] if scope else [])
            assert ("401" in operation["responses"]) == (scope is not None)
            assert ("403" in operation["responses"]) == (scope == "admin")
    scopes = {op["operationId"]: op.get("x-profile-stream-scope") for op in _operations(document)}
    assert scopes["getProfile"] == scopes["getPrompt"] == scopes["getKindProfile"] == "read"
    assert scopes["correctProfile"] == scopes["forgetProfile"] == "admin"
    assert scopes["getHealth"] is scopes["getOpenAPI"] is None


def _operations(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [op for item in document["paths"].values() for op in item.values()]


PATCH = orjson.dumps({"operations": [{"field": "name", "op": "set", "value": "Zee"}]})
REVERT = orjson.dumps({"version": 1, "fields": ["name"], "lock": ["name"]})
CALLS = [
    # method, path as sent, its route, token, body, the status the view answers
    ("GET", "/profiles/zed", "/profiles/{user_id}", READ_TOKEN, None, 200),
    ("GET", "/profiles/zed?include=provenance", "/profiles/{user_id}", READ_TOKEN, None, 200),
    ("GET", "/profiles/zed?include=usage,provenance", "/profiles/{user_id}", READ_TOKEN, None, 200),
    ("GET", "/profiles/nobody", "/profiles/{user_id}", READ_TOKEN, None, 404),
    ("GET", "/profiles/zed", "/profiles/{user_id}", "wrong", None, 401),
    ("GET", "/profiles/" + "u" * 257, "/profiles/{user_id}", READ_TOKEN, None, 400),
    ("PATCH", "/profiles/zed", "/profiles/{user_id}", ADMIN_TOKEN, PATCH, 202),
    ("PATCH", "/profiles/zed", "/profiles/{user_id}", ADMIN_TOKEN, b"[]", 400),
    ("PATCH", "/profiles/zed", "/profiles/{user_id}", READ_TOKEN, PATCH, 403),
    ("DELETE", "/profiles/zed", "/profiles/{user_id}", ADMIN_TOKEN, None, 202),
    ("GET", "/profiles/zed?version=2", "/profiles/{user_id}", READ_TOKEN, None, 200),
    ("GET", "/profiles/zed?version=1", "/profiles/{user_id}", READ_TOKEN, None, 410),
    ("GET", "/profiles/zed?version=9", "/profiles/{user_id}", READ_TOKEN, None, 404),
    ("GET", "/profiles/zed?as_of=soon", "/profiles/{user_id}", READ_TOKEN, None, 400),
    ("GET", "/profiles/zed/history", "/profiles/{user_id}/history", READ_TOKEN, None, 200),
    ("GET", "/profiles/zed/history?field=x", "/profiles/{user_id}/history", READ_TOKEN, None, 400),
    ("POST", "/profiles/zed/revert", "/profiles/{user_id}/revert", ADMIN_TOKEN, REVERT, 202),
    ("POST", "/profiles/zed/revert", "/profiles/{user_id}/revert", ADMIN_TOKEN, b"{}", 400),
    ("GET", "/profiles/zed/prompt", "/profiles/{user_id}/prompt", READ_TOKEN, None, 200),
    ("GET", "/profiles/zed?wait_for=m1", "/profiles/{user_id}", READ_TOKEN, None, 200),
    ("GET", "/profiles/zed?wait_for=m1&timeout_s=x", "/profiles/{user_id}", READ_TOKEN, None, 400),
    ("POST", "/profiles/zed/refresh", "/profiles/{user_id}/refresh", READ_TOKEN, None, 200),
    ("POST", "/profiles/nobody/refresh", "/profiles/{user_id}/refresh", READ_TOKEN, None, 404),
    (
        "POST",
        "/profiles/zed/refresh?timeout_s=99",
        "/profiles/{user_id}/refresh",
        READ_TOKEN,
        None,
        400,
    ),
    ("GET", "/profiles/team/t1", "/profiles/{kind}/{subject}", READ_TOKEN, None, 200),
    ("GET", "/profiles/galaxy/t1", "/profiles/{kind}/{subject}", READ_TOKEN, None, 404),
    ("GET", "/healthz", "/healthz", None, None, 200),
    ("GET", "/metrics", "/metrics", None, None, 200),
    ("GET", "/openapi.json", "/openapi.json", None, None, 200),
]


@pytest.mark.parametrize(
    ("method", "path", "route", "token", "data", "status"),
    CALLS,
    ids=[f"{c[0]} {c[1][:40]} {c[5]}" for c in CALLS],
)
async def test_each_answer_fits_the_contract_the_document_names_for_its_status(
    served: Served,
    method: str,
    path: str,
    route: str,
    token: str | None,
    data: bytes | None,
    status: int,
) -> None:
    got, body, headers = await served.call(method, path, token, data)
    assert got == status
    answer = build(TABLE, profile_model=UserProfile)["paths"][route][method.lower()]
    documented = answer["responses"].get(str(status))
    assert documented is not None, f"{method} {route} answers {status}, not documented"
    [(media, content)] = documented["content"].items()
    assert headers["Content-Type"].startswith(media)
    schema = content["schema"]
    if "allOf" in schema:  # a user's profile: the answer, with the profile model's fields
        schema, typed = schema["allOf"][0], schema["allOf"][1]["properties"]["profile"]
        assert typed == {"$ref": "#/components/schemas/UserProfile"}
        UserProfile.model_validate(body["profile"])
    if "$ref" in schema:
        CONTRACTS[schema["$ref"].rsplit("/", 1)[1]].model_validate(body)
    else:
        assert schema["type"] == ("object" if media == "application/json" else "string")


def test_a_profile_with_everything_optional_still_fits_the_answer_contract() -> None:
    at = datetime(2026, 5, 1, tzinfo=UTC)
    record = ProfileRecord(
        user_id="t1",
        kind="team",
        version=3,
        schema_id="TeamProfile/v2",
        profile={"name": "Sales"},
        provenance={"name": Provenance(message_id="m1", at=at)},
        locked=("name",),
        set_aside={"size": SetAside(value="big", reason="not an int", schema_id="T/v1")},
        updated_at=at,
    )

    class Request:
        query = {"include": "provenance,usage"}

    body = orjson.loads(orjson.dumps(profile_body(record, Request())))  # type: ignore[arg-type]
    answer = ProfileAnswer.model_validate(body)
    assert (answer.kind, answer.schema_id, list(answer.set_aside or {})) == (
        "team",
        "TeamProfile/v2",
        ["size"],
    )
    assert answer.usage is not None and answer.usage.day is None  # no model call yet
    charged = record.model_copy(
        update={"usage": ProfileUsage(day=date(2026, 5, 1), total=ModelUsage(calls=2))}
    )
    body = orjson.loads(orjson.dumps(profile_body(charged, Request())))  # type: ignore[arg-type]
    assert ProfileAnswer.model_validate(body).usage == UsageAnswer(
        total=ModelUsage(calls=2), day=date(2026, 5, 1), today=ModelUsage()
    )


def test_the_document_types_a_users_profile_with_the_workers_own_model(tmp_path: Path) -> None:
    path = tmp_path / "role.schema.json"
    code = {"type": "string", "pattern": "^[A-Z]+$"}
    path.write_text(json.dumps({"title": "Role", "type": "object", "properties": {"code": code}}))
    model = load_profile_schema(str(path)).model
    document = build(TABLE, profile_model=model)
    ok = document["paths"]["/profiles/{user_id}"]["get"]["responses"]["200"]
    assert ok["content"]["application/json"]["schema"]["allOf"][1] == {
        "properties": {"profile": {"$ref": "#/components/schemas/Role"}}
    }
    role = document["components"]["schemas"]["Role"]["properties"]["code"]
    assert {"type": "string", "pattern": "^[A-Z]+$"} in role["anyOf"]  # the file's keywords


def test_a_served_method_nobody_described_stops_the_build() -> None:
    class Extended(ProfileView):
        async def put(self, request: Any, user_id: str) -> Any:
            raise NotImplementedError

    with pytest.raises(LookupError, match=r"Extended\.put is served but not described"):
        build([("/profiles/{user_id}", Extended, READ)], profile_model=UserProfile)
    with pytest.raises(LookupError, match=r"describe \['team'\]"):
        build([("/teams/{team}", ProfileView, READ)], profile_model=UserProfile)
