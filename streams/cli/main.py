"""The ``profile-stream`` command: the worker, and what users touch (send, publish, get,
forget, import-locomo here; history and tail in ``cli_events``; dlq in ``cli_dlq``)."""

import asyncio
import fcntl
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, BinaryIO

import click
import orjson

from schemas import ChatMessage
from streams.cli.dlq import dlq
from streams.cli.events import history, tail
from streams.cli.locomo import LocomoError, convert
from streams.cli.migrate import migrate
from streams.cli.support import BROKER_EXIT, admin_token, load, read_token, run, worker_url
from streams.core.codecs import decode_message, encode
from streams.errors import (
    ConfigError,
    InvalidEvent,
    ProfileNotFound,
    ProfileStreamError,
    ServiceError,
    TopicMissing,
)
from streams.settings import Settings

__all__ = ["check_line", "checked", "main"]


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
    """profile-stream: user profiles kept up to date from chat messages on Kafka.

    Settings come from PROFILE_STREAM_* variables (see the README). A command that cannot
    reach Kafka exits with status 3.
    """


main.add_command(history)
main.add_command(tail)
main.add_command(dlq)
main.add_command(migrate)


@main.command()
@click.option("--web-port", type=int, help="HTTP port (PROFILE_STREAM_WEB_PORT).")
@click.option("--data-dir", type=click.Path(path_type=Path), help="RocksDB folder, one per worker.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]))
def worker(web_port: int | None, data_dir: Path | None, log_level: str | None) -> None:
    """Start a worker: consume chat messages, keep profiles, serve the views."""
    from streams.app import create_worker

    settings = load(web_port=web_port, data_dir=data_dir, log_level=log_level)
    lock = _lock_data_dir(settings.data_dir)
    try:
        app = create_worker(settings)
        asyncio.run(_prepare_topics(settings))
    except ProfileStreamError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"profile-stream worker: broker {settings.kafka_bootstrap}, extractor "
        f"{settings.extractor_kind}, web http://{settings.web_host}:{settings.web_port}, "
        f"data {settings.data_dir}",
        err=True,
    )
    _service_worker(app, settings.log_level).execute_from_commandline()
    lock.close()


def _service_worker(app: Any, log_level: str) -> Any:
    """Faust's worker without its terminal spinner.

    At WARNING or above the spinner sets the root logger to DEBUG so it can spin on every
    record: each library's debug record is then built and formatted, which cost a busy worker
    about a tenth of its CPU (bench plumbing, py-spy)."""
    from faust.worker import Worker

    class ServiceWorker(Worker):
        def on_setup_root_logger(self, logger: Any, level: int) -> None:
            self.spinner = None

    return ServiceWorker(app, loglevel=log_level, quiet=True)


async def _prepare_topics(settings: Settings) -> None:
    """Refuse to start when existing topics disagree with PROFILE_STREAM_PARTITIONS (every
    message would look misplaced and be re-routed forever, and the table would not match);
    create the topics the agents subscribe to, so they exist before the consumer group forms."""
    from streams.client.kafka_io import ensure_topics, partitions_of
    from streams.core.kinds import load_kinds

    for topic in (settings.input_topic, f"{settings.app_id}-profiles-changelog"):
        try:
            count = len(await partitions_of(topic, bootstrap=settings.kafka_bootstrap))
        except TopicMissing:
            continue  # the worker creates it with the configured count
        if count != settings.partitions:
            raise ConfigError(
                f"topic {topic!r} has {count} partitions but PROFILE_STREAM_PARTITIONS is "
                f"{settings.partitions}; set PROFILE_STREAM_PARTITIONS={count} (the partition "
                "count of an existing deployment cannot change in place)"
            )
    kinds = load_kinds(settings.kinds_file, settings.profile_model)
    await ensure_topics(
        [kind.topic(settings.app_id, settings.input_topic) for kind in kinds],
        partitions=settings.partitions,
        replication=settings.replication_factor,
        bootstrap=settings.kafka_bootstrap,
    )


