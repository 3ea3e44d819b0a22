"""Reading a dataset: the project's own sets load, their labels score as a perfect profile, and
conversations become the messages an app would send."""

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from schemas import UserProfile
from schemas.evaluation import EvalDataset, EvalUser
from streams.core.evaluation import score_user, summarize
from streams.core.profile_schema import ProfileSchema
from streams.errors import ConfigError
from streams.evaluation.dataset import load_dataset, messages_of, short
from tests.fakes.evaluation import DATASET

ROOT = Path(__file__).resolve().parents[4]
SCHEMA = ProfileSchema(UserProfile)
SETS = ["dev", "heldout", "sample"]


def _oracle(user: EvalUser) -> dict[str, Any]:
    """The profile the labels describe: each expected value as written."""
    return {
        field: [e.value for e in entries] if SCHEMA.fields[field].is_list else entries[0].value
        for field, entries in user.expected.items()
    }


@pytest.mark.parametrize("split", SETS)
def test_the_projects_sets_score_their_own_labels_as_perfect(split: str) -> None:
    dataset = load_dataset(ROOT / "bench" / "quality" / f"{split}.json", SCHEMA)
    scored = [score_user(u, _oracle(u)) for u in dataset.users]
    overall, _, _ = summarize(dataset.users, scored)
    assert (overall.precision, overall.recall, overall.f1) == (1.0, 1.0, 1.0)
    assert overall.trap_hits == overall.unsupported == 0
    assert overall.updates_followed == overall.updates


def test_labels_of_fields_the_schema_lacks_are_refused(tmp_path: Path) -> None:
    raw = DATASET.model_dump(mode="json")
    raw["users"][0]["forbidden"]["nickname"] = ["Al"]
    path = tmp_path / "d.json"
    path.write_text(EvalDataset.model_validate(raw).model_dump_json())
    with pytest.raises(ConfigError, match="alice: 'nickname' is not a field of the profile schema"):
        load_dataset(path, SCHEMA)


def test_a_conversation_is_sent_as_an_app_would_send_it() -> None:
    alice = DATASET.users[0]
    first = alice.conversations[0]
    sent = messages_of(alice, first)
    assert [m.message_id for m in sent] == [f"alice-c1-t{i:02d}" for i in range(4)]
    assert [m.role for m in sent] == ["user", "assistant", "user", "assistant"]
    assert sent[3].sent_at - sent[0].sent_at == timedelta(seconds=90)
    assert {m.user_id for m in sent} == {"alice"} and {m.conversation_id for m in sent} == {
        "alice-c1"
    }


def test_short_takes_the_marked_users_else_the_first_four() -> None:
    dev = load_dataset(ROOT / "bench" / "quality" / "dev.json", SCHEMA)
    assert [u.user_id for u in short(dev)] == [u.user_id for u in dev.users[:4]]
    raw = dev.model_dump(mode="json")
    raw["users"][7]["traits"].append("short")
    assert [u.user_id for u in short(EvalDataset.model_validate(raw))] == [dev.users[7].user_id]
