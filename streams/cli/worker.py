"""``profile-stream worker``: lock the data dir, check and create the topics, run Faust's
worker without its terminal spinner."""

import asyncio
import fcntl
import functools
import gc
import logging
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import click

from streams.cli.support import exit_for, load
from streams.errors import ConfigError, ProfileStreamError, TopicMissing
from streams.settings import Settings

__all__ = ["worker"]

#: The cyclic garbage collector's youngest-generation threshold in a worker (Python's: 700
#: container allocations). At 700 a young collection ran every 5-10 events, the events the
#: catch-up holds survived them into the older generations, and each full collection walked
#: every start-up object again: about a fifth of the worker's CPU at the default settings,
#: under a twentieth with this and the freeze below (bench/README.md, "Third pass").
_YOUNG_GC_THRESHOLD = 10_000


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


@click.command()
@click.option("--web-port", type=int, help="HTTP port (PROFILE_STREAM_WEB_PORT).")
@click.option("--data-dir", type=click.Path(path_type=Path), help="RocksDB folder, one per worker.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]))
def worker(web_port: int | None, data_dir: Path | None, log_level: str | None) -> None:
    """Start a worker: consume chat messages, keep profiles, serve the views."""
    from streams.app import create_worker
    from streams.local_state import prepare_local_state

    settings = load(web_port=web_port, data_dir=data_dir, log_level=log_level)
    lock = _lock_data_dir(settings.data_dir)
    try:
        app = create_worker(settings)
        _quietly(_prepare_topics(settings))
    except ProfileStreamError as exc:
        raise exit_for(exc) from None  # Kafka unreachable: 3, as for every command
    click.echo(
        f"profile-stream worker: broker {settings.kafka.describe()}, extractor "
        f"{settings.extractor_kind}, web http://{settings.web_host}:{settings.web_port}, "
        f"data {settings.data_dir}",
        err=True,
    )
    # With the data dir locked (no other worker's stores) and logging set up, before any store
    # opens.
    prepare = functools.partial(prepare_local_state, app, settings.data_dir)
    _service_worker(app, settings.log_level, prepare).execute_from_commandline()
    lock.close()


def _quietly(coro: Any) -> None:
    """Run the start checks with aiokafka's own connection errors unlogged: a failure is said
    once, by the error naming the setting to fix."""
    kafka_logger = logging.getLogger("aiokafka")
    level = kafka_logger.level
    kafka_logger.setLevel(logging.CRITICAL)
    try:
        asyncio.run(coro)
    finally:
        kafka_logger.setLevel(level)


def _service_worker(app: Any, log_level: str, before_start: Callable[[], Any]) -> Any:
    """Faust's worker without its terminal spinner, calling ``before_start`` once its logging
    is set up and before the app (its tables) starts.

    At WARNING or above the spinner sets the root logger to DEBUG so it can spin on every
    record: each library's debug record is then built and formatted, a share of a busy worker's
    CPU worth saving (bench/README.md, "Why these defaults")."""
    from faust.worker import Worker

    class ServiceWorker(Worker):
        def on_setup_root_logger(self, logger: Any, level: int) -> None:
            self.spinner = None

        async def on_execute(self) -> None:
            before_start()
            _collect_less()

    return ServiceWorker(app, loglevel=log_level, quiet=True)


def _collect_less() -> None:
    """Leave what start-up made (modules, classes, pydantic's validators, the app: most of a
    worker's objects, and none of them garbage) out of every later collection, and collect the
    young generation less often (``_YOUNG_GC_THRESHOLD``). A cycle of garbage is still
    collected, later."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(_YOUNG_GC_THRESHOLD, middle, old)


async def _prepare_topics(settings: Settings) -> None:
    """Refuse to start when existing topics disagree with PROFILE_STREAM_PARTITIONS (every
    message would look misplaced and be re-routed forever, and the table would not match);
    create the topics the agents subscribe to, so they exist before the consumer group forms.
    The same connection as the worker's: a wrong password or certificate fails here, in one line
    naming the setting. With the model extractor, Redis must take the password and TLS given."""
    from streams.client.kafka_io import ensure_topics, partitions_of
    from streams.core.kinds import load_kinds
    from streams.extract.redis_client import check_redis

    if settings.extractor_kind == "openai":
        await check_redis(settings)

    for topic in (settings.input_topic, f"{settings.app_id}-profiles-changelog"):
        try:
            count = len(await partitions_of(topic, bootstrap=settings.kafka))
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
        bootstrap=settings.kafka,
    )
