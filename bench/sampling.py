"""CPU and memory of processes, read from /proc: a process's CPU seconds and peak RSS, the
machine's busy CPU seconds, the local broker's pid, and a :class:`Sampler` that records them
over time with wall-clock stamps."""

import asyncio
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "Sampler",
    "broker_pid",
    "machine_busy_s",
    "proc_cpu_s",
    "proc_hwm_mb",
    "proc_rss_mb",
]

_CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of ``pid`` (all its threads)."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        raw = f.read()
    fields = raw[raw.rindex(b")") + 2 :].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def proc_hwm_mb(pid: int) -> float:
    """Peak resident set size (VmHWM) of ``pid`` in MiB."""
    return _status_mb(pid, "VmHWM:")


def proc_rss_mb(pid: int) -> float:
    """Resident set size now (VmRSS) of ``pid`` in MiB."""
    return _status_mb(pid, "VmRSS:")


def _status_mb(pid: int, field: str) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    return 0.0


def machine_busy_s() -> float:
    """CPU seconds all cores spent busy (not idle, not waiting for I/O) since boot."""
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    idle = parts[3] + (parts[4] if len(parts) > 4 else 0)
    return (sum(parts[:8]) - idle) / _CLK_TCK


def broker_pid() -> int | None:
    """The local Kafka broker's pid (a JVM running ``kafka.Kafka``), if it runs here."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"kafka.Kafka\0" in cmdline or cmdline.endswith(b"kafka.Kafka"):
            return int(entry.name)
    return None


@dataclass
class Sampler:
    """CPU seconds and peak RSS of one process (or, with ``pid=None``, busy CPU seconds of the
    whole machine), sampled with wall-clock times."""

    pid: int | None
    interval: float = 0.1
    samples: list[tuple[float, float]] = field(default_factory=list)
    peak_rss_mb: float = 0.0
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    def sample(self) -> None:
        try:
            if self.pid is None:
                self.samples.append((time.time(), machine_busy_s()))
                return
            self.samples.append((time.time(), proc_cpu_s(self.pid)))
            self.peak_rss_mb = max(self.peak_rss_mb, proc_hwm_mb(self.pid))
        except (OSError, ValueError, IndexError):
            pass  # the process is gone

    async def _loop(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(self.interval)

    async def stop(self) -> None:
        self.sample()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    def cpu_at(self, wall: float) -> float:
        """CPU seconds used up to wall-clock time ``wall`` (linear between samples)."""
        s = self.samples
        if not s:
            return 0.0
        if wall <= s[0][0]:
            return s[0][1]
        for (t0, c0), (t1, c1) in zip(s, s[1:], strict=False):
            if t0 <= wall <= t1:
                return c0 + (c1 - c0) * ((wall - t0) / (t1 - t0) if t1 > t0 else 1.0)
        return s[-1][1]

    def cpu_between(self, start: float, end: float) -> float:
        return self.cpu_at(end) - self.cpu_at(start)
