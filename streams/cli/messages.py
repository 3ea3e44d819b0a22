"""The commands that write chat messages: ``send`` (one message), ``publish`` (a JSON-lines
file, checked as the worker checks it) and ``import-locomo`` (LoCoMo files to JSON lines)."""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import click
import orjson

from schemas import ChatMessage
from streams.cli.locomo import LocomoError, convert
from streams.cli.progress import Progress
from streams.cli.support import BROKER_EXIT, echo_json, load, run
from streams.core.codecs import decode_message, encode
from streams.errors import InvalidEvent
from streams.settings import Settings

__all__ = ["check_line", "checked", "import_locomo", "publish", "send"]


@click.command()
@click.option("--user", "user_id", required=True, help="Whose message this is.")
@click.option("--conversation", default="cli", show_default=True)
@click.option(
    "--role", type=click.Choice(["user", "assistant", "system"]), default="user", show_default=True
)
@click.option("--json", "as_json", is_flag=True, help="Print the message sent, as JSON.")
@click.argument("text")
def send(user_id: str, conversation: str, role: str, as_json: bool, text: str) -> None:
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
    run(publish([message], bootstrap=settings.kafka, topic=settings.input_topic))
    if as_json:
        echo_json({"topic": settings.input_topic, "message": message.model_dump(mode="json")})
    else:
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
    source: BinaryIO,
    settings: Settings,
    rejected: list[tuple[int, str]],
    on_line: Callable[[int], None] | None = None,
) -> AsyncIterator[ChatMessage]:
    """The good messages of a JSON-lines stream; each bad line goes to ``rejected`` as
    ``(line number, "code: reason")``. Blank lines are skipped. ``on_line`` is told how many
    lines were read so far."""
    number = 0
    async for line in _lines(source):
        number += 1
        if on_line is not None:
            on_line(number)
        if not line.strip():
            continue
        try:
            message = check_line(line, settings)
        except InvalidEvent as exc:
            rejected.append((number, f"{exc.code}: {exc.reason}"))
            continue
        yield message


def _count_lines(source: BinaryIO) -> int | None:
    """How many lines a file holds (a pass over its bytes), None for a pipe or a terminal."""
    if not source.seekable():
        return None
    start = source.tell()
    count, last = 0, b"\n"
    while chunk := source.read(1 << 20):
        count, last = count + chunk.count(b"\n"), chunk[-1:]
    source.seek(start)
    return count + (last != b"\n")  # a last line without its newline


def _publish_summary(sent: int, topic: str, rejected: list[tuple[int, str]], as_json: bool) -> None:
    if as_json:
        lines = []
        for number, reason in rejected:
            code, _, why = reason.partition(": ")
            lines.append({"line": number, "code": code, "reason": why})
        echo_json({"sent": sent, "topic": topic, "rejected": lines})
        return
    click.echo(f"sent {sent} messages to {topic}")
    if rejected:
        click.echo(f"rejected {len(rejected)} lines:")
        for number, reason in rejected:
            click.echo(f"  line {number}: {reason}")


@click.command(
    epilog=f"Exit status: 0 every line sent, 1 some lines rejected (the others were "
    f"sent), 2 a usage error, {BROKER_EXIT} Kafka unreachable."
)
@click.argument("source", metavar="FILE|-", type=click.File("rb"))
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def publish(source: BinaryIO, as_json: bool) -> None:
    """Publish chat messages from a JSON-lines file (or - for stdin), keyed by user id.

    Each line is one chat message (see schemas.ChatMessage), checked as the worker checks it;
    a bad line is not sent and is reported with its number and the reason. Progress (lines,
    rate, time left) goes to stderr; the summary goes to stdout.
    """
    from streams.client import publish as publish_messages

    settings = load()
    rejected: list[tuple[int, str]] = []
    progress = Progress("publish", "lines", _count_lines(source))
    try:
        sent = run(
            publish_messages(
                checked(source, settings, rejected, on_line=progress),
                bootstrap=settings.kafka,
                topic=settings.input_topic,
            )
        )
    finally:
        progress.finish()
    _publish_summary(sent, settings.input_topic, rejected, as_json)
    if rejected:
        click.get_current_context().exit(1)


@click.command("import-locomo")
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "-o", "--output", type=click.File("wb"), default="-", help="Where to write (default: stdout)."
)
def import_locomo(files: tuple[Path, ...], output: BinaryIO) -> None:
    """Convert LoCoMo conversation files to chat-message JSON lines, ready for `publish`.

    One user per speaker and file (locomo-<file stem>-<speaker>), one conversation per session,
    the session's date and time as UTC plus a few seconds per turn. The output is JSON lines;
    progress and the summary go to stderr.
    """
    written, users = 0, set()
    progress = Progress("import-locomo", "files", len(files))
    for done, path in enumerate(files, 1):
        try:
            messages = list(convert(orjson.loads(path.read_bytes()), path.stem))
        except orjson.JSONDecodeError as exc:
            raise click.ClickException(f"{path} is not JSON ({exc})") from None
        except LocomoError as exc:
            raise click.ClickException(f"{path}: {exc}") from None
        output.writelines(encode(message) + b"\n" for message in messages)
        written += len(messages)
        users |= {m.user_id for m in messages}
        progress(done)
    output.flush()
    progress.finish()
    click.echo(f"wrote {written} messages of {len(users)} users from {len(files)} files", err=True)
