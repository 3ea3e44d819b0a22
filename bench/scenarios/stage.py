"""What every scenario shares: the sizes of a run (:class:`Config`), and :class:`Stage`, which
owns one scenario's processes, fake models, topics and folder and releases them on exit."""

import atexit
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support import Process

from ..profiling import PySpy
from ..progress import log
from ..sampling import Sampler, broker_pid
from ..topics import Committed, create_topics, delete_topics, end_offsets, producer, publish
from ..workers import SampledProcess, Worker, remove_dir, scenario_names, workdir, worker_env
from ..workloads import ScriptedModel, latency

__all__ = ["PROFILES_DIR", "Config", "Stage", "baseline_env", "config", "worker_stats"]

#: py-spy's raw samples of profiled workers (git-ignored with the results).
PROFILES_DIR = Path(__file__).resolve().parent.parent / "results" / "profiles"


@dataclass(frozen=True)
class Config:
    """Sizes of one run; :func:`config` gives the short and the full one."""

    short: bool
    keep: bool
    plumbing_users: int
    plumbing_per_user: int
    concurrency_users: int
    model_latency_s: float
    in_flight: int
    sequential_window_s: float
    locomo_files: int | None
    locomo_sessions: int | None
    turn_gap_s: float
    session_pause_s: float
    cost_latency: str
    latency_rate: float
    latency_duration_s: float
    latency_users: int
    live_files: int | None
    live_sessions: int
    live_turns: int
    #: Gaps between live turns: (mu, sigma) of a lognormal, in seconds.
    live_gap: tuple[float, float]
    timeout_s: float
    worker_log_level: str = "warning"
    #: py-spy on the plumbing workers (``--profile``; bench/profiling.py).
    profile: bool = False


def config(
    short: bool, keep: bool = False, worker_log_level: str = "warning", profile: bool = False
) -> Config:
    return Config(
        short=short,
        keep=keep,
        worker_log_level=worker_log_level,
        profile=profile,
        plumbing_users=1000 if short else 2000,
        plumbing_per_user=5 if short else 10,
        concurrency_users=2000,
        model_latency_s=0.5,
        in_flight=64,
        sequential_window_s=10.0 if short else 20.0,
        locomo_files=3 if short else None,
        locomo_sessions=6 if short else None,
        turn_gap_s=0.01,
        session_pause_s=1.0,
        cost_latency="lognormal:0.5:0.5",
        latency_rate=100.0,
        latency_duration_s=10.0 if short else 20.0,
        latency_users=400,
        live_files=4 if short else None,
        live_sessions=1 if short else 3,
        live_turns=16 if short else 40,
        live_gap=(math.log(2.0), 0.5),  # a turn every ~2 s (median), some 5 s and more
        timeout_s=240.0 if short else 900.0,
    )


_LIVE: list[Process] = []


@atexit.register
def _kill_leftovers() -> None:
    for p in _LIVE:
        p.kill()


class Stage:
    """One scenario's processes, fake models, topics and folder, all released on exit."""

    def __init__(self, scenario: str, cfg: Config) -> None:
        self.names = scenario_names(scenario)
        self.cfg = cfg
        self.dir = workdir(scenario)
        self.procs: list[SampledProcess] = []
        self.fakes: list[ScriptedModel] = []
        self.spies: dict[int, PySpy] = {}
        broker = broker_pid()
        self.system = {
            "bench process (fake model, Kafka clients)": Sampler(os.getpid()),
            "machine (all cores)": Sampler(None),
            **({"kafka broker": Sampler(broker)} if broker else {}),
        }

    async def __aenter__(self) -> "Stage":
        for sampler in self.system.values():
            sampler.start()
        return self

    def cpu_shares(self, worker: SampledProcess, start: float, end: float) -> dict[str, float]:
        """Cores' worth of CPU each process used between two wall-clock times."""
        span = max(end - start, 1e-9)
        samplers = {"worker": worker.sampler, **self.system}
        shares = {
            name: round(s.cpu_between(start, end) / span, 3)
            for name, s in samplers.items()
            if s is not None
        }
        ours = sum(v for k, v in shares.items() if not k.startswith("machine"))
        shares["other processes"] = round(max(0.0, shares["machine (all cores)"] - ours), 3)
        return shares

    async def __aexit__(self, *exc: object) -> None:
        for sampler in self.system.values():
            await sampler.stop()
        for spy in self.spies.values():  # a scenario that failed before its profile was read
            await spy.stop()
        # A worker stopped mid-run gives its running batches up to 10 s before it exits; after
        # a failure or an interrupt the topics are deleted anyway, so do not wait long.
        for p in self.procs:
            await p.terminate(timeout=30.0 if exc[0] is None else 5.0)
            if p in _LIVE:
                _LIVE.remove(p)
        for f in self.fakes:
            await f.stop()
        if self.cfg.keep:
            log(f"kept topics {self.names.prefix}-* and {self.dir}")
            return
        await delete_topics(self.names.prefix)
        if exc[0] is None:
            remove_dir(self.dir)
        else:
            log(f"logs of the failed scenario kept in {self.dir}")

    async def fake(self, spec: str) -> ScriptedModel:
        model = ScriptedModel(latency(spec))
        await model.start()
        self.fakes.append(model)
        return model

    def spawn(self, proc: SampledProcess) -> Any:
        self.procs.append(proc)
        _LIVE.append(proc)
        return proc.start()

    async def worker(self, model_url: str, name: str = "worker", **settings: Any) -> Worker:
        env = worker_env(self.names, model_url, log_level=self.cfg.worker_log_level, **settings)
        w = Worker(env, self.dir, name)
        self.spawn(w)
        took = await w.wait_ready()
        log(f"{name} ready in {took:.1f}s (pid {w.pid})")
        if self.cfg.profile:
            spy = self.spies[w.pid] = PySpy(w.pid, PROFILES_DIR / f"{self.names.prefix}-{name}.txt")
            PROFILES_DIR.mkdir(parents=True, exist_ok=True)
            await spy.start()
        return w

    async def profile(self, worker: Worker) -> dict[str, Any] | None:
        """The top items of ``worker``'s CPU since it was ready (None unless ``--profile``)."""
        spy = self.spies.pop(worker.pid, None)
        return None if spy is None else await spy.stop()

    async def preload(self, messages: list[dict[str, Any]]) -> None:
        """Create the scenario's input topic and publish ``messages`` to it, all acknowledged."""
        await create_topics([self.names.input])
        prod = producer()
        await prod.start()
        try:
            await publish(prod, self.names.input, messages)
        finally:
            await prod.stop()

    async def until_committed(self, worker: Worker, what: str, group: str = "") -> float:
        ends = await end_offsets(self.names.input)
        async with Committed(group or self.names.prefix, self.names.input) as committed:
            return await committed.wait_for(ends, self.cfg.timeout_s, watch=[worker], progress=what)


def baseline_env(**values: Any) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BENCH_")}
    env.update({f"BENCH_{k.upper()}": str(v) for k, v in values.items()})
    return env


def worker_stats(w: Worker) -> dict[str, Any]:
    assert w.sampler is not None
    return {"peak_rss_mb": round(w.sampler.peak_rss_mb, 1)}
