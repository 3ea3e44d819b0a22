"""``python -m bench.run [--short] [--only a,b] [--keep]``: run the benchmarks on the local stack,
print a table of ratios against baselines measured in the same run, and write every number to
``bench/results/<timestamp>.json``. See bench/README.md."""

import argparse
import asyncio
import os
import platform
import signal
import subprocess
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from .profiling import plumbing_profiles, summary
from .progress import log
from .rows import render, table
from .scenarios import ORDER, Config, config

__all__ = ["RESULTS_DIR", "main", "main_async", "render", "table"]

RESULTS_DIR = Path(__file__).resolve().parent / "results"
_SCENARIOS = [name for name, _ in ORDER]
#: Run only when named in ``--only``: scale preloads 100k (full: 1M) profiles, 0.5 (5) GB of
#: changelog, and takes 4 (full: about 50) minutes here.
_ON_REQUEST = ("scale",)


def _git(*args: str) -> str:
    try:
        out = subprocess.run(
            ["git", *args],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent,
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


async def main_async(cfg: Config, only: list[str]) -> dict[str, Any]:
    # SIGTERM cancels the run like Ctrl-C does, so every scenario stops its processes.
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    results: dict[str, Any] = {}
    for name, fn in ORDER:
        if name not in only:
            continue
        log(f"== {name}")
        t0 = time.monotonic()
        try:
            await fn(cfg, results)
        except Exception as exc:  # noqa: BLE001 - one failed scenario must not hide the rest
            log(f"{name} FAILED: {exc!r}")
            results[name] = {"error": "".join(traceback.format_exception(exc))}
        log(f"== {name} took {time.monotonic() - t0:.0f}s")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--short", action="store_true", help="the short run (make bench)")
    parser.add_argument(
        "--only",
        default=",".join(n for n in _SCENARIOS if n not in _ON_REQUEST),
        help=f"comma-separated subset of {_SCENARIOS} (default: all but {list(_ON_REQUEST)})",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep topics and worker folders for inspection"
    )
    parser.add_argument(
        "--worker-log-level",
        default="warning",
        choices=["debug", "info", "warning", "error"],
        help="PROFILE_STREAM_LOG_LEVEL of the workers (their logs are kept with --keep)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="py-spy on the plumbing workers: print their top functions (bench/profiling.py)",
    )
    args = parser.parse_args()
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(only) - set(_SCENARIOS))
    if unknown:
        parser.error(f"unknown scenarios {unknown}; choose from {_SCENARIOS}")
    cfg = config(args.short, args.keep, args.worker_log_level, args.profile)
    load_at_start = os.getloadavg()
    started = datetime.now(UTC)
    t0 = time.monotonic()
    log(f"{'short' if cfg.short else 'full'} run: {', '.join(only)} ({os.cpu_count()} cores)")
    try:
        results = asyncio.run(main_async(cfg, only))
    except (KeyboardInterrupt, asyncio.CancelledError):
        log("interrupted; the scenario's processes were stopped and its topics deleted")
        raise SystemExit(130) from None
    rows = table(results, cfg)
    text = render(rows)
    elapsed = time.monotonic() - t0
    print()
    print(text)
    print()
    for name, profile in plumbing_profiles(results):
        print(summary(name, profile), end="\n\n")
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    payload = {
        "started_at": started.isoformat(),
        "elapsed_s": elapsed,
        "command": "python -m bench.run" + (" --short" if cfg.short else ""),
        "commit": _git("rev-parse", "--short", "HEAD"),
        # The worker runs the working tree: uncommitted changes to the product are listed.
        "uncommitted": _git("status", "--porcelain", "--", "streams", "schemas").splitlines(),
        "host": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "loadavg_at_start": load_at_start,
        },
        "config": cfg.__dict__,
        "table": rows,
        "table_text": text,
        "results": results,
    }
    path.write_bytes(orjson.dumps(payload, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))
    log(f"done in {elapsed:.0f}s; results in {path}")


if __name__ == "__main__":
    main()