@main.command()
@click.option("--user", "user_id", required=True, help="Whose message this is.")
@click.option("--conversation", default="cli", show_default=True)
@click.option(
    "--role", type=click.Choice(["user", "assistant", "system"]), default="user", show_default=True
)
@click.argument("text")
def send(user_id: str, conversation: str, role: str, text: str) -> None:
    """Publish one chat message, keyed by user id; print its message id."""
    from streams.client import publish

    settings = load()
    message = ChatMessage(
        message_id=str(uuid.uuid4()),
        user_id=user_id,
        conversation_id=conversation,
        role=role,
        content=text,
        sent_at=datetime.now(UTC),
    )
    run(publish([message], bootstrap=settings.kafka_bootstrap, topic=settings.input_topic))
    click.echo(message.message_id)


def check_line(line: bytes, settings: Settings) -> ChatMessage:
    """A JSON line as a chat message, or :class:`InvalidEvent` with the code and reason the
    worker would dead-letter it for (including a ``sent_at`` too far ahead of now)."""
    message = decode_message(line, max_content_chars=settings.max_content_chars)
    ahead = message.sent_at.timestamp() - time.time()
    if ahead > settings.max_future_skew_s:
        raise InvalidEvent(
            "invalid_message",
            f"sent_at is {ahead:.0f}s in the future (limit {settings.max_future_skew_s:.0f}s, "
            "PROFILE_STREAM_MAX_FUTURE_SKEW_S); fix the producer's clock",
        )
    return message


async def _lines(source: BinaryIO) -> AsyncIterator[bytes]:
    """A file's lines; a pipe or terminal is read in a thread so sends go out meanwhile."""
    if source.seekable():
        for line in source:
            yield line
        return
    while line := await asyncio.to_thread(source.readline):
        yield line


async def checked(
    source: BinaryIO, settings: Settings, rejected: list[tuple[int, str]]
) -> AsyncIterator[ChatMessage]:
    """The good messages of a JSON-lines stream; each bad line goes to ``rejected`` as
    ``(line number, "code: reason")``. Blank lines are skipped."""
    number = 0
    async for line in _lines(source):
        number += 1
        if not line.strip():
            continue
        try:
            message = check_line(line, settings)
        except InvalidEvent as exc:
            rejected.append((number, f"{exc.code}: {exc.reason}"))
            continue
        yield message


class _Progress:
    """A running count on stderr, only when stderr is a terminal."""

    def __init__(self) -> None:
        self.shown = click.get_text_stream("stderr").isatty()

    def __call__(self, sent: int) -> None:
        if self.shown:
            click.echo(f"\rsent {sent}", nl=False, err=True)

    def done(self) -> None:
        if self.shown:
            click.echo("", err=True)


@main.command(
    epilog=f"Exit status: 0 every line sent, 1 some lines rejected (the others were "
    f"sent), 2 a usage error, {BROKER_EXIT} Kafka unreachable."
)
@click.argument("source", metavar="FILE|-", type=click.File("rb"))
def publish(source: BinaryIO) -> None:
    """Publish chat messages from a JSON-lines file (or - for stdin), keyed by user id.

    Each line is one chat message (see schemas.ChatMessage), checked as the worker checks it;
    a bad line is not sent and is reported with its number and the reason. A running count
    goes to stderr on a terminal; the summary goes to stdout.
    """
    from streams.client import publish as publish_messages

    settings = load()
    rejected: list[tuple[int, str]] = []
    progress = _Progress()
    try:
        sent = run(
            publish_messages(
                checked(source, settings, rejected),
                bootstrap=settings.kafka_bootstrap,
                topic=settings.input_topic,
                on_sent=progress,
            )
        )
    finally:
        progress.done()
    click.echo(f"sent {sent} messages to {settings.input_topic}")
    if rejected:
        click.echo(f"rejected {len(rejected)} lines:")
        for number, reason in rejected:
            click.echo(f"  line {number}: {reason}")
        click.get_current_context().exit(1)


