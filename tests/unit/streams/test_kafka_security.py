"""Kafka security settings: checked at start naming the variable, the same for aiokafka and
Faust, and never printing a secret. (Against a real secured broker:
tests/integration/test_secure_kafka.py.)"""

import subprocess
from pathlib import Path

import faust
import pytest
from aiokafka.abc import AbstractTokenProvider
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from streams.errors import ConfigError
from streams.extract.redis_client import redacted
from streams.kafka_credentials import broker_credentials
from streams.kafka_security import KafkaConnection
from streams.settings import load_settings

ROOT = Path(__file__).resolve().parents[3]
SECRET = "s3cret-pa55word"
SCRAM = {
    "PROFILE_STREAM_KAFKA_BOOTSTRAP": "broker-1:9094,broker-2:9094",
    "PROFILE_STREAM_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "PROFILE_STREAM_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "PROFILE_STREAM_KAFKA_SASL_USERNAME": "profile_stream",
    "PROFILE_STREAM_KAFKA_SASL_PASSWORD": SECRET,
}


class Provider(AbstractTokenProvider):  # type: ignore[misc]
    async def token(self) -> str:
        return "a-token"


def token_provider() -> Provider:
    return Provider()


def token_string() -> str:
    return "static-token"


pytestmark = pytest.mark.usefixtures("clean_env")


def test_the_default_is_plaintext_and_faust_gets_no_credentials() -> None:
    conn = load_settings().kafka
    assert conn.client_kwargs() == {
        "bootstrap_servers": "127.0.0.1:9092",
        "security_protocol": "PLAINTEXT",
    }
    assert broker_credentials(conn) is None


