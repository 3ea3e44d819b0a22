"""Issue 16's edges that need a real worker: a record written by a newer release, a forged
operator command, and a dead letter larger than the producer may send."""

import asyncio
import base64
import hashlib
import time
from dataclasses import replace

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
    wrong_key = replace(
        names.command_signing, keys=(SecretStr("not-the-workers-key-0123456789ab"),)
    )
    for headers in ([COMMAND_HEADER], command_headers(b"zed", forget, wrong_key, time.time())):
        await kafka.send(names.input, forget, key=b"zed", headers=headers)
    signed = orjson.dumps(
        {
            "command_id": "c2",
            "type": "forget",
            "user_id": "zed",
            "requested_at": "2026-01-01T00:00:00Z",
        }
    )
    headers = command_headers(b"zed", signed, names.command_signing, time.time())
    await kafka.send(names.input, signed, key=b"zed", headers=headers)

    dead = decode(await kafka.read(names.dlq, lambda r: len(r) >= 2))
    assert [d["reason_code"] for d in dead] == ["invalid_command"] * 2, dead
    events = decode(await kafka.read(names.output, lambda r: len(r) >= 2))
    # only the authentic command applied: the forged ones changed nothing
    assert [e["type"] for e in events] == ["updated", "deleted"]
    assert events[-1]["source_message_ids"] == ["c2"]


async def test_a_dead_letter_over_the_producers_limit_is_truncated_and_the_partition_goes_on(
    start_worker: StartWorker, kafka: Kafka, names: Names, fake_llm: FakeLLM
) -> None:
    fake_llm.on("Spanish", {"field": "languages", "op": "add", "value": "Spanish"})
    worker = await start_worker()
    partition = partition_for(b"big", PARTITIONS)
    big_offset = (await kafka.end_offsets(names.input))[partition]
    # Under the broker's 1 MB, but its letter (base64, +33 %) would be over the producer's
    # max request size (Faust's default: 1,000,000 bytes).
    huge = b"{" + b"x" * 899_999
    await kafka.send(names.input, huge, key=b"big")
    await kafka.send(names.input, message("big", "I speak Spanish"))

    # The partition is committed past the big record only once its letter is in Kafka.
    deadline = time.monotonic() + 60
    while (await kafka.committed(names.prefix, names.input)).get(partition, -1) <= big_offset:
        assert time.monotonic() < deadline, "never committed past the big record"
        assert worker.alive(), worker.tail()
        await asyncio.sleep(0.2)
    letters = sum((await kafka.end_offsets(names.dlq)).values())
    assert letters == 1, "committed past the big record, but its dead letter is not in Kafka"

    (record,) = await kafka.read(names.dlq, lambda r: len(r) >= 1)
    assert record.value is not None and len(record.value) < 1_000_000
    letter = orjson.loads(record.value)
    assert (letter["reason_code"], letter["source_offset"]) == ("not_json", big_offset)
    assert letter["truncated"] is True and letter["original_size"] == len(huge)
    assert letter["original_sha256"] == hashlib.sha256(huge).hexdigest()
    kept = base64.b64decode(letter["value_b64"])
    assert len(kept) > 500_000 and huge.startswith(kept)

    # The worker is alive and applies the next message of that partition.
    events = decode(await kafka.read(names.output, lambda r: len(r) >= 1))
    assert [(e["user_id"], e["profile"]["languages"]) for e in events] == [("big", ["Spanish"])]
    assert worker.alive(), worker.tail()
