"""The OAUTHBEARER token-provider hook: what a failing provider and a refused token turn into.
(Against the secured local stack's OAUTHBEARER listeners: tests/integration/test_secure_kafka.py.)
"""

import asyncio
import base64
import json
import time

import pytest
from aiokafka.abc import AbstractTokenProvider
from aiokafka.errors import KafkaConnectionError

from streams import kafka_oauth
from streams.errors import ConfigError
from streams.kafka_security import KafkaConnection
from tests.fakes import oauth_token

HOOK = "tests.fakes.oauth_token"


class WithExtensions(AbstractTokenProvider):  # type: ignore[misc]
    async def token(self) -> str:
        return "a-token"

    def extensions(self) -> dict[str, str]:
        return {"logicalCluster": "lkc-1"}


class ReturnsBytes(AbstractTokenProvider):  # type: ignore[misc]
    async def token(self) -> bytes:
        return b"secret-token-bytes"


def _token(provider: AbstractTokenProvider) -> str:
    token: str = asyncio.run(provider.token())
    return token


def test_the_hooks_token_and_extensions_pass_through() -> None:
    provider = kafka_oauth.load_provider(f"{HOOK}:UnsecuredJwt")
    header, payload, signature = _token(provider).split(".")
    assert header and payload and signature == ""  # unsigned, as the unsecured validator wants
    guarded = kafka_oauth.load_provider(WithExtensions())
    assert (_token(guarded), guarded.extensions()) == ("a-token", {"logicalCluster": "lkc-1"})


@pytest.mark.parametrize(
    ("provider", "said"),
    [
        (f"{HOOK}:Unreachable", "its token() failed (ConnectionError: identity provider"),
        (ReturnsBytes(), "its token() returned a bytes, not a token"),
    ],
    ids=["raises", "no string"],
)
def test_a_provider_without_a_token_fails_the_connection_naming_the_setting(
    provider: str | AbstractTokenProvider, said: str
) -> None:
    guarded = kafka_oauth.load_provider(provider)
    with pytest.raises(KafkaConnectionError) as raised:  # aiokafka retries or reports it
        _token(guarded)
    reason = kafka_oauth.explain(raised.value)
    assert reason is not None and "PROFILE_STREAM_KAFKA_OAUTH_TOKEN_PROVIDER" in reason
    assert said in reason and "secret-token-bytes" not in reason


def test_a_hook_that_raises_is_a_config_error_naming_it() -> None:
    with pytest.raises(ConfigError, match=rf"OAUTH_TOKEN_PROVIDER={HOOK}:unconfigured: calling"):
        kafka_oauth.load_provider(f"{HOOK}:unconfigured")


def test_the_connection_uses_the_guarded_provider() -> None:
    conn = KafkaConnection(
        security_protocol="SASL_SSL",
        sasl_mechanism="OAUTHBEARER",
        oauth_token_provider=f"{HOOK}:Garbage",
    )
    provider = conn.security_kwargs()["sasl_oauth_token_provider"]
    assert _token(provider) == "not-a-jwt" and provider is conn.token_provider


def test_the_brokers_refusal_fails_the_strict_login_with_its_reply() -> None:
    class Inner:
        async def step(self, payload: bytes | None) -> tuple[bytes, bool]:
            return b"n,,\x01auth=Bearer t\x01\x01", True

    step = kafka_oauth._RefusalAware(Inner()).step
    assert asyncio.run(step(None))[0].startswith(b"n,,")  # the token goes out as aiokafka sends it
    with pytest.raises(KafkaConnectionError) as raised:
        asyncio.run(step(b'{"status":"invalid_token"}'))
    reason = kafka_oauth.explain(raised.value)
    assert reason is not None and '{"status":"invalid_token"}' in reason
    assert "PROFILE_STREAM_KAFKA_OAUTH_TOKEN_PROVIDER" in reason
    assert kafka_oauth.explain(KafkaConnectionError("refused")) is None


def test_the_fake_identity_provider_mints_what_the_unsecured_validator_checks() -> None:
    def claims(token: str) -> dict[str, object]:
        header, payload, _ = token.split(".")
        decoded = [
            json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4))) for p in (header, payload)
        ]
        assert decoded[0] == {"alg": "none"}
        return dict(decoded[1])

    fresh = claims(oauth_token.unsecured_jwt(now=1000))
    assert fresh == {
        "sub": oauth_token.SUBJECT,
        "iat": 1000,
        "exp": 4600,
        "scope": "profile-stream",
    }
    expired = claims(_token(oauth_token.ExpiredJwt()))
    assert int(str(expired["iat"])) < int(str(expired["exp"])) < time.time() - 60
