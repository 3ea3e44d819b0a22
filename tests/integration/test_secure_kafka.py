"""Kafka over TLS and SASL, and Redis over TLS with a password, on the secured local stack
(`make up SECURE=1`; `make test` starts it so). The settings come from the stack's
``.stack/kafka/secure.env``; a stack without its secure listeners fails the run, never skips.

A misconfigured client (wrong password, unknown CA, plaintext against the TLS port, an OAUTHBEARER
token provider that fails or gives a token the broker refuses) must fail within seconds with one
line naming the setting to fix: the worker, the CLI and the client. OAUTHBEARER tokens come from
tests/fakes/oauth_token.py through PROFILE_STREAM_KAFKA_OAUTH_TOKEN_PROVIDER.
"""

import asyncio
import dataclasses
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from streams.client import BrokerUnavailable, KafkaConnection, ProfileEvents, publish
from streams.client.kafka_io import ensure_topics, partitions_of
from tests.fakes.llm_server import FakeLLM
from tests.fakes.oauth_token import UnsecuredJwt
from tests.support import free_port

from .conftest import StartWorker
from .harness import Names
from .test_cli import cli, cli_env, seed_script

pytestmark = pytest.mark.secure

ROOT = Path(__file__).resolve().parents[2]
#: How long a misconfigured connection may take to fail: seconds, never a retry loop.
FAIL_WITHIN_S = 15.0
REDIS_PASSWORD = "redis-test-password-7f3a"


HINT = "start the secured stack with `make up SECURE=1` (`make test` does)"


def _read_env() -> dict[str, str]:
    path = Path(os.environ.get("STACK_KAFKA_SECURE_ENV", ROOT / ".stack/kafka/secure.env"))
    if not path.is_file():
        pytest.fail(f"no {path}: {HINT}")
    pairs = (ln.split("=", 1) for ln in path.read_text().splitlines() if "=" in ln)
    return {k.strip(): v.strip() for k, v in pairs if not k.lstrip().startswith("#")}


@pytest.fixture(scope="module")
async def secure() -> dict[str, str]:
    """The stack's secure settings; fails (never skips) when the secured stack is not up."""
    env = _read_env()
    try:
        await asyncio.wait_for(
            partitions_of("__consumer_offsets", bootstrap=KafkaConnection.from_env(env)), 20
        )
    except Exception as exc:  # noqa: BLE001
        pytest.fail(
            f"the secure listener {env['PROFILE_STREAM_KAFKA_BOOTSTRAP']} fails: {exc}; {HINT}"
        )
    return env


def kafka_env(secure: dict[str, str], **changes: str) -> dict[str, str]:
    """The PROFILE_STREAM_KAFKA_* settings of ``secure``, with ``changes`` ("" unsets one)."""
    env = {k: v for k, v in secure.items() if k.startswith("PROFILE_STREAM_KAFKA_")}
    env |= {f"PROFILE_STREAM_KAFKA_{k.upper()}": v for k, v in changes.items()}
    return {k: v for k, v in env.items() if v}


def oauth_env(secure: dict[str, str], provider: str = "UnsecuredJwt") -> dict[str, str]:
    """SASL_SSL with OAUTHBEARER, the token from a hook of tests/fakes/oauth_token.py (no user,
    no password). The worker and the CLI are console scripts: PYTHONPATH lets them import it."""
    if secure.get("STACK_KAFKA_OAUTHBEARER") != "unsecured-jwt":
        pytest.fail(
            "the secured stack does not take OAUTHBEARER (no STACK_KAFKA_OAUTHBEARER in its "
            "secure.env: started by an older deploy/stack.sh); restart it: `make down` then "
            "`make up SECURE=1`"
        )
    hook = f"tests.fakes.oauth_token:{provider}"
    env = kafka_env(secure, sasl_mechanism="OAUTHBEARER", sasl_username="", sasl_password="") | {
        "PROFILE_STREAM_KAFKA_OAUTH_TOKEN_PROVIDER": hook
    }
    return env | {"PYTHONPATH": str(ROOT)}


