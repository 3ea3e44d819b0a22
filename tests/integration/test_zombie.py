"""A zombie worker: frozen past the session timeout while its batches are at a slow model, then
woken after the new owner finished its partitions (DESIGN.md, invariant 1, "zombies included").

Worker A and worker B share the group; A is stopped with SIGSTOP while it has batches at the
model, the group gives its partitions to B, B finishes every message, and A gets SIGCONT with the
model's answers waiting in its sockets. The whole history is then read as a subscriber reads it
(committed records only): no event id with two contents, each user's versions 1..n, no message
applied twice, nothing lost, and no changelog record written after B finished, the moment from
which A, the only writer with work in hand, owns nothing. Figures are printed with ``-s``.
"""

import asyncio
import os
import random
import re
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from tests.fakes.llm_server import FakeLLM

from .conftest import StartWorker
from .harness import Kafka, Names, WorkerProcess, decode
from .history import all_applied, audit, publish, read_all, script
from .test_faults import FAST_FAILOVER
from .test_rebalance import SLOW

pytestmark = pytest.mark.faults

#: Model calls of seconds; A's answers must outlive the freeze (no client timeout on waking).
SLOW_MODEL = SLOW | {"PROFILE_STREAM_LLM_TIMEOUT_S": "180"}
#: What a fenced zombie's log shows (its producer refused by the broker, or its own fence).
_FENCED = re.compile(r"ProducerFenced|InvalidProducerEpoch|fenced=[1-9]|Fenced\(")


def guarantee_under_test() -> dict[str, str]:
    """exactly_once, the guarantee that fences a zombie, or the one ``ZOMBIE_GUARANTEE`` names
    (at_least_once shows what the test catches without transactions)."""
    return {
        "PROFILE_STREAM_PROCESSING_GUARANTEE": os.environ.get("ZOMBIE_GUARANTEE", "exactly_once")
    }


@contextmanager
def frozen(worker: WorkerProcess) -> Iterator[None]:
    """SIGSTOP the worker's process group; SIGCONT however the block ends (a stopped worker
    would ignore the SIGTERM of the fixture's teardown)."""
    os.killpg(worker.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.killpg(worker.pid, signal.SIGCONT)


async def joined(worker: WorkerProcess, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while "Successfully synced group" not in worker.log.read_text(errors="replace"):
        worker.check()
        assert time.monotonic() < deadline, f"worker did not join:\n{worker.tail()}"
        await asyncio.sleep(0.2)


async def changelogs(names: Names) -> dict[tuple[int, int], Any]:
    """The committed records of both changelogs, by (changelog, partition) to highest offset."""
    last: dict[tuple[int, int], Any] = {}
    for n, topic in enumerate((names.changelog, names.buffer_changelog)):
        for r in await read_all(topic):
            last[n, r.partition] = max(last.get((n, r.partition), -1), r.offset)
    return last


async def written_after(names: Names, before: dict[tuple[int, int], Any]) -> int:
    """Changelog records (committed) past what both changelogs held in ``before``."""
    count = 0
    for n, topic in enumerate((names.changelog, names.buffer_changelog)):
        count += sum(r.offset > before.get((n, r.partition), -1) for r in await read_all(topic))
    return count


def all_messages(records: list[Any]) -> set[str]:
    return {m for e in decode(records) for m in e["source_message_ids"]}


async def woken(worker: WorkerProcess, log_from: int, timeout: float = 60.0) -> str:
    """Wait until the woken worker has heard it lost its partitions (revoked, or exited)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = worker.log.read_text(errors="replace")[log_from:]
        if not worker.alive():
            return f"exited with {worker.proc.returncode if worker.proc else '?'}"
        if "revoked partitions=" in text:
            return "revoked and rejoined"
        await asyncio.sleep(0.2)
    raise AssertionError(f"the woken worker did not notice its eviction:\n{worker.tail()}")


async def test_a_worker_frozen_past_its_session_writes_nothing_once_woken(
    start_worker: StartWorker, kafka: Kafka, names: Names, fake_llm: FakeLLM
) -> None:
    users, per_user = 12, 16
    script(fake_llm, users, per_user)
    rng = random.Random(int(os.environ.get("ZOMBIE_SEED", "20261206")))
    fake_llm.latency = lambda: rng.uniform(2.0, 4.0)
    env = FAST_FAILOVER | SLOW_MODEL | guarantee_under_test()
    a = await start_worker(0, **env)
    b = await start_worker(1, ready=False, **env)
    await joined(b)
    await b.wait_ready()  # both hold partitions before the backlog comes
    sent = await publish(kafka, names, users, per_user)
    # Both work now; A has each of its partitions' next batch at the model most of the time.
    await kafka.read(names.output, lambda r: len(r) >= users, timeout=120)
    await asyncio.sleep(rng.uniform(0.5, 2.0))  # a random moment, not a synchronization
    with frozen(a):
        calls_at_freeze = len(fake_llm.requests)
        applied_at_freeze = len(all_messages(await read_all(names.output)))
        assert applied_at_freeze < len(sent), "the backlog was done before the freeze"
        await kafka.read(names.output, all_applied(len(sent)), timeout=240)
        ends = await kafka.end_offsets(names.input)
        await kafka.wait_committed(names.prefix, names.input, ends, timeout=120)
        before = await changelogs(names)  # B owns every partition and has finished
        log_from = len(a.log.read_text(errors="replace"))
    outcome = await woken(a, log_from)
    # Nothing to wait for: what is measured is that nothing more arrives. A's answers were in
    # its sockets when it woke, so its writes, if anything lets them through, come at once.
    await asyncio.sleep(10)
    records = await read_all(names.output)
    found = audit(records, sent, per_user)
    after = await written_after(names, before)
    zombie_log = a.log.read_text(errors="replace")[log_from:]
    print(
        f"\nzombie: {len(sent)} messages, {users} users, model calls {len(fake_llm.requests)} "
        f"({calls_at_freeze} before the freeze, {applied_at_freeze} messages applied); woken "
        f"A {outcome}, fenced signs in its log {len(_FENCED.findall(zombie_log))}; "
        f"lost {len(found.lost)}, doubled "
        f"{len(found.doubled)}, two-content ids {len(found.conflicting)}, users with version "
        f"gaps {len(found.gaps)}, wrong finals {len(found.wrong_finals)}, changelog writes "
        f"after losing ownership {after}; events {found.events} ({found.duplicates} exact "
        f"re-emissions); {len(decode(records))} records"
    )
    assert found.ok, str(found)
    assert after == 0, f"{after} changelog records written after B finished A's partitions"
