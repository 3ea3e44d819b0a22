"""A two-user evaluation dataset and the fake model's script for it: Alice's answers are right
(a name, a move followed), Bruno's take his friend's city (a trap) and miss his language."""

from typing import Any

from schemas.evaluation import EvalDataset
from tests.fakes.llm_server import FakeLLM

__all__ = ["DATASET", "script"]


def _conversation(cid: str, day: int, *user_turns: str) -> dict[str, Any]:
    turns = []
    for text in user_turns:
        turns += [{"role": "user", "content": text}, {"role": "assistant", "content": "I see."}]
    return {
        "conversation_id": cid,
        "started_at": f"2026-03-{day:02d}T09:00:00+00:00",
        "turns": turns,
    }


DATASET = EvalDataset.model_validate(
    {
        "format": "profile-stream-eval/1",
        "users": [
            {
                "user_id": "alice",
                "traits": ["move"],
                "conversations": [
                    _conversation("alice-c1", 1, "I'm Alice.", "I live in Boston."),
                    _conversation("alice-c2", 2, "I moved to Denver."),
                ],
                "expected": {"name": [{"value": "Alice"}], "location": [{"value": "Denver"}]},
                "forbidden": {"location": ["Boston"]},
                "updates": [{"field": "location", "old": "Boston", "new": "Denver"}],
            },
            {
                "user_id": "bruno",
                "traits": ["other-people"],
                "conversations": [_conversation("bruno-c1", 3, "My friend lives in Paris.")],
                "expected": {"languages": [{"value": "Portuguese"}]},
                "forbidden": {"location": ["Paris"]},
            },
        ],
    }
)


def script(llm: FakeLLM) -> None:
    """Alice's answers are right; Bruno's take his friend's city and miss his language."""

    def set_(field: str, value: str, quote: str) -> dict[str, Any]:
        return {"field": field, "op": "set", "value": value, "quote": quote}

    llm.on("I'm Alice", set_("name", "Alice", "I'm Alice"))
    llm.on("live in Boston", set_("location", "Boston", "I live in Boston"))
    llm.on("moved to Denver", set_("location", "Denver", "I moved to Denver"))
    llm.on("lives in Paris", set_("location", "Paris", "lives in Paris"))
