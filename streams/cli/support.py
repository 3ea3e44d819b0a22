"""What every ``profile-stream`` command shares: settings, running a coroutine with errors
turned into one clear line, tokens and worker URLs, and the one-line form of an event.
"""

import asyncio
import logging
from collections.abc import Coroutine
from enum import IntEnum
from typing import Any, TypeVar

import click
import orjson

from schemas import ProfileEvent
from streams.errors import (
    BrokerUnavailable,
    ConfigError,
    ProfileNotFound,
    ProfileNotFresh,
    ProfileStreamError,
    ServiceTimeout,
    WorkerUnreachable,
)
from streams.settings import Settings, load_settings

__all__ = [
    "BROKER_EXIT",
    "Exit",
    "admin_token",
    "echo_json",
    "event_line",
    "exit_for",
    "load",
    "read_token",
    "run",
    "worker_url",
]

_T = TypeVar("_T")


class Exit(IntEnum):
    """The exit statuses of every command (``profile-stream --help`` lists them)."""

    OK = 0
    ERROR = 1  # a refusal, a bad setting, anything else
    USAGE = 2  # click's: a bad option or argument, before anything is sent
    KAFKA_UNREACHABLE = 3
    NOT_FOUND = 4  # no such profile (or no such version of it)
    WORKER_UNREACHABLE = 5  # no worker answered at the URL, or none in time


#: Kept for the commands that raise it by name.
BROKER_EXIT = Exit.KAFKA_UNREACHABLE


def _code(exc: ProfileStreamError) -> Exit:
    if isinstance(exc, BrokerUnavailable):
        return Exit.KAFKA_UNREACHABLE
    if isinstance(exc, ProfileNotFound):
        return Exit.NOT_FOUND
    if isinstance(exc, WorkerUnreachable | ServiceTimeout) and not isinstance(
        exc,
        ProfileNotFresh,  # a worker answered: the profile is not there yet
    ):
        return Exit.WORKER_UNREACHABLE
    return Exit.ERROR


def exit_for(exc: ProfileStreamError) -> click.ClickException:
    """The click error (its message, its exit status) a profile-stream error ends a command
    with."""
    code = _code(exc)
    # The client's message serves apps; a command runs in a checkout, where this helps.
    local = " `make up` starts a local one." if code is Exit.KAFKA_UNREACHABLE else ""
    failure = click.ClickException(f"{exc}{local}")
    failure.exit_code = int(code)
    return failure


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
    except ProfileStreamError as exc:
        raise exit_for(exc) from None


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
