"""Where a profile read is answered (here, at the owner, or 503) and what is read here."""

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import aiohttp
import faust
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from faust.web import Response, View
from multidict import CIMultiDict
from yarl import URL

from schemas import ProfileRecord
from streams.core.codecs import encode
from streams.core.kinds import Kind
from streams.core.partitioning import partition_for
from streams.core.profile_schema import load_profile_schema
from streams.core.records import deleted_event
from streams.web import reader as reader_module
from streams.web.reader import Here, ProfileReader, Remote, Unavailable, place
from streams.web.routing import FORWARDED_HEADER, proxy

SCHEMA = load_profile_schema("schemas.profile:UserProfile")
HERE = "http://w1:6066"
THERE = "http://w2:6066"
PARTITIONS = 4


class FakeTable(dict[bytes, bytes]):
    """What the reader uses of a Faust table: a name and ``get``."""

    name = "profiles"


def record(user_id: str = "zed", **update: Any) -> ProfileRecord:
    return ProfileRecord(
        user_id=user_id,
        version=3,
        schema_id=SCHEMA.schema_id,
        profile=SCHEMA.empty() | {"name": "Zed"},
    ).model_copy(update=update)


def fake_app(owners: dict[str, list[int]], *, rebalancing: bool = False) -> Any:
    """An app whose assignor puts the table's partitions at the given hosts."""
    metadata = {URL(host): {"profiles-changelog": parts} for host, parts in owners.items()}
    router = SimpleNamespace(table_metadata=lambda name: metadata if name == "profiles" else {})
    return SimpleNamespace(
        rebalancing=rebalancing, conf=SimpleNamespace(canonical_url=URL(HERE)), router=router
    )


