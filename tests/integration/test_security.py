"""Who may read profiles, what the logs show, and that forgetting a user really forgets."""

import aiohttp
import redis.asyncio as aioredis

from streams.extract.cache import subject_key
from tests.fakes.llm_server import FakeLLM

from .conftest import StartWorker
from .harness import ADMIN_TOKEN, READ_TOKEN, REDIS_URL, Kafka, Names, decode, message

SECRET = "I speak Klingon and my name is Zorblax"


async def status(method: str, url: str, token: str | None, data: bytes | None = None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        aiohttp.ClientSession() as s,
        s.request(method, url, headers=headers, data=data) as r,
    ):
        return r.status


async def test_forget_removes_the_profile_from_table_changelog_and_cache(
    start_worker: StartWorker, kafka: Kafka, names: Names, fake_llm: FakeLLM
) -> None:
    fake_llm.on(
        "Klingon",
        {"field": "name", "op": "set", "value": "Zorblax"},
        {"field": "languages", "op": "add", "value": "Klingon"},
    )
    worker = await start_worker()
    await kafka.send(names.input, message("zed", SECRET))
    await kafka.read(names.output, lambda r: len(r) >= 1)
    redis = aioredis.from_url(REDIS_URL)
    cached = subject_key(names.prefix, "zed")  # one hash holds every answer cached for zed
    assert await redis.hlen(cached) > 0, "the extraction was not cached"

    assert await status("DELETE", f"{worker.url}/profiles/zed", ADMIN_TOKEN) == 202
    events = decode(await kafka.read(names.output, lambda r: len(r) >= 2))
    assert events[-1]["type"] == "deleted" and events[-1]["profile"] is None

    # The changelog's last word on zed is the forget's marker: versions and applied offsets,
    # nothing the user said (a compacted changelog keeps only that).
    changelog = await kafka.read(
        names.changelog, lambda r: bool(r) and b"forgotten_at" in (r[-1].value or b"")
    )
    assert [r.key for r in changelog][-1] == b"zed"
    marker = changelog[-1].value or b""
    assert b"Zorblax" not in marker and b"Klingon" not in marker
    assert await redis.exists(cached) == 0
    assert await status("GET", f"{worker.url}/profiles/zed", READ_TOKEN) == 404
    await redis.aclose()


async def test_logs_at_info_carry_no_message_or_profile_content(
    start_worker: StartWorker, kafka: Kafka, names: Names, fake_llm: FakeLLM
) -> None:
    fake_llm.on("Klingon", {"field": "name", "op": "set", "value": "Zorblax"})
    worker = await start_worker(PROFILE_STREAM_LOG_LEVEL="info")
    await kafka.send(names.input, message("zed", SECRET))
    await kafka.send(names.input, b'{"content": "Zorblax broken json', key=b"zed")
    await kafka.read(names.output, lambda r: len(r) >= 1)
    await kafka.read(names.dlq, lambda r: len(r) >= 1)
    assert await status("GET", f"{worker.url}/profiles/zed", READ_TOKEN) == 200
    log = worker.log.read_text(errors="replace")
    assert "profile updated user_id=zed" in log  # the log is there and speaks
    assert "Zorblax" not in log and "Klingon" not in log


async def test_scopes_size_limits_and_no_listing_route(
    start_worker: StartWorker, kafka: Kafka, names: Names, fake_llm: FakeLLM
) -> None:
    worker = await start_worker()
    url = f"{worker.url}/profiles/zed"
    assert await status("PATCH", url, READ_TOKEN, b"{}") == 403
    assert await status("DELETE", url, READ_TOKEN) == 403
    big = b'{"operations": [], "pad": "' + b"x" * 70_000 + b'"}'
    assert await status("PATCH", url, ADMIN_TOKEN, big) == 413
    assert await status("PATCH", url, ADMIN_TOKEN, b"not json") == 400
    assert await status("GET", f"{worker.url}/profiles/" + "u" * 300, READ_TOKEN) == 400
    for path in ("/profiles", "/profiles/", "/table/profiles", "/table/profiles/zed"):
        assert await status("GET", worker.url + path, ADMIN_TOKEN) in (404, 405), path
    assert await status("GET", f"{worker.url}/healthz", None) == 200
