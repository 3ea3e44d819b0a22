"""Every touch of Faust (and aiokafka) internals, in one package.

Faust 0.15.3 has no public API for a few things the worker needs; each hook here names the
private attribute it reads or overrides, and ``tests/unit/streams/test_faust_glue.py`` checks
each one against the installed Faust, so an upgrade is a one-package review.
"""

from streams.faust_glue.recovery import restore_changelogs_in_bulk
from streams.faust_glue.tables import (
    ProfileTable,
    actives_ready,
    local_table_stores,
    make_event_current,
    partition_event,
    partition_items,
    tables_recovered,
)
from streams.faust_glue.transactions import (
    commit_open_transactions,
    exactly_once,
    in_source_transaction,
    outside_transactions,
    start_transactions_together,
)
from streams.faust_glue.transport import (
    BROKER_DEFAULT_REPLICATION,
    EndOffsets,
    StartPlan,
    committed_offset,
    consumer_lag,
    create_topics_with_broker_default_replication,
    keep_fetched_events_on_resume,
    read_to_end,
    refuse_assignments_for_another_url,
    start_new_partitions,
    wait_until_created_topics_show,
)
from streams.faust_glue.web import add_web_middleware, mounted_methods

__all__ = [
    "BROKER_DEFAULT_REPLICATION",
    "ProfileTable",
    "StartPlan",
    "actives_ready",
    "add_web_middleware",
    "commit_open_transactions",
    "consumer_lag",
    "committed_offset",
    "create_topics_with_broker_default_replication",
    "EndOffsets",
    "exactly_once",
    "in_source_transaction",
    "keep_fetched_events_on_resume",
    "local_table_stores",
    "make_event_current",
    "mounted_methods",
    "outside_transactions",
    "partition_event",
    "partition_items",
    "read_to_end",
    "refuse_assignments_for_another_url",
    "restore_changelogs_in_bulk",
    "start_new_partitions",
    "start_transactions_together",
    "tables_recovered",
    "wait_until_created_topics_show",
]
