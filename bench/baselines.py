"""The baselines the worker is measured against, each run as its own process:

- ``python -m bench.baselines passthrough``: raw aiokafka pass-through (consume a batch, decode
  every record with orjson, produce it re-encoded, wait for the acks, commit), the ceiling of
  what a Python consumer does per event on this machine;
- ``python -m bench.baselines faust``: the same pass-through as a plain Faust agent (``async
  for`` over the input, decode, ``send`` to the output, Faust's acks and commits): the ceiling
  of any pipeline built on Faust, the worker included;
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

__all__ = ["faust_passthrough", "main", "passthrough", "sequential"]


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
    from openai import AsyncOpenAI

    from schemas import ChatMessage
    from streams.core.profile_schema import load_profile_schema
    from streams.extract.prompt import build_messages, response_format

    schema = load_profile_schema("schemas.profile:UserProfile")
    fmt: Any = response_format(schema)
    client = AsyncOpenAI(api_key="x", base_url=_env("BENCH_MODEL_URL"), max_retries=0)
    app = _faust_app(_env("BENCH_GROUP"))
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

    _run_faust(app)


def faust_passthrough() -> None:
    import faust

    count = int(_env("BENCH_COUNT"))
    app = _faust_app(_env("BENCH_GROUP"))
    topic = app.topic(_env("BENCH_INPUT"), key_type=bytes, value_type=bytes, value_serializer="raw")
    sink = app.topic(_env("BENCH_OUTPUT"), key_type=bytes, value_type=bytes, value_serializer="raw")
    seen = {"n": 0, "first": 0.0, "cpu": 0.0}

    @app.agent(topic, name="passthrough")
    async def passthrough_agent(stream: faust.Stream[bytes]) -> None:
        async for event in stream.events():
            if not seen["n"]:
                seen["first"], seen["cpu"] = time.time(), time.process_time()
            body = orjson.loads(event.value)
            await sink.send(key=event.key, value=orjson.dumps(body))
            seen["n"] += 1
            if seen["n"] == count:
                await app.producer.flush()
                took, cpu = time.time() - seen["first"], time.process_time() - seen["cpu"]
                stats = {"events": count, "seconds": took, "cpu_s": cpu}
                sys.stdout.write(orjson.dumps(stats).decode() + "\n")
                sys.stdout.flush()
                os._exit(0)  # measured; the worker's slow shutdown is not the point

    _run_faust(app)


def _faust_app(group: str) -> Any:
    import faust

    return faust.App(
        group,
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


def _run_faust(app: Any) -> None:
    from faust.worker import Worker

    # INFO, not WARNING: at WARNING Faust's spinner sets the root logger to DEBUG and every
    # library's debug record gets built, which would slow the baseline down unfairly.
    Worker(app, loglevel="info", quiet=True, redirect_stdouts=False).execute_from_commandline()


def main() -> None:
    kind = sys.argv[1] if len(sys.argv) > 1 else ""
    if kind == "passthrough":
        asyncio.run(passthrough())
    elif kind == "sequential":
        sequential()
    elif kind == "faust":
        faust_passthrough()
    else:
        raise SystemExit("usage: python -m bench.baselines passthrough|faust|sequential")


if __name__ == "__main__":
    main()
