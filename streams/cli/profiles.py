"""The commands that read and forget profiles over a worker's HTTP API: ``get`` and
``forget``."""

from typing import Any

import click
import orjson

from streams.cli.support import admin_token, load, read_token, run, worker_url
from streams.errors import ProfileNotFound, ServiceError

__all__ = ["forget", "get"]


async def _get(base: str, user_id: str, token: str, kind: str, where: str) -> dict[str, Any]:
    from streams.client import Refused, ServiceTimeout, get_profile

    try:
        return await get_profile(base, user_id, token=token, kind=kind)
    except ProfileNotFound:
        what = "" if kind == "user" else f"{kind} "
        raise ProfileNotFound(f"no {what}profile for {user_id!r}") from None
    except (Refused, ServiceTimeout):
        raise
    except ServiceError as exc:
        raise ServiceError(f"{exc} ({where})") from None


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
@click.option("--json", "as_json", is_flag=True, help="Print the raw JSON answer.")
@click.option("--url", default=None, help="Worker URL (default: this host's worker).")
@click.option("--token", envvar="PROFILE_STREAM_TOKEN", help="Read token (PROFILE_STREAM_TOKEN).")
def get(user_id: str, kind: str, as_json: bool, url: str | None, token: str | None) -> None:
    """Print a profile (a user's, or with --kind a team's...), read over HTTP from a worker."""
    settings = load()
    base, where = worker_url(settings, url), _where(url)
    body = run(_get(base, user_id, read_token(settings, token), kind, where))
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
