"""How to connect to Kafka: bootstrap servers plus TLS and SASL, for every client alike.

:class:`KafkaConnection` is what the worker's settings, the CLI and the Python client share: it
checks itself when built (a bad combination raises :class:`~streams.errors.ConfigError` naming the
``PROFILE_STREAM_KAFKA_*`` variable to fix), gives aiokafka its keyword arguments, and explains a
failed connection (:func:`diagnose`). Faust's ``broker_credentials`` are made from it in
:mod:`streams.kafka_credentials`. Imports no Faust; the password is a ``SecretStr`` and never
appears in a repr, a log line or an error.
"""

import asyncio
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from aiokafka.abc import AbstractTokenProvider
from aiokafka.errors import (
    AuthenticationFailedError,
    KafkaConnectionError,
    KafkaError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)
from aiokafka.helpers import create_ssl_context
from pydantic import SecretStr

from streams import kafka_oauth
from streams.errors import BrokerUnavailable, ConfigError

__all__ = ["MECHANISMS", "PROTOCOLS", "KafkaConnection", "diagnose"]

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER")
_V = "PROFILE_STREAM_KAFKA_"
#: How long the explanation of a failed connection may take (one more connection attempt).
_DIAGNOSE_S = 10.0


@dataclass(frozen=True)
class KafkaConnection:
    """Bootstrap servers and how to secure the connection to them.

    Build it from the environment (:meth:`from_env`, the ``PROFILE_STREAM_KAFKA_*`` variables
    the worker reads) or pass the fields. ``oauth_token_provider`` is ``"module:callable"``
    (called with no arguments, returning an aiokafka ``AbstractTokenProvider`` or a token
    string) or a provider object.
    """

    bootstrap: str = "127.0.0.1:9092"
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = field(default=None, repr=False)
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_check_hostname: bool = True
    oauth_token_provider: str | AbstractTokenProvider | None = None

    def __post_init__(self) -> None:
        if isinstance(self.sasl_password, str):  # a plain string passed by an app
            object.__setattr__(self, "sasl_password", SecretStr(self.sasl_password))
        for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            value = getattr(self, name)
            if isinstance(value, str):
                object.__setattr__(self, name, Path(value) if value else None)
        _check_protocol(self)
        _check_sasl(self)
        _check_tls(self)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "KafkaConnection":
        """The connection the ``PROFILE_STREAM_KAFKA_*`` variables describe."""
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            return env.get(_V + name) or None

        check = (get("SSL_CHECK_HOSTNAME") or "true").strip().lower()
        if check not in {"true", "false", "1", "0", "yes", "no"}:
            raise ConfigError(f"{_V}SSL_CHECK_HOSTNAME must be true or false, not {check!r}")
        password = get("SASL_PASSWORD")
        return cls(
            bootstrap=get("BOOTSTRAP") or cls.bootstrap,
            security_protocol=(get("SECURITY_PROTOCOL") or "PLAINTEXT").upper(),
            sasl_mechanism=(get("SASL_MECHANISM") or "").upper() or None,
            sasl_username=get("SASL_USERNAME"),
            sasl_password=SecretStr(password) if password else None,
            ssl_cafile=_path(get("SSL_CAFILE")),
            ssl_certfile=_path(get("SSL_CERTFILE")),
            ssl_keyfile=_path(get("SSL_KEYFILE")),
            ssl_check_hostname=check in {"true", "1", "yes"},
            oauth_token_provider=get("OAUTH_TOKEN_PROVIDER"),
        )

    @classmethod
    def of(cls, bootstrap: "str | KafkaConnection") -> "KafkaConnection":
        """A connection as given, or a plain one to the bootstrap servers of a string."""
        return bootstrap if isinstance(bootstrap, KafkaConnection) else cls(bootstrap=bootstrap)

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    def describe(self) -> str:
        """``host:port (SASL_SSL, SCRAM-SHA-512 as user)``: no secret."""
        how = self.security_protocol
        if self.uses_sasl:
            how += f", {self.sasl_mechanism}"
            if self.sasl_username:
                how += f" as {self.sasl_username}"
        return f"{self.bootstrap} ({how})"

    @cached_property
    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context (trusting SSL_CAFILE, else the system's CAs), or None without TLS."""
        if not self.uses_tls:
            return None
        try:
            context: ssl.SSLContext = create_ssl_context(
                cafile=self.ssl_cafile, certfile=self.ssl_certfile, keyfile=self.ssl_keyfile
            )
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"cannot load the TLS files ({exc}); check {_V}SSL_CAFILE, {_V}SSL_CERTFILE "
                f"and {_V}SSL_KEYFILE (PEM files)"
            ) from None
        context.check_hostname = self.ssl_check_hostname
        return context

    @cached_property
    def token_provider(self) -> AbstractTokenProvider | None:
        """The OAUTHBEARER token provider (the hook called once), its failures guarded
        (:func:`streams.kafka_oauth.load_provider`)."""
        hook = self.oauth_token_provider
        return None if hook is None else kafka_oauth.load_provider(hook)

    def security_kwargs(self) -> dict[str, Any]:
        """aiokafka's security keyword arguments (for a producer, consumer or admin client)."""
        kw: dict[str, Any] = {"security_protocol": self.security_protocol}
        if self.uses_tls:
            kw["ssl_context"] = self.ssl_context
        if self.uses_sasl:
            kw["sasl_mechanism"] = self.sasl_mechanism
            if self.sasl_mechanism == "OAUTHBEARER":
                kw["sasl_oauth_token_provider"] = self.token_provider
            else:
                kw["sasl_plain_username"] = self.sasl_username
                kw["sasl_plain_password"] = _secret(self.sasl_password)
        return kw

    def client_kwargs(self) -> dict[str, Any]:
        """``bootstrap_servers`` and the security keyword arguments."""
        return {"bootstrap_servers": self.bootstrap, **self.security_kwargs()}


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def _check_protocol(conn: KafkaConnection) -> None:
    if conn.security_protocol not in PROTOCOLS:
        raise ConfigError(
            f"{_V}SECURITY_PROTOCOL must be one of {', '.join(PROTOCOLS)}, "
            f"not {conn.security_protocol!r}"
        )
    if conn.sasl_mechanism is not None and conn.sasl_mechanism not in MECHANISMS:
        raise ConfigError(
            f"{_V}SASL_MECHANISM must be one of {', '.join(MECHANISMS)}, "
            f"not {conn.sasl_mechanism!r}"
        )


