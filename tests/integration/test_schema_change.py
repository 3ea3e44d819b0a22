"""Changing a deployment's profile schema: old profiles migrate, nothing is silently lost."""

import asyncio
import sys
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from tests.fakes.llm_server import FakeLLM

from .conftest import StartWorker
from .harness import READ_TOKEN, Kafka, Names, decode, message

ROOT_ENV = {"PYTHONPATH": str(__import__("pathlib").Path(__file__).resolve().parents[2])}
V1 = ROOT_ENV | {"PROFILE_STREAM_PROFILE_MODEL": "tests.fakes.profiles:TeamProfileV1"}
V2 = ROOT_ENV | {"PROFILE_STREAM_PROFILE_MODEL": "tests.fakes.profiles:TeamProfileV2"}
V3 = ROOT_ENV | {"PROFILE_STREAM_PROFILE_MODEL": "tests.fakes.profiles:TeamProfileV3Unmigratable"}


async def test_a_restart_on_a_new_schema_migrates_old_profiles_and_reports_it(
    start_worker: StartWorker, kafka: Kafka, names: Names, fake_llm: FakeLLM
) -> None:
    fake_llm.on(
        "I'm Ana",
        {"field": "name", "op": "set", "value": "Ana"},
        {"field": "nickname", "op": "set", "value": "Annie"},
        {"field": "age", "op": "set", "value": "thirty"},
    )
    fake_llm.on("I speak Basque", {"field": "languages", "op": "add", "value": "Basque"})
    worker = await start_worker(**V1)
    await kafka.send(names.input, message("ana", "I'm Ana, call me Annie, I'm thirty"))
    first = decode(await kafka.read(names.output, lambda r: len(r) >= 1))[0]
    assert first["schema"] == "Member/v1" and first["profile"]["nickname"] == "Annie"
    worker.stop()

    worker = await start_worker(**V2)
    headers = {"Authorization": f"Bearer {READ_TOKEN}"}
    async with (
        aiohttp.ClientSession(headers=headers) as s,
        s.get(f"{worker.url}/profiles/ana") as r,
    ):
        body = await r.json()
    assert body["profile"] == {"name": "Ana", "age": None, "pronouns": None, "languages": []}
    assert body["set_aside"]["nickname"]["value"] == "Annie"
    assert body["set_aside"]["age"]["value"] == "thirty"

    await kafka.send(names.input, message("ana", "I speak Basque"))
    second = decode(await kafka.read(names.output, lambda r: len(r) >= 2))[1]
    assert second["schema"] == "Member/v2" and second["version"] == 2
    ops = {(c["field"], c["op"]) for c in second["changes"]}
    assert {
        ("nickname", "migrate"),
        ("age", "migrate"),
        ("pronouns", "migrate"),
        ("languages", "add"),
    } <= ops


async def test_a_schema_with_a_required_field_and_no_default_refuses_to_start(
    start_worker: StartWorker,
) -> None:
    worker = await start_worker(ready=False, **V3)
    assert worker.proc is not None
    assert worker.proc.wait(60) != 0
    out = worker.tail()
    assert "employee_number" in out and "PROFILE_STREAM_PROFILE_MODEL" in out
    assert "Traceback" not in out


async def test_migrate_command_brings_every_stale_profile_to_the_new_schema_through_the_stream(
    start_worker: StartWorker, kafka: Kafka, names: Names, fake_llm: FakeLLM
) -> None:
    fake_llm.on("I'm Ana", {"field": "nickname", "op": "set", "value": "Annie"})
    worker = await start_worker(**V1)
    for user in ("ana", "bea"):
        await kafka.send(names.input, message(user, "I'm Ana, call me Annie"))
    await kafka.read(names.output, lambda r: len(r) >= 2)
    worker.stop()
    worker = await start_worker(**V2)

    first = await cli(worker, "migrate", "--kind", "user")
    assert "2 stored, 0 on Member/v2, migration requested for 2" in first
    # Committed: the migrated versions are then in the changelog the next count reads.
    events = decode(await kafka.read(names.output, lambda r: len(r) >= 4, committed=True))
    migrated = events[2:]
    assert sorted(e["user_id"] for e in migrated) == ["ana", "bea"]
    assert all(e["schema"] == "Member/v2" and e["version"] == 2 for e in migrated)
    assert all({c["op"] for c in e["changes"]} == {"migrate"} for e in migrated)

    second = await cli(worker, "migrate", "--kind", "user")
    assert "2 stored, 2 on Member/v2, migration requested for 0" in second
    counted = await cli(worker, "migrate", "--dry-run", "--json")
    assert orjson.loads(counted) == {
        "kind": "user",
        "schema": "Member/v2",
        "dry_run": True,
        "stored": 2,
        "current": 2,
        "stale": 0,
    }


async def cli(worker: Any, *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("profile-stream")),
        *args,
        env=worker.env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0, out.decode()
    return out.decode()
