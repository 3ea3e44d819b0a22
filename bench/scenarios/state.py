"""The state scenario: what buffering one chat message writes, and what a flush clock tick costs.

In-process, no services: both are properties of the state layout and the clock's data structure.

- **Changelog bytes per buffered chat message.** A user with the history scenario's typical
  profile (every field's revisions full at the default bound) buffers ``MESSAGES`` chat messages
  of ``CONTENT`` characters. *Before* is the single-record layout of the release before (main at
  89ab65a): each buffered message rewrote the whole record with its buffer, so its changelog
  write is the key plus that record's encoding (the same encoder; those fields' bytes did not
  change). *After* drives this release's ``ProfileUpdater`` over dict tables that count every
  byte written (key and value) to the profile table and the buffer table. Each is divided by the
  message's own encoded size.
- **Changelog bytes per version.** A version of the same user (every field changed) writes its
  record twice (with its pending event, then without: ``streams.pipeline.publish``); with the
  typical history at the default bound, and without history (``revisions_per_field=0``).
- **Flush clock work per tick.** ``FlushClock.take_due`` at a tick when ``DUE`` subjects are
  due, with ``SMALL`` and ``LARGE`` buffered users (the median of ``TICKS`` ticks); the ratio
  says whether a tick's work grows with the number of buffered users. The clock of the release
  before (a walk over every subject, kept here as ``_ScanClock``) is timed the same way.
"""

import asyncio
import statistics
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from schemas import ChatMessage
from streams.core.codecs import decode_record, encode
from streams.core.flushing import FlushPolicy
from streams.core.kinds import load_kinds
from streams.core.records import buffered
from streams.extract.rules import RuleExtractor
from streams.pipeline.admission import Admitted
from streams.pipeline.apply import ProfileUpdater
from streams.pipeline.buffer_store import BufferStore
from streams.pipeline.buffering import entry_of
from streams.pipeline.dead_letters import DeadLetters
from streams.pipeline.flush_clock import FlushClock
from streams.pipeline.job import Job
from streams.pipeline.publish import Publisher
from streams.settings import Settings

from ..progress import log
from .history import T0, TOPIC, TYPICAL, versions
from .stage import Config

__all__ = ["state_run"]

MESSAGES = 10
CONTENT = 200
SMALL, LARGE = 10_000, 1_000_000
TICKS = 20
DUE = 100


class _Counted(dict[bytes, bytes]):
    """A table that counts the bytes written to it: what its changelog carries."""

    written = 0

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.written += len(key) + len(value)
        super().__setitem__(key, value)


class _Topic:
    async def send(self, **_: Any) -> "asyncio.Future[None]":
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


@dataclass
class _Message:
    """A consumed record (``SourceMessage``)."""

    key: bytes
    value: bytes
    offset: int
    timestamp: float
    topic: str = TOPIC
    partition: int = 3
    headers: Any = ()


@dataclass
class _Event:
    message: _Message

    def ack(self) -> None:
        return None


async def _purge(subject: str) -> int:
    return 0


def _messages(user: str) -> list[ChatMessage]:
    return [
        ChatMessage(
            message_id=f"chat-{n:04d}",
            user_id=user,
            conversation_id="c1",
            role="user",
            content=f"message {n} ".ljust(CONTENT, "x"),
            sent_at=T0 + timedelta(days=1, seconds=n),
        )
        for n in range(MESSAGES)
    ]


def _jobs(user: str) -> list[Job]:
    jobs = []
    for n, message in enumerate(_messages(user)):
        record = _Message(user.encode(), encode(message), 5000 + n, message.sent_at.timestamp())
        jobs.append(Job.of(_Event(record), Admitted(record, user.encode(), message), now=0.0))
    return jobs


def _before(record_bytes: bytes, jobs: list[Job]) -> float:
    """Bytes per buffered message in the single-record layout: the record, buffer inside."""
    record = decode_record(record_bytes)
    written = 0
    for job in jobs:
        assert isinstance(job.work.body, ChatMessage)  # noqa: S101
        entry = entry_of(job, job.work.body, job.work.msg.timestamp)
        record = buffered(record, [entry])
        written += len(job.key) + len(encode(record))
    return written / len(jobs)


