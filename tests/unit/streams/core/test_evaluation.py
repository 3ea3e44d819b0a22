"""Scoring final profiles against labels: the figures below are counted by hand."""

from typing import Any

import pytest

from schemas.evaluation import EvalDataset, EvalUser, FieldValue
from schemas.patch import PatchOperation
from streams.core.evaluation import (
    dataset_problems,
    normalize,
    produced_values,
    same_value,
    score_user,
    summarize,
    tally_drops,
)
from streams.core.merge import Dropped


def _user(**labels: Any) -> EvalUser:
    text = labels.pop("text", "hello")
    return EvalUser.model_validate(
        {
            "user_id": labels.pop("user_id", "u1"),
            "conversations": [
                {
                    "conversation_id": f"c-{labels.get('traits', ['x'])[0]}",
                    "started_at": "2026-03-01T09:00:00+00:00",
                    "turns": [
                        {"role": "user", "content": text},
                        {"role": "assistant", "content": "Since you live in Boston, try Austin."},
                    ],
                }
            ],
            **labels,
        }
    )


MAYA = _user(
    traits=["move"],
    text="I'm Maya, I just moved from Boston to Denver. I write python. Hablo español and English.",
    expected={
        "name": [{"value": "Maya"}],
        "location": [{"value": "Denver", "accept": ["Denver, CO"]}],
        "expertise": [{"value": "Python"}],
        "languages": [{"value": "English"}, {"value": "Spanish"}],
    },
    allowed={"common_topics": ["hiking"]},
    forbidden={"location": ["Boston"], "name": ["John Doe"]},
    updates=[{"field": "location", "old": "Boston", "new": "Denver"}],
)
MAYA_PROFILE = {
    "name": "John Doe",  # a false positive, a trap hit, unsupported
    "location": "Denver, CO",  # matches an accepted spelling
    "expertise": ["Python programming", "Python"],  # the second matches a matched entry: neither
    "languages": ["English"],  # Spanish is missed
    "common_topics": ["hiking", "cooking"],  # allowed; a false positive, unsupported
    "timezone": "America/Denver",  # nothing expected: a false positive, unsupported ("america")
    "last_conversation_summary": "Talked about moving.",  # never scored
    "formality": None,
}
BOB = _user(
    user_id="u2",
    traits=["sparse"],
    text="my friend Bob is visiting",
    forbidden={"name": ["Bob"]},
)


@pytest.mark.parametrize(
    ("field", "produced", "label", "same"),
    [
        ("location", "Los-Angeles!", "los angeles", True),
        ("location", "New York City", "New York", False),  # no containment for places
        ("name", "ALICE", "alice", True),
        ("timezone", "America/Los_Angeles", "america/los_angeles", True),
        ("timezone", "America/Los Angeles", "America/Los_Angeles", False),
        ("formality", "casual", "casual ", True),
        ("expertise", "machine learning", "Machine-Learning research", True),
        ("expertise", "art", "start-ups", False),  # whole words only
        ("key_relationships", "Lena (sister)", "Lena", True),
        ("common_topics", "", "x", False),
    ],
)
def test_matching_rules(field: str, produced: str, label: str, same: bool) -> None:
    assert same_value(field, produced, label) is same


def test_normalize_casefolds_and_turns_punctuation_into_space() -> None:
    assert normalize("  São-Paulo, BRAZIL!! ") == "são paulo brazil"
    assert normalize("America/Los_Angeles") == "america los angeles"


def test_produced_values_are_items_and_single_values_without_the_summary() -> None:
    values = produced_values(MAYA_PROFILE)
    assert len(values) == 8
    assert FieldValue(field="expertise", value="Python") in values
    assert all(v.field != "last_conversation_summary" for v in values)


