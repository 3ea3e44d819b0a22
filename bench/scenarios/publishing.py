"""The publishing scenario: what a chat app pays per turn to publish it, with the one-shot
module function (``streams.client.publish_turn``: a producer started and stopped per call)
next to the long-lived client (``AsyncProfileStreamClient.publish_turn``: one idempotent
producer for all calls), in the same run, on the local broker. No worker runs.

Twice: over the plaintext listener, and over the secured stack's SASL_SSL listener (TLS with
SCRAM-SHA-256, the settings of ``.stack/kafka/secure.env``, as a managed Kafka is reached),
where a producer's start pays the TLS and SASL handshakes as well.

Turns are published one after another, each awaited (acks=all) before the next, as a chat app
publishes a turn once the model has answered. The two ways take turns in rounds (one-shot,
client, one-shot, client...), so a slow spell of the shared machine falls on both; each way's
rate is its calls over its own time in all rounds. The client's producer starts in its first
call, inside the measured time.
"""

import os
import time
from pathlib import Path
from typing import Any

from streams.client import AsyncProfileStreamClient, ClientConfig, KafkaConnection, publish_turn

from ..progress import log
from ..topics import BOOTSTRAP, create_topics
from .stage import Config, Stage

ROOT = Path(__file__).resolve().parents[2]

__all__ = ["publishing_run"]

#: Rounds of the two ways; calls per round of each (one-shot, client), short and full.
ROUNDS = 3
CALLS = {True: (20, 200), False: (60, 600)}


def _secure() -> KafkaConnection:
    """The secured stack's SASL_SSL connection (fails when the stack has none)."""
    path = Path(os.environ.get("STACK_KAFKA_SECURE_ENV", ROOT / ".stack/kafka/secure.env"))
    lines = [line.partition("=") for line in path.read_text().splitlines()]
    return KafkaConnection.from_env({k: v for k, _, v in lines if not k.startswith("#")})


async def _one_shot(kafka: KafkaConnection, topic: str, calls: int, first: int) -> float:
    started = time.perf_counter()
    for n in range(first, first + calls):
        await publish_turn(f"user-{n % 50}", f"turn {n}", "ok", bootstrap=kafka, topic=topic)
    return time.perf_counter() - started


async def _client(kafka: KafkaConnection, topic: str, calls: int, first: int) -> tuple[float, int]:
    config = ClientConfig(kafka=kafka, input_topic=topic)
    started = time.perf_counter()
    async with AsyncProfileStreamClient(config) as client:
        for n in range(first, first + calls):
            await client.publish_turn(f"user-{n % 50}", f"turn {n}", "ok")
        producers = client.producers_started
    return time.perf_counter() - started, producers


async def _compare(kafka: KafkaConnection, topic: str, short: bool) -> dict[str, Any]:
    """Rounds of one-shot calls then a client's; each way's calls per second."""
    one_calls, client_calls = CALLS[short]
    one_s = client_s = 0.0
    producers = 0
    for r in range(ROUNDS):
        first = r * (one_calls + client_calls)
        one_s += await _one_shot(kafka, topic, one_calls, first)
        took, started = await _client(kafka, topic, client_calls, first + one_calls)
        client_s, producers = client_s + took, producers + started
        log(f"{kafka.describe()} {r + 1}/{ROUNDS}: one-shot {one_s:.1f}s, client {client_s:.1f}s")
    one_rate, client_rate = ROUNDS * one_calls / one_s, ROUNDS * client_calls / client_s
    return {
        "one_shot_calls": ROUNDS * one_calls,
        "client_calls": ROUNDS * client_calls,
        "one_shot_calls_per_s": round(one_rate, 1),
        "client_calls_per_s": round(client_rate, 1),
        "client_producers_started": producers,
        "ratio": round(client_rate / one_rate, 1),
    }


async def publishing_run(cfg: Config, results: dict[str, Any]) -> None:
    async with Stage("publishing", cfg) as stage:
        topic = stage.names.input
        await create_topics([topic])
        results["publishing"] = {
            "rounds": ROUNDS,
            "plaintext": await _compare(KafkaConnection(BOOTSTRAP), topic, cfg.short),
            "sasl_ssl": await _compare(_secure(), topic, cfg.short),
        }
