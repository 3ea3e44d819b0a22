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

A fourth makes a restart slow: Faust starts a rebalance's transactional producers one after
another, and after a kill -9 each start waits for the coordinator to abort the killed worker's
open transaction (0.3-0.5 s each here; more under load). Inside the rebalance callback that sum
outlasted a 6 s session timeout, and the group rebalanced again and again.
:func:`start_transactions_together` starts (and stops) them concurrently.

Internal: ``Producer._transaction_producers`` and ``Producer._trn_locks`` (per transactional
id; Faust's own commits and sends take the lock), ``TransactionManager.transactional_id_format``
the assignor's ``group_for_topic``, and ``TransactionManager._start_transactions`` and
``_stop_transactions`` (a rebalance's producers, by transactional id).
"""

import asyncio
import logging
from collections.abc import Awaitable, Iterable
from typing import Any, cast

import faust
import faust.transport.consumer
from faust.types import TP
from faust.types.enums import ProcessingGuarantee

__all__ = [
    "commit_open_transactions",
    "exactly_once",
    "in_source_transaction",
    "outside_transactions",
    "start_transactions_together",
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


class _TransactionsTogether(faust.transport.consumer.TransactionManager):
    """Faust's transaction manager, starting and stopping a rebalance's producers together,
    and stopping every producer its partition's assignment no longer holds."""

    async def on_rebalance(
        self, assigned: set[TP], revoked: set[TP], newly_assigned: set[TP]
    ) -> None:
        # Faust stops the producers of the revoked partitions that are not standbys now: a
        # partition moved to another worker and kept here as a standby keeps its producer,
        # fenced by the new owner's. Given the partition back, Faust "begins" on that fenced
        # producer (a swallowed warning) instead of starting one, so nothing aborts the other
        # owner's open transaction: the changelog's last stable offset stays behind it and
        # the restore misses every record after it, until the broker's transaction timeout.
        held = set(cast(Any, self.producer)._transaction_producers)  # noqa: SLF001
        stale = sorted(held - self._tps_to_transactional_ids(assigned))
        if stale:
            logger.info(
                "transactional producers stopped=%d (partitions no longer held)", len(stale)
            )
            await self._stop_transactions(stale)
        await super().on_rebalance(assigned, revoked, newly_assigned)

    async def _start_transactions(self, tids: Iterable[str]) -> None:
        producer = cast(Any, self.producer)
        await asyncio.gather(*(producer.maybe_begin_transaction(tid) for tid in tids))

    async def _stop_transactions(self, tids: Iterable[str]) -> None:
        producer = cast(Any, self.producer)
        await asyncio.gather(*(producer.stop_transaction(tid) for tid in tids))


def start_transactions_together(app: faust.App) -> None:
    """Under exactly-once, have ``app`` start the transactional producers of an assignment
    concurrently, so the rebalance callback takes one abort's wait, not one per producer.
    Call before the worker starts (the consumer creates the transaction manager)."""
    if not exactly_once(app):
        return
    assert app._consumer is None, "consumer already created"  # noqa: S101, SLF001
    cast(Any, app.transport).TransactionManager = _TransactionsTogether


def _holds_records(txn: Any) -> bool:
    """aiokafka's ``TransactionManager``: in a transaction with a partition added or pending."""
    manager = txn._txn_manager  # noqa: SLF001 - no public API
    holds = manager.txn_partitions or manager.partitions_to_add()
    return bool(manager.is_in_transaction() and holds)
