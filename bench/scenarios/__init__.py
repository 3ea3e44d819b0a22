"""The benchmark scenarios, one module each (plumbing, concurrency, cost and replay, latency,
live pace, history, state, publishing, restart after a clean and an unclean stop, scale,
exactly-once beside at-least-once),
and :data:`ORDER`, the order ``bench.run`` runs them in. Each one runs on its own topics and
consumer group, starts its own worker (``profile-stream worker`` subprocess) and baseline
processes, and stops them and deletes its topics when it ends, also on failure (``stage``)."""

from collections.abc import Callable
from typing import Any

from .concurrency import concurrency
from .cost import cost_and_replay
from .guarantee import guarantee_run
from .history import history_run
from .latency import latency_run
from .live import live_pace
from .plumbing import plumbing
from .publishing import publishing_run
from .restart import restart_run
from .scale import scale_run
from .stage import Config, config
from .state import state_run

__all__ = ["ORDER", "Config", "config"]


async def run_plumbing(cfg: Config, results: dict[str, Any]) -> None:
    results["plumbing"] = await plumbing(cfg)


async def run_concurrency(cfg: Config, results: dict[str, Any]) -> None:
    results["concurrency"] = await concurrency(cfg)


async def run_latency(cfg: Config, results: dict[str, Any]) -> None:
    results["latency"] = await latency_run(cfg)


async def run_history(cfg: Config, results: dict[str, Any]) -> None:
    results["history"] = await history_run(cfg)


async def run_state(cfg: Config, results: dict[str, Any]) -> None:
    results["state"] = await state_run(cfg)


ORDER: list[tuple[str, Callable[[Config, dict[str, Any]], Any]]] = [
    ("plumbing", run_plumbing),
    ("concurrency", run_concurrency),
    ("cost", cost_and_replay),
    ("latency", run_latency),
    ("live", live_pace),
    ("history", run_history),
    ("state", run_state),
    ("publishing", publishing_run),
    ("restart", restart_run),
    ("scale", scale_run),
    ("guarantee", guarantee_run),
]
