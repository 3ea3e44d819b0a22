"""``profile-stream migrate``: bring every stored profile of a kind to the current schema."""

import uuid
from contextlib import aclosing
from datetime import UTC, datetime

import click
import orjson

from schemas import ProfileCommand
from streams.cli.progress import Progress
from streams.cli.support import echo_json, load, run
from streams.client.kafka_io import OutRecord, read_to_end
from streams.client.producer import produce
from streams.core.codecs import encode
from streams.core.kinds import Kind, load_kinds
from streams.core.signing import KEYS_SETTING, command_headers
from streams.errors import ConfigError, ProfileStreamError, TopicMissing
from streams.settings import Settings

__all__ = ["migrate"]


def _kind(settings: Settings, name: str) -> Kind:
    try:
        kinds = {k.name: k for k in load_kinds(settings.kinds_file, settings.profile_model)}
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if name not in kinds:
        raise click.ClickException(f"no kind {name!r}; this deployment has {sorted(kinds)}")
    return kinds[name]


async def _stored_schemas(settings: Settings, kind: Kind) -> dict[bytes, str]:
    """Each stored subject's schema id, from the kind's changelog (the last record wins)."""
    table = "profiles" if kind.is_user else f"profiles-{kind.name}"
    topic = f"{settings.app_id}-{table}-changelog"
    found: dict[bytes, str] = {}
    progress = Progress("migrate: reading", "records")
    try:
        records = read_to_end(topic, bootstrap=settings.kafka)
        async with aclosing(records):
            async for record in records:
                progress(progress.done + 1)
                if record.key is None:
                    continue
                stored = orjson.loads(record.value) if record.value is not None else None
                if stored is None or stored.get("forgotten_at") is not None:
                    found.pop(record.key, None)  # forgotten (a tombstone, or deleted before it)
                else:
                    found[record.key] = str(stored.get("schema_id", ""))
    except TopicMissing:
        return {}
    finally:
        progress.finish()
    return found


def _command(settings: Settings, key: bytes, now: datetime) -> OutRecord:
    """A signed ``migrate`` command for the subject ``key``."""
    value = encode(
        ProfileCommand(
            command_id=str(uuid.uuid4()), type="migrate", user_id=key.decode(), requested_at=now
        )
    )
    return OutRecord(
        key, value, command_headers(key, value, settings.command_signing, now.timestamp())
    )


async def _migrate(settings: Settings, kind: Kind, dry_run: bool) -> tuple[int, int]:
    stored = await _stored_schemas(settings, kind)
    stale = sorted(k for k, schema_id in stored.items() if schema_id != kind.schema.schema_id)
    if not dry_run and stale:
        now = datetime.now(UTC)
        commands = [_command(settings, key, now) for key in stale]
        topic = settings.input_topic if kind.is_user else f"{settings.app_id}-kind-{kind.name}"
        progress = Progress("migrate", "commands", len(commands))
        try:
            await produce(commands, bootstrap=settings.kafka, topic=topic, on_sent=progress)
        finally:
            progress.finish()
    return len(stored), len(stale)


@click.command()
@click.option(
    "--kind",
    "kind_name",
    default="user",
    show_default=True,
    help="Profile kind to migrate (PROFILE_STREAM_KINDS_FILE).",
)
@click.option("--dry-run", is_flag=True, help="Count, but publish no command.")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
def migrate(kind_name: str, dry_run: bool, as_json: bool) -> None:
    """Migrate every stored profile of a kind to its current schema, through the stream.

    One ``migrate`` command per stale profile goes to the stream, so each is applied in order
    with that subject's messages; each migrated profile then emits an event listing the
    ``migrate`` changes. Profiles already on the current schema are left alone.
    """
    settings = load()
    kind = _kind(settings, kind_name)
    if not dry_run and not settings.command_keys:
        raise click.ClickException(
            f"{KEYS_SETTING} is not set: migrate commands must be signed with the workers' "
            "command keys (or use --dry-run to count)"
        )
    try:
        total, stale = run(_migrate(settings, kind, dry_run))
    except ProfileStreamError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        schema_id = kind.schema.schema_id
        counts = {"stored": total, "current": total - stale, "stale": stale}
        echo_json({"kind": kind.name, "schema": schema_id, "dry_run": dry_run} | counts)
        return
    verb = "would migrate" if dry_run else "migration requested for"
    click.echo(
        f"{kind.name} profiles: {total} stored, {total - stale} on "
        f"{kind.schema.schema_id}, {verb} {stale}"
    )
