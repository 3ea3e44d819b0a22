"""The cost and replay scenarios: LoCoMo conversations in bursts (a backlog) with the default
settings, buffered flushes included (model calls and prompt tokens per message), then the
group's offsets reset to 0 and a restarted worker replays them (target: no model call, no new
event)."""

import asyncio
import time
from typing import Any

import orjson

from schemas import ChatMessage
from streams.core.profile_schema import load_profile_schema
from streams.extract.prompt import build_messages

from ..metrics import Events, after_model, order_violations
from ..progress import log
from ..topics import Record, create_topics, producer, publish, read_all, rewind
from ..workers import Worker
from ..workloads import ScriptedModel, locomo_conversations, published_order
from .live import DEFAULT_IDLE_S, named
from .stage import Config, Stage, worker_stats

__all__ = ["cost_and_replay"]


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
            "default settings (buffered flushes)"
        )
        worker = await st.worker(fake.url, max_in_flight=cfg.in_flight, flush_idle_s=DEFAULT_IDLE_S)
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
        # Committed once buffered: the last buffers of each user are flushed once idle.
        ids = {m["message_id"] for m in messages}
        records = await named(st.names.output, ids, DEFAULT_IDLE_S + 60)
        results["cost"] = {
            "conversations": len(conversations),
            "sessions": sum(len(c) for c in conversations),
            **_cost(messages, records, fake, cfg),
            **worker_stats(worker),
        }
        results["replay"] = await _replay(st, cfg, worker, fake, records, n)


def _cost(
    messages: list[dict[str, Any]], records: list[Record], fake: ScriptedModel, cfg: Config
) -> dict[str, Any]:
    """Model calls and prompt tokens per message, against one call per message."""
    n = len(messages)
    events = Events(records)
    calls = len(fake.requests)
    tokens = fake.prompt_tokens()
    one_call = _one_call_tokens(messages)
    log(f"cost: {calls} model calls for {n} messages ({calls / n:.3f} per message)")
    return {
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
        "order": order_violations(events, published_order(messages)),
    }


async def _replay(
    st: Stage, cfg: Config, worker: Worker, fake: ScriptedModel, records: list[Record], n: int
) -> dict[str, Any]:
    """Stop the worker, rewind its group to 0, restart it and compare what it emits again."""
    log("replay: stopping the worker, resetting the group's offsets to 0, restarting")
    peak = worker.sampler.peak_rss_mb if worker.sampler else 0.0
    await worker.terminate()
    before = {orjson.loads(r.value)["event_id"]: r.value for r in records}
    calls_before = len(fake.requests)
    await rewind(st.names.prefix, st.names.input)
    t1 = time.time()
    again = await st.worker(fake.url, max_in_flight=cfg.in_flight, flush_idle_s=DEFAULT_IDLE_S)
    done = await st.until_committed(again, "replay worker")
    await asyncio.sleep(1.0)
    after_records = await read_all(st.names.output)
    new = after_records[len(records) :]
    after = {orjson.loads(r.value)["event_id"]: r.value for r in after_records}
    differing = [eid for eid, v in after.items() if eid in before and before[eid] != v]
    replay = {
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
    log(f"replay: {replay['model_calls']} model calls, {len(new)} new events")
    return replay
