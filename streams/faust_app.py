"""The Faust app a worker runs, configured from the settings: broker and credentials, the
RocksDB store and how it is restored, partitions and replication, the processing guarantee,
producer batching, group membership, and the web server with Faust's own pages off."""

import faust

from streams.faust_glue import (
    create_topics_with_broker_default_replication,
    restore_changelogs_in_bulk,
    start_transactions_together,
    wait_until_created_topics_show,
)
from streams.kafka_credentials import broker_credentials
from streams.settings import Settings

__all__ = ["faust_app"]

# Bigger produce requests: see faust_app.
_PRODUCER_BATCH_BYTES = 512 * 1024


def faust_app(settings: Settings) -> faust.App:
    """The Faust app of a worker with these settings."""
    app = faust.App(
        settings.app_id,
        broker=settings.broker_url,
        broker_credentials=broker_credentials(settings.kafka),  # TLS, SASL: every connection
        store="rocksdb://",
        datadir=str(settings.data_dir),
        topic_partitions=settings.partitions,
        # Unset: the broker's default, through the hook below.
        topic_replication_factor=settings.replication_factor or 1,
        table_standby_replicas=settings.standby_replicas,
        # exactly_once: Faust's transactions, made to cover every output (faust_glue.transactions).
        processing_guarantee=settings.processing_guarantee,
        # Do not wait on stop for every held event (up to MAX_PENDING, minutes with a slow
        # model): running batches get a grace (streams.app), the rest goes to the next owner.
        stream_wait_empty=False,
        # aiokafka keeps one produce request in flight per broker; with 16 KiB batches a busy
        # worker's changelog and events queue up behind it (Faust's producer buffer full,
        # admission paused). Figures: bench/README.md, "Why these defaults".
        producer_max_batch_size=_PRODUCER_BATCH_BYTES,
        # A dead worker's partitions move after this long; heartbeats keep a live one.
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.session_timeout_s / 10,
        # A new group's start on the input topic is set by start_new_partitions; this is for
        # a committed offset that retention has deleted: resume at the oldest message kept.
        consumer_auto_offset_reset="earliest",
        # Static membership: a restart within the session timeout rebalances no one.
        consumer_group_instance_id=settings.group_instance_id,
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_bind=settings.web_bind,
        web_tables_enabled=False,  # /table/ would serve every profile to anyone
        # /router/ would show anyone which worker holds each partition, without a token; reads
        # are routed by the project's own views (streams.web.routing), behind the token.
        web_router_enabled=False,
        web_stats_enabled=False,
        web_graph_enabled=False,
        autodiscover=False,
        logging_config=None,
    )
    if settings.restore_in_bulk:  # before Faust's own recovery is created
        restore_changelogs_in_bulk(app)
    start_transactions_together(app)  # else a restart's rebalance outlasts the session timeout
    if settings.replication_factor is None:
        create_topics_with_broker_default_replication(app)
    wait_until_created_topics_show(app)  # else the group may form without a table's changelog
    return app
