"""Faust's exactly-once transactions, made to cover everything a batch produces for its partition,
and nothing else.

Under ``processing_guarantee="exactly_once"`` Faust keeps one transactional producer per assigned
source partition (``transactional.id`` = ``{app id}-{topic group}-{partition}``), sends table
changelog writes and offset commits through it, and commits each transaction when the partition's
offsets move. A worker that takes a partition over starts a producer with the same id, which
fences the old owner's: a frozen worker that wakes can no longer commit anything. Three gaps
stand between that and our pipeline, each closed here:

- Faust picks a record's transaction by its *destination* partition
  (``TransactionManager.send``): a topic the worker does not consume (``profile-updated``) goes
  through the plain producer, outside any transaction. :func:`in_source_transaction` sends the
  profile events through the transaction of the partition the current event was read from,
  the one its table writes go to.
- A record for a consumed topic's partition this worker does not own (a re-route, a forward
  to another kind, a command from a web view) raises "No transaction producer found"
  (``Producer.send``). Those are inputs, deduplicated by message id: :func:`outside_transactions`
  sends them through the plain (idempotent, ``acks=all``) producer, as it does dead letters.
- Faust commits a transaction only when its partition's offsets move
  (``Consumer._commit_tps``). A flush the timer asks for moves no offset, nor does a batch that
  waits behind a slow one: their writes would stay invisible to ``read_committed`` readers, and
  the broker aborts a transaction open past ``transaction.timeout.ms``.
  :func:`commit_open_transactions` commits every open transaction (without offsets).

Internal: ``Producer._transaction_producers`` and ``Producer._trn_locks`` (per transactional
id; Faust's own commits and sends take the lock), ``TransactionManager.transactional_id_format``
and the assignor's ``group_for_topic``.
"""

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any, cast

import faust
from faust.types.enums import ProcessingGuarantee

__all__ = [
    "commit_open_transactions",
    "exactly_once",
    "in_source_transaction",
    "outside_transactions",
    "transactional_id",
]

logger = logging.getLogger(__name__)


def exactly_once(app: faust.App) -> bool:
    """Whether ``app`` runs with Faust's transactions."""
    guarantee: Any = app.conf.processing_guarantee  # typed as the enum class, holds a member
    return bool(guarantee == ProcessingGuarantee.EXACTLY_ONCE)


def transactional_id(app: faust.App, topic: str, partition: int) -> str:
    """The transactional id Faust gives the producer of ``topic``'s ``partition``."""
    group = cast(Any, app.assignor).group_for_topic(topic)
    return f"{app.conf.id}-{group}-{partition}"


class _Topic:
    """A topic as the pipeline sends to it (``send``, ``get_topic_name``), produced by Faust's
    producer directly: in the transaction ``_transaction()`` names, or in none."""

    def __init__(self, app: faust.App, topic: faust.TopicT) -> None:
        self.app, self.topic = app, topic

    def get_topic_name(self) -> str:
        return self.topic.get_topic_name()

    def _transaction(self) -> str | None:
        return None

    async def send(
        self,
        *,
        key: bytes | None,
        value: bytes,
        partition: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> Awaitable[Any]:
        producer = cast(Any, self.app.producer)
        await producer.maybe_start()
        return cast(
            Awaitable[Any],
            await producer.send(
                self.get_topic_name(),
                key,
                value,
                partition,
                None,
                headers,
                transactional_id=self._transaction(),
            ),
        )


class _SourceTransactionTopic(_Topic):
    def _transaction(self) -> str:
        event = faust.current_event()
        if event is None:
            raise RuntimeError(f"a send to {self.get_topic_name()} outside any event's work")
        message = event.message
        return transactional_id(self.app, message.topic, message.partition)


def in_source_transaction(app: faust.App, topic: faust.TopicT) -> faust.TopicT:
    """``topic``, or under exactly-once a stand-in that sends in the transaction of the
    partition the task's current event came from (make it current first, as for a table
    write: ``make_event_current``)."""
    if not exactly_once(app):
        return topic
    return cast(faust.TopicT, _SourceTransactionTopic(app, topic))


def outside_transactions(app: faust.App, topic: faust.TopicT) -> faust.TopicT:
    """``topic``, or under exactly-once a stand-in that sends through the plain producer."""
    if not exactly_once(app):
        return topic
    return cast(faust.TopicT, _Topic(app, topic))


async def commit_open_transactions(app: faust.App) -> int:
    """Commit (and begin anew) every transaction of this worker's producers that holds a
    record; the number committed. Raises what the commit raises (``ProducerFenced`` when
    another worker owns the partition now): the caller crashes the worker."""
    producer = cast(Any, app.producer)
    committed = 0
    for tid in list(producer._transaction_producers):  # noqa: SLF001 - no public API
        lock: asyncio.Lock | None = producer._trn_locks.get(tid)  # noqa: SLF001
        if lock is None:
            continue
        async with lock:
            txn = producer._transaction_producers.get(tid)  # noqa: SLF001 - stopped meanwhile?
            if txn is None or not _holds_records(txn):
                continue
            await txn.commit_transaction()
            await txn.begin_transaction()
            committed += 1
    return committed


def _holds_records(txn: Any) -> bool:
    """aiokafka's ``TransactionManager``: in a transaction with a partition added or pending."""
    manager = txn._txn_manager  # noqa: SLF001 - no public API
    holds = manager.txn_partitions or manager.partitions_to_add()
    return bool(manager.is_in_transaction() and holds)
