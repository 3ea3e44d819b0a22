"""What a client is configured with, once: :class:`ClientConfig`, from arguments or from the
``PROFILE_STREAM_*`` variables (:meth:`ClientConfig.from_env`).

The variables are those the CLI and the workers already read, so one environment serves an
app, the CLI and a local worker alike:

===================================  ==========================================================
``PROFILE_STREAM_URL``               a worker's URL (default: ``http://`` +
                                     ``PROFILE_STREAM_WEB_HOST``:``PROFILE_STREAM_WEB_PORT``,
                                     ``127.0.0.1:6066``)
``PROFILE_STREAM_TOKEN``             the read token (default: the first of
                                     ``PROFILE_STREAM_READ_TOKENS``, else of ``..._ADMIN_TOKENS``)
``PROFILE_STREAM_ADMIN_TOKEN``       the admin token, for correct/flush/forget/revert (default:
                                     the first of ``PROFILE_STREAM_ADMIN_TOKENS``)
``PROFILE_STREAM_CA_FILE``           a CA bundle (PEM) to verify a worker's https certificate
``PROFILE_STREAM_TIMEOUT_S``         seconds for each HTTP request (10)
``PROFILE_STREAM_INPUT_TOPIC``       where chat messages go (``chat-messages``)
``PROFILE_STREAM_OUTPUT_TOPIC``      where profile events come from (``profile-updated``)
``PROFILE_STREAM_KAFKA_*``           the Kafka connection, TLS and SASL (:class:`KafkaConnection`)
===================================  ==========================================================
"""

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from streams.client.transport import profile_url
from streams.errors import ConfigError
from streams.kafka_security import KafkaConnection

__all__ = ["ClientConfig"]

_V = "PROFILE_STREAM_"
#: The variable a field's value came from, for the error when it is malformed.
_VARIABLES = {
    "url": "PROFILE_STREAM_URL (or PROFILE_STREAM_WEB_HOST and _WEB_PORT)",
    "ca_file": "PROFILE_STREAM_CA_FILE",
    "timeout_s": "PROFILE_STREAM_TIMEOUT_S",
}


class _Invalid(ConfigError):
    """A field's value is malformed; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _first(value: str | None) -> str:
    """The first of a comma-separated list of tokens, or ``""``."""
    return next((t.strip() for t in (value or "").split(",") if t.strip()), "")


@dataclass(frozen=True)
class ClientConfig:
    """Where the workers and Kafka are, and how to talk to them.

    ``token`` is a read token (reads, ``wait_for``, refresh); ``admin_token`` is needed only
    for corrections, flushes, forgets and reverts. ``ca_file`` verifies an https worker with a
    private CA; ``verify_tls=False`` turns verification off (tests only). ``timeout_s`` bounds
    each HTTP request (a read-your-writes wait adds its own wait); a read's 503 (a rebalance
    in progress) is tried up to ``attempts`` times.
    """

    url: str = "http://127.0.0.1:6066"
    token: str = ""
    admin_token: str = ""
    kafka: KafkaConnection = field(default_factory=KafkaConnection)
    input_topic: str = "chat-messages"
    events_topic: str = "profile-updated"
    ca_file: Path | None = None
    verify_tls: bool = True
    timeout_s: float = 10.0
    attempts: int = 10

    def __post_init__(self) -> None:
        try:
            profile_url(self.url, "-")
        except ConfigError as exc:
            raise _Invalid("url", str(exc)) from None
        if isinstance(self.ca_file, str):
            object.__setattr__(self, "ca_file", Path(self.ca_file) if self.ca_file else None)
        if self.ca_file is not None and not self.ca_file.is_file():
            raise _Invalid("ca_file", f"CA file {str(self.ca_file)!r} does not exist")
        if not self.timeout_s > 0:
            raise _Invalid("timeout_s", f"timeout_s must be above 0, not {self.timeout_s}")
        if self.attempts < 1:
            raise _Invalid("attempts", f"attempts must be at least 1, not {self.attempts}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **given: Any) -> "ClientConfig":
        """The configuration the ``PROFILE_STREAM_*`` variables describe (see the module),
        with ``given`` (the fields' names) over them.

        Raises:
            ConfigError: a variable's value is malformed; the message names it.
        """
        env = os.environ if environ is None else environ

        def get(name: str) -> str:
            return env.get(_V + name, "").strip()

        host, port = get("WEB_HOST") or "127.0.0.1", get("WEB_PORT") or "6066"
        found: dict[str, Any] = {
            "url": get("URL") or f"http://{host}:{port}",
            "token": get("TOKEN") or _first(get("READ_TOKENS")) or _first(get("ADMIN_TOKENS")),
            "admin_token": get("ADMIN_TOKEN") or _first(get("ADMIN_TOKENS")),
            "input_topic": get("INPUT_TOPIC") or "chat-messages",
            "events_topic": get("OUTPUT_TOPIC") or "profile-updated",
            "ca_file": get("CA_FILE") or None,
        }
        if get("TIMEOUT_S"):
            found["timeout_s"] = _seconds(get("TIMEOUT_S"))
        if "kafka" not in given:
            found["kafka"] = KafkaConnection.from_env(env)
        try:
            return cls(**(found | given))
        except _Invalid as exc:
            if exc.field in given or exc.field not in _VARIABLES:
                raise
            raise ConfigError(f"{_VARIABLES[exc.field]}: {exc}") from None

    def with_(self, **changes: Any) -> "ClientConfig":
        """A copy with ``changes``, checked again."""
        return replace(self, **changes)

    def ssl_context(self) -> ssl.SSLContext | bool | None:
        """What the HTTP session verifies a worker's certificate with."""
        if not self.verify_tls:
            return False
        if self.ca_file is not None:
            return ssl.create_default_context(cafile=str(self.ca_file))
        return None


def _seconds(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"{_V}TIMEOUT_S={text!r} is not a number of seconds") from None
