"""The commands that read, correct, flush, roll back and forget profiles over a worker's HTTP
API: ``get`` (now or as it was), ``correct``, ``flush``, ``revert``, ``forget``, and the field
revisions behind ``history --field``.

Each names the worker it tried and what to check when none answers: nothing listening fails
at once, a host that does not accept within the client's connect timeout (1.5 s) too.
"""

from collections.abc import Awaitable, Sequence
from datetime import datetime
from typing import Any, Literal, TypeVar

import click
import orjson

from streams.cli.support import admin_token, echo_json, load, read_token, run, worker_url
from streams.core.past import parse_time
from streams.errors import Refused, WorkerUnreachable
from streams.settings import Settings

__all__ = ["assignment", "correct", "field_history", "flush", "forget", "get", "revert"]

_T = TypeVar("_T")
_Need = Literal["read", "admin"]

_REFUSALS: dict[tuple[int, _Need], str] = {
    (401, "read"): "does not know this token (401); pass one of its PROFILE_STREAM_READ_TOKENS "
    "with --token or PROFILE_STREAM_TOKEN",
    (401, "admin"): "does not know this token (401); pass one of its "
    "PROFILE_STREAM_ADMIN_TOKENS with --token or PROFILE_STREAM_ADMIN_TOKEN",
    (403, "admin"): "accepts this token for reads only (403); this needs one of its "
    "PROFILE_STREAM_ADMIN_TOKENS",
}


def _where(url: str | None) -> str:
    """What to check when no worker answers at the URL a command used."""
    if url:
        return "check --url"
    return (
        "start one with `profile-stream worker`, set PROFILE_STREAM_WEB_HOST and "
        "PROFILE_STREAM_WEB_PORT to a worker's, or pass its URL with --url"
    )


async def _ask(call: Awaitable[_T], base: str, url: str | None, need: _Need) -> _T:
    """``call``'s result; its errors with what to do about them, in one line."""
    try:
        return await call
    except Refused as exc:
        hint = _REFUSALS.get((exc.status, need))
        if hint is None:
            raise
        raise Refused(f"the worker at {base} {hint}", status=exc.status) from None
    except WorkerUnreachable as exc:
        raise WorkerUnreachable(f"{exc} ({_where(url)})") from None


def _as_of(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_time(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc).replace("as_of", "--as-of")) from None


_URL = click.option("--url", default=None, help="Worker URL (default: this host's worker).")
_ADMIN_TOKEN = click.option(
    "--token",
    envvar="PROFILE_STREAM_ADMIN_TOKEN",
    help="Admin token (PROFILE_STREAM_ADMIN_TOKEN; default: the first of "
    "PROFILE_STREAM_ADMIN_TOKENS).",
)


def _accepted(command_id: str, user_id: str, as_json: bool) -> None:
    """What an admin command prints once the worker has put it on the topic."""
    if as_json:
        echo_json({"command_id": command_id, "status": "accepted", "user_id": user_id})
    else:
        click.echo(command_id)


def _print_profile(body: dict[str, Any]) -> None:
    now = f" of {body['current_version']}" if "current_version" in body else ""  # an as-of read
    click.echo(f"{body['user_id']} (version {body['version']}{now}, {body['schema']})")
    for name, value in body["profile"].items():
        if value not in (None, []):
            click.echo(
                f"  {name}: {', '.join(map(str, value)) if isinstance(value, list) else value}"
            )
    if buffered := body.get("freshness", {}).get("buffered_messages"):
        # The profile is behind the user's messages until the idle trigger or a refresh.
        click.echo(f"  buffered: {buffered} messages not extracted yet (POST .../refresh: now)")
    if body.get("locked"):
        now = " now" if "current_version" in body else ""  # locks are not versioned
        click.echo(f"  locked{now}: {', '.join(body['locked'])}")
    if "usage" in body:
        usage = body["usage"]
        for label, spent in (
            ("model usage", usage["total"]),
            (f"on {usage['day']}", usage["today"]),
        ):
            click.echo(
                f"  {label}: {spent['calls']} calls, {spent['prompt_tokens']} prompt tokens, "
                f"{spent['completion_tokens']} completion tokens"
            )


