"""What the web views' tests share: a real Faust app with the worker's views mounted, served
in-process by aiohttp's test server; the table, the command topic and the partition owner are
fakes."""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import faust
import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from schemas import ProfileRecord
from streams.core.codecs import encode
from streams.core.freshness import Waited
from streams.core.kinds import USER, Kind
from streams.core.profile_schema import load_profile_schema
from streams.core.signing import require_authentic_command
from streams.errors import InvalidEvent
from streams.settings import Settings
from streams.web import reader as reader_module
from streams.web.views import register_views

SCHEMA = load_profile_schema("schemas.profile:UserProfile")
READ_TOKEN, ADMIN_TOKEN = "read-secret", "admin-secret"
MAX_BODY = 1024
COMMAND_KEY = "views-test-command-key-0123456789abcdef"


class FakeTable(dict[bytes, bytes]):
    def __init__(self, name: str, rows: dict[bytes, bytes]) -> None:
        super().__init__(rows)
        self.name = name


class FakeTopic:
    """The command topic: records what is sent; the broker acknowledges at once."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, bytes, list[tuple[str, bytes]]]] = []

    async def send(self, *, key: bytes, value: bytes, headers: list[Any]) -> asyncio.Future[None]:
        self.sent.append((key, value, headers))
        acknowledged: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        acknowledged.set_result(None)
        return acknowledged


@dataclass
class FakeFresh:
    """The owner's waits for freshness: each ends as ``outcome`` says, recording its call."""

    outcome: Waited = Waited.FRESH
    calls: list[tuple[str, ...]] = field(default_factory=list)

    async def reflected(self, subject: str, message_id: str, timeout_s: float) -> Waited:
        self.calls.append(("reflected", subject, message_id, f"{timeout_s:g}"))
        return self.outcome

    async def refresh(self, subject: str, timeout_s: float) -> Waited:
        self.calls.append(("refresh", subject, f"{timeout_s:g}"))
        return self.outcome


@dataclass
class Served:
    client: TestClient
    commands: FakeTopic
    owner: list[str | None] = field(default_factory=list)  # [0]: the partition owner's URL
    recovered: list[bool] = field(default_factory=lambda: [True])
    users: dict[bytes, bytes] = field(default_factory=dict)  # the user kind's table
    fresh: FakeFresh = field(default_factory=FakeFresh)

    async def call(
        self, method: str, path: str, token: str | None = None, data: bytes | None = None
    ) -> tuple[int, Any, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self.client.request(method, path, headers=headers, data=data) as response:
            body = await response.read()
            is_json = body and response.content_type == "application/json"
            parsed = orjson.loads(body) if is_json else body
            return response.status, parsed, response.headers


def stored(user_id: str, kind: str = USER) -> bytes:
    profile = SCHEMA.empty() | {"name": user_id.title()}
    record = ProfileRecord(
        user_id=user_id, version=2, schema_id=SCHEMA.schema_id, profile=profile, kind=kind
    )
    return encode(record)


def accepted_by_workers(key: bytes, value: bytes, headers: Any) -> bool:
    """Whether a worker of the same deployment accepts the command now (signed, recent)."""
    signing = Settings(command_keys=(COMMAND_KEY,)).command_signing
    try:
        require_authentic_command(key, value, headers, signing, time.time())
    except InvalidEvent:
        return False
    return True


@pytest.fixture
def command_keys() -> tuple[str, ...]:
    return (COMMAND_KEY,)


@pytest.fixture
async def served(
    monkeypatch: pytest.MonkeyPatch, command_keys: tuple[str, ...]
) -> AsyncIterator[Served]:
    app = faust.App(f"views-{uuid.uuid4().hex}", broker="kafka://127.0.0.1:1", autodiscover=False)
    users = FakeTable("profiles", {b"zed": stored("zed")})
    teams = FakeTable("teams", {b"t1": stored("t1", "team")})
    kinds: Any = {USER: (Kind(USER, SCHEMA), users), "team": (Kind("team", SCHEMA), teams)}
    settings = Settings(
        read_tokens=(READ_TOKEN,),
        admin_tokens=(ADMIN_TOKEN,),
        max_request_bytes=MAX_BODY,
        command_keys=command_keys,
    )
    commands = FakeTopic()
    fresh = FakeFresh()
    register_views(app, kinds, commands, settings, fresh=fresh)  # type: ignore[arg-type]
    async with TestClient(TestServer(app.web.web_app)) as client:  # type: ignore[attr-defined]
        served = Served(client, commands, [str(app.conf.canonical_url)], users=users, fresh=fresh)
        monkeypatch.setattr(reader_module, "tables_recovered", lambda _: served.recovered[0])
        monkeypatch.setattr(reader_module, "owner_of", lambda *_: served.owner[0])
        yield served
