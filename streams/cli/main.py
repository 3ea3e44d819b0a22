"""The ``profile-stream`` click group and the registration of its commands; each command
lives in the module of its job: ``worker``, ``messages`` (send, publish, import-locomo),
``profiles`` (get, correct, flush, forget, revert), ``events`` (history, show-source, tail),
``dlq`` and ``migrate``."""

import click

from streams.cli.dlq import dlq
from streams.cli.events import history, show_source, tail
from streams.cli.messages import import_locomo, publish, send
from streams.cli.migrate import migrate
from streams.cli.profiles import correct, flush, forget, get, revert
from streams.cli.worker import worker
from streams.version import installed_version

__all__ = ["main"]


@click.group()
@click.version_option(installed_version(), prog_name="profile-stream")
def main() -> None:
    """profile-stream: user profiles kept up to date from chat messages on Kafka.

    Settings come from PROFILE_STREAM_* variables (see the README). --json on a command
    prints its data as JSON.

    \b
    Exit status:
      0  ok
      1  an error: a refusal, a bad setting...
      2  a usage error (a bad option or argument)
      3  Kafka unreachable
      4  not found: no such profile, or no such version of it
      5  no worker answered at the URL, or none in time
    """


for _command in (
    worker,
    send,
    publish,
    get,
    correct,
    flush,
    forget,
    revert,
    import_locomo,
    history,
    show_source,
    tail,
    dlq,
    migrate,
):
    main.add_command(_command)
