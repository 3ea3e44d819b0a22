"""The results table of ``bench.run``: each scenario's rows, the rows over all of them, and
the table as text."""

from collections.abc import Callable
from typing import Any

from bench.scenarios import Config

from .cells import fmt, row
from .state import (
    guarantee_rows,
    history_rows,
    publishing_rows,
    restart_rows,
    scale_rows,
    state_rows,
)
from .throughput import (
    concurrency_rows,
    cost_rows,
    latency_rows,
    live_rows,
    plumbing_rows,
    replay_rows,
)

__all__ = ["render", "table"]


def _summary_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows over all scenarios: per-user order, peak RSS, and the failed scenarios."""
    rows: list[dict[str, Any]] = []
    orders = {
        name: res["order"]
        for name, res in results.items()
        if isinstance(res, dict) and isinstance(res.get("order"), dict)
    }
    if orders:
        total = sum(o["violations"] for o in orders.values())
        missing = sum(o["missing_messages"] for o in orders.values())
        users = sum(o["users"] for o in orders.values())
        rows.append(
            row(
                f"per-user order violations ({len(orders)} runs, {users:,} users; "
                f"{missing} messages without an event)",
                total,
                target="0",
                ok=total == 0 and missing == 0,
            )
        )
    rss = {
        name: res["peak_rss_mb"]
        for name, res in results.items()
        if isinstance(res, dict) and "peak_rss_mb" in res
    }
    if rss:
        worst = max(rss, key=lambda n: rss[n])
        rows.append(row(f"worker peak RSS MiB (max, in {worst})", rss[worst]))
    for name, res in results.items():
        if isinstance(res, dict) and "error" in res:
            rows.append(row(f"{name}: FAILED", res["error"].splitlines()[-1][:80], ok=False))
    return rows


#: Each scenario's rows, made when its result holds the key a finished run has.
_ROWS: list[tuple[str, str, Callable[[dict[str, Any]], list[dict[str, Any]]]]] = [
    ("plumbing", "ratio", plumbing_rows),
    ("concurrency", "ratio_ideal", concurrency_rows),
    ("cost", "calls_per_message", cost_rows),
    ("replay", "model_calls", replay_rows),
    ("latency", "p50_s", latency_rows),
    ("live", "buffered", live_rows),
    ("history", "bound", history_rows),
    ("state", "message_bytes", state_rows),
    ("publishing", "plaintext", publishing_rows),
    ("restart", "10000", restart_rows),  # every run restarts 10,000 profiles
    ("scale", "done", scale_rows),
    ("guarantee", "exactly_once", guarantee_rows),
]


def table(results: dict[str, Any], cfg: Config) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for name, finished, make_rows in _ROWS:
        result = results.get(name)
        if isinstance(result, dict) and finished in result:
            rows.extend(make_rows(result))
    rows.extend(_summary_rows(results))
    return rows


def render(rows: list[dict[str, Any]]) -> str:
    head = ["", "measured", "baseline", "ratio", "target", ""]
    body = [
        [
            r["row"],
            fmt(r["measured"]),
            fmt(r["baseline"]),
            fmt(r["ratio"]),
            r["target"],
            {True: "ok", False: "MISSED", None: ""}[r["ok"]],
        ]
        for r in rows
    ]
    widths = [max(len(line[i]) for line in [head, *body]) for i in range(len(head))]
    lines = []
    for i, line in enumerate([head, *body]):
        cells = [
            cell.ljust(widths[j]) if j == 0 else cell.rjust(widths[j])
            for j, cell in enumerate(line)
        ]
        lines.append("  ".join(cells).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
