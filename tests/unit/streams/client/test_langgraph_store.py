"""The LangGraph store against an aiohttp server playing a worker: each store call becomes the
request it should (the route, the token, the correction body the real parser accepts), each
answer the item it should, and what a profile store cannot do is refused before any request."""

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from langgraph.store.base import GetOp, InvalidNamespaceError, PutOp, SearchOp

from schemas import Provenance, UserProfile
from streams.client import ProfileStreamError, Refused, UnsupportedOperation
from streams.client.langgraph_store import (
    PROFILE_KEY,
    ProfileItem,
    ProfileStreamStore,
    subject_label,
    subject_of,
)
from streams.core.corrections import parse_correction
from streams.core.merge import merge
from streams.core.profile_schema import ProfileSchema

from ...helpers import T0

READ, ADMIN = "read-token", "admin-token"
ALICE = "acme/alice?x"  # reaches the user route only if quoted
SCHEMA = ProfileSchema(UserProfile)


@dataclass
class Worker:
    """Profiles by (kind, subject); every request as (method, route, match_info, query, token,
    body). A PATCH is checked and applied as the real worker would (instantly, here)."""

    url: str = ""
    profiles: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    seen: list[tuple[str, str, dict[str, str], dict[str, str], str, Any]] = field(
        default_factory=list
    )

    def body(self, kind: str, subject: str, query: dict[str, str]) -> dict[str, Any] | None:
        stored = self.profiles.get((kind, subject))
        if stored is None:
            return None
        body = {k: v for k, v in stored.items() if k != "provenance"}
        if query.get("include") == "provenance":
            body["provenance"] = stored["provenance"]
        return body

    def correct(self, subject: str, raw: bytes) -> web.Response:
        try:
            command = parse_correction(raw, subject, SCHEMA)
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        stored = self.profiles[("user", subject)]
        result = merge(
            stored["profile"],
            {k: Provenance.model_validate(v) for k, v in stored["provenance"].items()},
            (),
            command.operations,
            SCHEMA,
            by="operator",
            evidence={command.command_id: command.requested_at},
        )
        stored["profile"] = result.profile
        stored["provenance"] = {k: v.model_dump(mode="json") for k, v in result.provenance.items()}
        stored["locked"] = sorted({*stored["locked"], *command.lock})
        stored["version"] += 1
        return web.json_response({"command_id": command.command_id}, status=202)


def stored_profile(subject: str, kind: str = "user", **fields: Any) -> dict[str, Any]:
    profile = {**SCHEMA.empty(), **fields}
    return {
        "user_id": subject,
        "version": 2,
        "updated_at": T0.isoformat(),
        "schema": "UserProfile/v1",
        "profile": profile,
        "locked": [],
        "provenance": {
            f: {"message_id": "m1", "at": T0.isoformat(), "by": "extraction"} for f in fields
        },
        **({"kind": kind} if kind != "user" else {}),
    }


@pytest.fixture
async def worker() -> AsyncIterator[Worker]:
    state = Worker()
    state.profiles[("user", ALICE)] = stored_profile(
        ALICE, name="Alice", timezone="America/Los_Angeles", languages=["English"]
    )
    state.profiles[("team", "sales-emea")] = stored_profile(
        "sales-emea", kind="team", name="Sales EMEA"
    )

    async def handle(request: web.Request) -> web.Response:
        info = dict(request.match_info)
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        raw = await request.read()
        route = "kind" if "kind" in info else "user"
        state.seen.append(
            (request.method, route, info, dict(request.query), token, raw and orjson.loads(raw))
        )
        kind, subject = info.get("kind", "user"), info.get("subject") or info["user_id"]
        if request.method == "PATCH":
            return state.correct(subject, raw)
        if request.method == "DELETE":
            state.profiles.pop((kind, subject), None)
            return web.json_response({"command_id": "c-forget"}, status=202)
        body = state.body(kind, subject, dict(request.query))
        if body is None:
            return web.json_response({"error": "no profile"}, status=404)
        return web.json_response(body)

    async def prompt(request: web.Request) -> web.Response:
        stored = state.profiles.get(("user", request.match_info["user_id"]))
        if stored is None:
            return web.json_response({"error": "no profile"}, status=404)
        return web.Response(
            text=f"<User Profile>\nname: {stored['profile']['name']}\n</User Profile>"
        )

    async def refresh(request: web.Request) -> web.Response:
        state.seen.append(
            ("POST", "refresh", dict(request.match_info), dict(request.query), "", None)
        )
        body = state.body("user", request.match_info["user_id"], {})
        if body is None:
            return web.json_response({"error": "no profile"}, status=404)
        fresh = {"buffered_messages": 0, "last_message_id": "m9", "last_message_at": None}
        return web.json_response(body | {"freshness": fresh})

    app = web.Application()
    app.router.add_route("*", "/profiles/{user_id}", handle)
    app.router.add_get("/profiles/{user_id}/prompt", prompt)
    app.router.add_post("/profiles/{user_id}/refresh", refresh)
    app.router.add_get("/profiles/{kind}/{subject}", handle)
    async with TestServer(app) as server:
        state.url = str(server.make_url(""))
        yield state


