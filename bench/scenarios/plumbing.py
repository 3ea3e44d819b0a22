"""The plumbing scenario: a zero-latency model, the worker over a preloaded backlog with
coalescing off and with the default settings, against raw aiokafka and plain Faust
pass-through of the same events."""

import asyncio
import sys
from typing import Any

import orjson

from tests.support import free_port

from ..metrics import Events, after_model, order_violations
from ..progress import log
from ..topics import BOOTSTRAP, create_topics, producer, publish, read_all
from ..workers import Baseline, first_admitted
from ..workloads import published_order, synthetic
from .stage import Config, Stage, baseline_env, worker_stats

__all__ = ["plumbing"]


_PASSTHROUGH_RUNS = 3


async def _passthrough(
    st: Stage, cfg: Config, kind: str, source: str, sink: str, n: int
) -> dict[str, Any]:
    """One run of a pass-through baseline (``passthrough`` for raw aiokafka, ``faust`` for a
    plain Faust agent) over ``source`` (from its start) into ``sink``: events/s by the output
    record timestamps, as for the worker."""
    proc = Baseline(
        [sys.executable, "-m", "bench.baselines", kind],
        baseline_env(
            bootstrap=BOOTSTRAP,
            input=source,
            output=sink,
            group=f"{sink}-group",
            count=n,
            data_dir=st.dir / f"{sink}-data",
            web_port=free_port(),
        ),
        st.dir / f"{sink}.log",
    )
    st.spawn(proc)
    await proc.wait_exit(cfg.timeout_s)
    await proc.terminate()
    assert proc.proc is not None
    if proc.proc.returncode != 0:
        raise RuntimeError(f"{kind} pass-through failed:\n{proc.tail()}")
    own = orjson.loads(proc.tail(1))
    out = Events(await read_all(sink))
    window = out.last_ts() - out.first_ts()
    return {
        "events_per_s": n / window,
        "window_s": window,
        "self_timed_events_per_s": own["events"] / own["seconds"],
        "cpu_s_per_1000": own["cpu_s"] / n * 1000,
    }


async def _plumbing_worker(
    st: Stage, cfg: Config, messages: list[dict[str, Any]], suffix: str, coalescing: bool
) -> dict[str, Any]:
    """A worker on its own app id and output topic over the preloaded input, to the end:
    with the default coalescing settings, or with coalescing off (one call per message)."""
    fake = await st.fake("0")
    app_id = f"{st.names.prefix}-{suffix}"
    what = "default coalescing" if coalescing else "coalescing off"
    log(f"plumbing: worker, zero-latency model, {what}")
    off = {} if coalescing else {"coalesce_window_s": 0, "catch_up_window_s": 0}
    worker = await st.worker(
        fake.url,
        name=f"worker-{suffix}",
        app_id=app_id,
        output_topic=f"{app_id}-updated",
        dlq_topic=f"{app_id}-dlq",
        max_in_flight=cfg.in_flight,
        **off,
    )
    started = asyncio.create_task(first_admitted(worker))
    await st.until_committed(worker, f"plumbing worker ({what})", group=app_id)
    first_in = await started
    events = Events(await read_all(f"{app_id}-updated"))
    # From the first event in, not the first out: with the catch-up window the worker reads
    # the backlog for a while before it answers.
    window = events.last_ts() - first_in
    profile = await st.profile(worker)
    assert worker.sampler is not None
    cpu = worker.sampler.cpu_between(first_in, events.last_ts())
    n = len(messages)
    log(
        f"plumbing: worker {n / window:,.0f} events/s, {len(fake.requests)} model calls, "
        f"{cpu / n * 1000:.2f} CPU s per 1,000 events"
    )
    result = {
        "coalescing": coalescing,
        "events_per_s": n / window,
        "window_s": window,
        "first_output_after_s": events.first_ts() - first_in,
        "cpu_s": cpu,
        "cpu_s_per_1000": cpu / n * 1000,
        "cpu_share": cpu / window,
        "model_calls": len(fake.requests),
        "model_calls_per_message": len(fake.requests) / n,
        "output_events": len(events.events),
        "after_model": after_model(events, fake.answered_at()),
        "cpu_cores": st.cpu_shares(worker, first_in, events.last_ts()),
        "order": order_violations(events, published_order(messages)),
        **worker_stats(worker),
        **({"profile": profile} if profile else {}),
    }
    await worker.terminate()
    return result


def _sum_orders(*orders: dict[str, Any]) -> dict[str, Any]:
    """Order checks of several runs as one: counts added, examples kept."""
    total: dict[str, Any] = {"examples": [e for o in orders for e in o["examples"]][:5]}
    for key in orders[0]:
        if key != "examples":
            total[key] = sum(o[key] for o in orders)
    return total


async def plumbing(cfg: Config) -> dict[str, Any]:
    """Zero-latency model: input events/s through the worker over a preloaded backlog, with
    coalescing off (one model call per message) and with the default settings, vs. raw aiokafka
    and plain Faust pass-through of the same events."""
    messages = synthetic(cfg.plumbing_users, cfg.plumbing_per_user, tag="p")
    n = len(messages)
    async with Stage("plumbing", cfg) as st:
        raw_in = f"{st.names.prefix}-raw-in"
        raw_outs = [f"{st.names.prefix}-raw-out-{i}" for i in range(_PASSTHROUGH_RUNS)]
        faust_out = f"{st.names.prefix}-faust-out"
        await create_topics([st.names.input, raw_in, faust_out, *raw_outs])
        log(f"plumbing: publishing {n} events ({cfg.plumbing_users} users) to both inputs")
        prod = producer()
        await prod.start()
        try:
            sent = await publish(prod, st.names.input, messages)
            await publish(prod, raw_in, messages)
        finally:
            await prod.stop()
        runs = [await _passthrough(st, cfg, "passthrough", raw_in, out, n) for out in raw_outs]
        raw = sorted(runs, key=lambda r: r["events_per_s"])[len(runs) // 2]
        raw_rate = raw["events_per_s"]
        log(
            "plumbing: pass-through "
            + ", ".join(f"{r['events_per_s']:,.0f}" for r in runs)
            + f" events/s; median {raw_rate:,.0f}"
        )
        faust = await _passthrough(st, cfg, "faust", raw_in, faust_out, n)
        log(f"plumbing: plain Faust agent pass-through {faust['events_per_s']:,.0f} events/s")
        single = await _plumbing_worker(st, cfg, messages, "w0", coalescing=False)
        default = await _plumbing_worker(st, cfg, messages, "wd", coalescing=True)
        return {
            "events": n,
            "users": cfg.plumbing_users,
            "published": len(sent),
            "one_call_per_message": single,
            "default_window": default,
            "passthrough_events_per_s": raw_rate,
            "passthrough_cpu_s_per_1000": raw["cpu_s_per_1000"],
            "passthrough_runs": runs,
            "faust_passthrough": faust,
            "ratio": single["events_per_s"] / raw_rate,
            "ratio_default_window": default["events_per_s"] / raw_rate,
            "faust_ratio": faust["events_per_s"] / raw_rate,
            "order": _sum_orders(single["order"], default["order"]),
            "peak_rss_mb": max(single["peak_rss_mb"], default["peak_rss_mb"]),
        }