@click.command()
@click.argument("user_id")
@click.option(
    "--kind",
    default="user",
    show_default=True,
    help="Profile kind (PROFILE_STREAM_KINDS_FILE); USER_ID is then its subject.",
)
@click.option("--prompt", is_flag=True, help="The <User Profile> block for a system prompt.")
@click.option("--usage", is_flag=True, help="Also the model calls and tokens spent on the profile.")
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
@click.option("--json", "as_json", is_flag=True, help="Print the worker's JSON answer.")
@_URL
@click.option("--token", envvar="PROFILE_STREAM_TOKEN", help="Read token (PROFILE_STREAM_TOKEN).")
def get(
    user_id: str,
    kind: str,
    prompt: bool,
    usage: bool,
    version: int | None,
    as_of: datetime | None,
    as_json: bool,
    url: str | None,
    token: str | None,
) -> None:
    """Print a profile (a user's, or with --kind a team's...), read over HTTP from a worker;
    with --version or --as-of, as it was then."""
    from streams.client import get_profile, get_prompt

    if prompt and kind != "user":
        raise click.UsageError("--prompt renders a user's profile; leave out --kind")
    if version is not None and as_of is not None:
        raise click.UsageError("give --version or --as-of, not both")
    if (prompt or usage) and (version is not None or as_of is not None):
        raise click.UsageError("--prompt and --usage are of the profile now, not as it was")
    settings = load()
    base, secret = worker_url(settings, url), read_token(settings, token)
    if prompt:
        text = run(_ask(get_prompt(base, user_id, token=secret), base, url, "read"))
        if as_json:
            echo_json({"user_id": user_id, "prompt": text})
        else:
            click.echo(text)
        return
    call = get_profile(
        base, user_id, token=secret, kind=kind, usage=usage, version=version, as_of=as_of
    )
    body = run(_ask(call, base, url, "read"))
    if as_json:
        echo_json(body)
    else:
        _print_profile(body)


def assignment(text: str) -> tuple[str, str]:
    """``FIELD=VALUE`` as ``(field, value)``; the value is text (the field's type converts it).

    Raises:
        click.BadParameter: no ``=``, or nothing before it.
    """
    field, equals, value = text.partition("=")
    if not equals or not field.strip():
        raise click.BadParameter(f"{text!r} is not FIELD=VALUE")
    return field.strip(), value


def _operations(
    sets: tuple[str, ...], unsets: tuple[str, ...], adds: tuple[str, ...], removes: tuple[str, ...]
) -> list[dict[str, Any]]:
    ops: list[dict[str, Any]] = []
    # A field set more than once is set to all its values (a list field's whole list): one
    # "set", since each "set" replaces what the list held.
    values: dict[str, list[str]] = {}
    for field, value in map(assignment, sets):
        values.setdefault(field, []).append(value)
    for field, given in values.items():
        ops.append({"field": field, "op": "set", "value": given[0] if len(given) == 1 else given})
    for op, items in (("add", adds), ("remove", removes)):
        for field, value in map(assignment, items):
            ops.append({"field": field, "op": op, "value": value})
    ops.extend({"field": field, "op": "unset"} for field in unsets)
    return ops


@click.command()
@click.argument("user_id")
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="FIELD=VALUE",
    help="Set a field; a list field to exactly the values given (repeat --set for each).",
)
@click.option("--unset", "unsets", multiple=True, metavar="FIELD", help="Clear a field.")
@click.option("--add", "adds", multiple=True, metavar="FIELD=ITEM", help="Add one item to a list.")
@click.option(
    "--remove", "removes", multiple=True, metavar="FIELD=ITEM", help="Take one item from a list."
)
@click.option("--lock", multiple=True, metavar="FIELD", help="Extraction never changes it.")
@click.option("--unlock", multiple=True, metavar="FIELD", help="Release a locked field.")
@click.option("--json", "as_json", is_flag=True, help="Print the worker's JSON answer.")
@_URL
@_ADMIN_TOKEN
def correct(
    user_id: str,
    sets: tuple[str, ...],
    unsets: tuple[str, ...],
    adds: tuple[str, ...],
    removes: tuple[str, ...],
    lock: tuple[str, ...],
    unlock: tuple[str, ...],
    as_json: bool,
    url: str | None,
    token: str | None,
) -> None:
    """Correct a user's profile as an operator; print the command id.

    Every option repeats. VALUE is text, converted by the field's type (--set seats=12).
    --set on a list field replaces the list (--set languages=English --set languages=Basque);
    --add and --remove change one item. The
    worker checks the correction against the profile schema before it answers (a bad field or
    value is refused, with the reason), then applies it in order with the user's messages; a
    profile-updated event follows. Locked fields are never changed by extraction.
    """
    from streams.client import correct_profile

    if not (sets or unsets or adds or removes or lock or unlock):
        raise click.UsageError("nothing to correct: give --set, --unset, --add, --remove, --lock")
    operations = _operations(sets, unsets, adds, removes)
    settings = load()
    base = worker_url(settings, url)
    call = correct_profile(
        base,
        user_id,
        token=admin_token(settings, token),
        operations=operations,
        lock=lock,
        unlock=unlock,
    )
    _accepted(run(_ask(call, base, url, "admin")), user_id, as_json)