@pytest.fixture
def store(worker: Worker) -> ProfileStreamStore:
    return ProfileStreamStore(worker.url, token=READ, admin_token=ADMIN)


async def test_the_seeds_search_returns_the_profile_with_its_bookkeeping(
    worker: Worker, store: ProfileStreamStore
) -> None:
    results = await store.asearch(("users", ALICE, "profile"))

    assert len(results) == 1
    item = results[0]
    assert isinstance(item, ProfileItem)
    assert (item.namespace, item.key) == (("users", ALICE, "profile"), PROFILE_KEY)
    assert item.value["name"] == "Alice" and item.value["languages"] == ["English"]
    assert "version" not in item.value  # the value is the profile, what a prompt shows
    assert (item.version, item.schema, item.kind, item.updated_at) == (
        2,
        "UserProfile/v1",
        "user",
        T0,
    )
    assert item.provenance["timezone"]["message_id"] == "m1"
    assert item.dict()["version"] == 2 and "version=2" in repr(item)
    assert worker.seen == [
        ("GET", "user", {"user_id": ALICE}, {"include": "provenance"}, READ, b"")
    ]
    assert await store.aget(("users", ALICE, "profile"), PROFILE_KEY) == item


async def test_a_team_namespace_reads_the_kinds_route(
    worker: Worker, store: ProfileStreamStore
) -> None:
    item = await store.aget(("team", "sales-emea", "profile"), PROFILE_KEY)

    assert item is not None and item.value["name"] == "Sales EMEA"
    assert isinstance(item, ProfileItem) and item.kind == "team"
    assert worker.seen[0][1:3] == ("kind", {"kind": "team", "subject": "sales-emea"})


async def test_no_profile_is_none_and_no_results(store: ProfileStreamStore) -> None:
    assert await store.aget(("users", "nobody", "profile"), PROFILE_KEY) is None
    assert await store.asearch(("users", "nobody", "profile")) == []


async def test_search_by_subject_prefix_filters_by_equality_and_pages(
    store: ProfileStreamStore,
) -> None:
    ns = ("users", ALICE)
    assert [i.value["name"] for i in await store.asearch(ns)] == ["Alice"]
    assert len(await store.asearch(ns, filter={"timezone": "America/Los_Angeles"})) == 1
    assert await store.asearch(ns, filter={"timezone": "Europe/Paris"}) == []
    assert await store.asearch(ns, offset=1) == []
    assert await store.asearch(ns, limit=0) == []


async def test_put_is_a_correction_that_replaces_the_named_fields(
    worker: Worker, store: ProfileStreamStore
) -> None:
    ns = ("users", ALICE, "profile")
    fields = {"name": "Alicia", "languages": ["Spanish"], "timezone": None}
    await store.aput(ns, PROFILE_KEY, fields)

    method, route, info, _, token, body = worker.seen[-1]
    assert (method, route, info, token) == ("PATCH", "user", {"user_id": ALICE}, ADMIN)
    assert body.get("lock", []) == []
    assert body["operations"][1] == {"field": "languages", "op": "set", "value": ["Spanish"]}
    item = await store.aget(ns, PROFILE_KEY)
    assert item is not None and isinstance(item, ProfileItem)
    assert (item.value["name"], item.value["languages"], item.value["timezone"]) == (
        "Alicia",
        ["Spanish"],  # replaced, not added to
        None,
    )
    assert item.provenance["name"]["by"] == "operator"


