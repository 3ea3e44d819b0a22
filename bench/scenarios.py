"""The benchmark scenarios. Each one runs on its own topics and consumer group, starts its own
worker (``profile-stream worker`` subprocess) and baseline processes, and stops them and
deletes its topics when it ends, also on failure. Each returns a dict of measurements."""

import asyncio
import atexit
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from schemas import ChatMessage
from streams.core.profile_schema import load_profile_schema
from streams.extract.prompt import build_messages

from .measure import (
    BOOTSTRAP,
    Committed,
    Events,
    Names,
    Process,
    Sampler,
    Worker,
    after_model,
    broker_pid,
    create_topics,
    delete_topics,
    end_offsets,
    first_admitted,
    free_port,
    log,
    order_violations,
    percentile,
    producer,
    publish,
    read_all,
    remove_dir,
    rewind,
    workdir,
)
from .workloads import (
    ScriptedModel,
    latency,
    locomo_conversations,
    published_order,
    synthetic,
)


@dataclass(frozen=True)
class Config:
    """Sizes of one run; :func:`config` gives the short and the full one."""

    short: bool
    keep: bool
    plumbing_users: int
    plumbing_per_user: int
    concurrency_users: int
    model_latency_s: float
    in_flight: int
    sequential_window_s: float
    locomo_files: int | None
    locomo_sessions: int | None
    turn_gap_s: float
    session_pause_s: float
    cost_latency: str
    latency_rate: float
    latency_duration_s: float
    latency_users: int
    timeout_s: float
    worker_log_level: str = "warning"


def config(short: bool, keep: bool = False, worker_log_level: str = "warning") -> Config:
    return Config(
        short=short,
        keep=keep,
        worker_log_level=worker_log_level,
        plumbing_users=1000 if short else 2000,
        plumbing_per_user=5 if short else 10,
        concurrency_users=2000,
        model_latency_s=0.5,
        in_flight=64,
        sequential_window_s=10.0 if short else 20.0,
        locomo_files=3 if short else None,
        locomo_sessions=6 if short else None,
        turn_gap_s=0.01,
        session_pause_s=1.0,
        cost_latency="lognormal:0.5:0.5",
        latency_rate=100.0,
        latency_duration_s=10.0 if short else 20.0,
        latency_users=400,
        timeout_s=240.0 if short else 900.0,
    )


_LIVE: list[Process] = []


@atexit.register
def _kill_leftovers() -> None:
    for p in _LIVE:
        p.kill()


class Stage:
    """One scenario's processes, fake models, topics and folder, all released on exit."""

    def __init__(self, scenario: str, cfg: Config) -> None:
        self.names = Names(scenario)
        self.cfg = cfg
        self.dir = workdir(scenario)
        self.procs: list[Process] = []
        self.fakes: list[ScriptedModel] = []
        broker = broker_pid()
        self.system = {
            "bench process (fake model, Kafka clients)": Sampler(os.getpid()),
            "machine (all cores)": Sampler(None),
            **({"kafka broker": Sampler(broker)} if broker else {}),
        }

    async def __aenter__(self) -> "Stage":
        for sampler in self.system.values():
            sampler.start()
        return self

    def cpu_shares(self, worker: Process, start: float, end: float) -> dict[str, float]:
        """Cores' worth of CPU each process used between two wall-clock times."""
        span = max(end - start, 1e-9)
        samplers = {"worker": worker.sampler, **self.system}
        shares = {
            name: round(s.cpu_between(start, end) / span, 3)
            for name, s in samplers.items()
            if s is not None
        }
        ours = sum(v for k, v in shares.items() if not k.startswith("machine"))
        shares["other processes"] = round(max(0.0, shares["machine (all cores)"] - ours), 3)
        return shares

    async def __aexit__(self, *exc: object) -> None:
        for sampler in self.system.values():
            await sampler.stop()
        # A worker stopped mid-run gives its running batches up to 10 s before it exits; after
        # a failure or an interrupt the topics are deleted anyway, so do not wait long.
        for p in self.procs:
            await p.stop(timeout=30.0 if exc[0] is None else 5.0)
            if p in _LIVE:
                _LIVE.remove(p)
        for f in self.fakes:
            await f.stop()
        if self.cfg.keep:
            log(f"kept topics {self.names.prefix}-* and {self.dir}")
            return
        await delete_topics(self.names.prefix)
        if exc[0] is None:
            remove_dir(self.dir)
        else:
            log(f"logs of the failed scenario kept in {self.dir}")

    async def fake(self, spec: str) -> ScriptedModel:
        model = ScriptedModel(latency(spec))
        await model.start()
        self.fakes.append(model)
        return model

    def spawn(self, proc: Process) -> Any:
        self.procs.append(proc)
        _LIVE.append(proc)
        return proc.start()

    async def worker(self, model_url: str, name: str = "worker", **settings: Any) -> Worker:
        env = self.names.worker_env(model_url, log_level=self.cfg.worker_log_level, **settings)
        w = Worker(env, self.dir, name)
        self.spawn(w)
        took = await w.wait_ready()
        log(f"{name} ready in {took:.1f}s (pid {w.pid})")
        return w

    async def until_committed(self, worker: Worker, what: str, group: str = "") -> float:
        ends = await end_offsets(self.names.input)
        async with Committed(group or self.names.prefix, self.names.input) as committed:
            return await committed.wait_for(ends, self.cfg.timeout_s, watch=[worker], progress=what)


