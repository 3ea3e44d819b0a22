"""``python -m bench.level0_reads [N]``: what the level-0 files a bulk restore leaves cost a
read, in one process, without services.

The bulk restore (``streams/faust_glue/bulk_restore.py``) turns a large database's automatic
compactions off while it writes, so a restored database holds many level-0 files until the
compactions turned back on merge them, and a ``GET /profiles/{user}`` is one RocksDB get.
This loads ``N`` records of the scale scenario's profile (default 125,000: one partition of
the full run's 1,000,000 over 8) into one database with the worker's RocksDB options, as the
restore writes them (batches of 2,000, no write-ahead log), twice: compactions off, then on.
It times random gets right after the load, while the compactions run, and after them, and
prints each state's p50 / p99 against the compacted database's (the baseline, same run).
"""

import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from faust.stores.rocksdb import RocksDBOptions
from rocksdict import WriteBatch, WriteOptions

from streams.core.codecs import encode
from streams.topology import ROCKSDB_OPTIONS

from .scenarios.scale import template

__all__ = ["measure"]

_BATCH = 2_000
_GETS = 5_000


def _load(db: Any, keys: list[bytes], value: bytes) -> None:
    no_wal = WriteOptions()
    no_wal.disable_wal = True
    for start in range(0, len(keys), _BATCH):
        batch = WriteBatch(raw_mode=True)
        for key in keys[start : start + _BATCH]:
            batch.put(key, value)
        db.write(batch, no_wal)
    db.flush(True)


def _gets(db: Any, keys: list[bytes]) -> tuple[float, float]:
    """p50 and p99 of random gets, in ms."""
    took = []
    for key in random.sample(keys, min(_GETS, len(keys))):
        started = time.perf_counter()
        if db.get(key) is None:
            raise AssertionError(f"{key!r} missing")
        took.append(time.perf_counter() - started)
    took.sort()
    return took[len(took) // 2] * 1e3, took[int(len(took) * 0.99)] * 1e3


def _level0(db: Any) -> int:
    return int(db.property_value("rocksdb.num-files-at-level0") or 0)


def _settle(db: Any, timeout_s: float = 300.0) -> None:
    """Wait for the background compactions to leave at most 4 level-0 files."""
    deadline = time.monotonic() + timeout_s
    while _level0(db) > 4 and time.monotonic() < deadline:
        time.sleep(0.2)


def measure(count: int, root: Path) -> dict[str, tuple[int, float, float]]:
    """Each state's level-0 files and get p50 / p99 (ms)."""
    value = encode(template())
    keys = [f"user-{i:08d}".encode() for i in range(count)]
    shuffled = random.sample(keys, len(keys))  # users arrive in no key order
    states: dict[str, tuple[int, float, float]] = {}
    for compactions in ("off", "on"):
        db = RocksDBOptions(**ROCKSDB_OPTIONS).open(root / compactions)
        try:
            if compactions == "off":
                db.set_options({"disable_auto_compactions": "true"})
            _load(db, shuffled, value)
            states[f"loaded, compactions {compactions}"] = (_level0(db), *_gets(db, keys))
            if compactions == "off":
                db.set_options({"disable_auto_compactions": "false"})
                states["compactions turned on, running"] = (_level0(db), *_gets(db, keys))
            _settle(db)
            states[f"compacted (compactions {compactions} during the load)"] = (
                _level0(db),
                *_gets(db, keys),
            )
        finally:
            db.close()
    return states


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 125_000
    root = Path(tempfile.mkdtemp(prefix="level0-reads-"))
    try:
        states = measure(count, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    base = states["compacted (compactions off during the load)"]
    print(f"{count:,} records of {len(encode(template())):,} B, {_GETS:,} random gets each")
    for name, (files, p50, p99) in states.items():
        print(
            f"{name:<48} level-0 files {files:>3}  p50 {p50:.3f} ms  p99 {p99:.3f} ms"
            f"  p99 / compacted {p99 / base[2]:.1f}"
        )


if __name__ == "__main__":
    main()
