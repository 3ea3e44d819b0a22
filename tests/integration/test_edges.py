"""Issue 16's edges that need a real worker: a record written by a newer release, and a forged
operator command."""

import orjson
from pydantic import SecretStr

from streams.core.codecs import COMMAND_HEADER
from streams.core.partitioning import partition_for
from streams.core.signing import command_headers
from tests.fakes.llm_server import FakeLLM

from .conftest import StartWorker
from .harness import PARTITIONS, Kafka, Names, decode, message


async def test_a_record_written_by_a_newer_release_is_read_and_the_worker_goes_on(
    start_worker: StartWorker, kafka: Kafka, names: Names, fake_llm: FakeLLM
) -> None:
    fake_llm.on("Spanish", {"field": "languages", "op": "add", "value": "Spanish"})
    fake_llm.on("French", {"field": "languages", "op": "add", "value": "French"})
    first = await start_worker(0)
    await kafka.send(names.input, message("zed", "I speak Spanish"))
    await kafka.read(names.output, lambda r: len(r) >= 1)
    first.stop()

    # What a newer release might store: one more field at the top, in provenance and in a
    # (delivered) pending event's place, and a higher format.
    changelog = await kafka.read(names.changelog, lambda r: any(x.key == b"zed" for x in r))
    stored = orjson.loads([r for r in changelog if r.key == b"zed"][-1].value)
    stored |= {"format": 2, "tier": "gold"}
    for provenance in stored["provenance"].values():
        provenance["model"] = "newer"
    partition = partition_for(b"zed", PARTITIONS)
    await kafka.send(names.changelog, orjson.dumps(stored), key=b"zed", partition=partition)

    second = await start_worker(1)  # a new data dir: restores the newer record from the changelog
    await kafka.send(names.input, message("zed", "I speak French too"))
    events = decode(await kafka.read(names.output, lambda r: len(r) >= 2))
    assert events[-1]["version"] == 2
    assert events[-1]["profile"]["languages"] == ["Spanish", "French"]
    assert second.alive()
    log = second.log.read_text(errors="replace")
    assert log.count("stored record field 'tier' is unknown") == 1 and "gold" not in log


async def test_a_forged_command_is_dead_lettered_and_changes_nothing(
    start_worker: StartWorker, kafka: Kafka, names: Names, fake_llm: FakeLLM
) -> None:
    fake_llm.on("Spanish", {"field": "languages", "op": "add", "value": "Spanish"})
    await start_worker()
    await kafka.send(names.input, message("zed", "I speak Spanish"))
    await kafka.read(names.output, lambda r: len(r) >= 1)
    forget = orjson.dumps(
        {
            "command_id": "c1",
            "type": "forget",
            "user_id": "zed",
            "requested_at": "2026-01-01T00:00:00Z",
        }
    )
    wrong_key = [SecretStr("not-the-workers-key-0123456789abcdef")]
    for headers in ([COMMAND_HEADER], command_headers(b"zed", forget, wrong_key)):
        await kafka.send(names.input, forget, key=b"zed", headers=headers)
    signed = orjson.dumps(
        {
            "command_id": "c2",
            "type": "forget",
            "user_id": "zed",
            "requested_at": "2026-01-01T00:00:00Z",
        }
    )
    right_key = [SecretStr(names.command_key)]
    await kafka.send(
        names.input, signed, key=b"zed", headers=command_headers(b"zed", signed, right_key)
    )

    dead = decode(await kafka.read(names.dlq, lambda r: len(r) >= 2))
    assert [d["reason_code"] for d in dead] == ["invalid_command"] * 2, dead
    events = decode(await kafka.read(names.output, lambda r: len(r) >= 2))
    # only the authentic command applied: the forged ones changed nothing
    assert [e["type"] for e in events] == ["updated", "deleted"]
    assert events[-1]["source_message_ids"] == ["c2"]
