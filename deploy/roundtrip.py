"""Health check for the local Kafka: one real produce/consume round trip.

An open port is not enough: a KRaft broker accepts connections before it has a
controller quorum and before it can create topics. Exit 0 only when a unique
value written to the health-check topic is read back.

With --secure-env (the env file `deploy/stack.sh up` writes with STACK_SECURE=1) it
also makes the same round trip over SASL_SSL with SCRAM-SHA-256, and logs in over
every other listener and mechanism the file names (OAUTHBEARER with an unsigned JWT,
which the stack's unsecured validator accepts).

Usage: roundtrip.py [--bootstrap HOST:PORT[,...]] [--topic NAME] [--timeout S]
                    [--kafka-version V] [--replication-factor N] [--expect-brokers N]
                    [--secure-env FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import logging
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.abc import AbstractTokenProvider
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.helpers import create_ssl_context

Security = dict[str, Any]


def read_env(path: Path) -> dict[str, str]:
    """KEY=value lines; blank lines and # comments skipped, no quoting."""
    out = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


class UnsecuredJwt(AbstractTokenProvider):  # type: ignore[misc]
    """An unsigned JWT (alg none) with sub, iat and exp: what Kafka's unsecured validator takes."""

    async def token(self) -> str:
        now = int(time.time())
        parts = ({"alg": "none"}, {"sub": "stack-healthcheck", "iat": now, "exp": now + 300})
        encoded = (base64.urlsafe_b64encode(json.dumps(p).encode()).rstrip(b"=") for p in parts)
        return b".".join(encoded).decode() + "."


def security(env: dict[str, str], protocol: str, mechanism: str = "") -> Security:
    """aiokafka keyword arguments for one protocol (and SASL mechanism) of the env file."""
    kw: Security = {"security_protocol": protocol}
    if protocol in ("SSL", "SASL_SSL"):
        client_cert = protocol == "SSL"  # the SSL listener requires a client certificate
        kw["ssl_context"] = create_ssl_context(
            cafile=env["PROFILE_STREAM_KAFKA_SSL_CAFILE"],
            certfile=env["STACK_KAFKA_SSL_CERTFILE"] if client_cert else None,
            keyfile=env["STACK_KAFKA_SSL_KEYFILE"] if client_cert else None,
        )
    if protocol.startswith("SASL_") and mechanism == "OAUTHBEARER":
        kw["sasl_mechanism"] = mechanism
        kw["sasl_oauth_token_provider"] = UnsecuredJwt()
    elif protocol.startswith("SASL_"):
        kw["sasl_mechanism"] = mechanism
        kw["sasl_plain_username"] = env["PROFILE_STREAM_KAFKA_SASL_USERNAME"]
        kw["sasl_plain_password"] = env["PROFILE_STREAM_KAFKA_SASL_PASSWORD"]
    return kw


async def ensure_topic(
    bootstrap: str, topic: str, timeout_ms: int, replication: int, sec: Security
) -> dict[str, Any]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=timeout_ms, **sec)
    await admin.start()
    try:
        if topic not in await admin.list_topics():
            try:
                await admin.create_topics(
                    [NewTopic(topic, num_partitions=1, replication_factor=replication)]
                )
            except TopicAlreadyExistsError:
                pass  # another checker won the race
        cluster: dict[str, Any] = await admin.describe_cluster()
        return cluster
    finally:
        await admin.close()