async def test_lock_on_put_locks_the_fields_it_names(worker: Worker) -> None:
    store = ProfileStreamStore(worker.url, token=READ, admin_token=ADMIN, lock_on_put=True)
    await store.aput(("users", ALICE, "profile"), PROFILE_KEY, {"formality": "formal"})

    assert worker.seen[-1][-1]["lock"] == ["formality"]
    item = await store.aget(("users", ALICE, "profile"), PROFILE_KEY)
    assert isinstance(item, ProfileItem) and item.locked == ("formality",)


async def test_a_correction_the_schema_refuses_is_the_workers_refusal(
    store: ProfileStreamStore,
) -> None:
    with pytest.raises(Refused, match=r"answered 400: .*shoe_size") as refused:
        await store.aput(("users", ALICE, "profile"), PROFILE_KEY, {"shoe_size": 42})
    assert refused.value.status == 400


async def test_delete_and_put_of_none_forget_the_user(
    worker: Worker, store: ProfileStreamStore
) -> None:
    await store.adelete(("users", ALICE, "profile"), PROFILE_KEY)
    assert worker.seen[-1][:5] == ("DELETE", "user", {"user_id": ALICE}, {}, ADMIN)
    assert await store.aget(("users", ALICE, "profile"), PROFILE_KEY) is None

    await store.abatch([PutOp(("users", "bob", "profile"), PROFILE_KEY, None)])
    assert worker.seen[-1][:3] == ("DELETE", "user", {"user_id": "bob"})


async def test_a_batch_runs_its_ops_in_order(worker: Worker, store: ProfileStreamStore) -> None:
    ns = ("users", ALICE, "profile")
    before, _, after = await store.abatch(
        [GetOp(ns, PROFILE_KEY), PutOp(ns, PROFILE_KEY, {"name": "Al"}), SearchOp(ns)]
    )
    assert isinstance(before, ProfileItem) and before.value["name"] == "Alice"
    assert isinstance(after, list) and after[0].value["name"] == "Al"


@pytest.mark.parametrize(
    ("call", "says"),
    [
        (lambda s: s.aget(("users", ALICE, "profile"), "memory-1"), "free-form keys"),
        (lambda s: s.aget(("users", ALICE), PROFILE_KEY), "not a profile namespace"),
        (lambda s: s.asearch(("users", ALICE, "profile"), query="Alice"), "no vector search"),
        (lambda s: s.asearch(("users",)), "no index of its subjects"),
        (lambda s: s.asearch(("users", ALICE), filter={"name": {"$eq": "A"}}), "only equality"),
        (lambda s: s.alist_namespaces(prefix=("users",)), "cannot list namespaces"),
        (lambda s: s.aput(("team", "t", "profile"), PROFILE_KEY, {"name": "T"}), "only through"),
        (lambda s: s.adelete(("team", "t", "profile"), PROFILE_KEY), "only through"),
        (
            lambda s: s.aput(("users", ALICE, "profile"), PROFILE_KEY, {"a": 1}, index=["a"]),
            "vector index",
        ),
    ],
)
async def test_what_a_profile_store_cannot_do_is_refused_before_any_request(
    worker: Worker, store: ProfileStreamStore, call: Any, says: str
) -> None:
    with pytest.raises(UnsupportedOperation, match=says) as raised:
        await call(store)
    assert isinstance(raised.value, ProfileStreamError | NotImplementedError)
    if "filter" not in str(raised.value):  # a filter is checked against the profile it read
        assert worker.seen == []


async def test_writes_without_an_admin_token_say_what_they_need(worker: Worker) -> None:
    reader = ProfileStreamStore(worker.url, token=READ)
    with pytest.raises(UnsupportedOperation, match="admin_token="):
        await reader.aput(("users", ALICE, "profile"), PROFILE_KEY, {"name": "X"})
    with pytest.raises(UnsupportedOperation, match="admin_token="):
        await reader.adelete(("users", ALICE, "profile"), PROFILE_KEY)
    assert worker.seen == []