async def _get(base: str, user_id: str, token: str, kind: str) -> dict[str, Any]:
    from streams.client import get_profile

    try:
        return await get_profile(base, user_id, token=token, kind=kind)
    except ProfileNotFound:
        what = "" if kind == "user" else f"{kind} "
        raise ProfileNotFound(f"no {what}profile for {user_id!r}") from None


@main.command()
@click.argument("user_id")
@click.option(
    "--kind",
    default="user",
    show_default=True,
    help="Profile kind (PROFILE_STREAM_KINDS_FILE); USER_ID is then its subject.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the raw JSON answer.")
@click.option("--url", default=None, help="Worker URL (default: this host's worker).")
@click.option("--token", envvar="PROFILE_STREAM_TOKEN", help="Read token (PROFILE_STREAM_TOKEN).")
def get(user_id: str, kind: str, as_json: bool, url: str | None, token: str | None) -> None:
    """Print a profile (a user's, or with --kind a team's...), read over HTTP from a worker."""
    settings = load()
    body = run(_get(worker_url(settings, url), user_id, read_token(settings, token), kind))
    if as_json:
        click.echo(orjson.dumps(body).decode())
        return
    click.echo(f"{body['user_id']} (version {body['version']}, {body['schema']})")
    for name, value in body["profile"].items():
        if value not in (None, []):
            click.echo(f"  {name}: {', '.join(value) if isinstance(value, list) else value}")


_REFUSALS = {
    401: "does not know this token (401); pass one of its PROFILE_STREAM_ADMIN_TOKENS "
    "with --token or PROFILE_STREAM_ADMIN_TOKEN",
    403: "accepts this token for reads only (403); forgetting needs one of its "
    "PROFILE_STREAM_ADMIN_TOKENS",
}


async def _forget(base: str, user_id: str, token: str) -> str:
    from streams.client import Refused, forget_profile

    try:
        return await forget_profile(base, user_id, token=token)
    except Refused as exc:
        if exc.status not in _REFUSALS:
            raise
        raise ServiceError(f"the worker at {base} {_REFUSALS[exc.status]}") from None
    except ServiceError as exc:
        raise ServiceError(f"{exc} (or pass its URL with --url)") from None


@main.command()
@click.argument("user_id")
@click.option("--url", default=None, help="Worker URL (default: this host's worker).")
@click.option(
    "--token",
    envvar="PROFILE_STREAM_ADMIN_TOKEN",
    help="Admin token (PROFILE_STREAM_ADMIN_TOKEN; default: the first of "
    "PROFILE_STREAM_ADMIN_TOKENS).",
)
def forget(user_id: str, url: str | None, token: str | None) -> None:
    """Forget a user: the worker deletes the profile and emits a `deleted` event.

    Prints the id of the command. The worker answers once the command is in Kafka; it is
    applied in order with the user's messages, so the profile goes right after.
    """
    settings = load()
    click.echo(run(_forget(worker_url(settings, url), user_id, admin_token(settings, token))))


@main.command("import-locomo")
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "-o", "--output", type=click.File("wb"), default="-", help="Where to write (default: stdout)."
)
def import_locomo(files: tuple[Path, ...], output: BinaryIO) -> None:
    """Convert LoCoMo conversation files to chat-message JSON lines, ready for `publish`.

    One user per speaker and file (locomo-<file stem>-<speaker>), one conversation per session,
    the session's date and time as UTC plus a few seconds per turn.
    """
    messages: list[ChatMessage] = []
    for path in files:
        try:
            data = orjson.loads(path.read_bytes())
            messages.extend(convert(data, path.stem))
        except orjson.JSONDecodeError as exc:
            raise click.ClickException(f"{path} is not JSON ({exc})") from None
        except LocomoError as exc:
            raise click.ClickException(f"{path}: {exc}") from None
    for message in messages:
        output.write(encode(message) + b"\n")
    output.flush()
    users = len({m.user_id for m in messages})
    click.echo(f"wrote {len(messages)} messages of {users} users from {len(files)} files", err=True)