def _baseline_env(**values: Any) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BENCH_")}
    env.update({f"BENCH_{k.upper()}": str(v) for k, v in values.items()})
    return env


def _worker_stats(w: Worker) -> dict[str, Any]:
    assert w.sampler is not None
    return {"peak_rss_mb": round(w.sampler.peak_rss_mb, 1)}


# ---------------------------------------------------------------------------------------------
# plumbing

_PASSTHROUGH_RUNS = 3


async def _passthrough(
    st: Stage, cfg: Config, kind: str, source: str, sink: str, n: int
) -> dict[str, Any]:
    """One run of a pass-through baseline (``passthrough`` for raw aiokafka, ``faust`` for a
    plain Faust agent) over ``source`` (from its start) into ``sink``: events/s by the output
    record timestamps, as for the worker."""
    proc = Process(
        [sys.executable, "-m", "bench.baselines", kind],
        _baseline_env(
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
    await proc.stop()
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
        **_worker_stats(worker),
    }
    await worker.stop()
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


# ---------------------------------------------------------------------------------------------
# concurrency


async def concurrency(cfg: Config) -> dict[str, Any]:
    """Model latency L, K in flight, one message per user: vs. K/L and a sequential agent."""
    lat, k = cfg.model_latency_s, cfg.in_flight
    messages = synthetic(cfg.concurrency_users, 1, tag="c")
    n = len(messages)
    async with Stage("concurrency", cfg) as st:
        await create_topics([st.names.input])
        prod = producer()
        await prod.start()
        try:
            await publish(prod, st.names.input, messages)
        finally:
            await prod.stop()
        fake = await st.fake(str(lat))
        log(f"concurrency: worker, {n} users x 1 message, L={lat}s, K={k}, window 0")
        worker = await st.worker(fake.url, max_in_flight=k, coalesce_window_s=0)
        await st.until_committed(worker, "concurrency worker")
        events = Events(await read_all(st.names.output))
        start = min(r["wall"] for r in fake.requests)
        window = events.last_ts() - start
        extractions = len(fake.requests) / window
        events_per_s = len(events.events) / window
        log(
            f"concurrency: worker {extractions:.1f} extractions/s "
            f"(ideal {k / lat:.0f}), peak {fake.peak_in_flight} in flight at the model"
        )
        order = order_violations(events, published_order(messages))
        stats = _worker_stats(worker)
        cpu_cores = st.cpu_shares(worker, start, events.last_ts())
        await worker.stop()

        seq_fake = await st.fake(str(lat))
        log(f"concurrency: sequential Faust agent for {cfg.sequential_window_s:.0f}s")
        seq = Process(
            [sys.executable, "-m", "bench.baselines", "sequential"],
            _baseline_env(
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
        return {
            "users": n,
            "model_latency_s": lat,
            "in_flight": k,
            "extractions": len(fake.requests),
            "output_events": len(events.events),
            "window_s": window,
            "extractions_per_s": extractions,
            "events_per_s": events_per_s,
            "ideal_per_s": k / lat,
            "ratio_ideal": extractions / (k / lat),
            "peak_in_flight_at_model": fake.peak_in_flight,
            "after_model": after_model(events, fake.answered_at()),
            "cpu_cores": cpu_cores,
            "sequential_per_s": seq_rate,
            "sequential_window_s": cfg.sequential_window_s,
            "ratio_sequential": extractions / seq_rate if seq_rate else float("inf"),
            "order": order,
            **stats,
        }


# ---------------------------------------------------------------------------------------------
# cost and replay


def _one_call_tokens(messages: list[dict[str, Any]]) -> int:
    """Prompt tokens (chars / 4) if every message were its own call on an empty profile."""
    schema = load_profile_schema("schemas.profile:UserProfile")
    total = 0
    for m in messages:
        prompt = build_messages(schema.empty(), [ChatMessage.model_validate(m)], schema)
        total += sum(len(p["content"]) for p in prompt) // 4
    return total


async def _publish_sessions(
    prod: Any, topic: str, sessions: list[list[dict[str, Any]]], gap: float, pause: float
) -> dict[str, float]:
    sent: dict[str, float] = {}
    for i, session in enumerate(sessions):
        if i:
            await asyncio.sleep(pause)
        for m in session:
            sent |= await publish(prod, topic, [m])
            await asyncio.sleep(gap)
    return sent


async def cost_and_replay(cfg: Config, results: dict[str, Any]) -> None:
    """LoCoMo in bursts with the default coalescing window; then reset offsets and replay."""
    conversations = locomo_conversations(cfg.locomo_files, cfg.locomo_sessions)
    messages = [m for conv in conversations for s in conv for m in s]
    n = len(messages)
    async with Stage("cost", cfg) as st:
        await create_topics([st.names.input])
        fake = await st.fake(cfg.cost_latency)
        log(
            f"cost: LoCoMo {len(conversations)} conversations, "
            f"{sum(len(c) for c in conversations)} sessions, {n} turns; model {cfg.cost_latency}, "
            "default coalescing window"
        )
        worker = await st.worker(fake.url, max_in_flight=cfg.in_flight)
        prod = producer()
        await prod.start()
        t0 = time.time()
        try:
            await asyncio.gather(
                *(
                    _publish_sessions(
                        prod, st.names.input, conv, cfg.turn_gap_s, cfg.session_pause_s
                    )
                    for conv in conversations
                )
            )
        finally:
            await prod.stop()
        log(f"cost: published in {time.time() - t0:.1f}s")
        await st.until_committed(worker, "cost worker")
        records = await read_all(st.names.output)
        events = Events(records)
        calls = len(fake.requests)
        tokens = fake.prompt_tokens()
        one_call = _one_call_tokens(messages)
        order = order_violations(events, published_order(messages))
        results["cost"] = {
            "conversations": len(conversations),
            "sessions": sum(len(c) for c in conversations),
            "messages": n,
            "model_calls": calls,
            "calls_per_message": calls / n,
            "prompt_tokens": tokens,
            "prompt_tokens_per_message": tokens / n,
            "one_call_prompt_tokens_per_message": one_call / n,
            "ratio_tokens": tokens / one_call,
            "output_events": len(events.events),
            "after_model": after_model(events, fake.answered_at()),
            "model_latency": cfg.cost_latency,
            "order": order,
            **_worker_stats(worker),
        }
        log(f"cost: {calls} model calls for {n} messages ({calls / n:.3f} per message)")

        log("replay: stopping the worker, resetting the group's offsets to 0, restarting")
        peak = worker.sampler.peak_rss_mb if worker.sampler else 0.0
        await worker.stop()
        before = {orjson.loads(r.value)["event_id"]: r.value for r in records}
        calls_before = len(fake.requests)
        await rewind(st.names.prefix, st.names.input)
        t1 = time.time()
        again = await st.worker(fake.url, max_in_flight=cfg.in_flight)
        done = await st.until_committed(again, "replay worker")
        await asyncio.sleep(1.0)
        after_records = await read_all(st.names.output)
        new = after_records[len(records) :]
        after = {orjson.loads(r.value)["event_id"]: r.value for r in after_records}
        differing = [eid for eid, v in after.items() if eid in before and before[eid] != v]
        results["replay"] = {
            "messages": n,
            "model_calls": len(fake.requests) - calls_before,
            "new_events": len(new),
            "new_event_ids_already_emitted": sum(
                1 for r in new if orjson.loads(r.value)["event_id"] in before
            ),
            "differing_bytes_for_same_id": len(differing),
            "identical": not new and not differing,
            "seconds_to_commit_end": done - t1,
            "peak_rss_mb": round(max(peak, again.sampler.peak_rss_mb if again.sampler else 0), 1),
        }
        log(f"replay: {results['replay']['model_calls']} model calls, {len(new)} new events")


# ---------------------------------------------------------------------------------------------
# latency


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
        prod = producer()
        await prod.start()
        sent: dict[str, float] = {}
        futures = []
        try:
            t0 = time.monotonic()
            lag = 0.0
            for i, m in enumerate(messages):
                due = t0 + i / cfg.latency_rate
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                else:
                    lag = max(lag, -wait)
                now_ms = int(time.time() * 1000)
                sent[m["message_id"]] = now_ms / 1000
                futures.append(
                    await prod.send(
                        st.names.input,
                        orjson.dumps(m),
                        key=m["user_id"].encode(),
                        timestamp_ms=now_ms,
                    )
                )
            offered = total / (time.monotonic() - t0)
            await asyncio.gather(*futures)
        finally:
            await prod.stop()
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
            **_worker_stats(worker),
        }
        log(
            f"latency: p50 {result['p50_s']:.3f}s p95 {result['p95_s']:.3f}s "
            f"p99 {result['p99_s']:.3f}s"
        )
        return result


async def run_plumbing(cfg: Config, results: dict[str, Any]) -> None:
    results["plumbing"] = await plumbing(cfg)


async def run_concurrency(cfg: Config, results: dict[str, Any]) -> None:
    results["concurrency"] = await concurrency(cfg)


async def run_latency(cfg: Config, results: dict[str, Any]) -> None:
    results["latency"] = await latency_run(cfg)


ORDER: list[tuple[str, Callable[[Config, dict[str, Any]], Any]]] = [
    ("plumbing", run_plumbing),
    ("concurrency", run_concurrency),
    ("cost", cost_and_replay),
    ("latency", run_latency),
]

__all__ = ["ORDER", "Config", "config"]
