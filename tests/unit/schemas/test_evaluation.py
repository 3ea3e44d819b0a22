"""The evaluation dataset's format: a labeling mistake is refused with where it is."""

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from schemas.evaluation import EvalDataset

ROOT = Path(__file__).resolve().parents[3]


def _dataset() -> dict[str, Any]:
    return {
        "format": "profile-stream-eval/1",
        "users": [
            {
                "user_id": "u1",
                "traits": ["move"],
                "conversations": [
                    {
                        "conversation_id": "u1-c1",
                        "started_at": "2026-03-01T09:00:00+00:00",
                        "turns": [{"role": "user", "content": "I live in Boston"}],
                    },
                    {
                        "conversation_id": "u1-c2",
                        "started_at": "2026-03-02T09:00:00+00:00",
                        "turns": [{"role": "user", "content": "I moved to Denver"}],
                    },
                ],
                "expected": {"location": [{"value": "Denver", "accept": ["Denver, CO"]}]},
                "forbidden": {"location": ["Boston"]},
                "updates": [{"field": "location", "old": "Boston", "new": "Denver"}],
            }
        ],
    }


def _error(data: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        EvalDataset.model_validate(data)
    return str(caught.value)


def test_a_well_formed_dataset_reads_and_derives_the_users_text() -> None:
    dataset = EvalDataset.model_validate(_dataset())
    user = dataset.users[0]
    assert user.expected["location"][0].spellings == ["Denver", "Denver, CO"]
    assert user.user_text == ["I live in Boston", "I moved to Denver"]


def test_the_sample_in_the_repository_is_valid() -> None:
    raw = json.loads((ROOT / "bench" / "quality" / "sample.json").read_text())
    assert len(EvalDataset.model_validate(raw).users) == 3


def test_an_unknown_field_is_refused_where_it_is() -> None:
    data = _dataset()
    data["users"][0]["expect"] = {}
    assert "users.0.expect" in _error(data)


def test_a_role_outside_the_chat_roles_is_refused() -> None:
    data = _dataset()
    data["users"][0]["conversations"][0]["turns"][0]["role"] = "bot"
    assert "users.0.conversations.0.turns.0.role" in _error(data)


def test_an_update_whose_new_value_is_not_expected_is_refused() -> None:
    data = _dataset()
    data["users"][0]["updates"][0]["new"] = "Austin"
    assert "new value 'Austin' is not in expected['location']" in _error(data)


def test_an_update_whose_old_value_is_not_forbidden_is_refused() -> None:
    data = _dataset()
    data["users"][0]["forbidden"] = {}
    assert "old value 'Boston' is not in forbidden['location']" in _error(data)


def test_a_value_both_expected_and_forbidden_is_refused() -> None:
    data = _dataset()
    data["users"][0]["forbidden"]["location"].append("denver, co")
    assert "both expected and forbidden" in _error(data)


def test_conversations_out_of_time_order_are_refused() -> None:
    data = _dataset()
    data["users"][0]["conversations"].reverse()
    assert "not in time order" in _error(data)


def test_a_user_or_conversation_id_used_twice_is_refused() -> None:
    data = _dataset()
    data["users"].append(copy.deepcopy(data["users"][0]))
    assert "user_id used more than once: ['u1']" in _error(data)


def test_another_format_version_is_refused() -> None:
    data = _dataset()
    data["format"] = "profile-stream-eval/2"
    assert "format" in _error(data)
