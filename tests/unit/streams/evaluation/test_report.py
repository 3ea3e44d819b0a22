"""The report a person reads: fields by variants, then traps, updates and cost."""

import re
from datetime import UTC, datetime

from schemas.evaluation import EvalOutcomes, EvalReport
from schemas.patch import PatchOperation
from streams.core.merge import Dropped
from streams.evaluation.direct import Outcome, cost_of
from streams.evaluation.report import build_report, render_table, score_variant
from streams.evaluation.variants import Variant
from tests.fakes.evaluation import DATASET

PERFECT = {"alice": {"name": "Alice", "location": "Denver"}, "bruno": {"languages": ["Portuguese"]}}
TRAPPED = {"alice": {"name": "Alice", "location": "Boston"}, "bruno": {"location": "Paris"}}


def _report() -> EvalReport:
    variants = [
        score_variant(
            Variant("perfect"), DATASET.users, Outcome(PERFECT, cost_of(8, 3, 900, 60, 0, 12.4))
        ),
        score_variant(
            Variant("trapped", flush="per-message"),
            DATASET.users,
            Outcome(TRAPPED, cost_of(8, 4, 1000, 80, 1, 30)),
        ),
    ]
    return build_report("sample.json", "two users", DATASET.users, variants)


def test_the_table_has_a_row_per_field_and_trait_and_a_column_per_variant() -> None:
    lines = render_table(_report()).splitlines()
    assert lines[0].split() == ["perfect", "trapped"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[2:] if line}
    assert rows["location"] == ["1.00", "1.00", "1.00", "0.00", "0.00", "0.00"]
    assert rows["micro"] == ["1.00", "1.00", "1.00", "0.33", "0.33", "0.33"]  # 1 TP, 2 FP, 2 FN
    assert rows["move"] == ["1.00", "1.00", "1.00", "0/1", "0.50", "0.50", "0.50", "1/1"]
    assert "languages              1.00 1.00 1.00          -    0.00 -" in lines
    assert "trap hits              0/2                     2/2" in lines
    assert "unsupported values     0/3                     0/3" in lines
    assert "updates followed       1/1                     0/1" in lines
    assert "model calls            3 (0.375/msg)           4 (0.500/msg)" in lines
    assert "prompt tokens/msg      112                     125" in lines
    assert "failures               0                       1" in lines
    assert "wall time              12s                     30s" in lines


def test_the_json_report_reads_back_with_every_user() -> None:
    report = _report()
    again = EvalReport.model_validate_json(report.model_dump_json())
    assert again == report
    assert again.variants[1].settings == {"flush_idle_s": "0", "max_batch_messages": "1"}
    assert [u.user_id for u in again.variants[1].users] == ["alice", "bruno"]
    assert again.created_at <= datetime.now(UTC)


def test_the_table_has_a_row_per_failure_mode_and_guard_seen() -> None:
    outcomes = EvalOutcomes(
        answers_repaired={"cut_off": 2},
        gave_up={"invalid_output": 1},
        operations_dropped={"placeholder_value": 3, "ungrounded_quote": 1},
    )
    guarded = Outcome(PERFECT, cost_of(8, 3, 900, 60, 0, 12.4), outcomes)
    variants = [
        score_variant(Variant("guarded"), DATASET.users, guarded),
        score_variant(Variant("quiet"), DATASET.users, Outcome(PERFECT, cost_of(8, 3, 9, 6, 0, 1))),
    ]
    lines = render_table(build_report("s.json", "", DATASET.users, variants)).splitlines()
    cells = [re.split(r"\s{2,}", line) for line in lines if ": " in line]
    rows = {label: values for label, *values in cells}
    assert rows == {
        "answer repaired: cut_off": ["2", "0"],
        "extraction gave up: invalid_output": ["1", "0"],
        "op dropped: placeholder_value": ["3", "0"],
        "op dropped: ungrounded_quote": ["1", "0"],
    }


def test_the_table_judges_each_rules_dropped_values() -> None:
    def put(field: str, value: str | list[str], code: str, op: str = "set") -> Dropped:
        return Dropped(PatchOperation(field=field, op=op, value=value), "why", code)  # type: ignore[arg-type]

    dropped = {
        "alice": [
            put("location", "Boston", "ungrounded_quote"),  # a trap stopped
            put("name", "Alice", "ungrounded_quote"),  # a right value lost
            put("name", "John Doe", "placeholder_value"),
        ],
        "bruno": [put("languages", ["Portuguese", "Klingon"], "invalid_value", "add")],
    }
    judged = Outcome(PERFECT, cost_of(8, 3, 900, 60, 0, 12.4), dropped=dropped)
    variants = [
        score_variant(Variant("judged"), DATASET.users, judged),
        score_variant(
            Variant("pipeline", mode="pipeline"),
            DATASET.users,
            Outcome(PERFECT, cost_of(8, 3, 9, 6, 0, 1)),
        ),
    ]
    lines = render_table(build_report("s.json", "", DATASET.users, variants)).splitlines()
    start = lines.index(next(line for line in lines if line.startswith("dropped values, judged")))
    rows = {line.split()[0]: line.split()[1:] for line in lines[start + 1 :]}
    assert rows == {
        "invalid_value": ["1", "0", "1", "-"],
        "placeholder_value": ["0", "0", "1", "-"],
        "ungrounded_quote": ["1", "1", "0", "-"],
    }
