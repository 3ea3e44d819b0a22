"""A ``profile-stream worker`` process of the evaluation's own: its settings, its data folder
and log in a scratch folder, its HTTP views, and what its ``/metrics`` say."""

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import aiohttp

from streams.errors import ServiceError

__all__ = ["EvalWorker", "Metrics", "answers_ready"]

# The worker command of this interpreter's install (the console script may not be on PATH).
_ARGV = [sys.executable, "-c", "from streams.cli import main; main()", "worker"]


class Metrics:
    """One scrape of ``/metrics``: each sample's value, summed over its labels on request."""

    def __init__(self, text: str) -> None:
        self.samples: list[tuple[str, str, float]] = []
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            name_labels, _, value = line.rpartition(" ")
            name, _, labels = name_labels.partition("{")
            self.samples.append((name, labels, float(value)))

    def total(self, name: str, label: str = "") -> float:
        """The sum of ``name``'s samples (those whose labels hold ``label``)."""
        return sum(v for n, labels, v in self.samples if n == name and label in labels)

    def by_label(self, name: str, label: str) -> dict[str, float]:
        """``name``'s samples summed by the value of their label ``label``."""
        found: dict[str, float] = {}
        for n, labels, value in self.samples:
            match = re.search(rf'(?:^|,){re.escape(label)}="([^"]*)"', labels)
            if n == name and match is not None:
                found[match.group(1)] = found.get(match.group(1), 0.0) + value
        return found


async def answers_ready(
    url: str, check: Callable[[], None], timeout_s: float, poll_s: float = 0.3
) -> bool:
    """Whether the worker at ``url`` answers ``/readyz`` with 200 within ``timeout_s``;
    ``check`` runs before each poll (it raises when the worker's process has exited)."""
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            check()
            try:
                async with session.get(f"{url}/readyz") as response:
                    if response.status == 200:
                        return True
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(poll_s)
    return False


class EvalWorker:
    """One worker process; :meth:`start`, then :meth:`stop` (always: it kills the process)."""

    def __init__(self, env: Mapping[str, str], port: int, log: Path) -> None:
        self.env, self.port, self.log = dict(env), port, log
        self.url = f"http://127.0.0.1:{port}"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self._proc = subprocess.Popen(  # noqa: S603 - our own interpreter, fixed argv
                _ARGV,
                env={**os.environ, **self.env},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def check(self) -> None:
        """Raise ServiceError, with the log's tail, if the process has exited."""
        if self._proc is not None and self._proc.poll() is not None:
            tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-20:])
            raise ServiceError(f"the worker exited with {self._proc.returncode}:\n{tail}")

    async def wait_ready(self, timeout_s: float) -> None:
        """Poll ``/readyz`` until it answers 200."""
        if not await answers_ready(self.url, self.check, timeout_s):
            raise ServiceError(f"the worker was not ready after {timeout_s:.0f}s; see {self.log}")

    async def metrics(self, session: aiohttp.ClientSession) -> Metrics:
        """The worker's ``/metrics`` now."""
        self.check()
        async with session.get(f"{self.url}/metrics") as response:
            return Metrics(await response.text())

    async def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM, then SIGKILL to its process group after ``timeout_s``."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(proc.wait, timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            await asyncio.to_thread(proc.wait, 10)
