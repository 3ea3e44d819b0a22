"""The LangMem guide's LangGraph chat on profile-stream (``examples/langgraph_chat.py``), run as
a program against a real worker: what the first turns say reaches the later turns' system
prompts through the stream. And the LangGraph store's writes are real corrections and forgets."""

import asyncio
import re
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from schemas import ChatMessage
from streams.client import publish_turn
from streams.client.langgraph_store import PROFILE_KEY, ProfileItem, ProfileStreamStore
from tests.fakes.llm_server import FakeLLM
from tests.support import Process, clean_environ

from .conftest import StartWorker
from .harness import ADMIN_TOKEN, BOOTSTRAP, READ_TOKEN, Kafka, Names
from .readme import readme_block, run_block
from .test_read_your_writes import DEFAULT_IDLE

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "langgraph_chat.py"
#: The README's heading above the walkthrough's commands.
WALKTHROUGH = "## LangGraph: LangMem's profile guide, on profile-stream"
_T = TypeVar("_T")


async def eventually(
    read: Callable[[], Awaitable[_T]], ok: Callable[[_T], bool], timeout: float = 60.0
) -> _T:
    """``read()`` polled until ``ok`` holds for its answer; fails after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = await read()
        if ok(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout}s: {value!r}")
        await asyncio.sleep(0.2)


def system_prompts(output: str) -> list[str]:
    """Each turn's system prompt, from the example's ``--- turn N`` / ``system: ...`` lines."""
    turns = re.split(r"^--- turn \d+\n", output, flags=re.M)[1:]
    return [t.split("\nuser: ")[0].removeprefix("system: ") for t in turns]


def test_the_readme_walkthrough_shows_the_profile_in_later_turns_with_the_defaults(
    names: Names, tmp_path: Path, services: None
) -> None:
    """The README's LangGraph commands, as written (``readme.run_block``): the worker's default
    settings (the rules extractor, a flush after 60 s of quiet), and the example's refresh
    after each turn."""
    run = run_block(
        readme_block("## LangGraph: LangMem's profile guide, on profile-stream"),
        names,
        tmp_path / "worker",
    )
    assert run.status == 0, f"{run.stdout}\n{run.stderr[-3000:]}"
    first, second, third = system_prompts(run.stdout)
    assert first == "You are a helpful assistant."
    assert "<User Profile>" in second and "Alice" in second
    assert "America/Los_Angeles" in second and "Spanish" not in second
    assert all(fact in third for fact in ("Alice", "America/Los_Angeles", "Spanish"))
    assert run.stdout.count("messages still buffered") == 2
    assert "0 messages still buffered" in run.stdout


async def test_the_example_publishes_each_turn_then_the_answer(
    start_worker: StartWorker, kafka: Kafka, names: Names, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    fake_llm.on(
        "I'm Alice from California",
        {"field": "name", "op": "set", "value": "Alice"},
        {"field": "timezone", "op": "set", "value": "America/Los_Angeles"},
    )
    worker = await start_worker(PROFILE_STREAM_FLUSH_IDLE_S=DEFAULT_IDLE)
    user = "acme/alice.smith@example.com"  # a slash, a dot and an @: quoted all the way
    argv = [sys.executable, str(EXAMPLE), "--url", worker.url, "--token", READ_TOKEN]
    env = clean_environ() | names.env() | {"PROFILE_STREAM_KAFKA_BOOTSTRAP": BOOTSTRAP}
    example = Process([*argv, "--user", user], env, tmp_path / "example.log")

    example.start()
    assert await example.wait_exit(150), f"the example still runs:\n{example.tail()}"
    assert example.proc is not None and example.proc.returncode == 0, example.tail()
    _, second, _ = system_prompts(example.log.read_text())
    assert "Alice" in second and "America/Los_Angeles" in second
    # Each turn went to the input topic as the user's message, then the assistant's answer.
    records = await kafka.read(names.input, lambda r: len(r) >= 6)
    sent = [ChatMessage.model_validate_json(r.value) for r in records if r.key == user.encode()]
    assert [(m.role, m.content.split()[0]) for m in sent] == [
        ("user", "I'm"),
        ("assistant", "Nice"),
        ("user", "I"),
        ("assistant", "¡Qué"),
        ("user", "I"),
        ("assistant", "Congratulations!"),
    ]


async def test_the_stores_put_is_a_locking_correction_and_its_delete_a_forget(
    start_worker: StartWorker, names: Names, fake_llm: FakeLLM
) -> None:
    fake_llm.on(
        "I'm Bea",
        {"field": "name", "op": "set", "value": "Bea"},
        {"field": "languages", "op": "add", "value": "English"},
    )
    fake_llm.on(
        "moved to Oslo",
        {"field": "name", "op": "set", "value": "Bea"},
        {"field": "location", "op": "set", "value": "Oslo"},
    )
    worker = await start_worker()
    store = ProfileStreamStore(
        worker.url, token=READ_TOKEN, admin_token=ADMIN_TOKEN, lock_on_put=True
    )
    ns = ("users", "bea", "profile")

    async def read() -> Any:
        return await store.aget(ns, PROFILE_KEY)

    def newer_than(version: int) -> Callable[[Any], bool]:
        return lambda item: isinstance(item, ProfileItem) and item.version > version

    said, _ = await publish_turn(
        "bea", "I'm Bea, I speak English", "Hello Bea!", bootstrap=BOOTSTRAP, topic=names.input
    )
    extracted = await eventually(read, newer_than(0))
    assert extracted.value["name"] == "Bea"
    assert extracted.provenance["name"]["message_id"] == said

    await store.aput(ns, PROFILE_KEY, {"name": "Beatrice", "languages": ["Spanish"]})
    corrected = await eventually(read, newer_than(extracted.version))
    assert (corrected.value["name"], corrected.value["languages"]) == ("Beatrice", ["Spanish"])
    assert corrected.provenance["name"]["by"] == "operator"
    assert set(corrected.locked) == {"name", "languages"}

    # The model says "Bea" again: the locked name stays, the rest of the message applies.
    await publish_turn("bea", "I moved to Oslo", "Nice!", bootstrap=BOOTSTRAP, topic=names.input)
    later = await eventually(read, newer_than(corrected.version))
    assert (later.value["name"], later.value["location"]) == ("Beatrice", "Oslo")

    await store.adelete(ns, PROFILE_KEY)
    assert await eventually(read, lambda item: item is None) is None
    assert await store.asearch(ns) == []