def _check_sasl(conn: KafkaConnection) -> None:
    protocol, mechanism = conn.security_protocol, conn.sasl_mechanism
    if not conn.uses_sasl:
        given = [
            name
            for name, value in (
                ("SASL_MECHANISM", mechanism),
                ("SASL_USERNAME", conn.sasl_username),
                ("SASL_PASSWORD", conn.sasl_password),
                ("OAUTH_TOKEN_PROVIDER", conn.oauth_token_provider),
            )
            if value
        ]
        if given:
            raise ConfigError(
                f"{_V}{given[0]} is set but {_V}SECURITY_PROTOCOL={protocol} uses no SASL; "
                "set it to SASL_SSL (or SASL_PLAINTEXT), or unset the SASL settings"
            )
        return
    if mechanism is None:
        raise ConfigError(
            f"{_V}SECURITY_PROTOCOL={protocol} needs {_V}SASL_MECHANISM ({', '.join(MECHANISMS)})"
        )
    if mechanism == "OAUTHBEARER":
        if conn.oauth_token_provider is None:
            raise ConfigError(
                f"{_V}SASL_MECHANISM=OAUTHBEARER needs {_V}OAUTH_TOKEN_PROVIDER "
                "(module:callable returning a token provider)"
            )
        hook = conn.oauth_token_provider
        if isinstance(hook, str) and not _is_import_path(hook):
            raise ConfigError(f"{_V}OAUTH_TOKEN_PROVIDER must look like module:callable")
        return
    if conn.oauth_token_provider is not None:
        raise ConfigError(f"{_V}OAUTH_TOKEN_PROVIDER is only used with SASL_MECHANISM=OAUTHBEARER")
    for name, value in (
        ("SASL_USERNAME", conn.sasl_username),
        ("SASL_PASSWORD", conn.sasl_password),
    ):
        if not value or (isinstance(value, SecretStr) and not value.get_secret_value()):
            raise ConfigError(f"{_V}SASL_MECHANISM={mechanism} needs {_V}{name}")


def _is_import_path(hook: str) -> bool:
    module, colon, name = hook.partition(":")
    return bool(colon and name.isidentifier() and all(p.isidentifier() for p in module.split(".")))


