"""The concurrency scenario: model latency L, K extractions in flight, one message per user;
against the ideal K/L and a sequential Faust agent calling the model once per event."""

import asyncio
import sys
import time
from typing import Any

from tests.support import free_port

from ..metrics import Events, after_model, order_violations
from ..progress import log
from ..topics import BOOTSTRAP, read_all
from ..workers import Baseline
from ..workloads import published_order, synthetic
from .stage import Config, Stage, baseline_env, worker_stats

__all__ = ["concurrency"]


async def concurrency(cfg: Config) -> dict[str, Any]:
    """Model latency L, K in flight, one message per user: vs. K/L and a sequential agent."""
    lat, k = cfg.model_latency_s, cfg.in_flight
    messages = synthetic(cfg.concurrency_users, 1, tag="c")
    n = len(messages)
    async with Stage("concurrency", cfg) as st:
        await st.preload(messages)
        fake = await st.fake(str(lat))
        log(f"concurrency: worker, {n} users x 1 message, L={lat}s, K={k}, window 0")
        worker = await st.worker(fake.url, max_in_flight=k, coalesce_window_s=0)
        await st.until_committed(worker, "concurrency worker")
        events = Events(await read_all(st.names.output))
        start = min(r["wall"] for r in fake.requests)
        window = events.last_ts() - start
        extractions = len(fake.requests) / window
        log(
            f"concurrency: worker {extractions:.1f} extractions/s "
            f"(ideal {k / lat:.0f}), peak {fake.peak_in_flight} in flight at the model"
        )
        result = {
            "users": n,
            "model_latency_s": lat,
            "in_flight": k,
            "extractions": len(fake.requests),
            "output_events": len(events.events),
            "window_s": window,
            "extractions_per_s": extractions,
            "events_per_s": len(events.events) / window,
            "ideal_per_s": k / lat,
            "ratio_ideal": extractions / (k / lat),
            "peak_in_flight_at_model": fake.peak_in_flight,
            "after_model": after_model(events, fake.answered_at()),
            "cpu_cores": st.cpu_shares(worker, start, events.last_ts()),
        }
        order = order_violations(events, published_order(messages))
        stats = worker_stats(worker)
        await worker.terminate()
        seq_rate = await _sequential(st, cfg)
        return {
            **result,
            "sequential_per_s": seq_rate,
            "sequential_window_s": cfg.sequential_window_s,
            "ratio_sequential": extractions / seq_rate if seq_rate else float("inf"),
            "order": order,
            **stats,
        }


async def _sequential(st: Stage, cfg: Config) -> float:
    """Model calls per second of the sequential Faust agent over the same input, counted for
    ``cfg.sequential_window_s`` from its first call."""
    seq_fake = await st.fake(str(cfg.model_latency_s))
    log(f"concurrency: sequential Faust agent for {cfg.sequential_window_s:.0f}s")
    seq = Baseline(
        [sys.executable, "-m", "bench.baselines", "sequential"],
        baseline_env(
            bootstrap=BOOTSTRAP,
            input=st.names.input,
            group=f"{st.names.prefix}-sequential",
            model_url=seq_fake.url,
            data_dir=st.dir / "sequential-data",
            web_port=free_port(),
        ),
        st.dir / "sequential.log",
    )
    st.spawn(seq)
    deadline = time.monotonic() + 120
    while not seq_fake.requests:
        seq.check()
        if time.monotonic() > deadline:
            raise RuntimeError(f"sequential agent made no model call:\n{seq.tail()}")
        await asyncio.sleep(0.1)
    first = seq_fake.requests[0]["wall"]
    await asyncio.sleep(cfg.sequential_window_s)
    seq.check()
    done = sum(1 for r in seq_fake.requests if r["wall"] <= first + cfg.sequential_window_s)
    seq_rate = done / cfg.sequential_window_s
    log(f"concurrency: sequential agent {seq_rate:.2f} calls/s")
    return seq_rate
