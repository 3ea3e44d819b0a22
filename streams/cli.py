"""The ``profile-stream`` command."""

import asyncio
import fcntl
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import click
import orjson

from schemas import ChatMessage

from .codecs import encode
from .errors import ConfigError, ProfileNotFound, ProfileStreamError
from .settings import Settings, load_settings

__all__ = ["main"]


def _settings(**overrides: Any) -> Settings:
    try:
        return load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _lock_data_dir(path: Path) -> IO[str]:
    path.mkdir(parents=True, exist_ok=True)
    handle = (path / ".lock").open("w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise click.ClickException(
            f"data dir {path} is in use by another worker; give each worker its own "
            "PROFILE_STREAM_DATA_DIR (or --data-dir)"
        ) from None
    return handle


@click.group()
def main() -> None:
    """profile-stream: user profiles kept up to date from chat messages on Kafka."""


@main.command()
@click.option("--web-port", type=int, help="HTTP port (PROFILE_STREAM_WEB_PORT).")
@click.option("--data-dir", type=click.Path(path_type=Path), help="RocksDB folder, one per worker.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]))
def worker(web_port: int | None, data_dir: Path | None, log_level: str | None) -> None:
    """Start a worker: consume chat messages, keep profiles, serve the views."""
    from faust.worker import Worker

    from .app import create_worker

    settings = _settings(web_port=web_port, data_dir=data_dir, log_level=log_level)
    lock = _lock_data_dir(settings.data_dir)
    try:
        built = create_worker(settings)
    except ProfileStreamError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"profile-stream worker: broker {settings.kafka_bootstrap}, extractor "
        f"{settings.extractor_kind}, web http://{settings.web_host}:{settings.web_port}, "
        f"data {settings.data_dir}",
        err=True,
    )
    Worker(built.app, loglevel=settings.log_level, quiet=True).execute_from_commandline()
    lock.close()


async def _produce(settings: Settings, records: list[tuple[bytes, bytes]], topic: str) -> None:
    from aiokafka import AIOKafkaProducer
    from aiokafka.errors import KafkaError

    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, acks="all", enable_idempotence=True
    )
    try:
        await producer.start()
        for key, value in records:
            await producer.send(topic, key=key, value=value)
        await producer.flush()
    except KafkaError as exc:
        raise click.ClickException(
            f"cannot reach Kafka at {settings.kafka_bootstrap} ({exc}); is it running? "
            "(`make up` starts a local one)"
        ) from None
    finally:
        await producer.stop()


@main.command()
@click.option("--user", "user_id", required=True, help="Whose message this is.")
@click.option("--conversation", default="cli", show_default=True)
@click.option(
    "--role", type=click.Choice(["user", "assistant", "system"]), default="user", show_default=True
)
@click.argument("text")
def send(user_id: str, conversation: str, role: str, text: str) -> None:
    """Publish one chat message, keyed by user id."""
    settings = _settings()
    message = ChatMessage(
        message_id=str(uuid.uuid4()),
        user_id=user_id,
        conversation_id=conversation,
        role=role,
        content=text,
        sent_at=datetime.now(UTC),
    )
    asyncio.run(_produce(settings, [(user_id.encode(), encode(message))], settings.input_topic))
    click.echo(message.message_id)


@main.command()
@click.argument("user_id")
@click.option("--json", "as_json", is_flag=True, help="Print the raw JSON answer.")
@click.option("--url", default=None, help="Worker URL (default: this host's worker).")
@click.option("--token", envvar="PROFILE_STREAM_TOKEN", help="Read token (PROFILE_STREAM_TOKEN).")
def get(user_id: str, as_json: bool, url: str | None, token: str | None) -> None:
    """Print a user's profile, read over HTTP from a worker."""
    from .client import get_profile

    settings = _settings()
    base = url or f"http://{settings.web_host}:{settings.web_port}"
    if token is None and settings.read_tokens:
        token = settings.read_tokens[0].get_secret_value()
    try:
        body = asyncio.run(get_profile(base, user_id, token=token or ""))
    except ProfileNotFound:
        raise click.ClickException(f"no profile for {user_id!r}") from None
    except ProfileStreamError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(orjson.dumps(body).decode())
        return
    click.echo(f"{body['user_id']} (version {body['version']}, {body['schema']})")
    for name, value in body["profile"].items():
        if value not in (None, []):
            click.echo(f"  {name}: {', '.join(value) if isinstance(value, list) else value}")
