"""The bench's subprocesses: ``profile-stream worker`` and the baselines, each with a CPU/RSS
sampler, their environment and folders, and when a worker first admits an event."""

import asyncio
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from tests.support import Names, Process, WorkerProcess, clean_environ, free_port

from .sampling import Sampler
from .topics import BOOTSTRAP, PARTITIONS

__all__ = [
    "Baseline",
    "SampledProcess",
    "Worker",
    "first_admitted",
    "remove_dir",
    "scenario_names",
    "worker_env",
    "workdir",
]

_ROOT = Path(__file__).resolve().parent.parent


class SampledProcess(Process):
    """A process whose CPU and peak RSS are sampled from its start until it is stopped."""

    sampler: Sampler | None = None

    def start(self) -> Any:
        super().start()
        self.sampler = Sampler(self.pid)
        self.sampler.start()
        return self

    async def terminate(self, timeout: float = 30.0) -> None:
        if self.sampler is not None:
            await self.sampler.stop()
        await super().terminate(timeout)


class Baseline(SampledProcess):
    """A baseline process (``python -m bench.baselines ...``), run from the repository root."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        super().__init__(argv, env, log, cwd=_ROOT)


class Worker(SampledProcess, WorkerProcess):
    """``profile-stream worker`` with its own web port and data dir in ``workdir`` (a worker
    started again under ``name`` and ``port`` has the same data dir and address)."""

    def __init__(
        self, env: dict[str, str], workdir: Path, name: str = "worker", port: int | None = None
    ) -> None:
        port = port or free_port()
        self.data_dir = workdir / f"{name}-data"
        env = {
            **env,
            "PROFILE_STREAM_WEB_PORT": str(port),
            "PROFILE_STREAM_DATA_DIR": str(self.data_dir),
        }
        super().__init__(env, workdir / f"{name}.log", port, cwd=_ROOT)

    async def wait_ready(self, timeout: float = 120.0, poll_s: float = 0.2) -> float:
        return await super().wait_ready(timeout, poll_s)


def scenario_names(scenario: str) -> Names:
    """A scenario's own topics and consumer group, ``bench-<scenario>-<random>``."""
    return Names.unique("bench", scenario, digits=8, partitions=PARTITIONS)


def worker_env(names: Names, model_url: str, **settings: object) -> dict[str, str]:
    """A worker's environment: on ``names``, the model at ``model_url``, and ``settings`` as
    PROFILE_STREAM_<NAME> variables."""
    env = clean_environ() | names.env()
    env |= {
        "PROFILE_STREAM_KAFKA_BOOTSTRAP": BOOTSTRAP,
        "PROFILE_STREAM_EXTRACTOR": "openai",
        "PROFILE_STREAM_LOG_LEVEL": "warning",
        "OPENAI_BASE_URL": model_url,
        "OPENAI_API_KEY": "x",
        # Unbuffered unless a scenario says otherwise: the backlog and latency rows measure
        # the pipeline, the live-pace row measures buffers against it.
        "PROFILE_STREAM_FLUSH_IDLE_S": "0",
    }
    for name, value in settings.items():
        env[f"PROFILE_STREAM_{name.upper()}"] = str(value)
    return env


async def first_admitted(worker: "Worker", poll_s: float = 0.02) -> float:
    """Wall-clock time at which the worker's ``/metrics`` first counts an input event, to
    within ``poll_s``: where a run starts when the worker may wait before its first output."""
    url = f"http://127.0.0.1:{worker.port}/metrics"
    async with aiohttp.ClientSession() as session:
        while True:
            worker.check()
            async with session.get(url) as response:
                text = await response.text()
            for line in text.splitlines():
                if line.startswith("profile_stream_events_in_total") and float(line.split()[-1]):
                    return time.time()
            await asyncio.sleep(poll_s)


def workdir(scenario: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"bench-{scenario}-"))


def remove_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