async def login(bootstrap: str, timeout_ms: int, sec: Security) -> None:
    """Connect and authenticate; metadata is the cheapest call that needs both."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=timeout_ms, **sec)
    await admin.start()
    try:
        await admin.describe_cluster()
    finally:
        await admin.close()


async def roundtrip(
    bootstrap: str,
    topic: str,
    timeout_s: float,
    replication: int = 1,
    expect_brokers: int = 0,
    sec: Security | None = None,
) -> str:
    sec = sec or {}
    timeout_ms = int(timeout_s * 1000)
    cluster = await ensure_topic(bootstrap, topic, timeout_ms, replication, sec)
    brokers = sorted(b["node_id"] for b in cluster.get("brokers", []))
    if len(brokers) < expect_brokers:
        raise RuntimeError(f"{len(brokers)} of {expect_brokers} brokers registered: {brokers}")
    value = uuid.uuid4().hex.encode()

    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", request_timeout_ms=timeout_ms, **sec
    )
    await producer.start()
    try:
        meta = await producer.send_and_wait(topic, value)
    finally:
        await producer.stop()

    # A group id plus an explicit commit makes the broker create __consumer_offsets
    # now, so the first real consumer group does not pay for it; manual assignment
    # avoids waiting for a rebalance.
    tp = TopicPartition(topic, meta.partition)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id="_stack_healthcheck",
        enable_auto_commit=False,
        request_timeout_ms=timeout_ms,
        **sec,
    )
    await consumer.start()
    try:
        consumer.assign([tp])
        consumer.seek(tp, meta.offset)
        msg = await asyncio.wait_for(consumer.getone(tp), timeout_s)
        if msg.value != value:
            raise RuntimeError(f"read back {msg.value!r} at offset {msg.offset}, wrote {value!r}")
        await consumer.commit({tp: meta.offset + 1})
    finally:
        await consumer.stop()
    where = f"{topic}@{meta.partition}:{meta.offset}"
    seen = f", brokers {','.join(map(str, brokers))}" if expect_brokers > 1 else ""
    return f"cluster {cluster.get('cluster_id')} round trip ok ({where}{seen})"


async def secure_checks(
    env: dict[str, str], topic: str, timeout_s: float, replication: int, expect_brokers: int
) -> str:
    """SASL_SSL + SCRAM-SHA-256 round trip, then a login on every other combination.

    aiokafka takes a refused OAUTHBEARER token for a login; the metadata request after it
    fails, so the login still fails."""
    sasl_ssl = env["STACK_KAFKA_SASL_SSL_BOOTSTRAP"]
    sec = security(env, "SASL_SSL", "SCRAM-SHA-256")
    await roundtrip(sasl_ssl, topic, timeout_s, replication, expect_brokers, sec)
    timeout_ms = int(timeout_s * 1000)
    logins = [
        (sasl_ssl, "SASL_SSL", mech)
        for mech in env["STACK_KAFKA_SASL_MECHANISMS"].split(",")
        if mech != "SCRAM-SHA-256"
    ]
    logins.append((env["STACK_KAFKA_SSL_BOOTSTRAP"], "SSL", ""))
    logins.append((env["STACK_KAFKA_SASL_PLAINTEXT_BOOTSTRAP"], "SASL_PLAINTEXT", "SCRAM-SHA-256"))
    if env.get("STACK_KAFKA_OAUTHBEARER"):
        logins.append((sasl_ssl, "SASL_SSL", "OAUTHBEARER"))
    for bootstrap, protocol, mech in logins:
        await login(bootstrap, timeout_ms, security(env, protocol, mech))
    done = ", ".join(f"{p}{'/' + m if m else ''}" for _, p, m in logins)
    return f"SASL_SSL/SCRAM-SHA-256 round trip ok; logins ok: {done}"


async def check(args: argparse.Namespace) -> str:
    msg = await roundtrip(
        args.bootstrap, args.topic, args.timeout, args.replication_factor, args.expect_brokers
    )
    if args.secure_env:
        env = read_env(Path(args.secure_env))
        msg += "; " + await secure_checks(
            env, args.topic, args.timeout, args.replication_factor, args.expect_brokers
        )
    return msg


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bootstrap", default="127.0.0.1:9092")
    ap.add_argument("--topic", default="_stack_healthcheck")
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds for the whole check")
    ap.add_argument(
        "--kafka-version", default="", help="version the stack started, for the message"
    )
    ap.add_argument("--replication-factor", type=int, default=1, help="of the check's topic")
    ap.add_argument("--expect-brokers", type=int, default=0, help="fail with fewer registered")
    ap.add_argument("--secure-env", default="", help="also check the listeners this file names")
    args = ap.parse_args()
    # aiokafka logs every transient retry (e.g. coordinator not yet elected) as an
    # error; the single outcome printed below is what the caller needs.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    try:
        msg = asyncio.run(asyncio.wait_for(check(args), args.timeout))
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready yet"; the caller retries
        print(f"kafka {args.bootstrap} not ready: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    version = f"kafka {args.kafka_version} " if args.kafka_version else "kafka "
    print(f"{version}{args.bootstrap}: {msg}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
