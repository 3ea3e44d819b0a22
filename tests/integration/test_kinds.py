"""Profile kinds: a team's profile from its members' messages, the assistant's from its own
turns, each serialized by its subject, none leaking into a user's profile."""

from pathlib import Path

import aiohttp

from streams.core.partitioning import partition_for
from tests.fakes.llm_server import FakeLLM

from .conftest import StartWorker
from .harness import PARTITIONS, READ_TOKEN, Kafka, Names, decode, message

KINDS = {
    "PROFILE_STREAM_KINDS_FILE": str(
        Path(__file__).resolve().parents[2] / "deploy" / "kinds.example.toml"
    )
}


def two_users_on_different_partitions() -> tuple[str, str]:
    first = "member-0"
    for i in range(1, 100):
        other = f"member-{i}"
        if partition_for(other.encode(), PARTITIONS) != partition_for(first.encode(), PARTITIONS):
            return first, other
    raise AssertionError("no second partition")


async def get(url: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    headers = {"Authorization": f"Bearer {READ_TOKEN}"}
    async with aiohttp.ClientSession(headers=headers) as s, s.get(url) as r:
        return r.status, await r.json()


async def test_a_team_message_updates_its_user_and_the_team_serialized_across_partitions(
    start_worker: StartWorker, kafka: Kafka, names: Names, fake_llm: FakeLLM
) -> None:
    fake_llm.on(
        "uses Salesforce",
        {"field": "languages", "op": "add", "value": "Spanish"},
        {"field": "tools", "op": "add", "value": "Salesforce"},
    )
    fake_llm.on("Project Atlas", {"field": "current_projects", "op": "add", "value": "Atlas"})
    worker = await start_worker(**KINDS)
    a, b = two_users_on_different_partitions()
    team = {"team_id": "sales-emea"}

    def team_versions(n: int):  # type: ignore[no-untyped-def]
        return lambda records: sum(r.key == b"team/sales-emea" for r in records) >= n

    await kafka.send(
        names.input, message(a, "I speak Spanish; our team uses Salesforce", metadata=team)
    )
    await kafka.read(names.output, team_versions(1))
    await kafka.send(names.input, message(b, "We are busy with Project Atlas", metadata=team))
    events = decode(await kafka.read(names.output, team_versions(2)))
    team_events = [e for e in events if e["kind"] == "team"]
    assert [e["event_id"] for e in team_events] == ["team/sales-emea:1", "team/sales-emea:2"]
    assert team_events[-1]["profile"]["tools"] == ["Salesforce"]
    assert team_events[-1]["profile"]["current_projects"] == ["Atlas"]
    user_events = [e for e in events if e["kind"] == "user"]
    assert [(e["user_id"], e["profile"]["languages"]) for e in user_events] == [(a, ["Spanish"])]

    status, body = await get(f"{worker.url}/profiles/team/sales-emea")
    assert status == 200 and body["version"] == 2 and body["kind"] == "team"
    assert (await get(f"{worker.url}/profiles/{a}"))[1]["profile"]["languages"] == ["Spanish"]
    assert (await get(f"{worker.url}/profiles/galaxy/x"))[0] == 404


async def test_assistant_turns_update_the_assistant_profile_and_never_the_users(
    start_worker: StartWorker, kafka: Kafka, names: Names, fake_llm: FakeLLM
) -> None:
    # A fooled model also proposes the assistant's name for the user: it must not land.
    fake_llm.on(
        "I'm Aria",
        {"field": "persona", "op": "set", "value": "Aria"},
        {"field": "commitments", "op": "add", "value": "follow up tomorrow"},
        {"field": "name", "op": "set", "value": "Aria"},
        roles=("assistant",),
    )
    fake_llm.on("I speak Dutch", {"field": "languages", "op": "add", "value": "Dutch"})
    worker = await start_worker(**KINDS)
    await kafka.send(names.input, message("cleo", "I speak Dutch"))
    await kafka.send(
        names.input,
        message("cleo", "I'm Aria, and I promise to follow up tomorrow", role="assistant"),
    )

    def done(records: list) -> bool:  # type: ignore[type-arg]
        return any(r.key == b"assistant/assistant" for r in records)

    events = decode(await kafka.read(names.output, done))
    assistant = [e for e in events if e["kind"] == "assistant"][-1]
    assert assistant["profile"]["persona"] == "Aria"
    assert assistant["profile"]["commitments"] == ["follow up tomorrow"]
    users = [e for e in events if e["kind"] == "user"]
    assert all(e["profile"]["name"] is None for e in users)
    status, body = await get(f"{worker.url}/profiles/cleo")
    assert status == 200 and body["profile"]["name"] is None
    assert body["profile"]["languages"] == ["Dutch"]
    assert (await get(f"{worker.url}/profiles/assistant/assistant"))[1]["profile"][
        "persona"
    ] == "Aria"
