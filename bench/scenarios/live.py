"""The live-pace scenario: LoCoMo sessions replayed in compressed real time, each turn a few
seconds after the last (lognormal gaps), the same traffic published to two workers side by
side: one extracting every batch as it comes (``FLUSH_IDLE_S=0``, the coalescing window only:
the behaviour before buffers) and one with buffered flushes at the default settings.

For each: model calls and prompt tokens per message, and freshness, the time from a message's
publication to the profile event that names it (p50, p95)."""

import asyncio
import contextlib
import math
import os
import random
import time
from typing import Any

from streams.settings import Settings

from ..metrics import Events, order_violations, percentile
from ..progress import log
from ..topics import create_topics, producer, publish, read_all
from ..workloads import ScriptedModel, locomo_conversations, published_order
from .stage import Config, Stage, worker_stats

__all__ = ["DEFAULT_IDLE_S", "live_pace", "named"]

#: The buffered worker's settings: the release's defaults, read from the settings model.
DEFAULT_IDLE_S = float(Settings.model_fields["flush_idle_s"].default)


def _sessions(cfg: Config) -> list[list[dict[str, Any]]]:
    """The replayed sessions, each cut to ``live_turns`` turns, one conversation per file."""
    conversations = locomo_conversations(cfg.live_files, cfg.live_sessions)
    return [session[: cfg.live_turns] for conv in conversations for session in conv]


async def _replay(
    topics: list[str], sessions: list[list[dict[str, Any]]], cfg: Config
) -> dict[str, float]:
    """Publish each session's turns to every topic at once, a lognormal gap apart; sessions of
    one conversation follow each other after a pause longer than the idle setting."""
    prod = producer()
    await prod.start()
    sent: dict[str, float] = {}
    rng = random.Random(20261202)

    async def play(session: list[dict[str, Any]], delay: float) -> None:
        await asyncio.sleep(delay)
        for m in session:
            for topic in topics:
                for mid, at in (await publish(prod, topic, [m])).items():
                    sent.setdefault(mid, at)
            await asyncio.sleep(rng.lognormvariate(*cfg.live_gap))

    try:
        # Sessions of one file come one after the other; files play at the same time.
        starts: dict[str, float] = {}
        plays = []
        for session in sessions:
            stem = session[0]["conversation_id"].rsplit("-session_", 1)[0]
            plays.append(play(session, starts.get(stem, 0.0)))
            length = len(session) * 2 * _median(cfg.live_gap)
            starts[stem] = starts.get(stem, 0.0) + length + DEFAULT_IDLE_S + 5
        await asyncio.gather(*plays)
    finally:
        await prod.stop()
    return sent


def _median(gap: tuple[float, float]) -> float:
    return math.exp(gap[0])


async def named(topic: str, ids: set[str], timeout: float) -> list[Any]:
    """The output records once every id in ``ids`` is named by an event (or at ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        records = await read_all(topic)
        if ids <= set(Events(records).emitted_at()) or time.monotonic() > deadline:
            return records
        await asyncio.sleep(1.0)


def _measure(
    records: list[Any], sent: dict[str, float], fake: ScriptedModel, messages: list[dict[str, Any]]
) -> dict[str, Any]:
    events = Events(records)
    at = events.emitted_at()
    fresh = [at[mid] - ts for mid, ts in sent.items() if mid in at]
    model = [r["answered"] - r["wall"] for r in fake.requests if "answered" in r]
    n = len(messages)
    return {
        "messages": n,
        "named": len(fresh),
        "model_calls": len(fake.requests),
        "calls_per_message": len(fake.requests) / n,
        "prompt_tokens_per_message": fake.prompt_tokens() / n,
        "fresh_p50_s": percentile(fresh, 0.5),
        "fresh_p95_s": percentile(fresh, 0.95),
        "fresh_max_s": max(fresh) if fresh else float("nan"),
        "model_p95_s": percentile(model, 0.95),
        "order": order_violations(events, published_order(messages)),
    }


def _settle(
    records: list[Any], sessions: list[list[dict[str, Any]]], sent: dict[str, float]
) -> list[float]:
    """Per user and session: seconds from the user's last message of the session to the event
    naming it (how long a conversation that went quiet waits for its profile)."""
    at = Events(records).emitted_at()
    lasts: dict[tuple[str, str], str] = {}
    for session in sessions:
        for m in session:
            lasts[(m["user_id"], m["conversation_id"])] = m["message_id"]
    return [at[mid] - sent[mid] for mid in lasts.values() if mid in at and mid in sent]


def _idles() -> list[float]:
    """The buffered workers' idle settings: the default, and any given in BENCH_LIVE_IDLES
    (comma-separated seconds) to compare against it in the same run."""
    extra = [float(x) for x in os.environ.get("BENCH_LIVE_IDLES", "").split(",") if x.strip()]
    return [DEFAULT_IDLE_S, *sorted(set(extra) - {DEFAULT_IDLE_S})]


async def live_pace(cfg: Config, results: dict[str, Any]) -> None:
    """The unbuffered worker and the buffered ones on the same live traffic, in the same run."""
    sessions = _sessions(cfg)
    messages = [m for s in sessions for m in s]
    idles = _idles()
    async with contextlib.AsyncExitStack() as stack:
        lanes: dict[str, tuple[Stage, ScriptedModel, Any]] = {}
        for name, idle in [("unbuffered", 0.0), *((f"idle {i:g}s", i) for i in idles)]:
            st = await stack.enter_async_context(Stage(f"live-{len(lanes)}", cfg))
            await create_topics([st.names.input])
            fake = await st.fake(cfg.cost_latency)
            lanes[name] = (st, fake, await st.worker(fake.url, flush_idle_s=idle))
        log(
            f"live: {len(sessions)} LoCoMo sessions, {len(messages)} turns, gaps lognormal "
            f"median {_median(cfg.live_gap):.1f}s; model {cfg.cost_latency}; workers side by "
            f"side: {', '.join(lanes)}"
        )
        t0 = time.time()
        sent = await _replay([st.names.input for st, _, _ in lanes.values()], sessions, cfg)
        log(f"live: published in {time.time() - t0:.0f}s; waiting for the last flushes")
        ids = {m["message_id"] for m in messages}
        outputs = await asyncio.gather(
            *(named(st.names.output, ids, max(idles) + 60) for st, _, _ in lanes.values())
        )
        measured = {}
        for (name, (_, fake, worker)), records in zip(lanes.items(), outputs, strict=True):
            settle = _settle(records, sessions, sent)
            measured[name] = _measure(records, sent, fake, messages) | worker_stats(worker)
            measured[name] |= {
                "settle_p50_s": percentile(settle, 0.5),
                "settle_p95_s": percentile(settle, 0.95),
            }
            r = measured[name]
            log(
                f"live {name}: {r['calls_per_message']:.3f} calls/message, freshness p50 "
                f"{r['fresh_p50_s']:.1f}s p95 {r['fresh_p95_s']:.1f}s, after the last message "
                f"p95 {r['settle_p95_s']:.1f}s"
            )
    default = f"idle {DEFAULT_IDLE_S:g}s"
    results["live"] = {
        "idle_s": DEFAULT_IDLE_S,
        "sessions": len(sessions),
        "unbuffered": measured["unbuffered"],
        "buffered": measured[default],
        "sweep": {k: v for k, v in measured.items() if k not in ("unbuffered", default)},
        "order": measured[default]["order"],
    }
