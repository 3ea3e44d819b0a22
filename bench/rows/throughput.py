"""Rows of the throughput scenarios: plumbing, concurrency, cost, replay, latency, live pace."""

from typing import Any

from .cells import fmt, row

__all__ = [
    "plumbing_rows",
    "concurrency_rows",
    "cost_rows",
    "replay_rows",
    "latency_rows",
    "live_rows",
]


def plumbing_rows(p: dict[str, Any]) -> list[dict[str, Any]]:
    raw = f"{fmt(p['passthrough_events_per_s'])} aiokafka pass-through"
    raw_cpu = p["passthrough_cpu_s_per_1000"]
    faust = p["faust_passthrough"]
    rows = [
        row(
            f"plumbing: plain Faust agent pass-through ({p['events']:,} events)",
            faust["events_per_s"],
            raw,
            p["faust_ratio"],
        )
    ]
    runs = [
        ("coalescing off, 1 call/message", p["one_call_per_message"], p["ratio"]),
        (
            f"default settings, {p['default_window']['model_calls_per_message']:.2f} calls/message",
            p["default_window"],
            p["ratio_default_window"],
        ),
    ]
    for label, run, ratio in runs:
        rows.append(
            row(
                f"plumbing: events/s, model 0 s, {label}",
                run["events_per_s"],
                raw,
                ratio,
                ">= 0.3",
                ratio >= 0.3,
            )
        )
        rows.append(
            row(
                "plumbing: worker CPU s per 1,000 events, same run",
                run["cpu_s_per_1000"],
                f"{fmt(raw_cpu)} pass-through",
                run["cpu_s_per_1000"] / raw_cpu if raw_cpu else None,
                "<= 1.0 s",
                run["cpu_s_per_1000"] <= 1.0,
            )
        )
    rows.append(
        row(
            "plumbing: default settings vs. the plain Faust agent",
            p["default_window"]["events_per_s"],
            f"{fmt(faust['events_per_s'])} Faust pass-through",
            p["default_window"]["events_per_s"] / faust["events_per_s"],
        )
    )
    return rows


def concurrency_rows(c: dict[str, Any]) -> list[dict[str, Any]]:
    """The concurrency rows: against K/L and against the sequential agent."""
    rows: list[dict[str, Any]] = []
    rows.append(
        row(
            f"concurrency: extractions/s, L={c['model_latency_s']} s, "
            f"K={c['in_flight']}, {c['users']:,} users",
            c["extractions_per_s"],
            f"{fmt(c['ideal_per_s'])} ideal K/L",
            c["ratio_ideal"],
            ">= 0.8",
            c["ratio_ideal"] >= 0.8,
        )
    )
    rows.append(
        row(
            "concurrency: extractions/s vs. sequential Faust agent",
            c["extractions_per_s"],
            f"{fmt(c['sequential_per_s'])} sequential",
            c["ratio_sequential"],
            ">= 20",
            c["ratio_sequential"] >= 20,
        )
    )
    rows.append(row("concurrency: profile events/s", c["events_per_s"]))
    return rows


def cost_rows(k: dict[str, Any]) -> list[dict[str, Any]]:
    """The cost rows: model calls and prompt tokens per message."""
    rows: list[dict[str, Any]] = []
    rows.append(
        row(
            f"cost: model calls/message, LoCoMo {k['messages']:,} turns "
            f"in {k['sessions']} sessions",
            k["calls_per_message"],
            "1.00 one call per message",
            k["calls_per_message"],
            "<= 0.5",
            k["calls_per_message"] <= 0.5,
        )
    )
    rows.append(
        row(
            "cost: prompt tokens/message",
            k["prompt_tokens_per_message"],
            f"{fmt(k['one_call_prompt_tokens_per_message'])} one call per message",
            k["ratio_tokens"],
        )
    )
    return rows


def replay_rows(r: dict[str, Any]) -> list[dict[str, Any]]:
    """The replay rows: model calls and new events after an offset reset."""
    rows: list[dict[str, Any]] = []
    rows.append(
        row(
            f"replay after offset reset: model calls ({r['messages']:,} messages)",
            r["model_calls"],
            target="0",
            ok=r["model_calls"] == 0,
        )
    )
    rows.append(
        row(
            "replay: new events / same ids and bytes",
            f"{r['new_events']} / {fmt(r['identical'])}",
            target="0 / yes",
            ok=r["identical"],
        )
    )
    return rows


def latency_rows(lt: dict[str, Any]) -> list[dict[str, Any]]:
    """The latency row: p50/p95/p99 against window + L."""
    rows: list[dict[str, Any]] = []
    floor = lt["model_latency_s"] + lt["coalesce_window_s"]
    rows.append(
        row(
            f"latency p50/p95/p99 s, {lt['offered_per_s']:.0f} events/s offered, "
            f"L={lt['model_latency_s']} s, window {lt['coalesce_window_s']} s",
            f"{lt['p50_s']:.2f} / {lt['p95_s']:.2f} / {lt['p99_s']:.2f}",
            f"{floor:.2f} window + L",
            lt["p50_s"] / floor,
        )
    )
    return rows


def live_rows(lv: dict[str, Any]) -> list[dict[str, Any]]:
    """The live-pace rows: buffered flushes against extracting each batch as it comes."""
    now, buf = lv["unbuffered"], lv["buffered"]
    bound = lv["idle_s"] + buf["model_p95_s"] + 1.0
    return [
        row(
            f"live pace: model calls/message, {buf['messages']} LoCoMo turns "
            f"~2 s apart, idle {lv['idle_s']:g} s",
            buf["calls_per_message"],
            f"{fmt(now['calls_per_message'])} unbuffered",
            buf["calls_per_message"] / now["calls_per_message"],
            "<= 0.15",
            buf["calls_per_message"] <= 0.15,
        ),
        row(
            "live pace: prompt tokens/message",
            buf["prompt_tokens_per_message"],
            f"{fmt(now['prompt_tokens_per_message'])} unbuffered",
            buf["prompt_tokens_per_message"] / now["prompt_tokens_per_message"],
        ),
        row(
            "live pace: freshness p50 / p95 s (publish to event)",
            f"{buf['fresh_p50_s']:.1f} / {buf['fresh_p95_s']:.1f}",
            f"{now['fresh_p50_s']:.1f} / {now['fresh_p95_s']:.1f} unbuffered",
        ),
        row(
            "live pace: after a user's last message, p50 / p95 s to its event",
            f"{buf['settle_p50_s']:.1f} / {buf['settle_p95_s']:.1f}",
            f"{now['settle_p50_s']:.1f} / {now['settle_p95_s']:.1f} unbuffered",
            None,
            f"p95 <= {bound:.1f} (idle + model p95 + 1)",
            buf["settle_p95_s"] <= bound and buf["named"] == buf["messages"],
        ),
        *(
            row(
                f"live pace, {name}: calls/message, freshness p95, after last p95",
                f"{r['calls_per_message']:.3f}, {r['fresh_p95_s']:.1f}, {r['settle_p95_s']:.1f}",
            )
            for name, r in lv.get("sweep", {}).items()
        ),
    ]
