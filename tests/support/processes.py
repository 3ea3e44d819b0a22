"""Subprocesses with their output in a log file (:class:`Process`), ``profile-stream worker``
among them (:class:`WorkerProcess`), and the wait for a worker's ``/readyz``."""

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Self

from streams.evaluation.worker import answers_ready

__all__ = [
    "PROFILE_STREAM",
    "NotReady",
    "Process",
    "ProcessExited",
    "WorkerProcess",
    "wait_ready",
]

#: The ``profile-stream`` command next to this interpreter (the project's virtualenv).
PROFILE_STREAM = str(Path(sys.executable).with_name("profile-stream"))


class ProcessExited(AssertionError):
    """The process exited while it was expected to run; the message ends with its log tail."""


class NotReady(AssertionError):
    """The worker did not answer ``/readyz`` with 200 in time."""


class Process:
    """A subprocess in its own session (so a kill takes its children too), its stdout and
    stderr appended to ``log``."""

    def __init__(
        self, argv: list[str], env: dict[str, str], log: Path, cwd: Path | None = None
    ) -> None:
        self.argv, self.env, self.log, self.cwd = argv, env, log, cwd
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    def start(self) -> Self:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(  # noqa: S603
                self.argv,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=self.cwd,
            )
        self.started_at = time.time()
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the log."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def check(self) -> None:
        """Raise :class:`ProcessExited` if the process has exited."""
        if self.proc is not None and self.proc.poll() is not None:
            raise ProcessExited(
                f"{Path(self.argv[0]).name} exited with {self.proc.returncode}; "
                f"log {self.log}:\n{self.tail()}"
            )

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM, then SIGKILL to its process group after ``timeout``; blocks meanwhile."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    async def terminate(self, timeout: float = 30.0) -> None:
        """:meth:`stop` without blocking the event loop (a fake model may be serving on it)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        await self.wait_exit(timeout)
        self.kill()

    async def wait_exit(self, timeout: float) -> bool:
        """Whether the process exited within ``timeout`` seconds."""
        for _ in range(max(1, int(timeout / 0.1))):
            if self.proc is None or self.proc.poll() is not None:
                return True
            await asyncio.sleep(0.1)
        return not self.alive()

    def kill(self) -> None:
        """SIGKILL to the process group, if the process still runs."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(10)


class WorkerProcess(Process):
    """``profile-stream worker`` serving HTTP on ``port`` (``env`` sets the same port)."""

    def __init__(self, env: dict[str, str], log: Path, port: int, cwd: Path | None = None) -> None:
        super().__init__([PROFILE_STREAM, "worker"], env, log, cwd)
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.ready_at = 0.0

    async def wait_ready(self, timeout: float = 90.0, poll_s: float = 0.2) -> float:
        """Wait for ``/readyz``; returns the seconds it took since the start.

        Raises:
            ProcessExited: the worker exited meanwhile.
            NotReady: not ready after ``timeout`` seconds.
        """
        await wait_ready(self.url, self, timeout, poll_s)
        self.ready_at = time.time()
        return self.ready_at - self.started_at


async def wait_ready(url: str, process: Process, timeout: float, poll_s: float = 0.2) -> None:
    """Poll ``{url}/readyz`` until it answers 200, checking meanwhile that ``process`` runs.

    Raises:
        ProcessExited: the process exited meanwhile.
        NotReady: not ready after ``timeout`` seconds.
    """
    if not await answers_ready(url, process.check, timeout, poll_s):
        raise NotReady(f"worker not ready after {timeout}s:\n{process.tail()}")
