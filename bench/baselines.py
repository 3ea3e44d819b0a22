"""The two baselines the worker is measured against, each run as its own process:

- ``python -m bench.baselines passthrough``: raw aiokafka pass-through (consume a batch, decode
  every record with orjson, produce it re-encoded, wait for the acks, commit), the ceiling of
  what a Python consumer does per event on this machine;
- ``python -m bench.baselines sequential``: a plain Faust agent, one ``async for`` over the
  input that awaits one model call per event through ``openai.AsyncOpenAI`` with the worker's
  own prompt, and writes nothing: how a straightforward Faust service calls an LLM.

Both read their settings from the environment (``BENCH_*``).
"""

import asyncio
import os
import sys
import time
from typing import Any

import orjson


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise SystemExit(f"{name} is not set")
    return value


async def passthrough() -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    bootstrap, source, sink = _env("BENCH_BOOTSTRAP"), _env("BENCH_INPUT"), _env("BENCH_OUTPUT")
    count = int(_env("BENCH_COUNT"))
    consumer = AIOKafkaConsumer(
        source,
        bootstrap_servers=bootstrap,
        group_id=_env("BENCH_GROUP"),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await consumer.start()
    await producer.start()
    done, first, cpu_first = 0, 0.0, 0.0
    try:
        while done < count:
            batch = await consumer.getmany(timeout_ms=500, max_records=1000)
            if batch and not first:
                first, cpu_first = time.time(), time.process_time()
            pending = []
            for records in batch.values():
                for r in records:
                    body = orjson.loads(r.value)
                    pending.append(await producer.send(sink, orjson.dumps(body), key=r.key))
            await asyncio.gather(*pending)
            if pending:
                await consumer.commit()
            done += len(pending)
        took, cpu = time.time() - first, time.process_time() - cpu_first
        print(orjson.dumps({"events": done, "seconds": took, "cpu_s": cpu}).decode(), flush=True)
    finally:
        await producer.stop()
        await consumer.stop()


def sequential() -> None:
    import faust
    from faust.worker import Worker
    from openai import AsyncOpenAI

    from schemas import ChatMessage
    from streams.profile_schema import load_profile_schema
    from streams.prompt import build_messages, response_format

    schema = load_profile_schema("schemas.profile:UserProfile")
    fmt: Any = response_format(schema)
    client = AsyncOpenAI(api_key="x", base_url=_env("BENCH_MODEL_URL"), max_retries=0)
    app = faust.App(
        _env("BENCH_GROUP"),
        broker="kafka://" + _env("BENCH_BOOTSTRAP"),
        store="memory://",
        datadir=_env("BENCH_DATA_DIR"),
        web_port=int(_env("BENCH_WEB_PORT")),
        web_host="127.0.0.1",
        web_bind="127.0.0.1",
        consumer_auto_offset_reset="earliest",
        autodiscover=False,
        logging_config=None,
    )
    topic = app.topic(_env("BENCH_INPUT"), key_type=bytes, value_type=bytes, value_serializer="raw")

    @app.agent(topic, name="sequential")
    async def sequential_agent(stream: Any) -> None:
        async for value in stream:
            message = ChatMessage.model_validate_json(value)
            await client.chat.completions.create(
                model="gpt-4o-mini",
                messages=build_messages(schema.empty(), [message], schema),  # type: ignore[arg-type]
                response_format=fmt,
                temperature=0,
            )

    Worker(app, loglevel="warning", quiet=True).execute_from_commandline()


def main() -> None:
    kind = sys.argv[1] if len(sys.argv) > 1 else ""
    if kind == "passthrough":
        asyncio.run(passthrough())
    elif kind == "sequential":
        sequential()
    else:
        raise SystemExit("usage: python -m bench.baselines passthrough|sequential")


if __name__ == "__main__":
    main()
