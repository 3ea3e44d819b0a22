"""`make demo`: one worker, the seed conversation, the events as they happen, the profile.

Uses the rule-based extractor unless OPENAI_API_KEY (or OPENAI_BASE_URL) is set. Run from the
repository root as ``python -m deploy.demo`` (it uses ``tests.support`` for the worker).
``make real-model`` (deploy/real_model.py) runs the same conversation against llama.cpp.

For each message it shows what the worker did: the profile-updated event naming the message,
the dead letter for it (with its reason), or a flush that changed nothing (the worker's
``profile_stream_flushes_total`` moved, and nothing about the message was published). That
counter is the whole worker's: another user's flush at the same moment (a buffer an interrupted
demo left, flushed after the restart) can pass for the message's; ``make real-model`` runs on
topics of its own, so it cannot.
"""

import asyncio
import os
import shutil
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition

from schemas import ChatMessage
from streams.core.codecs import encode
from streams.settings import Settings, load_settings
from tests.support import NotReady, ProcessExited, WorkerProcess

__all__ = ["CONVERSATION", "Outcome", "run", "show_profile", "start_worker", "wait_ready"]

ROOT = Path(__file__).resolve().parent.parent
CONVERSATION = ["I'm Alice from California", "I speak Spanish too!"]
TOKEN = os.environ.get("PROFILE_STREAM_READ_TOKENS", "demo-read").split(",")[0]


@dataclass(frozen=True)
class Outcome:
    """What the worker did with one message: the event naming it, or its dead letter, or
    neither (flushed with no change); ``handled`` is false when nothing came in time."""

    message_id: str
    event: dict[str, Any] | None = None
    dead_letter: dict[str, Any] | None = None
    handled: bool = True


def start_worker(port: int, name: str = "demo-worker") -> WorkerProcess:
    log = ROOT / ".stack" / f"{name}.log"
    # The table is rebuilt from its changelog: a data dir left from a Kafka since wiped (or
    # another one) would hold offsets that Kafka no longer has, and Faust refuses to start.
    shutil.rmtree(ROOT / ".stack" / name, ignore_errors=True)
    env = {
        "PROFILE_STREAM_READ_TOKENS": TOKEN,
        "PROFILE_STREAM_ADMIN_TOKENS": "demo-admin",
        "PROFILE_STREAM_COMMAND_KEYS": "demo-command-key-not-for-production",
        "PROFILE_STREAM_DATA_DIR": str(ROOT / ".stack" / name),
        "PROFILE_STREAM_WEB_PORT": str(port),
        **os.environ,
    }
    print(f"[demo] starting a worker on port {port} (log: {log.relative_to(ROOT)})")
    return WorkerProcess(env, log, port).start()


async def wait_ready(worker: WorkerProcess, timeout: float = 120) -> None:
    try:
        await worker.wait_ready(timeout, poll_s=0.3)
    except ProcessExited:
        assert worker.proc is not None
        sys.exit(f"[demo] the worker exited ({worker.proc.returncode}); see {worker.log}")
    except NotReady:
        sys.exit(f"[demo] the worker was not ready after {timeout}s; see {worker.log}")


async def flushes(session: aiohttp.ClientSession, url: str) -> float:
    """The worker's ``profile_stream_flushes_total``, all reasons (counted after publishing)."""
    async with session.get(f"{url}/metrics") as r:
        text = await r.text()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("profile_stream_flushes_total")
    )


def _about(
    record: dict[str, Any], settings: Settings, topic: str, message_id: str
) -> Outcome | None:
    if topic == settings.dlq_topic:
        if record.get("message_id") == message_id:
            return Outcome(message_id, dead_letter=record)
    elif message_id in record.get("source_message_ids", []):
        return Outcome(message_id, event=record)
    return None