async def test_sync_methods_work_in_a_thread_and_refuse_to_block_a_running_loop(
    store: ProfileStreamStore,
) -> None:
    results = await asyncio.to_thread(store.search, ("users", ALICE, "profile"))
    assert [r.value["name"] for r in results] == ["Alice"]
    with pytest.raises(UnsupportedOperation, match="await aget"):
        store.get(("users", ALICE, "profile"), PROFILE_KEY)


EMAIL = "alice.smith@example.com"


@pytest.mark.parametrize("subject", [EMAIL, "acme/alice", "a%2Eb.c%d", "100%", "who?x", "."])
def test_a_subject_label_has_no_dot_and_reads_back_as_the_id(subject: str) -> None:
    label = subject_label(subject)
    assert "." not in label and subject_of(label) == subject
    assert subject_label("acme/alice@x") == "acme/alice@x"  # no dot, no %: the id itself


async def test_an_email_user_id_works_through_langgraphs_own_checks(
    worker: Worker, store: ProfileStreamStore
) -> None:
    worker.profiles[("user", EMAIL)] = stored_profile(EMAIL, name="Alice", languages=["English"])
    ns = store.namespace(EMAIL)
    with pytest.raises(InvalidNamespaceError):  # what LangGraph says to the raw id
        await store.aget(("users", EMAIL, "profile"), PROFILE_KEY)

    item = await store.aget(ns, PROFILE_KEY)
    assert isinstance(item, ProfileItem) and item.value["name"] == "Alice"
    assert item.namespace == ns and worker.seen[-1][2] == {"user_id": EMAIL}
    await store.aput(ns, PROFILE_KEY, {"languages": ["Basque"]})
    assert worker.seen[-1][:3] == ("PATCH", "user", {"user_id": EMAIL})
    assert [r.value["languages"] for r in await store.asearch(ns)] == [["Basque"]]
    assert await store.aget_prompt(ns) == "<User Profile>\nname: Alice\n</User Profile>"


async def test_the_langmem_shape_wraps_the_profile_as_langmems_manager_does(
    worker: Worker,
) -> None:
    store = ProfileStreamStore(worker.url, token=READ, admin_token=ADMIN, value_shape="langmem")
    ns = ("users", ALICE, "profile")
    (item,) = await store.asearch(ns, filter={"name": "Alice"})
    assert item.value["kind"] == "UserProfile"
    assert item.value["content"]["name"] == "Alice"  # LangMem's item.value["content"][...]
    await store.aput(ns, PROFILE_KEY, {"kind": "UserProfile", "content": {"name": "Alicia"}})
    assert worker.seen[-1][-1]["operations"] == [{"field": "name", "op": "set", "value": "Alicia"}]
    with pytest.raises(UnsupportedOperation, match="content"):
        await store.aput(ns, PROFILE_KEY, {"name": "flat"})


async def test_refresh_reads_through_the_refresh_route_with_the_read_token(
    worker: Worker, store: ProfileStreamStore
) -> None:
    item = await store.arefresh(("users", ALICE, "profile"))
    assert isinstance(item, ProfileItem) and item.value["name"] == "Alice"
    assert item.freshness["last_message_id"] == "m9"
    assert worker.seen[-1][:3] == ("POST", "refresh", {"user_id": ALICE})
    assert await store.arefresh(("users", "nobody", "profile")) is None
    assert await store.aget_prompt(("users", "nobody", "profile")) == ""


async def test_a_put_that_names_no_field_is_refused(store: ProfileStreamStore) -> None:
    with pytest.raises(UnsupportedOperation, match="names the fields"):
        await store.aput(("users", ALICE, "profile"), PROFILE_KEY, {})


def test_without_langgraph_the_import_says_which_extra_to_install() -> None:
    code = (
        "import sys; sys.modules['langgraph'] = None\n"
        "try:\n    import streams.client.langgraph_store\n"
        "except ImportError as exc:\n    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "profile-stream-client[langgraph]" in done.stdout
