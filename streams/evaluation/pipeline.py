"""The pipeline run: the dataset through a worker of its own, as an app would send it.

A worker process starts on topics, a consumer group and a cache prefix of this run (app id
``eval-<random>``) with the variant's settings; every user's turns are published to its input
topic at once, each conversation after the one before. Nothing marks a conversation's end (an
app at the default settings does not): a conversation is flushed when the user's next one
begins, the last one when it has been idle ``PROFILE_STREAM_FLUSH_IDLE_S`` (60 s);
``mark_ends`` sets ``end_of_conversation`` on each last turn instead, the same batches without
the wait. The run is over when the worker's ``/metrics`` show, twice in a row, every message
read and committed and no buffer, batch or held event left; the profiles are then read back
over HTTP, and the cost taken from the worker's counters (retries and dead-lettered flushes
included).
"""

import asyncio
import secrets
import shutil
import socket
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import aiohttp

from schemas import ChatMessage
from schemas.evaluation import EvalUser
from streams.client import ProfileNotFound, get_profile, publish
from streams.errors import ServiceError
from streams.evaluation.dataset import messages_of
from streams.evaluation.direct import OnProgress, Outcome, cost_of
from streams.evaluation.outcomes import outcomes_between
from streams.evaluation.variants import Variant, worker_env
from streams.evaluation.worker import EvalWorker, Metrics
from streams.settings import Settings

__all__ = ["run_pipeline"]

_P = "profile_stream_"
_POLL_S = 1.0
_IDLE_GAUGES = ("consumer_lag", "buffered_users", "in_flight_extractions", "pending_events")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _messages(users: Sequence[EvalUser], mark_ends: bool) -> list[ChatMessage]:
    sent = []
    for user in users:
        for conversation in user.conversations:
            turns = messages_of(user, conversation)
            if mark_ends:
                turns[-1] = turns[-1].model_copy(update={"end_of_conversation": True})
            sent += turns
    return sent


def _run_env(app_id: str, port: int, data_dir: Path, token: str) -> dict[str, str]:
    """What puts the worker on this run's own names; no variant changes it."""
    return {
        "PROFILE_STREAM_APP_ID": app_id,
        "PROFILE_STREAM_INPUT_TOPIC": f"{app_id}-chat",
        "PROFILE_STREAM_OUTPUT_TOPIC": f"{app_id}-updated",
        "PROFILE_STREAM_DLQ_TOPIC": f"{app_id}-dlq",
        "PROFILE_STREAM_WEB_PORT": str(port),
        "PROFILE_STREAM_WEB_HOST": "127.0.0.1",
        "PROFILE_STREAM_DATA_DIR": str(data_dir),
        "PROFILE_STREAM_READ_TOKENS": token,
        "PROFILE_STREAM_EXTRACTOR": "openai",
    }


def _settled(metrics: Metrics, published: int) -> bool:
    read = metrics.total(_P + "events_in_total")
    return read >= published and all(metrics.total(_P + g) == 0 for g in _IDLE_GAUGES)


async def _wait_settled(
    worker: EvalWorker, published: int, on_progress: OnProgress, timeout_s: float
) -> Metrics:
    """The worker's metrics once every message is extracted (see the module docstring)."""
    deadline = time.monotonic() + timeout_s
    streak = 0
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            metrics = await worker.metrics(session)
            extracted = int(metrics.total(_P + "messages_extracted_total"))
            on_progress(None, extracted, int(metrics.total(_P + "model_calls_total")))
            streak = streak + 1 if _settled(metrics, published) else 0
            if streak == 2:
                return metrics
            await asyncio.sleep(_POLL_S)
    raise ServiceError(
        f"the worker had not extracted every message after {timeout_s:.0f}s; see {worker.log}"
    )


async def _profiles(url: str, token: str, users: Sequence[EvalUser]) -> dict[str, dict[str, Any]]:
    profiles: dict[str, dict[str, Any]] = {}
    for user in users:
        try:
            answer = await get_profile(url, user.user_id, token=token)
        except ProfileNotFound:
            continue  # nothing was ever stored for the user: an empty profile
        profiles[user.user_id] = answer["profile"]
    return profiles


async def run_pipeline(
    users: Sequence[EvalUser],
    variant: Variant,
    base: Mapping[str, str],
    settings: Settings,
    on_progress: OnProgress,
    *,
    work_dir: Path,
    timeout_s: float = 7200.0,
    mark_ends: bool = False,
) -> Outcome:
    """Run ``users`` through a worker with ``base`` and ``variant``'s settings; ``settings``
    say how to reach Kafka. The worker's log stays in ``work_dir``."""
    app_id = f"eval-{secrets.token_hex(5)}"
    token, port = secrets.token_hex(16), _free_port()
    data_dir = work_dir / app_id
    env = {**worker_env(variant, base), **_run_env(app_id, port, data_dir, token)}
    worker = EvalWorker(env, port, work_dir / f"{app_id}.log")
    messages = _messages(users, mark_ends)
    started = time.monotonic()
    worker.start()
    try:
        await worker.wait_ready(timeout_s=180)
        await publish(messages, bootstrap=settings.kafka, topic=env["PROFILE_STREAM_INPUT_TOPIC"])
        metrics = await _wait_settled(worker, len(messages), on_progress, timeout_s)
        profiles = await _profiles(worker.url, token, users)
    finally:
        await worker.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    cost = cost_of(
        len(messages),
        int(metrics.total(_P + "model_calls_total")),
        int(metrics.total(_P + "model_tokens_total", 'kind="prompt"')),
        int(metrics.total(_P + "model_tokens_total", 'kind="completion"')),
        int(metrics.total(_P + "dead_letters_total")),
        time.monotonic() - started,
    )
    return Outcome(profiles, cost, outcomes_between(None, metrics))
