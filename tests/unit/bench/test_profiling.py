"""The bench's CPU tools: the profile summary (py-spy's collapsed stacks ranked by self and
cumulative time) and the in-process pipeline measurement."""

from pathlib import Path

from bench.pipeline_cpu import measure
from bench.profiling import summary, top

_TOP = "<module> (profile-stream:8);run (asyncio/base_events.py:640)"
RAW = "\n".join(
    [
        f"{_TOP};encode (streams/core/codecs.py:60) 30",
        f"{_TOP};encode (streams/core/codecs.py:61) 10",
        f"{_TOP};post (openai/_base_client.py:10);write (asyncio/selector_events.py:1) 50",
        f"{_TOP} 10",
    ]
)


def test_functions_are_ranked_by_self_and_cumulative_samples_whatever_their_lines(
    tmp_path: Path,
) -> None:
    raw = tmp_path / "raw.txt"
    raw.write_text(RAW)
    profile = top(raw, n=3)
    assert profile["samples"] == 100
    assert [(i["function"], i["share"]) for i in profile["self"]] == [
        ("write (asyncio/selector_events.py)", 0.5),
        ("encode (streams/core/codecs.py)", 0.4),
        ("run (asyncio/base_events.py)", 0.1),
    ]
    cumulative = {i["function"]: i["samples"] for i in top(raw, n=10)["cumulative"]}
    assert "run (asyncio/base_events.py)" not in cumulative  # on every stack: says nothing
    assert cumulative["post (openai/_base_client.py)"] == 50
    assert [(i["function"], i["samples"]) for i in profile["packages"]] == [
        ("asyncio", 60),
        ("streams", 40),
    ]
    assert "50.0 %  write (asyncio/selector_events.py)" in summary("w", profile)


def test_the_pipeline_cpu_bench_runs_every_event_through_the_pipeline() -> None:
    # It asserts one event per message (one call each) and one per five (five a call) itself.
    result = measure(users=3, per_user=5, runs=1)
    assert set(result) == {"one_call_per_message", "five_per_call"}
    assert all(r["cpu_s_per_1000"] > 0 for r in result.values())
