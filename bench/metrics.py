"""Reading the results: percentiles, the decoded profile events of an output topic, the time
from the model's answer to the event, and the per-user order check."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from .topics import Record

__all__ = ["Events", "after_model", "order_violations", "percentile"]


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) by linear interpolation; NaN for no values."""
    if not values:
        return float("nan")
    s = sorted(values)
    pos = (len(s) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


@dataclass
class Events:
    """Decoded profile events of an output topic, with their record timestamps."""

    records: list[Record]
    events: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.events = [orjson.loads(r.value) for r in self.records]

    def first_ts(self) -> float:
        return min(r.timestamp for r in self.records)

    def last_ts(self) -> float:
        return max(r.timestamp for r in self.records)

    def emitted_at(self) -> dict[str, float]:
        """Source message id to the record timestamp of the event that names it first."""
        at: dict[str, float] = {}
        for r, e in zip(self.records, self.events, strict=True):
            for mid in e.get("source_message_ids") or ():
                at.setdefault(mid, r.timestamp)
        return at


def after_model(events: Events, answered: dict[str, float]) -> dict[str, float]:
    """Seconds from the model's answer to the event naming the message (merge, table write,
    changelog flush, event delivery): p50, p95, max over messages."""
    emitted = events.emitted_at()
    gaps = [emitted[mid] - t for mid, t in answered.items() if mid in emitted]
    return {
        "p50_s": percentile(gaps, 0.5),
        "p95_s": percentile(gaps, 0.95),
        "max_s": max(gaps) if gaps else float("nan"),
    }


def order_violations(events: Events, published: dict[str, list[str]]) -> dict[str, Any]:
    """Check every user's events: versions 1, 2, 3... and source messages in publish order.

    ``published`` maps a user id to its message ids in publish order. Events are taken in
    partition offset order (one user's events are on one partition).
    """
    by_user: dict[str, list[dict[str, Any]]] = {}
    for e in events.events:
        by_user.setdefault(e["user_id"], []).append(e)
    version_gaps = out_of_order = repeated = unknown = 0
    examples: list[str] = []
    seen_total: set[str] = set()
    for user, evs in by_user.items():
        versions = [e["version"] for e in evs]
        if versions != list(range(1, len(evs) + 1)):
            version_gaps += 1
            examples.append(f"{user}: versions {versions[:10]}")
        index = {mid: i for i, mid in enumerate(published.get(user, []))}
        last = -1
        seen: set[str] = set()
        for e in evs:
            for mid in e.get("source_message_ids") or ():
                if mid in seen:
                    repeated += 1
                    examples.append(f"{user}: {mid} applied twice")
                    continue
                seen.add(mid)
                i = index.get(mid)
                if i is None:
                    unknown += 1
                    continue
                if i < last:
                    out_of_order += 1
                    examples.append(f"{user}: {mid} after a later message")
                last = max(last, i)
        seen_total |= seen
    expected = {mid for mids in published.values() for mid in mids}
    missing = len(expected - seen_total)
    return {
        "users": len(by_user),
        "events": len(events.events),
        "version_violations": version_gaps,
        "out_of_order": out_of_order,
        "repeated": repeated,
        "unknown_sources": unknown,
        "missing_messages": missing,
        "violations": version_gaps + out_of_order + repeated,
        "examples": examples[:5],
    }