@pytest.fixture(scope="module")
def tls_redis(secure: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A test-owned redis-server on TLS only, with a password; yields its rediss:// URL."""
    port, log = free_port(), tmp_path_factory.mktemp("redis") / "redis.log"
    argv = ["redis-server", "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1"]
    argv += ["--tls-cert-file", secure["STACK_TLS_SERVER_CERTFILE"]]
    argv += ["--tls-key-file", secure["STACK_TLS_SERVER_KEYFILE"]]
    argv += ["--tls-ca-cert-file", secure["PROFILE_STREAM_KAFKA_SSL_CAFILE"]]
    argv += ["--tls-auth-clients", "no", "--requirepass", REDIS_PASSWORD]
    argv += ["--save", "", "--appendonly", "no", "--logfile", str(log)]
    proc = subprocess.Popen(argv)  # noqa: S603
    try:
        deadline = time.monotonic() + 10
        while subprocess.run(
            ["bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{port}"], check=False
        ).returncode:  # noqa: S603, S607
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield f"rediss://:{REDIS_PASSWORD}@127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


def redis_env(secure: dict[str, str], url: str) -> dict[str, str]:
    return {
        "PROFILE_STREAM_REDIS_URL": url,
        "PROFILE_STREAM_REDIS_SSL_CAFILE": secure["PROFILE_STREAM_KAFKA_SSL_CAFILE"],
    }


async def test_every_protocol_and_mechanism_the_stack_offers_connects(
    secure: dict[str, str],
) -> None:
    base = KafkaConnection.from_env(secure)
    tls = {"ssl_cafile": base.ssl_cafile}
    mtls = tls | {
        "ssl_certfile": secure["STACK_KAFKA_SSL_CERTFILE"],
        "ssl_keyfile": secure["STACK_KAFKA_SSL_KEYFILE"],
    }
    cases = [KafkaConnection(secure["STACK_KAFKA_PLAINTEXT_BOOTSTRAP"])]
    cases.append(KafkaConnection(secure["STACK_KAFKA_SSL_BOOTSTRAP"], "SSL", **mtls))  # type: ignore[arg-type]
    for mechanism in secure["STACK_KAFKA_SASL_MECHANISMS"].split(","):
        cases.append(dataclasses.replace(base, sasl_mechanism=mechanism))
        cases.append(
            dataclasses.replace(
                base,
                bootstrap=secure["STACK_KAFKA_SASL_PLAINTEXT_BOOTSTRAP"],
                security_protocol="SASL_PLAINTEXT",
                sasl_mechanism=mechanism,
                ssl_cafile=None,
            )
        )
    for conn in cases:
        assert await partitions_of("__consumer_offsets", bootstrap=conn), conn.describe()


def _misconfigured(secure: dict[str, str], case: str) -> tuple[dict[str, str], str]:
    """The settings of ``case`` and the variable its error must name."""
    if case in OAUTH_CASES:
        return oauth_env(secure, OAUTH_CASES[case]), "OAUTH_TOKEN_PROVIDER"
    changes, setting = {
        "wrong password": ({"sasl_password": "not-the-password"}, "SASL_PASSWORD"),
        "unknown CA": ({"ssl_cafile": secure["STACK_KAFKA_SSL_OTHER_CAFILE"]}, "SSL_CAFILE"),
        "plaintext client on the TLS port": (
            {
                "security_protocol": "PLAINTEXT",
                "sasl_mechanism": "",
                "sasl_username": "",
                "sasl_password": "",
                "ssl_cafile": "",
            },
            "SECURITY_PROTOCOL",
        ),
    }[case]
    return kafka_env(secure, **changes), setting


#: case: the hook of tests/fakes/oauth_token.py that makes it.
OAUTH_CASES = {
    "OAUTHBEARER provider raises": "Unreachable",
    "OAUTHBEARER token expired": "ExpiredJwt",
    "OAUTHBEARER token is no JWT": "Garbage",
    "OAUTHBEARER hook raises": "unconfigured",
}
#: Refused connections: the client raises BrokerUnavailable, the CLI exits with status 3.
CASES = ["wrong password", "unknown CA", "plaintext client on the TLS port"]
CASES += ["OAUTHBEARER provider raises", "OAUTHBEARER token expired", "OAUTHBEARER token is no JWT"]
#: A hook that fails when called is a setting that cannot work (the CLI's status 1; the client's
#: ConfigError is in tests/unit): the worker stops as for the others.
WORKER_CASES = [*CASES, "OAUTHBEARER hook raises"]


@pytest.mark.parametrize("case", CASES)
async def test_a_misconfigured_client_and_cli_fail_fast_naming_the_setting(
    secure: dict[str, str], names: Names, case: str
) -> None:
    env, setting = _misconfigured(secure, case)
    conn = KafkaConnection.from_env(env)

    started = time.monotonic()
    with pytest.raises(BrokerUnavailable) as raised:
        await ensure_topics([names.input], partitions=1, replication=1, bootstrap=conn)
    took = time.monotonic() - started
    assert took < FAIL_WITHIN_S and f"PROFILE_STREAM_KAFKA_{setting}" in str(raised.value)

    started = time.monotonic()
    run = await cli(cli_env(names) | env, "history", "alice", timeout=60)
    took = time.monotonic() - started
    lines = [ln for ln in run.err.splitlines() if ln.strip()]
    assert run.code == 3 and len(lines) == 1, run.err
    assert f"PROFILE_STREAM_KAFKA_{setting}" in lines[0] and took < FAIL_WITHIN_S, (took, lines)
    assert "not-the-password" not in run.err + run.out


@pytest.mark.parametrize("case", WORKER_CASES)
async def test_a_misconfigured_worker_exits_fast_with_one_line(
    secure: dict[str, str], start_worker: StartWorker, case: str
) -> None:
    env, setting = _misconfigured(secure, case)
    worker = await start_worker(ready=False, **env)
    assert await worker.wait_exit(FAIL_WITHIN_S + 10), f"still running:\n{worker.tail()}"
    took = time.time() - worker.started_at
    assert worker.proc is not None and worker.proc.returncode != 0
    lines = [ln for ln in worker.tail().splitlines() if ln.strip()]
    assert len(lines) == 1 and f"PROFILE_STREAM_KAFKA_{setting}" in lines[0], lines
    assert took < FAIL_WITHIN_S, took
    assert "not-the-password" not in worker.log.read_text()


async def test_the_pipeline_runs_over_sasl_ssl_scram_sha_512_with_redis_over_tls(
    secure: dict[str, str],
    tls_redis: str,
    start_worker: StartWorker,
    names: Names,
    fake_llm: FakeLLM,
) -> None:
    seed_script(fake_llm)
    env = kafka_env(secure, sasl_mechanism="SCRAM-SHA-512") | redis_env(secure, tls_redis)
    worker = await start_worker(**env)
    conn = KafkaConnection.from_env(env)
    assert conn.sasl_mechanism == "SCRAM-SHA-512" and conn.security_protocol == "SASL_SSL"

    from schemas import ChatMessage

    message = ChatMessage.model_validate(
        {
            "message_id": "m-secure-1",
            "user_id": "alice",
            "conversation_id": "c1",
            "role": "user",
            "content": "I'm Alice from California",
            "sent_at": "2026-11-25T10:00:00+00:00",
        }
    )
    assert await publish([message], bootstrap=conn, topic=names.input) == 1
    async with ProfileEvents(
        bootstrap=conn, topic=names.output, from_beginning=True, idle_timeout_s=60
    ) as events:
        event = await anext(aiter(events))
    assert event.user_id == "alice" and event.profile["name"] == "Alice"

    run_env = cli_env(names, worker) | env
    got = await cli(run_env, "get", "alice")
    assert got.code == 0 and "  name: Alice" in got.lines, got.err
    history = await cli(run_env, "history", "alice")
    assert history.code == 0 and len(history.lines) == 1, history.err

    cached = await _cache_keys(tls_redis, secure, names.prefix)
    assert cached, "the extraction was not cached in the TLS Redis"
    log = worker.log.read_text()
    for secret in (secure["PROFILE_STREAM_KAFKA_SASL_PASSWORD"], REDIS_PASSWORD):
        assert secret not in log + got.err + history.err


async def test_the_pipeline_runs_over_sasl_ssl_oauthbearer_through_the_token_provider_hook(
    secure: dict[str, str], start_worker: StartWorker, names: Names, fake_llm: FakeLLM
) -> None:
    seed_script(fake_llm)
    env = oauth_env(secure)
    conn = KafkaConnection.from_env(env)
    assert (conn.security_protocol, conn.sasl_mechanism) == ("SASL_SSL", "OAUTHBEARER")
    assert conn.sasl_username is None and conn.sasl_password is None
    worker = await start_worker(**env)

    run_env = cli_env(names, worker) | env
    sent = await cli(run_env, "send", "--user", "alice", "I'm Alice from California")
    assert sent.code == 0, sent.err
    # An app passes a provider object rather than a hook.
    app_conn = dataclasses.replace(conn, oauth_token_provider=UnsecuredJwt())
    from schemas import ChatMessage

    message = ChatMessage.model_validate(
        {
            "message_id": "m-oauth-2",
            "user_id": "alice",
            "conversation_id": "c1",
            "role": "user",
            "content": "I speak Spanish too",
            "sent_at": "2026-11-25T10:01:00+00:00",
        }
    )
    assert await publish([message], bootstrap=app_conn, topic=names.input) == 1
    seen = []
    async with ProfileEvents(
        bootstrap=app_conn, topic=names.output, from_beginning=True, idle_timeout_s=60
    ) as events:
        async for event in events:
            seen.append(event)
            if "Spanish" in event.profile.get("languages", []):
                break
    assert seen and seen[-1].user_id == "alice", seen
    assert seen[-1].profile["name"] == "Alice" and seen[-1].profile["languages"] == ["Spanish"]

    history = await cli(run_env, "history", "alice")
    assert history.code == 0 and len(history.lines) == len(seen), history.err


async def _cache_keys(url: str, secure: dict[str, str], prefix: str) -> list[bytes]:
    client = aioredis.from_url(url, ssl_ca_certs=secure["PROFILE_STREAM_KAFKA_SSL_CAFILE"])
    try:
        keys: list[bytes] = await client.keys(f"{prefix}:extraction:*")
        return keys
    finally:
        await client.aclose()


@pytest.mark.parametrize("password", ["wrong", ""])
async def test_a_worker_with_a_bad_redis_password_exits_fast(
    secure: dict[str, str], tls_redis: str, start_worker: StartWorker, password: str
) -> None:
    url = (
        tls_redis.replace(REDIS_PASSWORD, password)
        if password
        else tls_redis.replace(f":{REDIS_PASSWORD}@", "")
    )
    worker = await start_worker(ready=False, **kafka_env(secure) | redis_env(secure, url))
    assert await worker.wait_exit(FAIL_WITHIN_S + 10), f"still running:\n{worker.tail()}"
    lines = [ln for ln in worker.tail().splitlines() if ln.strip()]
    assert len(lines) == 1 and "PROFILE_STREAM_REDIS_URL" in lines[0], lines
    assert time.time() - worker.started_at < FAIL_WITHIN_S
    assert REDIS_PASSWORD not in worker.log.read_text()