def test_sasl_ssl_scram_from_the_environment(clean_env: pytest.MonkeyPatch) -> None:
    for name, value in SCRAM.items():
        clean_env.setenv(name, value)
    conn = load_settings().kafka
    assert conn == KafkaConnection.from_env()
    kw = conn.client_kwargs()
    assert kw["security_protocol"] == "SASL_SSL" and kw["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (kw["sasl_plain_username"], kw["sasl_plain_password"]) == ("profile_stream", SECRET)
    assert kw["ssl_context"].check_hostname  # on unless PROFILE_STREAM_KAFKA_SSL_CHECK_HOSTNAME
    assert (
        conn.describe() == "broker-1:9094,broker-2:9094 (SASL_SSL, SCRAM-SHA-512 as profile_stream)"
    )


@pytest.mark.parametrize(
    ("protocol", "mechanism", "credentials"),
    [
        ("SSL", None, faust.SSLCredentials),
        ("SASL_SSL", "PLAIN", faust.SASLCredentials),
        ("SASL_PLAINTEXT", "SCRAM-SHA-256", faust.SASLCredentials),
        ("SASL_SSL", "OAUTHBEARER", faust.OAuthCredentials),
        ("SASL_PLAINTEXT", "OAUTHBEARER", faust.OAuthCredentials),
    ],
)
def test_faust_gets_what_aiokafka_gets(
    protocol: str, mechanism: str | None, credentials: type
) -> None:
    """Faust's driver turns broker_credentials into aiokafka's arguments for the consumer, the
    producer and (through their clients) topic creation: the same as the CLI's and client's."""
    oauth = mechanism == "OAUTHBEARER"
    conn = KafkaConnection(
        security_protocol=protocol,
        sasl_mechanism=mechanism,
        sasl_username=None if oauth or mechanism is None else "user",
        sasl_password=None if oauth or mechanism is None else SECRET,  # type: ignore[arg-type]
        oauth_token_provider=f"{__name__}:token_provider" if oauth else None,
    )
    made = broker_credentials(conn)
    assert isinstance(made, credentials)
    faust_kw = {k: v for k, v in credentials_to_aiokafka_auth(made).items() if v is not None}
    assert faust_kw == conn.security_kwargs()
    assert SECRET not in repr(made) + repr(conn) + str(conn)


def test_a_token_hook_may_return_a_token_string() -> None:
    conn = KafkaConnection(
        security_protocol="SASL_SSL",
        sasl_mechanism="OAUTHBEARER",
        oauth_token_provider=f"{__name__}:token_string",
    )
    provider = conn.security_kwargs()["sasl_oauth_token_provider"]
    assert isinstance(provider, AbstractTokenProvider)


def test_secrets_never_print(clean_env: pytest.MonkeyPatch) -> None:
    for name, value in SCRAM.items():
        clean_env.setenv(name, value)
    clean_env.setenv("PROFILE_STREAM_REDIS_URL", f"rediss://:{SECRET}@redis:6380/0")
    settings = load_settings()
    assert SECRET not in repr(settings) + str(settings) + repr(settings.kafka)
    assert redacted(settings.redis_url.get_secret_value()) == "rediss://:***@redis:6380/0"
    assert redacted("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"


BAD = [
    ({"SASL_MECHANISM": "PLAIN"}, "SASL_MECHANISM is set but"),
    ({"SECURITY_PROTOCOL": "SASL_SSL"}, "needs PROFILE_STREAM_KAFKA_SASL_MECHANISM"),
    ({"SECURITY_PROTOCOL": "SASL_SSL", "SASL_MECHANISM": "PLAIN"}, "_SASL_USERNAME"),
    (
        {"SECURITY_PROTOCOL": "SASL_SSL", "SASL_MECHANISM": "PLAIN", "SASL_USERNAME": "u"},
        "needs PROFILE_STREAM_KAFKA_SASL_PASSWORD",
    ),
    (
        {"SECURITY_PROTOCOL": "SASL_SSL", "SASL_MECHANISM": "OAUTHBEARER"},
        "needs PROFILE_STREAM_KAFKA_OAUTH_TOKEN_PROVIDER",
    ),
    (
        {
            "SECURITY_PROTOCOL": "SASL_SSL",
            "SASL_MECHANISM": "OAUTHBEARER",
            "OAUTH_TOKEN_PROVIDER": "not a path",
        },
        "OAUTH_TOKEN_PROVIDER must look like module:callable",
    ),
    ({"SECURITY_PROTOCOL": "TLS"}, "PROFILE_STREAM_KAFKA_SECURITY_PROTOCOL"),
    ({"SECURITY_PROTOCOL": "SASL_SSL", "SASL_MECHANISM": "GSSAPI"}, "_SASL_MECHANISM"),
    ({"SSL_CAFILE": "/etc/hostname"}, "SSL_CAFILE is set but PROFILE_STREAM_KAFKA_SECURITY"),
    ({"SECURITY_PROTOCOL": "SSL", "SSL_CAFILE": "/nowhere/ca.crt"}, "SSL_CAFILE=/nowhere"),
    (
        {"SECURITY_PROTOCOL": "SSL", "SSL_CERTFILE": "/etc/hostname"},
        "SSL_CERTFILE is set without PROFILE_STREAM_KAFKA_SSL_KEYFILE",
    ),
    ({"SECURITY_PROTOCOL": "SSL", "SSL_CAFILE": "/etc/hostname"}, "cannot load the TLS files"),
    ({"SSL_CHECK_HOSTNAME": "maybe"}, "PROFILE_STREAM_KAFKA_SSL_CHECK_HOSTNAME"),
]


@pytest.mark.parametrize(("env", "named"), BAD, ids=[named for _, named in BAD])
def test_a_bad_combination_fails_at_start_naming_the_variable(
    clean_env: pytest.MonkeyPatch, env: dict[str, str], named: str
) -> None:
    for name, value in env.items():
        clean_env.setenv(f"PROFILE_STREAM_KAFKA_{name}", value)
    with pytest.raises(ConfigError, match=named):
        load_settings()
    if "SECURITY_PROTOCOL': 'TLS" not in str(env) and "GSSAPI" not in str(env):
        with pytest.raises(ConfigError, match=named):  # the client's own check says the same
            KafkaConnection.from_env().ssl_context  # noqa: B018


def test_a_broken_token_hook_is_a_config_error() -> None:
    conn = KafkaConnection(
        security_protocol="SASL_SSL",
        sasl_mechanism="OAUTHBEARER",
        oauth_token_provider="os:cpu_count",
    )
    with pytest.raises(ConfigError, match="OAUTH_TOKEN_PROVIDER=os:cpu_count returned a int"):
        conn.security_kwargs()
    conn = KafkaConnection(
        security_protocol="SASL_SSL",
        sasl_mechanism="OAUTHBEARER",
        oauth_token_provider="no.such:hook",
    )
    with pytest.raises(ConfigError, match="calling it failed"):
        conn.security_kwargs()


def test_make_test_starts_the_secured_stack_and_make_up_stays_plain() -> None:
    def dry_run(*args: str) -> str:
        out = subprocess.run(
            ["make", "-n", "-C", str(ROOT), *args], capture_output=True, text=True, check=True
        ).stdout
        return next(line for line in out.splitlines() if "deploy/stack.sh up" in line)

    assert dry_run("test").startswith("STACK_SECURE=1 ")
    assert dry_run("integration").startswith("STACK_SECURE=1 ")
    assert dry_run("up").startswith("STACK_SECURE= ")