def _check_tls(conn: KafkaConnection) -> None:
    files = {
        "SSL_CAFILE": conn.ssl_cafile,
        "SSL_CERTFILE": conn.ssl_certfile,
        "SSL_KEYFILE": conn.ssl_keyfile,
    }
    given = [name for name, path in files.items() if path is not None]
    if given and not conn.uses_tls:
        raise ConfigError(
            f"{_V}{given[0]} is set but {_V}SECURITY_PROTOCOL={conn.security_protocol} uses no "
            "TLS; set it to SSL or SASL_SSL, or unset the file"
        )
    if (conn.ssl_certfile is None) != (conn.ssl_keyfile is None):
        have, missing = (
            ("SSL_CERTFILE", "SSL_KEYFILE")
            if conn.ssl_keyfile is None
            else ("SSL_KEYFILE", "SSL_CERTFILE")
        )
        raise ConfigError(
            f"{_V}{have} is set without {_V}{missing}: a client certificate needs both"
        )
    for name, path in files.items():
        if path is not None and not os.access(path, os.R_OK):
            why = "does not exist" if not path.exists() else "is not readable"
            raise ConfigError(f"{_V}{name}={path} {why}")


async def diagnose(conn: KafkaConnection) -> BrokerUnavailable | None:
    """Why ``conn`` cannot connect, naming the setting to fix, from one more attempt on the
    first bootstrap server (aiokafka reports only "Unable to bootstrap"); None if the attempt
    works or fails in a way no setting explains."""
    host, _, port = conn.bootstrap.split(",")[0].strip().rpartition(":")
    try:
        made = await asyncio.wait_for(
            kafka_oauth.connect_strictly(
                host or "127.0.0.1",
                int(port),
                request_timeout_ms=int(_DIAGNOSE_S * 1000),
                **conn.security_kwargs(),
            ),
            _DIAGNOSE_S,
        )
    except (TimeoutError, OSError, KafkaError, ValueError) as exc:
        reason = _explain(conn, exc)
        return (
            BrokerUnavailable(f"cannot connect to Kafka at {conn.describe()}: {reason}")
            if reason
            else None
        )
    made.close()
    return None


def _explain(conn: KafkaConnection, exc: BaseException) -> str | None:
    text = f"{type(exc).__name__}: {exc}"
    oauth = kafka_oauth.explain(exc)
    if oauth is not None:
        return oauth
    if conn.sasl_mechanism == "OAUTHBEARER" and isinstance(
        exc, SaslAuthenticationFailed | AuthenticationFailedError
    ):
        return f"SASL authentication failed ({exc}); check {_V}OAUTH_TOKEN_PROVIDER"
    if isinstance(exc, SaslAuthenticationFailed | AuthenticationFailedError):
        return (
            f"SASL authentication failed ({exc}); check {_V}SASL_USERNAME and "
            f"{_V}SASL_PASSWORD (and {_V}SASL_MECHANISM)"
        )
    if isinstance(exc, UnsupportedSaslMechanismError):
        return f"the broker does not accept this mechanism ({exc}); check {_V}SASL_MECHANISM"
    if isinstance(exc, ssl.SSLCertVerificationError):
        if "hostname" in str(exc).lower() or "ip address mismatch" in str(exc).lower():
            return (
                f"the broker's certificate does not name this host ({exc.verify_message}); "
                f"connect by a name in it, or set {_V}SSL_CHECK_HOSTNAME=false"
            )
        return (
            f"the broker's TLS certificate is not trusted ({exc.verify_message}); set "
            f"{_V}SSL_CAFILE to the CA that signed it"
        )
    if isinstance(exc, ssl.SSLError):
        if "certificate required" in str(exc).lower() or "alert" in str(exc).lower():
            return (
                f"the broker refused the TLS handshake ({text}); it may require a client "
                f"certificate: set {_V}SSL_CERTFILE and {_V}SSL_KEYFILE"
            )
        return (
            f"TLS handshake failed ({text}); does this port speak TLS? check "
            f"{_V}SECURITY_PROTOCOL and {_V}BOOTSTRAP"
        )
    if isinstance(exc, ConnectionRefusedError | TimeoutError):
        return None  # not reachable at all: the caller's "is it running?" says it
    if isinstance(exc, KafkaConnectionError | ConnectionResetError | EOFError):
        mtls = (
            f"; or the listener requires a client certificate: set {_V}SSL_CERTFILE and "
            f"{_V}SSL_KEYFILE"
            if conn.uses_tls and conn.ssl_certfile is None
            else ""
        )
        return (
            f"the broker closed the connection during the handshake ({type(exc).__name__}); "
            f"{_V}SECURITY_PROTOCOL={conn.security_protocol} may not be what this port "
            f"speaks: check {_V}SECURITY_PROTOCOL and {_V}BOOTSTRAP{mtls}"
        )
    return None
