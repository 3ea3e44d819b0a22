"""What the model cost, per user: the profiles' usage adds up to what the model reported."""

import asyncio
from datetime import UTC, datetime
from typing import Any

import orjson

from tests.fakes.llm_server import FakeLLM

from .conftest import StartWorker
from .harness import Kafka, Names, message
from .test_cli import cli, cli_env
from .test_pipeline import http

USERS = [f"usage-user-{i}" for i in range(6)]


async def test_the_usage_of_all_profiles_is_what_the_model_reported(
    start_worker: StartWorker, kafka: Kafka, names: Names, fake_llm: FakeLLM
) -> None:
    fake_llm.on("my name is", {"field": "name", "op": "set", "value": "Someone"})
    days = {datetime.now(UTC).date().isoformat()}  # the calls' day: this run's, not the messages'
    worker = await start_worker()
    # Several rounds: some messages of a user share a call, the next round makes new calls,
    # and small talk costs a call that changes nothing.
    for round_ in range(3):
        await asyncio.gather(
            *(
                kafka.send(names.input, message(user, f"round {round_}: my name is {user}"))
                for user in USERS
            )
        )
        await kafka.send(
            names.input, message(USERS[0], f"round {round_}: nice weather, says {USERS[0]}")
        )
    ends = await kafka.end_offsets(names.input)
    await kafka.wait_committed(names.prefix, names.input, ends)

    usage: dict[str, Any] = {}
    for user in USERS:
        status, body = await http("GET", f"{worker.url}/profiles/{user}?include=usage")
        assert status == 200, body
        usage[user] = body["usage"]

    days.add(datetime.now(UTC).date().isoformat())  # a run across midnight
    reported = [r["usage"] for r in fake_llm.requests]
    assert len(reported) == len(fake_llm.requests) >= len(USERS)  # every call answered
    assert sum(u["total"]["calls"] for u in usage.values()) == len(reported)
    assert sum(u["total"]["prompt_tokens"] for u in usage.values()) == sum(
        r["prompt_tokens"] for r in reported
    )
    assert sum(u["total"]["completion_tokens"] for u in usage.values()) == sum(
        r["completion_tokens"] for r in reported
    )
    for user in USERS:  # each user is charged for the calls about its own messages
        own = sum(
            r["usage"]["prompt_tokens"]
            for r in fake_llm.requests
            if user in r["messages"][0]["content"]
        )
        assert usage[user]["total"]["prompt_tokens"] == own
        assert usage[user]["today"] == usage[user]["total"]
        # The day the worker paid the model, not the messages' (2026-11-25): the budget's day.
        assert usage[user]["day"] in days
    status, body = await http("GET", f"{worker.url}/profiles/{USERS[1]}")
    assert "usage" not in body  # only when asked for
    # The same from the command line, as JSON and for a person.
    env = cli_env(names, worker)
    as_json = await cli(env, "get", USERS[0], "--usage", "--json")
    assert orjson.loads(as_json.out)["usage"] == usage[USERS[0]], as_json.err
    shown = (await cli(env, "get", USERS[0], "--usage")).out
    total = usage[USERS[0]]["total"]
    assert f"model usage: {total['calls']} calls, {total['prompt_tokens']} prompt tokens" in shown