def test_a_user_scored_by_hand() -> None:
    scored = score_user(MAYA, MAYA_PROFILE)
    s = scored.score
    assert (s.tp, s.fp, s.fn) == (3, 3, 2)
    assert s.precision == pytest.approx(0.5)
    assert s.recall == pytest.approx(0.6)
    assert s.f1 == pytest.approx(6 / 11)
    assert (s.trap_hits, s.traps) == (1, 2)
    assert (s.unsupported, s.produced) == (3, 8)
    assert (s.updates_followed, s.updates, s.update_accuracy) == (1, 1, 1.0)
    assert {(v.field, v.value) for v in scored.missed} == {
        ("name", "Maya"),
        ("languages", "Spanish"),
    }
    assert {v.value for v in scored.unsupported} == {"John Doe", "cooking", "America/Denver"}
    assert [v.value for v in scored.trap_hits] == ["John Doe"]


def test_an_update_not_followed_when_the_old_value_stays() -> None:
    kept_both = {**MAYA_PROFILE, "location": "Boston"}
    scored = score_user(MAYA, kept_both)
    assert scored.score.update_accuracy == 0.0
    assert [u.new for u in scored.updates_missed] == ["Denver"]
    assert scored.score.trap_hits == 2  # Boston is forbidden too


def test_per_field_and_per_trait_totals() -> None:
    users = [MAYA, BOB]
    scored = [score_user(MAYA, MAYA_PROFILE), score_user(BOB, {"name": "Bob"})]
    overall, fields, traits = summarize(users, scored)
    assert (overall.tp, overall.fp, overall.fn, overall.trap_hits, overall.traps) == (3, 4, 2, 2, 3)
    assert overall.unsupported == 3  # Bob is in what the user said
    name = fields["name"]
    assert (name.tp, name.fp, name.fn, name.f1) == (0, 2, 1, 0.0)
    assert (fields["languages"].precision, fields["languages"].recall) == (1.0, 0.5)
    assert (fields["timezone"].precision, fields["timezone"].recall) == (0.0, None)
    assert fields["timezone"].f1 is None
    assert fields["location"].update_accuracy == 1.0
    assert "last_conversation_summary" not in fields
    assert traits["move"] == scored[0].score
    assert (traits["sparse"].fp, traits["sparse"].precision, traits["sparse"].recall) == (
        1,
        0.0,
        None,
    )


def test_an_empty_profile_misses_everything_and_hits_nothing() -> None:
    s = score_user(MAYA, {}).score
    assert (s.tp, s.fp, s.fn, s.precision, s.recall, s.f1) == (0, 0, 5, None, 0.0, None)
    assert s.update_accuracy == 0.0


def test_dataset_problems_name_unknown_fields_and_two_values_for_one() -> None:
    user = _user(
        expected={"name": [{"value": "A"}, {"value": "B"}]}, forbidden={"nickname": ["Al"]}
    )
    dataset = EvalDataset(format="profile-stream-eval/1", users=[user])
    problems = dataset_problems(dataset, {"name": False, "languages": True})
    assert problems == [
        "u1: 'nickname' is not a field of the profile schema",
        "u1: 'name' holds one value; 2 are expected",
    ]


def test_dropped_values_are_judged_by_the_same_matching() -> None:
    def drop(field: str, value: Any, code: str = "ungrounded_quote", op: str = "set") -> Dropped:
        return Dropped(PatchOperation(field=field, op=op, value=value), "why", code)

    scored = score_user(
        MAYA,
        MAYA_PROFILE,
        [
            drop("location", "denver co"),  # an accepted spelling: a right value lost
            drop("location", "Boston", "superseded"),  # the old city: a trap kept out
            drop("languages", ["Spanish", "Klingon"], op="add"),  # each item judged
            drop("name", "Maya", "duplicate"),  # applied once already: not judged
            drop("expertise", "Python", op="remove"),  # takes nothing in: not judged
            drop("timezone", None, op="unset"),
        ],
    )
    assert [(d.field, d.value, d.reason, d.verdict) for d in scored.dropped] == [
        ("location", "denver co", "ungrounded_quote", "expected"),
        ("location", "Boston", "superseded", "forbidden"),
        ("languages", "Spanish", "ungrounded_quote", "expected"),
        ("languages", "Klingon", "ungrounded_quote", "other"),
    ]
    tally = tally_drops([scored, scored])
    assert list(tally) == ["superseded", "ungrounded_quote"]
    assert (tally["ungrounded_quote"].expected, tally["ungrounded_quote"].other) == (4, 2)
    assert tally["superseded"].forbidden == 2