@click.command()
@click.argument("user_id")
@click.option("--json", "as_json", is_flag=True, help="Print the worker's JSON answer.")
@_URL
@_ADMIN_TOKEN
def forget(user_id: str, as_json: bool, url: str | None, token: str | None) -> None:
    """Forget a user: the worker deletes the profile and emits a `deleted` event.

    Prints the id of the command. The worker answers once the command is in Kafka; it is
    applied in order with the user's messages, so the profile goes right after.
    """
    from streams.client import forget_profile

    settings = load()
    base = worker_url(settings, url)
    call = forget_profile(base, user_id, token=admin_token(settings, token))
    _accepted(run(_ask(call, base, url, "admin")), user_id, as_json)


@click.command()
@click.argument("user_id")
@click.option("--json", "as_json", is_flag=True, help="Print the worker's JSON answer.")
@_URL
@_ADMIN_TOKEN
def flush(user_id: str, as_json: bool, url: str | None, token: str | None) -> None:
    """Extract a user's buffered messages now, instead of when the conversation goes idle.

    Prints the id of the command. The worker answers once the command is in Kafka; it is
    applied in order with the user's messages, and the new version's event follows.
    """
    from streams.client import flush_profile

    settings = load()
    base = worker_url(settings, url)
    call = flush_profile(base, user_id, token=admin_token(settings, token))
    _accepted(run(_ask(call, base, url, "admin")), user_id, as_json)


def _revision_line(revision: dict[str, Any]) -> str:
    """``v<version> <time> <op> <value>  from <message id> (<topic>/<partition>@<offset>)``."""
    evidence = revision["evidence"]
    place = ""
    if evidence.get("offset") is not None:
        place = f" ({evidence['topic']}/{evidence['partition']}@{evidence['offset']})"
    restored = f" to v{revision['restored_version']}" if revision.get("restored_version") else ""
    quote = f' "{evidence["quote"]}"' if evidence.get("quote") else ""
    value = orjson.dumps(revision["value"]).decode()
    return (
        f"v{revision['version']} {revision['at']} {revision['op']}{restored} {value}"
        f"  from {evidence['message_id'] or '-'}{place}{quote}"
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

    base = worker_url(settings, url)
    call = get_history(base, user_id, token=read_token(settings, token), field=field)
    body = run(_ask(call, base, url, "read"))
    if as_json:
        echo_json(body)
        return
    kept = body["fields"][field]
    if body["history_from"] is None:
        click.echo(f"{user_id} keeps no revisions (version {body['version']})", err=True)
    elif kept["truncated"]:
        click.echo(f"older revisions of {field} were dropped by the bound", err=True)
    for revision in kept["revisions"]:
        click.echo(_revision_line(revision))


async def _revert(
    base: str, user_id: str, token: str, version: int, fields: Sequence[str], lock: bool
) -> str:
    """Check the worker still holds the fields at ``version``, then send the revert."""
    from streams.client import get_profile, revert_profile

    await get_profile(base, user_id, token=token, version=version, fields=fields)
    locked = fields if lock else ()
    return await revert_profile(
        base, user_id, token=token, version=version, fields=fields, lock=locked
    )


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
@click.option("--json", "as_json", is_flag=True, help="Print the worker's JSON answer.")
@_URL
@_ADMIN_TOKEN
def revert(
    user_id: str,
    version: int,
    fields: tuple[str, ...],
    lock: bool,
    as_json: bool,
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
    call = _revert(base, user_id, admin_token(settings, token), version, fields, lock)
    _accepted(run(_ask(call, base, url, "admin")), user_id, as_json)