async def next_outcome(
    consumer: AIOKafkaConsumer, settings: Settings, url: str, message_id: str, timeout: float
) -> Outcome:
    """The event or dead letter naming ``message_id``; no change once the worker counted a
    flush and the topics hold nothing about it; not handled after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        before = await flushes(session, url)
        ends: dict[TopicPartition, int] | None = None
        while time.monotonic() < deadline:
            for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                for r in records:
                    found = _about(orjson.loads(r.value), settings, tp.topic, message_id)
                    if found is not None:
                        return found
            if ends is None and await flushes(session, url) > before:
                # The flush's event or dead letter was delivered before the counter moved:
                # reading up to today's ends is enough to know there is none.
                ends = await consumer.end_offsets(list(consumer.assignment()))
            if ends is not None and await _read_up_to(consumer, ends):
                return Outcome(message_id)
    return Outcome(message_id, handled=False)


async def _read_up_to(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    return all([await consumer.position(tp) >= end for tp, end in ends.items()])


def show_outcome(outcome: Outcome) -> None:
    if not outcome.handled:
        print("[demo]   (nothing from the worker in time; see its log)")
    elif outcome.dead_letter is not None:
        letter = outcome.dead_letter
        print(f"[demo]   dead letter ({letter['reason_code']}): {letter['reason']}")
    elif outcome.event is None:
        print("[demo]   (no profile change from this message)")
    else:
        print(f"[demo]   profile-updated {outcome.event['event_id']}:")
        for c in outcome.event["changes"]:
            print(f"[demo]     {c['field']}: {c['old']!r} -> {c['new']!r}")


async def run(timeout: float = 60, name: str = "demo-worker") -> list[Outcome]:
    """The conversation through a new worker (``name``: its log and data dir under .stack/);
    what the worker did with each message, waiting up to ``timeout`` seconds for each."""
    settings = load_settings()
    kind = settings.extractor_kind
    if kind == "rules":
        print(
            "[demo] no OPENAI_API_KEY: using the offline rule-based extractor (a demo aid "
            "that knows a few sentence shapes). Set OPENAI_API_KEY to use a model."
        )
    else:
        print(
            f"[demo] extracting with the model {settings.model} "
            f"at {settings.openai_base_url or 'api.openai.com'}"
        )
    user_id = f"alice-{uuid.uuid4().hex[:6]}"
    worker = start_worker(settings.web_port, name)
    try:
        await wait_ready(worker)
        outcomes = await converse(settings, worker.url, user_id, timeout)
        await show_profile(worker.url, user_id)
    finally:
        await worker.terminate(30)  # not blocking: a model proxy may be serving on this loop
    return outcomes


async def converse(settings: Settings, url: str, user_id: str, timeout: float) -> list[Outcome]:
    """Send the conversation as ``user_id``, one message at a time, each after the worker has
    handled the one before; show and return what it did with each."""
    consumer = AIOKafkaConsumer(
        settings.output_topic,
        settings.dlq_topic,
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="latest",
        group_id=None,
    )
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await consumer.start()
    await producer.start()
    await consumer.seek_to_end()
    outcomes: list[Outcome] = []
    try:
        for text in CONVERSATION:
            msg = ChatMessage(
                message_id=uuid.uuid4().hex,
                user_id=user_id,
                conversation_id="demo",
                role="user",
                content=text,
                sent_at=datetime.now(UTC),
                # Each message is a conversation of its own here, so it is extracted now;
                # in a live chat the user's messages wait until the conversation is idle
                # (PROFILE_STREAM_FLUSH_IDLE_S) and share one model call.
                end_of_conversation=True,
            )
            print(f"\n[demo] {user_id} says: {text!r}")
            await producer.send_and_wait(settings.input_topic, encode(msg), key=user_id.encode())
            outcome = await next_outcome(consumer, settings, url, msg.message_id, timeout)
            show_outcome(outcome)
            outcomes.append(outcome)
    finally:
        await consumer.stop()
        await producer.stop()
    return outcomes


async def show_profile(url: str, user_id: str) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.get(f"{url}/profiles/{user_id}") as r:
            body = await r.json()
            print(f"\n[demo] GET {url}/profiles/{user_id} -> {r.status}")
            print(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode())
        async with session.get(f"{url}/profiles/{user_id}/prompt") as r:
            print(f"\n[demo] GET .../prompt -> {r.status}\n{await r.text()}")


if __name__ == "__main__":
    asyncio.run(run())