async def _after(record_bytes: bytes, user: str, jobs: list[Job]) -> tuple[float, int]:
    """Bytes per buffered message through this release's pipeline; and the profile record's
    share of them."""
    kind = load_kinds(None, Settings.model_fields["profile_model"].default)[0]
    records, entries = _Counted({user.encode(): record_bytes}), _Counted()
    records.written = 0
    updater = ProfileUpdater(
        kind,
        RuleExtractor(),
        records,
        Publisher(kind, records, _Topic(), purge=_purge),
        DeadLetters(_Topic()),
        flushing=FlushPolicy(idle_s=3600, max_age_s=7200, max_messages=1000, max_chars=10**6),
        clock=lambda: jobs[-1].work.msg.timestamp,
        revisions_per_field=Settings.model_fields["revisions_per_field"].default,
        buffers=BufferStore(entries),
    )
    for job in jobs:
        await updater.apply(job.key, [job])
    return (records.written + entries.written) / len(jobs), records.written


def _version_bytes(bound: int) -> int:
    """Changelog bytes of one version of the typical user (a flush that changes every field),
    keeping ``bound`` revisions per field: the record with its pending event, then without
    (``streams.pipeline.publish``), each with its key."""
    written = versions(TYPICAL, bound, bound + 10)[-1]
    key = len(written.record.user_id.encode())
    pending = encode(written.record.model_copy(update={"pending_event": written.event}))
    return key + len(pending) + key + len(written.raw)


class _ScanClock(FlushClock):
    """The clock of the release before (main at 89ab65a): ``take_due`` walks every subject."""

    def __init__(self) -> None:
        super().__init__()
        self._all: dict[bytes, tuple[tuple[str, int], float]] = {}

    def set(self, key: bytes, tp: tuple[str, int], due: float | None) -> None:
        if due is None:
            self._all.pop(key, None)
        else:
            self._all[key] = (tp, due)

    def take_due(self, now: float, limit: int | None = None) -> list[tuple[bytes, Any]]:
        due = [(key, tp) for key, (tp, at) in self._all.items() if at <= now]
        for key, _ in due:
            del self._all[key]
        return due


def _tick_us(clock: FlushClock, users: int) -> float:
    """The median µs of a tick at which ``DUE`` of ``users`` buffered subjects are due."""
    tp = (TOPIC, 3)
    for n in range(users):
        clock.set(f"user-{n}".encode(), tp, 10_000.0 + n)
    ticks = []
    for _ in range(TICKS):
        for n in range(DUE):
            clock.set(f"due-{n}".encode(), tp, 0.5)
        started = time.perf_counter()
        taken = clock.take_due(1.0)
        ticks.append((time.perf_counter() - started) * 1e6)
        assert len(taken) == DUE  # noqa: S101 - the tick did its work
    return statistics.median(ticks)


async def state_run(cfg: Config) -> dict[str, Any]:
    bound = Settings.model_fields["revisions_per_field"].default
    written = versions(TYPICAL, bound, bound + 10)[-1]
    user = written.record.user_id
    record_bytes = encode(written.record)
    jobs = _jobs(user)
    message_bytes = statistics.mean(len(job.work.msg.value or b"") for job in jobs)
    log(f"typical record {len(record_bytes):,} bytes; {MESSAGES} messages of {message_bytes:.0f}")
    after, record_share = await _after(record_bytes, user, jobs)
    result: dict[str, Any] = {
        "record_bytes": len(record_bytes),
        "message_bytes": message_bytes,
        "before_bytes_per_message": _before(record_bytes, jobs),
        "after_bytes_per_message": after,
        "after_record_bytes": record_share,
        # What keeping field history in the record costs each version (docs/state.md).
        "version_bytes": _version_bytes(bound),
        "version_bytes_no_history": _version_bytes(0),
        "bound": bound,
    }
    for users in (SMALL, LARGE):
        log(f"flush clock: {users:,} buffered users, {DUE} due per tick")
        result[f"tick_us_{users}"] = _tick_us(FlushClock(), users)
        result[f"scan_tick_us_{users}"] = _tick_us(_ScanClock(), users)
    result["tick_users"] = [SMALL, LARGE]
    result["tick_due"] = DUE
    return result
