"""The latency scenario: an open-loop producer at a fixed rate over many users, and the time
from each message's publication to the profile event that names it."""

import asyncio
import time
from typing import Any

import orjson

from ..metrics import Events, after_model, order_violations, percentile
from ..progress import log
from ..topics import create_topics, producer, read_all
from ..workloads import published_order, synthetic
from .stage import Config, Stage, worker_stats

__all__ = ["latency_run"]


async def latency_run(cfg: Config) -> dict[str, Any]:
    """Open-loop producer at a fixed rate; publish-to-event latency per message."""
    lat = cfg.model_latency_s
    total = int(cfg.latency_rate * cfg.latency_duration_s)
    per_user = -(-total // cfg.latency_users)
    messages = synthetic(cfg.latency_users, per_user, tag="l")[:total]
    async with Stage("latency", cfg) as st:
        await create_topics([st.names.input])
        fake = await st.fake(str(lat))
        worker = await st.worker(fake.url, max_in_flight=cfg.in_flight)
        window = 0.5  # the default PROFILE_STREAM_COALESCE_WINDOW_S, left as is
        log(
            f"latency: {cfg.latency_rate:.0f} events/s for {cfg.latency_duration_s:.0f}s over "
            f"{cfg.latency_users} users, L={lat}s, default coalescing window"
        )
        sent, offered, lag = await _open_loop(st.names.input, messages, cfg.latency_rate)
        await st.until_committed(worker, "latency worker")
        events = Events(await read_all(st.names.output))
        at = events.emitted_at()
        lats = [at[mid] - ts for mid, ts in sent.items() if mid in at]
        asked = fake.asked_at()
        waits = [asked[mid] - ts for mid, ts in sent.items() if mid in asked]
        result = {
            "messages": total,
            "users": cfg.latency_users,
            "offered_per_s": offered,
            "max_send_lag_s": lag,
            "model_latency_s": lat,
            "coalesce_window_s": window,
            "answered": len(lats),
            "p50_s": percentile(lats, 0.50),
            "p95_s": percentile(lats, 0.95),
            "p99_s": percentile(lats, 0.99),
            "max_s": max(lats) if lats else float("nan"),
            "model_calls": len(fake.requests),
            "peak_in_flight_at_model": fake.peak_in_flight,
            "before_model": {
                "p50_s": percentile(waits, 0.5),
                "p95_s": percentile(waits, 0.95),
                "max_s": max(waits) if waits else float("nan"),
            },
            "after_model": after_model(events, fake.answered_at()),
            "cpu_cores": st.cpu_shares(worker, min(sent.values()), events.last_ts()),
            "order": order_violations(events, published_order(messages)),
            **worker_stats(worker),
        }
        log(
            f"latency: p50 {result['p50_s']:.3f}s p95 {result['p95_s']:.3f}s "
            f"p99 {result['p99_s']:.3f}s"
        )
        return result


async def _open_loop(
    topic: str, messages: list[dict[str, Any]], rate: float
) -> tuple[dict[str, float], float, float]:
    """Send ``messages`` on a fixed schedule of ``rate`` per second, whatever the worker does.

    Returns the send time of each message id, the rate offered, and the most a send fell
    behind its schedule (seconds)."""
    prod = producer()
    await prod.start()
    sent: dict[str, float] = {}
    futures = []
    try:
        t0 = time.monotonic()
        lag = 0.0
        for i, m in enumerate(messages):
            due = t0 + i / rate
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            else:
                lag = max(lag, -wait)
            now_ms = int(time.time() * 1000)
            sent[m["message_id"]] = now_ms / 1000
            futures.append(
                await prod.send(
                    topic, orjson.dumps(m), key=m["user_id"].encode(), timestamp_ms=now_ms
                )
            )
        offered = len(messages) / (time.monotonic() - t0)
        await asyncio.gather(*futures)
    finally:
        await prod.stop()
    return sent, offered, lag
