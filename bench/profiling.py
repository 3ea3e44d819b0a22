"""Where a worker's CPU goes: py-spy attached to a worker process for a measured run, and the
top functions of its samples by self time (the function itself runs) and by cumulative time
(the function is on the stack).

``python -m bench.run --profile`` attaches one to each plumbing worker; the raw samples are
kept next to the results (``bench/results/<stamp>-<worker>.pyspy.txt``, collapsed stacks, the
input of any flame graph tool) and ``python -m bench.profiling FILE [N]`` prints their top N
again. py-spy comes with the test extras (locked); it samples from outside the process, so the
worker runs at its own speed (``--nonblocking``: it is never paused to be read).
"""

import asyncio
import os
import re
import signal
import sys
from collections import Counter
from pathlib import Path
from typing import Any

__all__ = ["PySpy", "plumbing_profiles", "summary", "top"]

_RATE_HZ = 200
#: A frame in this share of the samples or more is on nearly every stack.
_EVERYWHERE = 0.8
# "function (path/to/file.py:123)": the line number splits one function into many entries.
_LINE = re.compile(r":\d+\)$")
_SITE = re.compile(r"^.*/(site-packages|lib/python3\.\d+)/")


def _frame(raw: str, root: str) -> str:
    """A frame without its line number, with its path from the package root."""
    name, _, where = _LINE.sub(")", raw).partition(" (")
    where = _SITE.sub("", where.replace(root, ""))
    return f"{name} ({where}" if where else name


def _package(frame: str) -> str:
    """The package (or module) a frame's file is in: ``asyncio``, ``streams``, ``faust``..."""
    where = frame.rpartition(" (")[2].rstrip(")")
    return where.split("/")[0] if "/" in where else where


def top(path: Path, n: int = 10) -> dict[str, Any]:
    """The ``n`` functions with the most samples in py-spy's raw output at ``path``: by self
    and by cumulative samples, each with its share of all samples, and the self samples by
    package. The cumulative ranking leaves out the frames on nearly every stack (the event
    loop, the CLI, Faust's worker): they say nothing about where the time goes."""
    root = str(Path(__file__).resolve().parent.parent) + "/"
    own: Counter[str] = Counter()
    cumulative: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [_frame(f, root) for f in stack.split(";")]
        samples = int(count)
        total += samples
        own[frames[-1]] += samples
        packages[_package(frames[-1])] += samples
        for frame in set(frames):
            cumulative[frame] += samples
    inner = Counter({f: c for f, c in cumulative.items() if c < _EVERYWHERE * total})

    def ranked(counts: Counter[str]) -> list[dict[str, Any]]:
        return [
            {"function": f, "samples": c, "share": round(c / total, 4) if total else 0.0}
            for f, c in counts.most_common(n)
        ]

    return {
        "samples": total,
        "rate_hz": _RATE_HZ,
        "self": ranked(own),
        "cumulative": ranked(inner),
        "packages": ranked(packages),
    }


def summary(name: str, profile: dict[str, Any]) -> str:
    """The top items of one worker's profile as text, self time then cumulative."""
    lines = [f"{name}: {profile['samples']:,} samples at {profile['rate_hz']} Hz"]
    for kind in ("self", "cumulative", "packages"):
        lines.append(f"  by {kind} time:" if kind != "packages" else "  self time by package:")
        for item in profile[kind]:
            lines.append(f"    {item['share'] * 100:5.1f} %  {item['function']}")
    return "\n".join(lines)


def plumbing_profiles(results: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The profiled plumbing workers' top items in a run's results, named by run."""
    plumbing = results.get("plumbing") or {}
    runs = [
        ("one call per message", "one_call_per_message"),
        ("default settings", "default_window"),
    ]
    return [
        (f"plumbing, {label}", plumbing[key]["profile"])
        for label, key in runs
        if "profile" in plumbing.get(key, {})
    ]


class PySpy:
    """py-spy recording one process from :meth:`start` until :meth:`stop`."""

    def __init__(self, pid: int, out: Path) -> None:
        self.pid, self.out = pid, out
        self._proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        spy = Path(sys.executable).with_name("py-spy")
        # BENCH_PYSPY_GIL=1: only the thread holding the GIL is sampled. Without it a thread
        # waiting to take the GIL back (after a socket write, while Faust's consumer thread
        # runs) counts as busy in the frame it waits in, which is not CPU spent there.
        gil = ["--gil"] if os.environ.get("BENCH_PYSPY_GIL") == "1" else []
        self._proc = await asyncio.create_subprocess_exec(
            str(spy), "record", "--pid", str(self.pid), "--rate", str(_RATE_HZ),
            "--format", "raw", "--nonblocking", *gil, "--output", str(self.out),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip

    async def stop(self, n: int = 10) -> dict[str, Any]:
        """Stop recording (py-spy writes its samples on SIGINT); the top ``n`` items."""
        assert self._proc is not None
        if self._proc.returncode is None:
            self._proc.send_signal(signal.SIGINT)
        _, err = await asyncio.wait_for(self._proc.communicate(), 60)
        if not self.out.exists():
            raise RuntimeError(f"py-spy wrote nothing: {err.decode(errors='replace')[-500:]}")
        return top(self.out, n) | {"raw": str(self.out)}


def _main() -> None:
    if len(sys.argv) not in (2, 3):
        raise SystemExit("usage: python -m bench.profiling FILE [N]")
    path = Path(sys.argv[1])
    print(summary(path.name, top(path, int(sys.argv[2]) if len(sys.argv) == 3 else 10)))


if __name__ == "__main__":
    _main()
