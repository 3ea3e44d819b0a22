"""The labeled quality sets (bench/quality/*.json) keep the promises of the evaluation format.

Read with plain ``json`` so a labeling mistake (a timezone that is no IANA zone, an update whose
new value is not expected, a value both expected and forbidden) fails here, before a model run
spends an hour scoring against it. The format is described in bench/quality/README.md.
"""

import json
import re
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any, Literal, get_args, get_origin
from zoneinfo import available_timezones

import pytest

from schemas.languages import canonical_language
from schemas.profile import UserProfile

ROOT = Path(__file__).resolve().parents[3]
QUALITY = ROOT / "bench" / "quality"
SPLITS = ("dev", "heldout")
# Per split: users, turns and updates the issue asks for at least.
MINIMUMS = {"dev": (30, 300, 12), "heldout": (12, 120, 5)}
TRAITS = {
    "indirect", "move", "other-people", "assistant-wrong", "hypothetical",
    "question", "sarcasm", "fiction", "injection", "sparse",
}  # fmt: skip
FIELDS = UserProfile.model_fields
SINGLE = {name for name, field in FIELDS.items() if get_origin(field.annotation) is not list}
FREE_TEXT = {"expertise", "common_topics", "key_relationships"}


def _choices(field: str) -> set[str]:
    """The values a Literal field (formality, detail_level) takes, read from the schema."""
    literal = next(a for a in get_args(FIELDS[field].annotation) if get_origin(a) is Literal)
    return set(get_args(literal))


ENUMS = {field: _choices(field) for field in ("formality", "detail_level")}


