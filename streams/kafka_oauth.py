"""OAUTHBEARER for a Kafka connection: the token-provider hook, and why a login with it failed.

``PROFILE_STREAM_KAFKA_OAUTH_TOKEN_PROVIDER`` names a ``module:callable``. :func:`load_provider`
calls it once and guards what it returns: a provider whose ``token()`` raises, or returns no
token, fails the connection attempt with an error naming the setting. Left alone, the provider's
own exception would escape from deep inside aiokafka; as a connection error, a running worker
retries the connection as after any other, and a client at start gets it explained.

aiokafka takes any reply to the token as success. A broker that refuses a token (expired,
malformed, for another cluster) answers with an error message and waits (RFC 7628, 3.2.2), and
the client's next request then fails with an unrelated error. :func:`connect_strictly` makes one
connection that reads that reply; :func:`explain` turns both failures into the reason to show.
"""

import importlib
from typing import Any

from aiokafka.abc import AbstractTokenProvider
from aiokafka.conn import AIOKafkaConnection
from aiokafka.errors import KafkaConnectionError

from streams.errors import ConfigError

__all__ = ["SETTING", "connect_strictly", "explain", "load_provider"]

SETTING = "PROFILE_STREAM_KAFKA_OAUTH_TOKEN_PROVIDER"


class _TokenProviderFailed(KafkaConnectionError):  # type: ignore[misc]
    """The provider raised, or returned no token; the message says which provider and how."""


class _TokenRefused(KafkaConnectionError):  # type: ignore[misc]
    """The broker refused the token; the message is the broker's error reply."""


class _StaticToken(AbstractTokenProvider):  # type: ignore[misc]
    """A hook that returned a token string rather than a provider."""

    def __init__(self, token: str) -> None:
        self._token = token

    async def token(self) -> str:
        return self._token


class _Guarded(AbstractTokenProvider):  # type: ignore[misc]
    """The hook's provider, its failures turned into connection errors naming the setting."""

    def __init__(self, inner: AbstractTokenProvider, name: str) -> None:
        self._inner, self._name = inner, name

    async def token(self) -> str:
        try:
            token = await self._inner.token()
        except Exception as exc:  # noqa: BLE001 - whatever the provider raises, say it is the provider
            raise _TokenProviderFailed(
                f"{self._name}: its token() failed ({type(exc).__name__}: {exc})"
            ) from exc
        if not isinstance(token, str) or not token.strip():
            what = "an empty string" if isinstance(token, str) else f"a {type(token).__name__}"
            raise _TokenProviderFailed(f"{self._name}: its token() returned {what}, not a token")
        return token

    def extensions(self) -> dict[str, str]:
        extensions: dict[str, str] = self._inner.extensions()
        return extensions


def load_provider(hook: str | AbstractTokenProvider) -> AbstractTokenProvider:
    """The guarded provider of ``hook``: ``module:callable`` (called once, with no arguments,
    returning a provider or a token string), or a provider object.

    Raises:
        ConfigError: the hook cannot be imported, raised, or returned something else.
    """
    if isinstance(hook, AbstractTokenProvider):
        return _Guarded(hook, f"the OAUTHBEARER token provider {type(hook).__name__} ({SETTING})")
    module, _, name = hook.partition(":")
    try:
        made = getattr(importlib.import_module(module), name)()
    except Exception as exc:  # noqa: BLE001 - any failure of the hook is a config error
        raise ConfigError(
            f"{SETTING}={hook}: calling it failed ({type(exc).__name__}: {exc})"
        ) from None
    if isinstance(made, str):
        made = _StaticToken(made)
    if not isinstance(made, AbstractTokenProvider):
        raise ConfigError(
            f"{SETTING}={hook} returned a {type(made).__name__}; it must return an "
            "aiokafka.abc.AbstractTokenProvider or a token string"
        )
    return _Guarded(made, f"{SETTING}={hook}")


class _RefusalAware:
    """aiokafka's OAUTHBEARER exchange, reading the broker's reply to the token."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    async def step(self, payload: bytes | None) -> Any:
        # Accepted, the broker replies with nothing; refused, with its error (JSON).
        if payload:
            raise _TokenRefused(payload.decode("utf-8", "replace"))
        return await self._inner.step(payload)


class _StrictConnection(AIOKafkaConnection):  # type: ignore[misc]
    def authenticator_oauth(self) -> _RefusalAware:
        return _RefusalAware(super().authenticator_oauth())


async def connect_strictly(host: str, port: int, **kwargs: Any) -> AIOKafkaConnection:
    """aiokafka's ``create_conn``, but a refused OAUTHBEARER token fails the connection."""
    conn = _StrictConnection(host, port, **kwargs)
    await conn.connect()
    return conn


def explain(exc: BaseException) -> str | None:
    """What to fix when ``exc`` is a failed token or a refused one; None for anything else."""
    if isinstance(exc, _TokenProviderFailed):
        return f"no OAUTHBEARER token: {exc.args[0]}"
    if isinstance(exc, _TokenRefused):
        return (
            f"the broker refused the OAUTHBEARER token (its reply: {exc.args[0]}); check what "
            f"{SETTING} returns: a token for this cluster, not expired"
        )
    return None
