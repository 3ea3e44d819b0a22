"""``profile-stream history``, ``show-source`` and ``tail``: profile events read from the output
topic (``history --field`` reads a field's revisions from a worker instead)."""

from contextlib import aclosing

import click
import orjson
from pydantic import ValidationError

from schemas import FieldChange, ProfileEvent
from streams.cli.profiles import field_history
from streams.cli.support import event_line, load, run
from streams.client.kafka_io import partitions_of, read_at, read_to_end
from streams.core.codecs import decode_event, encode
from streams.core.partitioning import partition_for
from streams.kafka_security import KafkaConnection

__all__ = ["history", "show_source", "tail"]


async def _history(
    key: str, *, bootstrap: KafkaConnection, topic: str
) -> list[tuple[ProfileEvent, bytes]]:
    """The events keyed ``key`` in topic order, read from the one partition Kafka's default
    partitioner gives the key; a redelivered copy (same id and bytes) once."""
    partitions = await partitions_of(topic, bootstrap=bootstrap)
    mine = [partition_for(key.encode(), len(partitions))]
    found: list[tuple[ProfileEvent, bytes]] = []
    seen: set[tuple[str, bytes]] = set()
    records = read_to_end(topic, bootstrap=bootstrap, key=key.encode(), partitions=mine)
    async with aclosing(records):
        async for record in records:
            try:
                event = decode_event(record.value)
            except ValidationError:
                continue  # not an event of ours; history shows versions only
            if (event.event_id, record.value) not in seen:
                seen.add((event.event_id, record.value))
                found.append((event, record.value))
    return found


@click.command()
@click.argument("user_id")
@click.option(
    "--field",
    help="List this field's revisions (value, version, time, operation, source), read from "
    "the worker's table over HTTP, instead of the versions.",
)
@click.option("--json", "as_json", is_flag=True, help="Print each event (or the answer) as JSON.")
@click.option("--url", default=None, help="With --field: worker URL (default: this host's).")
@click.option("--token", envvar="PROFILE_STREAM_TOKEN", help="With --field: read token.")
def history(
    user_id: str, field: str | None, as_json: bool, url: str | None, token: str | None
) -> None:
    """List a user's profile versions, oldest first, from the profile-updated topic.

    One line per event: version, type, the fields it changed, the messages (or operator
    command) it came from. Reads only the user's partition, from the beginning up to its
    current end; a forgotten user's versions are there too, up to the `deleted` event, then
    any new ones. With --field, one line per revision the profile keeps of that field.
    """
    settings = load()
    if field is not None:
        field_history(settings, user_id, field, as_json=as_json, url=url, token=token)
        return
    events = run(_history(user_id, bootstrap=settings.kafka, topic=settings.output_topic))
    if not events:
        raise click.ClickException(f"no events for {user_id!r} in {settings.output_topic}")
    for event, raw in events:
        click.echo(raw.decode() if as_json else event_line(event, with_user=False))


def _event_parts(event_id: str) -> tuple[str, int]:
    """The key (user id, or ``kind/subject``) and version an event id names."""
    key, _, version = event_id.rpartition(":")
    if not key or not version.isdigit():
        raise click.BadParameter(f"{event_id!r} is not an event id such as alice:3")
    return key, int(version)


def _change(event: ProfileEvent, field: str) -> FieldChange:
    for change in event.changes:
        if change.field == field:
            return change
    changed = sorted({c.field for c in event.changes}) or "no field"
    raise click.ClickException(f"{event.event_id} did not change {field!r}; it changed {changed}")


async def _source(
    event_id: str, field: str, *, bootstrap: KafkaConnection, topic: str
) -> tuple[FieldChange, bytes | None]:
    """The change of ``field`` in the event ``event_id``, and the value of the input record its
    evidence names (None: the record is no longer in its topic)."""
    key, _ = _event_parts(event_id)
    event = next(
        (
            e
            for e, _ in await _history(key, bootstrap=bootstrap, topic=topic)
            if e.event_id == event_id
        ),
        None,
    )
    if event is None:
        raise click.ClickException(
            f"no event {event_id} in {topic} (never written, or removed by the topic's retention)"
        )
    change = _change(event, field)
    where = change.evidence
    if where.topic is None or where.partition is None or where.offset is None:
        raise click.ClickException(
            f"the change of {field!r} in {event_id} names no input record (a schema migration, "
            "or an event written before evidence carried the offset)"
        )
    record = await read_at(where.topic, where.partition, where.offset, bootstrap=bootstrap)
    return change, record.value if record is not None else None


@click.command("show-source")
@click.argument("event_id")
@click.argument("field")
@click.option("--json", "as_json", is_flag=True, help="Print only the input record's value.")
def show_source(event_id: str, field: str, as_json: bool) -> None:
    """Print the input record a change came from: EVENT_ID's change of FIELD names the
    message (or operator command) and its topic, partition and offset; the record is read
    from there, as it was published.
    """
    settings = load()
    change, value = run(
        _source(event_id, field, bootstrap=settings.kafka, topic=settings.output_topic)
    )
    where = change.evidence
    place = f"{where.topic} partition {where.partition} offset {where.offset}"
    if value is None:
        raise click.ClickException(
            f"{place} is no longer in the topic (its retention or compaction removed it)"
        )
    if as_json:
        click.echo(value.decode(errors="replace"))
        return
    click.echo(f"{event_id} {field} {change.op}: {orjson.dumps(change.new).decode()}")
    click.echo(
        f"from {where.message_id} at {place}" + (f': "{where.quote}"' if where.quote else "")
    )
    click.echo(value.decode(errors="replace"))


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
        kind=None if user_id is None else "user",  # all: each line names its subject
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
