"""`make demo`: one worker, the seed conversation, the events as they happen, the profile.

Uses the rule-based extractor unless OPENAI_API_KEY (or OPENAI_BASE_URL) is set. Run from the
repository root as ``python -m deploy.demo`` (it uses ``tests.support`` for the worker).
"""

import asyncio
import os
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from schemas import ChatMessage
from streams.core.codecs import encode
from streams.settings import load_settings
from tests.support import NotReady, ProcessExited, WorkerProcess

__all__ = ["run", "show_profile", "start_worker", "wait_ready"]

ROOT = Path(__file__).resolve().parent.parent
CONVERSATION = ["I'm Alice from California", "I speak Spanish too!"]
TOKEN = os.environ.get("PROFILE_STREAM_READ_TOKENS", "demo-read").split(",")[0]


def start_worker(port: int) -> WorkerProcess:
    log = ROOT / ".stack" / "demo-worker.log"
    env = {
        "PROFILE_STREAM_READ_TOKENS": TOKEN,
        "PROFILE_STREAM_ADMIN_TOKENS": "demo-admin",
        "PROFILE_STREAM_COMMAND_KEYS": "demo-command-key-not-for-production",
        "PROFILE_STREAM_DATA_DIR": str(ROOT / ".stack" / "demo-worker"),
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
        sys.exit(f"[demo] the worker exited ({worker.proc.returncode}); see .stack/demo-worker.log")
    except NotReady:
        sys.exit(f"[demo] the worker was not ready after {timeout}s; see .stack/demo-worker.log")


async def next_event(consumer: AIOKafkaConsumer, user_id: str, timeout: float) -> dict | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for records in (await consumer.getmany(timeout_ms=500)).values():
            for r in records:
                if r.key == user_id.encode():
                    return orjson.loads(r.value)
    return None


async def run() -> None:
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
    worker = start_worker(settings.web_port)
    url = worker.url
    try:
        await wait_ready(worker)
        consumer = AIOKafkaConsumer(
            settings.output_topic,
            bootstrap_servers=settings.kafka_bootstrap,
            auto_offset_reset="latest",
            group_id=None,
        )
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
        await consumer.start()
        await producer.start()
        await consumer.seek_to_end()
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
                await producer.send_and_wait(
                    settings.input_topic, encode(msg), key=user_id.encode()
                )
                event = await next_event(consumer, user_id, timeout=60)
                if event is None:
                    print("[demo]   (no profile change from this message)")
                    continue
                print(f"[demo]   profile-updated {event['event_id']}:")
                for c in event["changes"]:
                    print(f"[demo]     {c['field']}: {c['old']!r} -> {c['new']!r}")
        finally:
            await consumer.stop()
            await producer.stop()
        await show_profile(url, user_id)
    finally:
        worker.stop(30)


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
