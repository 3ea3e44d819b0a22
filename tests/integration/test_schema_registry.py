"""Records framed by a Schema Registry serializer, through real Kafka: refused with a reason that
names the setting, then accepted (and the refused ones replayed) once it is set."""

import orjson

from streams.core.framing import frame
from tests.fakes.llm_server import FakeLLM

from .conftest import StartWorker
from .harness import Kafka, Names, decode, message
from .test_cli import cli, cli_env

#: The id a registry gave the chat-message schema; the worker never asks the registry.
SCHEMA_ID = 100_042


async def test_a_framed_record_is_refused_by_default_and_applied_once_framing_is_on(
    start_worker: StartWorker, kafka: Kafka, names: Names, fake_llm: FakeLLM
) -> None:
    fake_llm.on("I'm Alice", {"field": "name", "op": "set", "value": "Alice"})
    fake_llm.on("I speak Spanish", {"field": "languages", "op": "add", "value": "Spanish"})
    first = message("alice", "I'm Alice")
    worker = await start_worker()
    await kafka.send(names.input, frame(orjson.dumps(first), SCHEMA_ID), key=b"alice")

    (letter,) = decode(await kafka.read(names.dlq, lambda r: len(r) >= 1))
    assert letter["reason_code"] == "not_json"
    assert f"Schema Registry frame (magic byte 0, schema id {SCHEMA_ID})" in letter["reason"]
    assert "PROFILE_STREAM_INPUT_FRAMING=auto" in letter["reason"]

    # The operator turns framing on and replays what was refused for it.
    await worker.terminate()
    worker = await start_worker(PROFILE_STREAM_INPUT_FRAMING="auto")
    replayed = await cli(cli_env(names, worker), "dlq", "replay", "--reason", "not_json")
    assert replayed.code == 0, replayed.err
    await kafka.read(names.output, lambda r: len(r) >= 1)  # one call each, not coalesced
    second = message("alice", "I speak Spanish")
    await kafka.send(names.input, frame(orjson.dumps(second), SCHEMA_ID), key=b"alice")

    events = decode(await kafka.read(names.output, lambda r: len(r) >= 2))
    assert [e["source_message_ids"] for e in events] == [
        [first["message_id"]],
        [second["message_id"]],
    ]
    assert events[-1]["profile"]["name"] == "Alice"
    assert events[-1]["profile"]["languages"] == ["Spanish"]
    assert len(decode(await kafka.read(names.dlq, lambda r: len(r) >= 1))) == 1
