"""The fault tests' history check (tests/integration/history.py) finds what it looks for: a
check that cannot fail would make every kill test green."""

from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from tests.integration.history import audit


@dataclass
class _Record:
    key: bytes
    value: bytes


def _event(user: str, version: int, ids: list[str], items: int, **change: Any) -> _Record:
    profile = {
        "common_topics": [f"n{i:02d}" for i in range(items)],
        "last_conversation_summary": f"s{items - 1:02d}",
    }
    body = {"user_id": user, "version": version, "source_message_ids": ids, "profile": profile}
    return _Record(user.encode(), orjson.dumps(body | change))


SENT = [{"message_id": m, "user_id": "u"} for m in ("m0", "m1", "m2")]


def _clean() -> list[_Record]:
    return [_event("u", v + 1, [f"m{v}"], v + 1) for v in range(3)]


def test_a_clean_history_passes_and_counts_exact_re_emissions() -> None:
    history = _clean()
    found = audit([*history, history[1]], SENT, per_user=3)
    assert found.ok, str(found)
    assert (found.events, found.duplicates) == (3, 1)


@pytest.mark.parametrize(
    ("history", "finding"),
    [
        (_clean()[:2], "lost"),  # m2 never applied: also the final profile is short
        ([*_clean(), _event("u", 4, ["m1"], 3)], "doubled"),  # m1 applied again as version 4
        ([*_clean(), _event("u", 2, ["m1"], 2, note="x")], "conflicting"),  # u:2 twice, changed
        ([_clean()[0], _event("u", 3, ["m1", "m2"], 3)], "gaps"),  # no version 2
        ([*_clean()[:2], _event("u", 3, ["m2"], 2)], "wrong_finals"),  # m2's item missing
    ],
)
def test_each_broken_history_is_caught(history: list[_Record], finding: str) -> None:
    found = audit(history, SENT, per_user=3)
    assert not found.ok
    assert getattr(found, finding), str(found)
