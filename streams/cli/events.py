"""``profile-stream history`` and ``tail``: profile events read from the output topic."""

from contextlib import aclosing

import click
from pydantic import ValidationError

from schemas import ProfileEvent
from streams.cli.support import event_line, load, run
from streams.client.kafka_io import read_to_end
from streams.core.codecs import encode
from streams.kafka_security import KafkaConnection

__all__ = ["history", "tail"]


async def _history(
    user_id: str, *, bootstrap: KafkaConnection, topic: str
) -> list[tuple[ProfileEvent, bytes]]:
    """The user's events in topic order; a redelivered copy (same id and bytes) once."""
    found: list[tuple[ProfileEvent, bytes]] = []
    seen: set[tuple[str, bytes]] = set()
    records = read_to_end(topic, bootstrap=bootstrap, key=user_id.encode())
    async with aclosing(records):
        async for record in records:
            try:
                event = ProfileEvent.model_validate_json(record.value)
            except ValidationError:
                continue  # not an event of ours; history shows versions only
            if (event.event_id, record.value) not in seen:
                seen.add((event.event_id, record.value))
                found.append((event, record.value))
    return found


@click.command()
@click.argument("user_id")
@click.option("--json", "as_json", is_flag=True, help="Print each event as its raw JSON.")
def history(user_id: str, as_json: bool) -> None:
    """List a user's profile versions, oldest first, from the profile-updated topic.

    One line per event: version, type, the fields it changed, the messages (or operator
    command) it came from. Reads the topic from the beginning up to its current end; a
    forgotten user's versions are there too, up to the `deleted` event, then any new ones.
    """
    settings = load()
    events = run(_history(user_id, bootstrap=settings.kafka, topic=settings.output_topic))
    if not events:
        raise click.ClickException(f"no events for {user_id!r} in {settings.output_topic}")
    for event, raw in events:
        click.echo(raw.decode() if as_json else event_line(event, with_user=False))


async def _tail(
    *,
    bootstrap: KafkaConnection,
    topic: str,
    user_id: str | None,
    group_id: str | None,
    from_beginning: bool,
    limit: int | None,
    timeout_s: float | None,
    as_json: bool,
) -> int:
    from streams.client import ProfileEvents

    shown = 0
    if limit == 0:
        return shown
    async with ProfileEvents(
        bootstrap=bootstrap,
        topic=topic,
        group_id=group_id,
        user_id=user_id,
        from_beginning=from_beginning,
        idle_timeout_s=timeout_s,
    ) as events:
        async for event in events:
            click.echo(encode(event).decode() if as_json else event_line(event))
            shown += 1
            if limit is not None and shown >= limit:
                break
    return shown


@click.command()
@click.option("--user", "user_id", help="Only this user's events.")
@click.option("--from-beginning", is_flag=True, help="Start at the oldest event, not new ones.")
@click.option("--max", "limit", type=click.IntRange(min=0), help="Stop after this many events.")
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(min=0, min_open=True),
    help="Stop after this many seconds without an event.",
)
@click.option(
    "--group",
    "group_id",
    help="Consumer group: resume where the last tail of this group stopped.",
)
@click.option("--json", "as_json", is_flag=True, help="Print each event as JSON.")
def tail(
    user_id: str | None,
    from_beginning: bool,
    limit: int | None,
    timeout_s: float | None,
    group_id: str | None,
    as_json: bool,
) -> None:
    """Follow profile events as they happen, one line each (or JSON), until Ctrl-C.

    A redelivered event (same id and bytes) is shown once. Exits 0 when --max or --timeout
    ends it, with the count on stderr.
    """
    settings = load()
    shown = run(
        _tail(
            bootstrap=settings.kafka,
            topic=settings.output_topic,
            user_id=user_id,
            group_id=group_id,
            from_beginning=from_beginning,
            limit=limit,
            timeout_s=timeout_s,
            as_json=as_json,
        )
    )
    click.echo(f"{shown} events", err=True)
