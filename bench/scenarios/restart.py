"""Restart: what it costs that a worker restores its tables from the changelog after an
unclean stop instead of trusting its local stores (docs/operations.md, "After an unclean stop").

For each size, N profile records are put in the changelog directly: a typical record after its
first extraction (the history scenario's ``typical`` values), encoded with the project's own
encoder and partitioned as the worker's table is, so no model is involved. Then one worker,
under a static instance id and one address, starts on one data dir: once to restore the N
records (its first start), again after a clean stop (SIGTERM: the stores are kept and only the
changelog's tail is read), and again after a kill -9 (the stores are wiped and all N restored).
Time to ready is from the process start to ``/readyz`` answering 200, so it includes the
interpreter's start and the group join, which the clean restart shows alone.
"""

import time
from typing import Any

from ..progress import log
from ..workers import Worker
from .scale import preload
from .stage import Config, Stage

__all__ = ["restart_run"]


async def _start(
    stage: Stage, env: dict[str, str], port: int | None = None
) -> tuple[Worker, float]:
    worker = Worker(env, stage.dir, "restart", port)
    stage.spawn(worker)
    return worker, await worker.wait_ready(timeout=stage.cfg.timeout_s)


async def _restarts(cfg: Config, count: int) -> dict[str, Any]:
    async with Stage("restart", cfg) as stage:
        model = await stage.fake("0")
        first = await stage.worker(model.url, "restart", group_instance_id="restart")
        env, port = first.env, first.port
        await first.terminate()  # the topics exist now; the changelog is empty
        started = time.monotonic()
        sent = await preload(f"{stage.names.prefix}-profiles-changelog", count)
        took = time.monotonic() - started
        log(f"{count:,} records ({sent / 1e6:.0f} MB) preloaded in {took:.0f}s")
        worker, restore_s = await _start(stage, env, port)
        log(f"restored {count:,} records: ready in {restore_s:.1f}s")
        await worker.terminate()
        worker, clean_s = await _start(stage, env, port)
        log(f"after a clean stop: ready in {clean_s:.1f}s")
        worker.kill()
        await worker.wait_exit(30)
        worker, unclean_s = await _start(stage, env, port)
        log(f"after kill -9: ready in {unclean_s:.1f}s")
        return {
            "records": count,
            "changelog_mb": round(sent / 1e6, 1),
            "first_start_s": round(restore_s, 2),
            "clean_s": round(clean_s, 2),
            "unclean_s": round(unclean_s, 2),
            "ratio": round(unclean_s / clean_s, 2),
            "restore_mb_per_s": round(sent / 1e6 / max(unclean_s - clean_s, 1e-3), 1),
        }


async def restart_run(cfg: Config, results: dict[str, Any]) -> None:
    """Time to ready after a clean and an unclean stop, at 10k (and, in the full run, 100k)
    profiles."""
    sizes = (10_000,) if cfg.short else (10_000, 100_000)
    results["restart"] = {str(n): await _restarts(cfg, n) for n in sizes}
