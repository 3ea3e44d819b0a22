"""The Faust app: topics, the profile table, the one agent, and the views, built from settings.

A thin shell: every decision about an event is in :mod:`streams.processor`.
"""

import logging
import os
from dataclasses import dataclass
from typing import Any

import faust
from aiokafka.errors import KafkaError

from .extraction import Extractor
from .llm import LLMExtractor
from .processor import Processor
from .profile_schema import ProfileSchema, load_profile_schema
from .rules import RuleExtractor
from .settings import Settings
from .views import register_views

__all__ = ["Worker", "create_worker"]

logger = logging.getLogger(__name__)
_CRASH_EXIT = 70


@dataclass
class Worker:
    """Everything one worker process runs."""

    app: faust.App
    processor: Processor
    schema: ProfileSchema


def _extractor(settings: Settings) -> Extractor:
    if settings.extractor_kind == "openai":
        return LLMExtractor(settings)
    return RuleExtractor()


def _faust_app(settings: Settings) -> faust.App:
    return faust.App(
        settings.app_id,
        broker=settings.broker_url,
        store="rocksdb://",
        datadir=str(settings.data_dir),
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        table_standby_replicas=settings.standby_replicas,
        processing_guarantee="at_least_once",
        consumer_auto_offset_reset="earliest",
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_bind=settings.web_bind,
        web_tables_enabled=False,  # /table/ would serve every profile to anyone
        web_stats_enabled=False,
        web_graph_enabled=False,
        autodiscover=False,
        logging_config=None,
    )


def _raw_topic(app: faust.App, name: str, settings: Settings, **kw: Any) -> faust.TopicT:
    return app.topic(
        name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.partitions,
        internal=True,
        **kw,
    )


def create_worker(settings: Settings) -> Worker:
    """Build the app for ``settings``; nothing connects until the worker starts."""
    schema = load_profile_schema(settings.profile_model)
    app = _faust_app(settings)
    # Declared (created when missing) before the consumer subscribes, with our partition count.
    # Operator commands share it, so they are ordered with the user's messages.
    chat = _raw_topic(app, settings.input_topic, settings)
    table = app.Table(
        "profiles",
        key_type=bytes,
        value_type=bytes,
        partitions=settings.partitions,
        options=_ROCKSDB_OPTIONS,
    )
    output = _raw_topic(app, settings.output_topic, settings)
    dead_letters = _raw_topic(app, settings.dlq_topic, settings)
    processor = Processor(
        settings=settings,
        schema=schema,
        extractor=_extractor(settings),
        table=table,
        output=output,
        dead_letters=dead_letters,
        reroute=chat,
    )

    @app.agent(chat, name="profiles")
    async def profiles(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            try:
                await processor.handle(event.message)
            except (KafkaError, OSError, TimeoutError) as exc:
                _crash(event.message, exc)
            except Exception as exc:  # noqa: BLE001 - a bug on one event must not stop the rest
                logger.exception(
                    "internal error topic=%s partition=%d offset=%d",
                    event.message.topic,
                    event.message.partition,
                    event.message.offset,
                )
                await processor.dead_letter(event.message, "internal_error", repr(exc))

    async def declare_outputs() -> None:
        # Subscribers may start before the first event; let them find the topics.
        await output.maybe_declare()
        await dead_letters.maybe_declare()

    app.task(declare_outputs)

    register_views(app, table, chat, schema, settings)
    return Worker(app=app, processor=processor, schema=schema)


# Faust's defaults (2 GiB block cache per partition database) do not fit many partitions.
_ROCKSDB_OPTIONS = {
    "block_cache_size": 32 * 1024**2,
    "write_buffer_size": 8 * 1024**2,
    "max_open_files": 512,
}


def _crash(message: Any, exc: BaseException) -> None:
    """Stop at once, committing nothing more: the event is redelivered when the worker restarts.

    Letting the agent raise would make Faust skip the event (it commits past it), losing it.
    """
    logger.critical(
        "cannot reach Kafka while processing topic=%s partition=%d offset=%d: %r; "
        "exiting so the event is redelivered after restart",
        message.topic,
        message.partition,
        message.offset,
        exc,
    )
    logging.shutdown()
    os._exit(_CRASH_EXIT)
