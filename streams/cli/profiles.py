"""The commands that read, forget and roll back profiles over a worker's HTTP API: ``get``
(now or as it was), ``forget``, ``revert``, and the revisions behind ``history --field``."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import click
import orjson

from streams.cli.support import admin_token, load, read_token, run, worker_url
from streams.core.past import parse_time
from streams.errors import HistoryUnavailable, ProfileNotFound, ServiceError
from streams.settings import Settings

__all__ = ["field_history", "forget", "get", "revert"]


async def _get(
    base: str, user_id: str, token: str, kind: str, where: str, **past: Any
) -> dict[str, Any]:
    """The profile (``past``: ``version``, ``as_of``, ``fields`` for an as-of read)."""
    from streams.client import Refused, ServiceTimeout, get_profile

    try:
        return await get_profile(base, user_id, token=token, kind=kind, **past)
    except ProfileNotFound as exc:
        what = "" if kind == "user" else f"{kind} "
        detail = f": {exc}" if any(v is not None for v in past.values()) else ""
        raise ProfileNotFound(f"no {what}profile for {user_id!r}{detail}") from None
    except (Refused, ServiceTimeout, HistoryUnavailable):
        raise
    except ServiceError as exc:
        raise ServiceError(f"{exc} ({where})") from None


def _as_of(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_time(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc).replace("as_of", "--as-of")) from None


def _where(url: str | None) -> str:
    """What to check when no worker answers at the URL ``get`` used."""
    if url:
        return "check --url"
    return (
        "start one with `profile-stream worker`, set PROFILE_STREAM_WEB_HOST and "
        "PROFILE_STREAM_WEB_PORT to a worker's, or pass its URL with --url"
    )


@click.command()
@click.argument("user_id")
@click.option(
    "--kind",
    default="user",
    show_default=True,
    help="Profile kind (PROFILE_STREAM_KINDS_FILE); USER_ID is then its subject.",
)
@click.option(
    "--version",
    "version",
    type=click.IntRange(min=1),
    help="The profile as it was at this version (from the revisions the worker keeps).",
)
@click.option(
    "--as-of",
    "as_of",
    callback=_as_of,
    help="The profile as it was at this time: RFC 3339 with an offset (2026-11-25T10:00:00Z).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the raw JSON answer.")
@click.option("--url", default=None, help="Worker URL (default: this host's worker).")
@click.option("--token", envvar="PROFILE_STREAM_TOKEN", help="Read token (PROFILE_STREAM_TOKEN).")
def get(
    user_id: str,
    kind: str,
    version: int | None,
    as_of: datetime | None,
    as_json: bool,
    url: str | None,
    token: str | None,
) -> None:
    """Print a profile (a user's, or with --kind a team's...), read over HTTP from a worker;
    with --version or --as-of, as it was then."""
    if version is not None and as_of is not None:
        raise click.UsageError("give --version or --as-of, not both")
    settings = load()
    base, where = worker_url(settings, url), _where(url)
    past = {"version": version, "as_of": as_of}
    body = run(_get(base, user_id, read_token(settings, token), kind, where, **past))
    if as_json:
        click.echo(orjson.dumps(body).decode())
        return
    now = f" of {body['current_version']}" if "current_version" in body else ""
    click.echo(f"{body['user_id']} (version {body['version']}{now}, {body['schema']})")
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


@click.command()
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


def _revision_line(revision: dict[str, Any]) -> str:
    """``v<version> <time> <op> <value>  from <message id> (<topic>/<partition>@<offset>)``."""
    evidence = revision["evidence"]
    place = ""
    if evidence.get("offset") is not None:
        place = f" ({evidence['topic']}/{evidence['partition']}@{evidence['offset']})"
    restored = f" to v{revision['restored_version']}" if revision.get("restored_version") else ""
    quote = f' "{evidence["quote"]}"' if evidence.get("quote") else ""
    value = orjson.dumps(revision["value"]).decode()
    source = evidence["message_id"] or "-"
    return (
        f"v{revision['version']} {revision['at']} {revision['op']}{restored} {value}"
        f"  from {source}{place}{quote}"
    )


def field_history(
    settings: Settings,
    user_id: str,
    field: str,
    *,
    as_json: bool,
    url: str | None,
    token: str | None,
) -> None:
    """Print the revisions a worker keeps of ``user_id``'s ``field``, oldest first."""
    from streams.client import get_history

    base, where = worker_url(settings, url), _where(url)

    async def read() -> dict[str, Any]:
        try:
            return await get_history(base, user_id, token=read_token(settings, token), field=field)
        except ProfileNotFound:
            raise ProfileNotFound(f"no profile for {user_id!r}") from None
        except ServiceError as exc:
            if type(exc) is not ServiceError:
                raise
            raise ServiceError(f"{exc} ({where})") from None

    body = run(read())
    if as_json:
        click.echo(orjson.dumps(body).decode())
        return
    if body["history_from"] is None:
        click.echo(f"{user_id} keeps no revisions (version {body['version']})", err=True)
    elif body["truncated"]:
        click.echo(f"older revisions of {field} were dropped by the bound", err=True)
    for revision in body["revisions"]:
        click.echo(_revision_line(revision))


async def _revert(
    base: str, user_id: str, token: str, version: int, fields: Sequence[str], lock: bool
) -> str:
    """Check the worker can read the fields at ``version``, then send the revert."""
    from streams.client import Refused, revert_profile

    await _get(
        base, user_id, token, "user", "or pass its URL with --url", version=version, fields=fields
    )
    try:
        return await revert_profile(
            base,
            user_id,
            token=token,
            version=version,
            fields=fields,
            lock=fields if lock else (),
        )
    except Refused as exc:
        if exc.status not in _REFUSALS:
            raise
        raise ServiceError(f"the worker at {base} {_REFUSALS[exc.status]}") from None


@click.command()
@click.argument("user_id")
@click.option(
    "--version",
    "version",
    type=click.IntRange(min=1),
    required=True,
    help="The version whose values come back.",
)
@click.option(
    "--field",
    "fields",
    multiple=True,
    help="A field to revert (repeat for more); default: every field, the whole profile.",
)
@click.option("--lock", is_flag=True, help="Lock the reverted fields against extraction.")
@click.option("--url", default=None, help="Worker URL (default: this host's worker).")
@click.option(
    "--token",
    envvar="PROFILE_STREAM_ADMIN_TOKEN",
    help="Admin token (PROFILE_STREAM_ADMIN_TOKEN; default: the first of "
    "PROFILE_STREAM_ADMIN_TOKENS).",
)
def revert(
    user_id: str,
    version: int,
    fields: tuple[str, ...],
    lock: bool,
    url: str | None,
    token: str | None,
) -> None:
    """Roll a user's fields (or whole profile) back to their values at a version.

    Reads the profile as of that version first, so a version the worker's revisions no longer
    hold is refused here; then sends a signed `revert` command, applied in order with the
    user's messages (the next event lists each field with op `revert`). Prints the command id.
    """
    if lock and not fields:
        raise click.UsageError("--lock needs the fields to lock: name them with --field")
    settings = load()
    base = worker_url(settings, url)
    click.echo(run(_revert(base, user_id, admin_token(settings, token), version, fields, lock)))
