"""One meaning for an operator's correction of a list field, on a real worker, through all four
ways to send one: the HTTP PATCH, ``profile-stream correct``, the client's ``correct_profile``
and the LangGraph store's ``put``. ``set`` makes the list exactly what it names (extraction's
``set`` would add); ``add`` and ``remove`` change one item."""

from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import orjson

from streams.client import correct_profile, publish_turn
from streams.client.langgraph_store import PROFILE_KEY, ProfileItem, ProfileStreamStore
from tests.fakes.llm_server import FakeLLM

from .conftest import StartWorker
from .harness import ADMIN_TOKEN, BOOTSTRAP, READ_TOKEN, Names
from .test_cli import cli, cli_env
from .test_langgraph_example import eventually

PATHS = ("http", "cli", "client", "store")


async def read(url: str, user: str, wait_for: str | None = None) -> dict[str, Any]:
    """The user's profile; with ``wait_for``, once it reflects that message or command."""
    query = f"?wait_for={wait_for}&timeout_s=20" if wait_for else ""
    headers = {"Authorization": f"Bearer {READ_TOKEN}"}
    async with (
        aiohttp.ClientSession() as s,
        s.get(f"{url}/profiles/{user}{query}", headers=headers) as r,
    ):
        assert r.status == 200, await r.text()
        body: dict[str, Any] = await r.json()
        return body


async def patch(url: str, user: str, *operations: dict[str, Any]) -> str:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    body = orjson.dumps({"operations": list(operations)})
    async with (
        aiohttp.ClientSession() as s,
        s.patch(f"{url}/profiles/{user}", data=body, headers=headers) as r,
    ):
        assert r.status == 202, await r.text()
        return str((await r.json())["command_id"])


async def test_set_replaces_a_list_and_add_remove_change_one_item_on_every_path(
    start_worker: StartWorker, names: Names, fake_llm: FakeLLM
) -> None:
    fake_llm.on(
        "I speak English and Spanish",
        {"field": "languages", "op": "add", "value": "English"},
        {"field": "languages", "op": "add", "value": "Spanish"},
    )
    worker = await start_worker()
    env = cli_env(names, worker)
    store = ProfileStreamStore(worker.url, token=READ_TOKEN, admin_token=ADMIN_TOKEN)
    for path in PATHS:
        said, _ = await publish_turn(
            path, "I speak English and Spanish", "Nice!", bootstrap=BOOTSTRAP, topic=names.input
        )
        seeded = await read(worker.url, path, wait_for=said)
        assert seeded["profile"]["languages"] == ["English", "Spanish"]

    async def cli_correct(user: str, *options: str) -> str:
        run = await cli(env, "correct", user, *options, "--json")
        assert run.code == 0, run.err
        return str(orjson.loads(run.out)["command_id"])

    # set: the list becomes exactly [Basque, English] (extraction's set would have added Basque)
    setting: dict[str, Callable[[], Awaitable[str | None]]] = {
        "http": lambda: patch(
            worker.url, "http", {"field": "languages", "op": "set", "value": ["Basque", "English"]}
        ),
        "cli": lambda: cli_correct(
            "cli", "--set", "languages=Basque", "--set", "languages=English"
        ),
        "client": lambda: correct_profile(
            worker.url, "client", token=ADMIN_TOKEN, values={"languages": ["Basque", "English"]}
        ),
        "store": lambda: _put(store, "store", ["Basque", "English"]),
    }
    after_set = {}
    for path, correct in setting.items():
        command_id = await correct()
        if command_id is None:  # the store's put returns nothing: read until it shows
            item = await eventually(
                lambda: store.aget(store.namespace("store"), PROFILE_KEY),
                lambda i: isinstance(i, ProfileItem) and i.version > 1,
            )
            after_set[path] = item.value["languages"]
        else:
            after_set[path] = (await read(worker.url, path, command_id))["profile"]["languages"]
    assert after_set == {path: ["Basque", "English"] for path in PATHS}

    # add and remove: one item each (the store's put only sets: it has no add or remove)
    changing: dict[str, Callable[[], Awaitable[str]]] = {
        "http": lambda: patch(
            worker.url,
            "http",
            {"field": "languages", "op": "add", "value": "French"},
            {"field": "languages", "op": "remove", "value": "English"},
        ),
        "cli": lambda: cli_correct(
            "cli", "--add", "languages=French", "--remove", "languages=English"
        ),
        "client": lambda: correct_profile(
            worker.url,
            "client",
            token=ADMIN_TOKEN,
            operations=[
                {"field": "languages", "op": "add", "value": "French"},
                {"field": "languages", "op": "remove", "value": "English"},
            ],
        ),
    }
    after_change = {}
    for path, correct in changing.items():
        command_id = await correct()
        after_change[path] = (await read(worker.url, path, command_id))["profile"]["languages"]
    assert after_change == {path: ["Basque", "French"] for path in changing}


async def _put(store: ProfileStreamStore, user: str, languages: list[str]) -> None:
    await store.aput(store.namespace(user), PROFILE_KEY, {"languages": languages})