@cache
def _load(split: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((QUALITY / f"{split}.json").read_text())
    return data


def _users(split: str) -> list[dict[str, Any]]:
    users: list[dict[str, Any]] = _load(split)["users"]
    return users


def _norm(value: str) -> str:
    """The scorer's normalization: casefold, punctuation and whitespace dropped."""
    return re.sub(r"[\W_]+", "", value.casefold())


def _spellings(user: dict[str, Any], field: str) -> set[str]:
    """Every normalized spelling the expected profile accepts for ``field``."""
    entries = user["expected"].get(field, [])
    return {_norm(s) for e in entries for s in [e["value"], *e.get("accept", [])]}


def _labeled_values(user: dict[str, Any]) -> list[tuple[str, str]]:
    """(field, value) of every label: expected values and their spellings, allowed, forbidden."""
    pairs = [
        (f, s)
        for f, es in user["expected"].items()
        for e in es
        for s in [e["value"], *e.get("accept", [])]
    ]
    pairs += [
        (f, s) for part in ("allowed", "forbidden") for f, vs in user[part].items() for s in vs
    ]
    pairs += [(u["field"], u[k]) for u in user["updates"] for k in ("old", "new")]
    return pairs


@pytest.mark.parametrize("split", SPLITS)
def test_the_split_has_the_format_and_the_size_asked_for(split: str) -> None:
    doc = _load(split)
    assert doc["format"] == "profile-stream-eval/1"
    assert set(doc) == {"format", "description", "users"}
    users, turns, updates = MINIMUMS[split]
    assert len(_users(split)) >= users
    assert sum(len(c["turns"]) for u in _users(split) for c in u["conversations"]) >= turns
    assert sum(len(u["updates"]) for u in _users(split)) >= updates


def test_ids_are_unique_across_both_splits() -> None:
    users = [u for split in SPLITS for u in _users(split)]
    user_ids = [u["user_id"] for u in users]
    conv_ids = [c["conversation_id"] for u in users for c in u["conversations"]]
    assert len(set(user_ids)) == len(user_ids)
    assert len(set(conv_ids)) == len(conv_ids)
    for user in users:
        for conv in user["conversations"]:
            assert conv["conversation_id"].startswith(user["user_id"] + "-"), conv[
                "conversation_id"
            ]


@pytest.mark.parametrize("split", SPLITS)
def test_conversations_are_timed_in_order_with_valid_roles(split: str) -> None:
    for user in _users(split):
        assert set(user) == {
            "user_id",
            "traits",
            "conversations",
            "expected",
            "allowed",
            "forbidden",
            "updates",
        }
        starts = [datetime.fromisoformat(c["started_at"]) for c in user["conversations"]]
        assert all(s.tzinfo is not None for s in starts), user["user_id"]
        assert starts == sorted(starts) and len(set(starts)) == len(starts), user["user_id"]
        for conv in user["conversations"]:
            assert 4 <= len(conv["turns"]) <= 14, conv["conversation_id"]
            assert conv["turns"][0]["role"] == "user", conv["conversation_id"]
            for turn in conv["turns"]:
                assert set(turn) == {"role", "content"}
                assert turn["role"] in {"user", "assistant"}
                assert turn["content"].strip(), conv["conversation_id"]


@pytest.mark.parametrize("split", SPLITS)
def test_labels_name_profile_fields_with_values_the_profile_can_hold(split: str) -> None:
    zones = available_timezones()
    for user in _users(split):
        uid = user["user_id"]
        assert user["traits"] and set(user["traits"]) <= TRAITS, uid
        for part in ("expected", "allowed", "forbidden"):
            assert set(user[part]) <= FIELDS.keys(), (uid, part)
        for field in SINGLE:
            assert len(user["expected"].get(field, [])) <= 1, (uid, field)
        for field, value in _labeled_values(user):
            assert field in FIELDS, (uid, field)
            assert value.strip() and len(value) <= 200, (uid, field, value)
            if field == "timezone":
                assert value in zones, (uid, value)
            if field in ENUMS:
                assert value in ENUMS[field], (uid, field, value)
        for entry in (e for es in user["expected"].values() for e in es):
            assert set(entry) <= {"value", "accept"}, uid
        for lang in [*user["expected"].get("languages", []), *user["allowed"].get("languages", [])]:
            name = lang if isinstance(lang, str) else lang["value"]
            assert canonical_language(name) == name, (uid, name)


@pytest.mark.parametrize("split", SPLITS)
def test_updates_have_their_new_value_expected_and_their_old_value_forbidden(split: str) -> None:
    for user in _users(split):
        for update in user["updates"]:
            field = update["field"]
            assert _norm(update["new"]) in _spellings(user, field), (user["user_id"], update)
            forbidden = {_norm(v) for v in user["forbidden"].get(field, [])}
            assert _norm(update["old"]) in forbidden, (user["user_id"], update)


@pytest.mark.parametrize("split", SPLITS)
def test_no_value_is_both_rewarded_and_a_trap(split: str) -> None:
    for user in _users(split):
        for field, traps in user["forbidden"].items():
            good = _spellings(user, field) | {_norm(v) for v in user["allowed"].get(field, [])}
            for trap in map(_norm, traps):
                assert trap not in good, (user["user_id"], field, trap)
                if field in FREE_TEXT:  # the scorer matches list text by containment
                    assert not any(trap in g or g in trap for g in good), (
                        user["user_id"],
                        field,
                        trap,
                    )


@pytest.mark.parametrize("split", SPLITS)
def test_expected_names_places_people_and_languages_are_in_the_users_own_words(split: str) -> None:
    """A label the user never wrote (only the assistant did, or nobody) would reward guessing."""
    for user in _users(split):
        said = _norm(
            " ".join(
                t["content"]
                for c in user["conversations"]
                for t in c["turns"]
                if t["role"] == "user"
            )
        )
        for field in ("name", "location", "key_relationships", "languages"):
            for entry in user["expected"].get(field, []):
                names = [s.split(" (")[0] for s in [entry["value"], *entry.get("accept", [])]]
                assert any(_norm(n) in said for n in names), (
                    user["user_id"],
                    field,
                    entry["value"],
                )


@pytest.mark.parametrize("split", SPLITS)
def test_the_readme_counts_are_the_files_counts(split: str) -> None:
    row = re.search(
        rf"^\| \w[\w-]* \| `{split}.json` \|(.*)$", (QUALITY / "README.md").read_text(), re.M
    )
    assert row, f"bench/quality/README.md has no row for {split}.json"
    users = _users(split)
    counts = [
        len(users),
        sum(len(u["conversations"]) for u in users),
        sum(len(c["turns"]) for u in users for c in u["conversations"]),
        sum(len(es) for u in users for es in u["expected"].values()),
        sum(len(vs) for u in users for vs in u["allowed"].values()),
        sum(len(vs) for u in users for vs in u["forbidden"].values()),
        sum(len(u["updates"]) for u in users),
    ]
    assert [int(c) for c in row[1].split("|")[:7]] == counts
