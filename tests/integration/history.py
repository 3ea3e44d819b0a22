"""The whole event history of a run, checked against a reference known in advance.

Each message i of a user adds the item n<i> and sets the summary s<i> (:func:`script` tells the
fake model so), so the final profile of a user whose messages were all applied once, in order,
is exactly [n00, n01, ...] with summary s<last>. :func:`check_against_reference` asserts that
every message was applied exactly once (nothing lost, nothing doubled), that an event id never
has two contents and that each user's versions are contiguous; :func:`explain_missing` says
where each lost message stopped. Used by the fault tests on one broker and on three.
"""

import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

from tests.fakes.llm_server import FakeLLM
from tests.support import partitions

from .harness import BOOTSTRAP, Kafka, Names, decode, message

__all__ = [
    "Audit",
    "all_applied",
    "audit",
    "check_against_reference",
    "explain_missing",
    "publish",
    "read_all",
    "script",
]


def script(fake: FakeLLM, users: int, per_user: int) -> None:
    for i in range(per_user):
        fake.on(
            f"note {i:02d} ",
            {"field": "common_topics", "op": "add", "value": f"n{i:02d}"},
            {"field": "last_conversation_summary", "op": "set", "value": f"s{i:02d}"},
        )


async def publish(
    kafka: Kafka, names: Names, users: int, per_user: int, *, first_user: int = 0
) -> list[dict[str, Any]]:
    """Messages 0..per_user-1 of users ``first_user`` onwards, interleaved across users."""
    assert per_user <= 50, (
        "UserProfile keeps at most 50 common_topics: the reference needs one each"
    )
    sent = [
        message(
            f"user-{u:02d}",
            f"note {i:02d} from user {u}",
            sent_at=f"2026-11-25T09:{i:02d}:00+00:00",
        )
        for i in range(per_user)
        for u in range(first_user, first_user + users)
    ]
    await kafka.send_all(names.input, sent)
    return sent


@dataclass
class Audit:
    """What a run's event history shows, against the messages sent."""

    events: int  # distinct event ids
    duplicates: int  # an event emitted again with the same id and bytes (harmless)
    lost: list[str]  # message ids no event names
    doubled: list[str]  # message ids more than one distinct event names
    conflicting: list[str]  # event ids emitted with two different contents
    gaps: dict[str, list[int]]  # user to versions, when they are not 1..n
    wrong_finals: list[str]  # users whose last profile is not the reference's

    @property
    def ok(self) -> bool:
        return not (self.lost or self.doubled or self.conflicting or self.gaps or self.wrong_finals)

    def __str__(self) -> str:
        return (
            f"{self.events} events ({self.duplicates} exact re-emissions), lost "
            f"{len(self.lost)} {self.lost[:5]}, doubled {len(self.doubled)} {self.doubled[:5]}, "
            f"event ids with two contents {self.conflicting[:5]}, version gaps "
            f"{dict(list(self.gaps.items())[:3])}, wrong final profiles {self.wrong_finals[:5]}"
        )


def audit(records: list[Any], sent: list[dict[str, Any]], per_user: int) -> Audit:
    """The history of ``records`` (the output topic, in any order) against ``sent``; asserts
    nothing, so a test can report every finding at once."""
    by_id: dict[str, bytes] = {}
    duplicates, conflicting = 0, []
    for r in records:
        event_id = r.key.decode() + ":" + str(orjson.loads(r.value)["version"])
        if event_id in by_id:
            if by_id[event_id] != r.value:
                conflicting.append(event_id)
            duplicates += by_id[event_id] == r.value
            continue
        by_id[event_id] = r.value
    events = [orjson.loads(v) for v in by_id.values()]
    versions: dict[str, list[int]] = defaultdict(list)
    applied: Counter[str] = Counter()
    latest: dict[str, dict[str, Any]] = {}
    for e in events:
        user = e["user_id"]
        versions[user].append(e["version"])
        applied.update(e["source_message_ids"])
        if user not in latest or e["version"] > latest[user]["version"]:
            latest[user] = e
    reference = ([f"n{i:02d}" for i in range(per_user)], f"s{per_user - 1:02d}")
    return Audit(
        events=len(events),
        duplicates=duplicates,
        lost=[m["message_id"] for m in sent if m["message_id"] not in applied],
        doubled=sorted(m for m, n in applied.items() if n > 1),
        conflicting=conflicting,
        gaps={u: sorted(v) for u, v in versions.items() if sorted(v) != list(range(1, len(v) + 1))},
        wrong_finals=sorted(
            u
            for u, e in latest.items()
            if (e["profile"]["common_topics"], e["profile"]["last_conversation_summary"])
            != reference
        ),
    )


