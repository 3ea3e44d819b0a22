"""``python -m bench.pipeline_cpu``: the CPU of this project's own per-event code, in one
process, without services: admission, apply, the guards, merge, versions, encoding and
publishing, over dict tables and a scripted model (the unit tests' ``Pipeline``), on the
plumbing workload (users x messages, round by round, revisions at the default bound).

The plumbing scenario measures the whole worker, whose CPU is mostly Faust, the Kafka, Redis
and HTTP clients and the OpenAI SDK, and moves with the machine's load; this measures what
the pipeline's Python costs per event, so a change to it can be judged on a busy machine.
``--profile`` prints cProfile's top functions (by own time; cProfile slows every call, so
read the ranking, not the seconds).
"""

import argparse
import asyncio
import cProfile
import pstats
import statistics
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from schemas import ChatMessage, ModelUsage, PatchOperation
from streams.extract.base import Extraction
from streams.settings import Settings
from tests.unit.helpers import T0
from tests.unit.streams.pipeline.fakes import Pipeline, Record, chat

__all__ = ["measure"]

_CONTENT = "I moved to Lisbon last spring and I work on compilers now; message {n} of {user}."


class _Model:
    """The bench's fake model: each user message sets ``last_conversation_summary`` to its id
    and start (``bench.workloads.ScriptedModel``), quoting the message."""

    name = "bench"

    async def extract(
        self, profile: dict[str, Any], messages: Sequence[ChatMessage], *_: Any, **__: Any
    ) -> Extraction:
        operations = [
            PatchOperation(
                field="last_conversation_summary",
                op="set",
                value=f"{m.message_id}: {m.content[:40]}",
                message_id=m.message_id,
                quote=m.content[:40],
            )
            for m in messages
            if m.role == "user"
        ]
        return Extraction(operations, usage=ModelUsage(calls=1, prompt_tokens=100))

    async def forget(self, subject: str, **_: Any) -> int:
        return 0

    async def close(self) -> None:
        return None


def _records(users: int, per_user: int) -> list[Record]:
    """Round by round: a user's next message comes after every other user's."""
    return [
        chat(
            f"u{u}-m{n}",
            _CONTENT.format(n=n, user=u),
            user=f"user-{u}",
            offset=n,
            sent_at=T0 + timedelta(seconds=n),
        )
        for n in range(per_user)
        for u in range(users)
    ]


async def _run(users: int, per_user: int, batch: int) -> float:
    """CPU seconds per 1,000 events through a fresh pipeline, ``batch`` messages a call."""
    revisions = Settings(extractor="rules").revisions_per_field
    pipeline = Pipeline(revisions_per_field=revisions)
    model = _Model()
    pipeline.updater.extractor = model
    pipeline.updater.__post_init__()  # its flusher asks the model above
    records = _records(users, per_user)
    by_user: dict[bytes | None, list[Record]] = {}
    for record in records:
        by_user.setdefault(record.key, []).append(record)
    started = time.process_time()
    if batch == 1:
        for record in records:
            await pipeline.batch(record)
    else:
        for mine in by_user.values():
            for i in range(0, len(mine), batch):
                await pipeline.batch(*mine[i : i + batch])
    spent = time.process_time() - started
    assert len(pipeline.output.sent) == -(-per_user // batch) * users
    return spent / len(records) * 1000


def measure(users: int = 1000, per_user: int = 5, runs: int = 3) -> dict[str, Any]:
    """Median CPU seconds per 1,000 events at one call per message and at five a call."""
    result: dict[str, Any] = {}
    for label, batch in (("one_call_per_message", 1), ("five_per_call", 5)):
        samples = [asyncio.run(_run(users, per_user, batch)) for _ in range(runs)]
        result[label] = {"cpu_s_per_1000": statistics.median(samples), "runs": samples}
    return result


def _profile(users: int, per_user: int, batch: int, top: int) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    asyncio.run(_run(users, per_user, batch))
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(top)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.pipeline_cpu", description=__doc__)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--per-user", type=int, default=5)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", type=int, metavar="BATCH", help="cProfile one run")
    args = parser.parse_args()
    if args.profile:
        _profile(args.users, args.per_user, args.profile, 25)
        return
    for label, value in measure(args.users, args.per_user, args.runs).items():
        runs = ", ".join(f"{r:.3f}" for r in value["runs"])
        print(f"{label}: {value['cpu_s_per_1000']:.3f} CPU s per 1,000 events ({runs})")


if __name__ == "__main__":
    main()
