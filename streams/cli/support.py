"""What every ``profile-stream`` command shares: settings, running a coroutine with errors
turned into one clear line, tokens and worker URLs, and the one-line form of an event.
"""

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

import click
import orjson

from schemas import ProfileEvent
from streams.errors import BrokerUnavailable, ConfigError, ProfileStreamError
from streams.settings import Settings, load_settings

__all__ = [
    "BROKER_EXIT",
    "admin_token",
    "echo_json",
    "event_line",
    "load",
    "read_token",
    "run",
    "worker_url",
]

_T = TypeVar("_T")

#: Exit status of a command that could not reach Kafka (1 is a refusal, 2 a usage error).
BROKER_EXIT = 3


class _BrokerDown(click.ClickException):
    exit_code = BROKER_EXIT


def load(**overrides: Any) -> Settings:
    """The settings from the environment, with the command's options over them."""
    try:
        return load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def run(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run a client coroutine; a profile-stream error becomes its message, no traceback.

    aiokafka's own connection log lines are silenced: the error says it once, with what to do.
    """
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    try:
        return asyncio.run(coro)
    except BrokerUnavailable as exc:
        raise _BrokerDown(str(exc)) from None
    except ProfileStreamError as exc:
        raise click.ClickException(str(exc)) from None


def worker_url(settings: Settings, url: str | None) -> str:
    """``--url``, else this host's worker (PROFILE_STREAM_WEB_HOST and _WEB_PORT)."""
    return url or f"http://{settings.web_host}:{settings.web_port}"


def read_token(settings: Settings, token: str | None) -> str:
    """``--token``, else the first read token (or admin token) of the settings, else none."""
    if token:
        return token
    tokens = settings.read_tokens or settings.admin_tokens
    return tokens[0].get_secret_value() if tokens else ""


def admin_token(settings: Settings, token: str | None) -> str:
    """``--token`` (or PROFILE_STREAM_ADMIN_TOKEN), else the first of the admin tokens."""
    if token:
        return token
    if settings.admin_tokens:
        return settings.admin_tokens[0].get_secret_value()
    raise click.UsageError(
        "no admin token: pass --token, or set PROFILE_STREAM_ADMIN_TOKEN to one of the "
        "workers' PROFILE_STREAM_ADMIN_TOKENS"
    )


def event_line(event: ProfileEvent, *, with_user: bool = True) -> str:
    """``[user] v<version> <type> <changed fields>  from <source message ids>``."""
    fields = ",".join(change.field for change in event.changes) or "-"
    sources = ",".join(event.source_message_ids) or "-"
    who = f"{event.user_id} " if with_user else ""
    return f"{who}v{event.version} {event.type:<7} {fields}  from {sources}"


def echo_json(data: Any) -> None:
    """One JSON document on one line of stdout (``--json``): what scripts parse."""
    click.echo(orjson.dumps(data).decode())