def check_against_reference(
    records: list[Any], sent: list[dict[str, Any]], per_user: int
) -> dict[str, int]:
    """Assert the invariants (every message applied exactly once, one content per event id,
    contiguous versions, the reference's final profiles); returns counts for the report."""
    found = audit(records, sent, per_user)
    assert found.ok, str(found)
    return {"events": found.events, "duplicates": found.duplicates}


def all_applied(total: int) -> Callable[[list[Any]], bool]:
    def done(records: list[Any]) -> bool:
        return len({m for e in decode(records) for m in e["source_message_ids"]}) >= total

    return done


async def read_all(topic: str, bootstrap: str = BOOTSTRAP) -> list[Any]:
    """Every record of ``topic`` up to its end offsets now (empty when the topic does not exist),
    as a subscriber sees it: committed records only (under exactly-once a fenced or aborted
    transaction's records are in the log, and no reader may count them)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    await consumer.start()
    try:
        if topic not in await consumer.topics():
            return []
        tps = await partitions(consumer, topic)
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        await consumer.seek_to_beginning(*tps)
        records: list[Any] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if all([await consumer.position(tp) >= end for tp, end in ends.items()]):
                break
            for part in (await consumer.getmany(timeout_ms=500)).values():
                records.extend(part)
        return records
    finally:
        await consumer.stop()


async def explain_missing(
    kafka: Kafka, names: Names, sent: list[dict[str, Any]], fake_llm: FakeLLM, log: Path
) -> str:
    """For each message id without an event, where it stopped: never consumed, dead-lettered,
    committed past without effect, applied in the table without an event, or still pending."""
    events = decode(await read_all(names.output, kafka.bootstrap))
    emitted = {m for e in events for m in e["source_message_ids"]}
    missing = [m for m in sent if m["message_id"] not in emitted]
    where = {
        orjson.loads(r.value)["message_id"]: (r.partition, r.offset)
        for r in await read_all(names.input, kafka.bootstrap)
    }
    dead = {
        (d["source_partition"], d["source_offset"]): d
        for d in decode(await read_all(names.dlq, kafka.bootstrap))
    }
    history: dict[str, list[dict[str, Any]]] = defaultdict(list)  # changelog, per user
    for r in await read_all(names.changelog, kafka.bootstrap):
        history[r.key.decode()].append(orjson.loads(r.value) if r.value else {"deleted": True})
    committed = await kafka.committed(names.prefix, names.input)
    ends = await kafka.end_offsets(names.input)
    lines = [
        f"{len(missing)} of {len(sent)} message ids have no event; {len(events)} events read",
        f"input {names.input}: committed {committed} end {ends} (group {names.prefix})",
        f"worker log: {log}",
    ]
    for m in missing:
        user, mid = m["user_id"], m["message_id"]
        partition, offset = where.get(mid, (-1, -1))
        source = f"{names.input}:{partition}"
        stored = history.get(user, [])
        # ``applied`` keeps the highest offset per partition, so a later message's record
        # covers this offset too: only the message id (or this very offset) proves it applied.
        applied = [
            r
            for r in stored
            if mid in r.get("recent_message_ids", ())
            or r.get("applied", {}).get(source, -1) == offset
        ]
        past = [r for r in stored if r.get("applied", {}).get(source, -1) > offset]
        calls = sum(
            any(x["content"] == m["content"] for x in r["messages"]) for r in fake_llm.requests
        )
        last = stored[-1] if stored else {}
        pending = last.get("pending_event") or {}
        versions = sorted(e["version"] for e in events if e["user_id"] == user)
        if partition < 0:
            stage = "never reached the input topic"
        elif (partition, offset) in dead:
            stage = f"dead-lettered ({dead[partition, offset]['reason_code']})"
        elif applied:
            first = applied[0]
            stage = (
                f"applied in the table without an event (first record with it: version "
                f"{first.get('version')}, pending event "
                f"{(first.get('pending_event') or {}).get('version')})"
            )
        elif past:
            stage = (
                f"never applied: the user's batches went past it (record version "
                f"{past[0].get('version')} applied offset {past[0]['applied'][source]}); "
                + (
                    f"committed past it ({committed.get(partition)}): the offset was acked "
                    "or skipped without being applied"
                    if committed.get(partition, -1) > offset
                    else "not committed yet"
                )
            )
        elif committed.get(partition, -1) > offset:
            stage = "committed past, but neither applied, dead-lettered nor emitted"
        elif calls:
            stage = "consumed and extracted, not applied, not committed: still pending"
        else:
            stage = "not committed and never extracted: still pending (stalled?)"
        lines.append(
            f"  {mid} {user} partition {partition} offset {offset}: {stage}; model calls "
            f"{calls}; user's events {len(versions)} (max version {max(versions, default=0)}); "
            f"last stored record version {last.get('version')} applied "
            f"{last.get('applied', {}).get(source)} pending {pending.get('version')}"
        )
    return "\n".join(lines)
