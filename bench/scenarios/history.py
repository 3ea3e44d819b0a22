"""The history scenario: what keeping field revisions costs a profile record, with revisions on
(the default PROFILE_STREAM_REVISIONS_PER_FIELD) next to off (0), in the same run.

One synthetic user changes every field of the default ``UserProfile`` in every version (each
list drops its oldest item and gains one, two revisions a version), for ``bound + 10``
versions, so every field's history is full. Two shapes of values: ``typical`` (short names, 8
list items of 16 characters, 40-character quotes) and ``longest`` (every text and list at the
schema's maximum, 500-character quotes, 256-character message ids): the largest record the
default schema can make. For each, with revisions on and off, over the last 10 versions:

- the record's bytes as stored (and with its pending event, the larger of the two writes);
- the CPU of writing a version: ``next_version`` (the revisions included) and encoding it, then
  the RocksDB put on a database opened with the worker's options, and reading it back
  (``decode_record``, what every batch does first);
- the changelog write: the record produced to a topic of the local broker with ``acks=all``,
  awaited one by one as the worker awaits its changelog.

Then the largest bound whose longest record (with its pending event) fits the producer's
request size (1,000,000 bytes, which every changelog write must fit), and the largest whose
typical record stays under 64 KiB.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import mean
from typing import Any

from faust.stores.rocksdb import RocksDBOptions

from schemas import PatchOperation, ProfileEvent, ProfileRecord
from schemas.languages import LANGUAGES
from streams.core.codecs import decode_record, encode
from streams.core.history import Source, Trail
from streams.core.merge import merge
from streams.core.profile_schema import load_profile_schema
from streams.core.records import new_record, next_version, source_key
from streams.settings import Settings
from streams.topology import ROCKSDB_OPTIONS

from ..progress import log
from ..topics import create_topics, producer
from .stage import Config, Stage

__all__ = ["history_run"]

SCHEMA = load_profile_schema("schemas.profile:UserProfile")
T0 = datetime(2026, 11, 25, tzinfo=UTC)
TOPIC = "chat-messages"
#: Faust's PRODUCER_MAX_REQUEST_SIZE: every changelog write must fit it.
REQUEST_BYTES = 1_000_000
TYPICAL_TARGET = 64 * 1024
STEADY = 10  # versions measured, once every field's history is full
_LISTS = ("expertise", "common_topics", "key_relationships")
_ZONES = ("Europe/Paris", "America/New_York")


@dataclass(frozen=True)
class Shape:
    """The size of the values a workload writes."""

    name: str
    text: int  # a single text value
    summary: int  # last_conversation_summary
    items: int  # items in each list
    item: int  # characters of a list item
    quote: int
    languages: int
    message_id: int


TYPICAL = Shape("typical", 12, 80, 8, 16, 40, 3, 32)
LONGEST = Shape("longest", 200, 2000, 50, 200, 500, 20, 256)
_LANGUAGE_NAMES = sorted(LANGUAGES.values())


def _text(n: int, size: int, tag: str) -> str:
    return f"{tag}{n}-".ljust(size, "x")[:size]


def _operations(shape: Shape, n: int, profile: dict[str, Any]) -> list[PatchOperation]:
    """Version ``n``'s operations: every single field set anew, every list's oldest item
    out and a new one in."""
    quote = _text(n, shape.quote, "q")
    ops = [
        ("name", "set", _text(n, shape.text, "n")),
        ("location", "set", _text(n, shape.text, "l")),
        ("timezone", "set", _ZONES[n % 2]),
        ("formality", "set", ("casual", "formal")[n % 2]),
        ("detail_level", "set", ("brief", "detailed")[n % 2]),
        ("last_conversation_summary", "set", _text(n, shape.summary, "s")),
    ]
    for name in _LISTS:
        items = profile.get(name) or []
        if len(items) >= shape.items:
            ops.append((name, "remove", items[0]))
        fill = [_text(n * 100 + k, shape.item, name[0]) for k in range(shape.items - len(items))]
        ops.append((name, "add", fill or [_text(n, shape.item, name[0])]))
    spoken = profile.get("languages") or []
    if len(spoken) >= shape.languages:
        ops.append(("languages", "remove", spoken[0]))
    fresh = [lang for lang in _LANGUAGE_NAMES if lang not in spoken]
    ops.append(("languages", "add", fresh[: max(1, shape.languages - len(spoken))]))
    return [
        PatchOperation(field=f, op=op, value=v, quote=quote)  # type: ignore[arg-type]
        for f, op, v in ops
    ]


@dataclass
class Written:
    """One version as the worker writes it: the record, its event, and the CPU it took."""

    record: ProfileRecord
    event: ProfileEvent | None
    raw: bytes
    cpu_s: float


def versions(shape: Shape, keep: int, count: int) -> list[Written]:
    """``count`` versions of one user in ``shape``, keeping ``keep`` revisions per field."""
    record = new_record("user-0042", SCHEMA.schema_id)
    out = []
    for n in range(count):
        message_id = _text(n, shape.message_id, "m")
        at = T0 + timedelta(minutes=n)
        ops = [
            op.model_copy(update={"message_id": message_id})
            for op in _operations(shape, n, record.profile)
        ]
        started = time.process_time()
        result = merge(
            record.profile,
            record.provenance,
            record.locked,
            ops,
            SCHEMA,
            evidence={message_id: at},
        )
        record, event = next_version(
            record,
            result,
            offsets={source_key(TOPIC, 3): 1000 + n},
            message_ids=[message_id],
            at=at,
            trail=Trail(keep, {message_id: Source(TOPIC, 3, 1000 + n)}),
        )
        raw = encode(record)
        out.append(Written(record, event, raw, time.process_time() - started))
    return out


def _pending_bytes(written: Written) -> int:
    return len(encode(written.record.model_copy(update={"pending_event": written.event})))


def _timed_us(action: Callable[[], object], repeat: int = 5) -> float:
    started = time.perf_counter()
    for _ in range(repeat):
        action()
    return (time.perf_counter() - started) / repeat * 1e6


def _rocksdb_us(folder: Path, steady: list[Written]) -> tuple[float, float]:
    """Mean µs of a put of each record over the same key, and of reading it back."""
    db = RocksDBOptions(**ROCKSDB_OPTIONS).open(folder)  # type: ignore[arg-type]
    try:
        puts = [_timed_us(lambda w=w: db.put(b"user-0042", w.raw)) for w in steady]
        reads = [_timed_us(lambda: decode_record(db.get(b"user-0042"))) for _ in steady]
    finally:
        db.close()
    return mean(puts), mean(reads)


async def _changelog_ms(topic: str, steady: list[Written]) -> float:
    prod = producer(max_request_size=REQUEST_BYTES + 100_000)
    await prod.start()
    try:
        took = []
        for w in steady:
            started = time.perf_counter()
            await (await prod.send(topic, w.raw, key=b"user-0042"))
            took.append(time.perf_counter() - started)
        return mean(took) * 1000
    finally:
        await prod.stop()


async def _measure(stage: Stage, shape: Shape, keep: int, count: int) -> dict[str, Any]:
    written = versions(shape, keep, count)
    steady = written[-STEADY:]
    folder = stage.dir / f"rocksdb-{shape.name}-{keep}"
    put_us, read_us = _rocksdb_us(folder, steady)
    topic = f"{stage.names.prefix}-{shape.name}-{keep}"
    await create_topics([topic], partitions=1)
    return {
        "record_bytes": len(steady[-1].raw),
        "pending_record_bytes": _pending_bytes(steady[-1]),
        "version_cpu_us": mean(w.cpu_s for w in steady) * 1e6,
        "rocksdb_put_us": put_us,
        "read_us": read_us,
        "changelog_ms": await _changelog_ms(topic, steady),
    }


def largest_bound(shape: Shape, limit: int, pending: bool, most: int = 100) -> int:
    """The largest bound (0 to ``most``) whose full record is at most ``limit`` bytes."""
    low, high = 0, most
    while low < high:
        keep = (low + high + 1) // 2
        last = versions(shape, keep, keep + 5)[-1]
        size = _pending_bytes(last) if pending else len(last.raw)
        low, high = (keep, high) if size <= limit else (low, keep - 1)
    return low


async def history_run(cfg: Config) -> dict[str, Any]:
    bound = Settings.model_fields["revisions_per_field"].default
    count = bound + STEADY
    result: dict[str, Any] = {"bound": bound, "versions": count}
    async with Stage("history", cfg) as stage:
        for shape in (TYPICAL, LONGEST):
            for keep in (0, bound):
                log(f"{shape.name} values, {keep} revisions per field: {count} versions")
                result[f"{shape.name}_{keep}"] = await _measure(stage, shape, keep, count)
        result["largest_bound_longest"] = largest_bound(LONGEST, REQUEST_BYTES, pending=True)
        result["largest_bound_typical"] = largest_bound(TYPICAL, TYPICAL_TARGET, pending=False)
    return result
