"""``profile-stream eval --mode pipeline``: the dataset through a worker of its own, Kafka and
the scripted model, scored as a user reads the report."""

from pathlib import Path

from schemas.evaluation import EvalReport
from tests.fakes.evaluation import DATASET, script
from tests.fakes.llm_server import FakeLLM
from tests.support import clean_environ

from .harness import BOOTSTRAP, REDIS_URL
from .test_cli import cli


async def test_the_pipeline_report_shows_right_answers_a_trap_hit_and_the_cost(
    services: None, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    script(fake_llm)
    fake_llm.on(
        "I'm Alice", {"field": "name", "op": "set", "value": "John Doe"}
    )  # a guard drops it
    dataset = tmp_path / "dataset.json"
    dataset.write_text(DATASET.model_dump_json())
    env = clean_environ() | {
        "PROFILE_STREAM_KAFKA_BOOTSTRAP": BOOTSTRAP,
        "PROFILE_STREAM_REDIS_URL": REDIS_URL,
        "OPENAI_API_KEY": "test-key",
    }
    run = await cli(
        env,
        "eval",
        str(dataset),
        "--mode=pipeline",
        f"--base-url={fake_llm.url}",
        # The default path, shortened: the last conversation ends when the user goes idle.
        "--variant=buffered:flush_idle_s=1",
        "--variant=one-by-one:flush=per-message",
        f"--report={tmp_path / 'report.json'}",
        f"--work-dir={tmp_path / 'eval'}",
        timeout=240,
    )
    assert run.code == 0, run.err
    report = EvalReport.model_validate_json((tmp_path / "report.json").read_text())
    buffered, one_by_one = report.variants
    alice, bruno = buffered.users
    assert (alice.score.precision, alice.score.recall, alice.score.update_accuracy) == (1, 1, 1)
    assert alice.profile["location"] == "Denver"
    assert [(v.field, v.value) for v in bruno.trap_hits] == [("location", "Paris")]
    assert (buffered.overall.tp, buffered.overall.fp, buffered.overall.fn) == (2, 1, 1)
    # Three conversations: three calls; one by one, a call per user message.
    assert (buffered.cost.model_calls, one_by_one.cost.model_calls) == (3, 4)
    assert buffered.cost.messages == one_by_one.cost.messages == 8
    assert one_by_one.overall == buffered.overall
    # What the worker's guards did, read from its own counters.
    for variant in report.variants:
        assert variant.outcomes.operations_dropped == {"placeholder_value": 1}
        assert variant.outcomes.gave_up == variant.outcomes.dead_letters == {}
    table = [" ".join(line.split()) for line in run.out.splitlines()]
    assert table[0] == "buffered one-by-one"
    assert "micro 0.67 0.67 0.67 0.67 0.67 0.67" in table
    assert "trap hits 1/2 1/2" in table
    assert "updates followed 1/1 1/1" in table
    assert "op dropped: placeholder_value 1 1" in table