@pytest.fixture
def recovered(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether the tables are recovered, as the reader sees it; flip ``[0]`` to change it."""
    state = [True]
    monkeypatch.setattr(reader_module, "tables_recovered", lambda app: state[0])
    return state


def reader_for(app: Any, table: FakeTable | None = None) -> ProfileReader:
    return ProfileReader(app, Kind("user", SCHEMA), table or FakeTable(), PARTITIONS)  # type: ignore[arg-type]


def test_a_known_owner_is_here_or_remote_and_a_trailing_slash_does_not_matter() -> None:
    assert place(HERE, here=HERE) == Here()
    assert place(HERE + "/", here=HERE) == Here()
    assert place(HERE, here=HERE + "/") == Here()
    assert place(THERE, here=HERE) == Remote(THERE)


def test_an_unknown_owner_is_unavailable() -> None:
    assert place(None, here=HERE) == Unavailable("partition owner unknown; try again")


def test_locate_follows_the_assignor_metadata(recovered: list[bool]) -> None:
    mine = partition_for(b"zed", PARTITIONS)
    others = [p for p in range(PARTITIONS) if p != mine]
    assert reader_for(fake_app({HERE: [mine], THERE: others})).locate("zed") == Here()
    assert reader_for(fake_app({HERE: others, THERE: [mine]})).locate("zed") == Remote(THERE)
    unknown = reader_for(fake_app({HERE: others})).locate("zed")
    assert unknown == Unavailable("partition owner unknown; try again")


def test_while_rebalancing_or_recovering_nobody_answers(recovered: list[bool]) -> None:
    mine = partition_for(b"zed", PARTITIONS)
    rebalancing = reader_for(fake_app({HERE: [mine]}, rebalancing=True))
    assert rebalancing.locate("zed") == Unavailable("rebalancing; try again")
    recovered[0] = False
    assert reader_for(fake_app({HERE: [mine]})).locate("zed") == Unavailable(
        "rebalancing; try again"
    )


def test_stored_reads_the_record_and_hides_absent_and_forgotten_ones() -> None:
    table = FakeTable()
    table[b"zed"] = encode(record())
    being_forgotten = record("ann")
    at = datetime(2026, 12, 1, tzinfo=UTC)
    table[b"ann"] = encode(
        being_forgotten.model_copy(
            update={"pending_event": deleted_event(being_forgotten, "c1", at)}
        )
    )
    table[b"bob"] = encode(
        record("bob").model_copy(update={"forgotten_at": at, "profile": {}})  # a tombstone
    )
    reader = reader_for(fake_app({}), table)
    stored = reader.stored("zed")
    assert stored is not None and stored.profile["name"] == "Zed" and stored.version == 3
    assert reader.stored("nobody") is None
    assert reader.stored("ann") is None
    assert reader.stored("bob") is None


@pytest.fixture(scope="module")
def view() -> View:
    """A real Faust view, to build responses with."""
    app = faust.App("reader-test", broker="kafka://127.0.0.1:1", autodiscover=False)
    return View(app, app.web)


@pytest.fixture
def forwards(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, float]]:
    """Each forward as (owner, timeout_s), answered "from the owner"."""
    seen: list[tuple[str, float]] = []

    async def fake_proxy(
        app: Any, v: View, request: Any, owner: str, *, timeout_s: float
    ) -> Response:
        seen.append((owner, timeout_s))
        return v.text("from the owner")

    monkeypatch.setattr(reader_module, "proxy", fake_proxy)
    return seen


def renders(view: View) -> Callable[[ProfileRecord | None], Response]:
    return lambda found: view.text(found.user_id if found else "none")


async def test_answer_renders_here_proxies_there_and_503s_otherwise(
    view: View, recovered: list[bool], forwards: list[tuple[str, float]]
) -> None:
    mine = partition_for(b"zed", PARTITIONS)
    table = FakeTable({b"zed": encode(record())})
    render = renders(view)

    here = await reader_for(fake_app({HERE: [mine]}), table).answer(view, None, "zed", render)  # type: ignore[arg-type]
    assert here.status == 200 and here.text == "zed" and forwards == []

    request = SimpleNamespace(headers={})
    there = await reader_for(fake_app({THERE: [mine]}), table).answer(view, request, "zed", render)  # type: ignore[arg-type]
    assert there.text == "from the owner" and [owner for owner, _ in forwards] == [THERE]

    recovered[0] = False
    busy = await reader_for(fake_app({HERE: [mine]}), table).answer(view, None, "zed", render)  # type: ignore[arg-type]
    assert busy.status == 503 and busy.headers["Retry-After"] == "1"
    assert orjson.loads(busy.body) == {"error": "rebalancing; try again"}


async def test_a_forwarded_request_is_served_here_but_never_forwarded_again(
    view: View, recovered: list[bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    mine = partition_for(b"zed", PARTITIONS)
    table = FakeTable({b"zed": encode(record())})
    proxied: list[str] = []

    async def fake_proxy(app: Any, v: View, request: Any, owner: str, **_: Any) -> Response:
        proxied.append(owner)
        return v.text("from the owner")

    monkeypatch.setattr(reader_module, "proxy", fake_proxy)
    forwarded = SimpleNamespace(headers=CIMultiDict({"x-profile-stream-forwarded": "1"}))

    def render(found: ProfileRecord | None) -> Response:
        return view.text(found.user_id if found else "none")

    here = await reader_for(fake_app({HERE: [mine]}), table).answer(
        view,
        forwarded,  # type: ignore[arg-type]
        "zed",
        render,
    )
    assert here.status == 200 and here.text == "zed"
    moved = await reader_for(fake_app({THERE: [mine]}), table).answer(
        view,
        forwarded,  # type: ignore[arg-type]
        "zed",
        render,
    )
    assert moved.status == 503 and moved.headers["Retry-After"] == "1" and proxied == []
    assert orjson.loads(moved.body) == {"error": "owner changed during forwarding, retry"}


async def test_a_wait_runs_on_the_owner_and_a_forward_waits_that_much_longer(
    view: View, recovered: list[bool], forwards: list[tuple[str, float]]
) -> None:
    mine = partition_for(b"zed", PARTITIONS)
    table = FakeTable({b"zed": encode(record())})
    waited: list[str] = []

    async def wait() -> Response | None:
        waited.append("here")
        return None

    async def too_late() -> Response | None:
        return view.text("504", status=504)

    render, request = renders(view), SimpleNamespace(headers={})
    there = reader_for(fake_app({THERE: [mine]}), table)
    await there.answer(view, request, "zed", render, before=wait, wait_s=20)  # type: ignore[arg-type]
    assert forwards == [(THERE, there.proxy_timeout_s + 20)] and waited == []  # the owner waits
    here = reader_for(fake_app({HERE: [mine]}), table)
    answer = await here.answer(view, request, "zed", render, before=wait)  # type: ignore[arg-type]
    assert answer.text == "zed" and waited == ["here"]
    late = await here.answer(view, request, "zed", render, before=too_late)  # type: ignore[arg-type]
    assert late.status == 504


# The proxy itself, against an aiohttp server playing the owner.


@pytest.fixture
async def owner() -> AsyncIterator[tuple[str, list[dict[str, str]]]]:
    """An owner that answers ``/profiles/{id}`` (slowly for ``slow``); its requests' headers."""
    seen: list[dict[str, str]] = []

    async def profile(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        if request.match_info["user_id"] == "slow":
            await asyncio.sleep(5)
        return web.json_response({"user_id": request.match_info["user_id"]}, status=200)

    server_app = web.Application()
    server_app.router.add_get("/profiles/{user_id}", profile)
    server_app.router.add_post("/profiles/{user_id}/refresh", profile)
    async with TestServer(server_app) as server:
        yield str(server.make_url("")), seen


def request_for(path: str, headers: dict[str, str], method: str = "GET") -> Any:
    return SimpleNamespace(rel_url=URL(path), headers=CIMultiDict(headers), method=method)


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/profiles/zed"), ("POST", "/profiles/zed/refresh?timeout_s=1")]
)
async def test_proxy_forwards_the_method_and_tokens_and_marks_the_hop(
    view: View, owner: tuple[str, list[dict[str, str]]], method: str, path: str
) -> None:
    url, seen = owner
    async with aiohttp.ClientSession() as session:
        app = SimpleNamespace(http_client=session)
        request = request_for(path, {"Authorization": "Bearer r", "Cookie": "c"}, method)
        answer = await proxy(app, view, request, url)  # type: ignore[arg-type]
    assert answer.status == 200 and orjson.loads(answer.body) == {"user_id": "zed"}
    assert seen[0]["Authorization"] == "Bearer r" and "Cookie" not in seen[0]
    assert seen[0][FORWARDED_HEADER] == "1"


async def test_a_proxy_that_times_out_answers_504_naming_the_owner(
    view: View, owner: tuple[str, list[dict[str, str]]]
) -> None:
    url, _ = owner
    async with aiohttp.ClientSession() as session:
        app = SimpleNamespace(http_client=session)
        started = time.monotonic()
        answer = await proxy(app, view, request_for("/profiles/slow", {}), url, timeout_s=0.2)  # type: ignore[arg-type]
    assert time.monotonic() - started < 2
    assert answer.status == 504
    assert orjson.loads(answer.body) == {
        "error": f"the profile's owner {url} did not answer within 0.2s"
    }


async def test_an_owner_that_cannot_be_reached_answers_503_to_retry(view: View) -> None:
    async with aiohttp.ClientSession() as session:
        app = SimpleNamespace(http_client=session)
        answer = await proxy(app, view, request_for("/profiles/zed", {}), "http://127.0.0.1:1")  # type: ignore[arg-type]
    assert answer.status == 503 and answer.headers["Retry-After"] == "1"
    assert "http://127.0.0.1:1 cannot be reached" in orjson.loads(answer.body)["error"]
