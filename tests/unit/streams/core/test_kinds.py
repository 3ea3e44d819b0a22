"""Profile kinds: loaded from TOML, keyed by their subject, refused with a clear message."""

from datetime import UTC, datetime
from pathlib import Path

import pytest

from schemas import ChatMessage
from streams.core.kinds import load_kinds
from streams.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[4] / "deploy" / "kinds.example.toml"
USER_MODEL = "schemas.profile:UserProfile"


def chat(role: str = "user", **metadata: str) -> ChatMessage:
    return ChatMessage(
        message_id="m1",
        user_id="ann",
        role=role,
        content="hi",  # type: ignore[arg-type]
        sent_at=datetime.now(UTC),
        metadata=metadata,
    )


def test_without_a_file_there_is_only_the_user_kind() -> None:
    (user,) = load_kinds(None, USER_MODEL)
    assert user.is_user and user.subject_of(chat()) == "ann" and user.event_key("ann") == b"ann"


def test_the_example_declares_a_team_and_the_assistant() -> None:
    user, team, assistant = load_kinds(EXAMPLE, USER_MODEL)
    assert team.subject_of(chat(team_id="sales-emea")) == "sales-emea"
    assert team.subject_of(chat()) is None
    assert team.event_key("sales-emea") == b"team/sales-emea"
    assert assistant.subject_of(chat("assistant")) == "assistant"
    assert assistant.schema.source_roles == ("assistant",)
    assert "assistant itself" in assistant.schema.instructions


@pytest.mark.parametrize(
    "body, complaint",
    [
        ('[kinds.team]\nsubject = "metadata.team_id"\n', "needs schema"),
        ('[kinds.team]\nschema = "schemas.team:TeamProfile"\nsubject = "team"\n', "subject='team'"),
        ('[kinds.team]\nschema = "schemas.team:TeamProfile"\nsource_roles = ["bot"]\n', "bot"),
        ('[kinds.team]\nschema = "schemas.team:Nope"\n', "cannot be imported"),
        ("[kinds.team\n", "cannot be read"),
    ],
)
def test_a_bad_kinds_file_is_refused_naming_the_setting(
    tmp_path: Path, body: str, complaint: str
) -> None:
    path = tmp_path / "kinds.toml"
    path.write_text(body)
    with pytest.raises(ConfigError, match="PROFILE_STREAM_KINDS_FILE") as err:
        load_kinds(path, USER_MODEL)
    assert complaint in str(err.value)
