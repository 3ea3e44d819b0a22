"""LoCoMo files become chat messages: one user per speaker, sessions as conversations, strict
per-user time order. The slice below is copied unchanged from the shared data's 26.json."""

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from schemas import ChatMessage
from streams.cli.locomo import TURN_SPACING_S, LocomoError, convert, parse_session_time, user_id_for

SLICE: dict[str, Any] = {
    "speaker_a": "Caroline",
    "speaker_b": "Melanie",
    "session_1_date_time": "1:56 pm on 8 May, 2023",
    "session_1": [
        {
            "speaker": "Melanie",
            "dia_id": "D1:4",
            "text": "Wow, that's cool, Caroline! What happened that was so awesome? "
            "Did you hear any inspiring stories?",
        },
        {
            "speaker": "Caroline",
            "img_url": ["https://i.redd.it/l7hozpetnhlb1.jpg"],
            "blip_caption": "a photo of a dog walking past a wall with a painting of a woman",
            "query": "transgender pride flag mural",
            "dia_id": "D1:5",
            "text": "The transgender stories were so inspiring! I was so happy and thankful "
            "for all the support.",
        },
    ],
    "session_2_date_time": "1:14 pm on 25 May, 2023",
    "session_2": [
        {
            "speaker": "Melanie",
            "dia_id": "D2:1",
            "text": "Hey Caroline, since we last chatted, I've had a lot of things happening "
            "to me.",
        },
        {
            "speaker": "Caroline",
            "dia_id": "D2:2",
            "text": "That charity race sounds great, Mel!",
        },
    ],
    # Dates of sessions that the file does not carry, and annotations: both are ignored.
    "session_3_date_time": "7:55 pm on 9 June, 2023",
    "session_1_observation": {"Caroline": []},
    "qa": [],
}


def test_each_turn_becomes_a_user_message_of_its_speaker() -> None:
    messages = list(convert(SLICE, "26"))

    assert [m.message_id for m in messages] == ["26-D1:4", "26-D1:5", "26-D2:1", "26-D2:2"]
    assert [m.user_id for m in messages] == [
        "locomo-26-melanie",
        "locomo-26-caroline",
        "locomo-26-melanie",
        "locomo-26-caroline",
    ]
    assert [m.conversation_id for m in messages] == [
        "26-session_1",
        "26-session_1",
        "26-session_2",
        "26-session_2",
    ]
    assert {m.role for m in messages} == {"user"}
    assert messages[0].content == SLICE["session_1"][0]["text"]


def test_a_shared_photo_is_appended_as_its_caption() -> None:
    photo = list(convert(SLICE, "26"))[1]
    assert photo.content == (
        "The transgender stories were so inspiring! I was so happy and thankful for all the "
        "support. [shares a photo: a photo of a dog walking past a wall with a painting of a "
        "woman]"
    )


def test_times_are_the_sessions_plus_a_few_seconds_per_turn() -> None:
    messages = list(convert(SLICE, "26"))
    session_1 = datetime(2023, 5, 8, 13, 56, tzinfo=UTC)
    session_2 = datetime(2023, 5, 25, 13, 14, tzinfo=UTC)
    assert [m.sent_at for m in messages] == [
        session_1,
        session_1 + timedelta(seconds=TURN_SPACING_S),
        session_2,
        session_2 + timedelta(seconds=TURN_SPACING_S),
    ]
    by_user: dict[str, list[datetime]] = defaultdict(list)
    for m in messages:
        by_user[m.user_id].append(m.sent_at)
    assert all(times == sorted(set(times)) for times in by_user.values())


def test_the_output_round_trips_through_the_contract() -> None:
    for m in convert(SLICE, "26"):
        assert ChatMessage.model_validate_json(orjson.dumps(m.model_dump(mode="json"))) == m


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1:56 pm on 8 May, 2023", datetime(2023, 5, 8, 13, 56, tzinfo=UTC)),
        ("12:09 am on 13 September, 2023", datetime(2023, 9, 13, 0, 9, tzinfo=UTC)),
        ("12:24 pm on 7 April, 2023", datetime(2023, 4, 7, 12, 24, tzinfo=UTC)),
        ("11:01 AM on 17 december 2022", datetime(2022, 12, 17, 11, 1, tzinfo=UTC)),
        ("9:05 pm on 3 Sep, 2023", datetime(2023, 9, 3, 21, 5, tzinfo=UTC)),
    ],
)
def test_session_times_parse_as_utc(text: str, expected: datetime) -> None:
    assert parse_session_time(text) == expected


@pytest.mark.parametrize(
    "text", ["yesterday", "13:00 pm on 1 May, 2023", "1:00 pm on 31 Feb, 2023"]
)
def test_a_bad_session_time_says_what_it_expected(text: str) -> None:
    with pytest.raises(ValueError, match="1:30 pm on 8 May, 2023|not a valid date"):
        parse_session_time(text)


def test_speaker_names_become_lowercase_ids() -> None:
    assert user_id_for("26", "Caroline") == "locomo-26-caroline"
    assert user_id_for("x", "Mary  Ann") == "locomo-x-mary-ann"


def test_turns_with_nothing_said_are_skipped_and_a_photo_alone_is_kept() -> None:
    data = {
        "session_1_date_time": "1:56 pm on 8 May, 2023",
        "session_1": [
            {"speaker": "A", "dia_id": "D1:1", "text": "  "},
            {"speaker": "A", "dia_id": "D1:2", "text": "", "blip_caption": "a cat"},
        ],
    }
    assert [(m.message_id, m.content) for m in convert(data, "f")] == [
        ("f-D1:2", "[shares a photo: a cat]")
    ]


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"speaker_a": "A"}, "no session_<n> lists"),
        ([], "expected a JSON object"),
        ({"session_1": []}, "session_1 has no session_1_date_time"),
        ({"session_1": [], "session_1_date_time": "soon"}, "session_1_date_time"),
        (
            {"session_1": [{"text": "hi"}], "session_1_date_time": "1:56 pm on 8 May, 2023"},
            "session_1 turn 0: a turn needs 'speaker' and 'dia_id'",
        ),
    ],
)
def test_a_file_of_another_shape_is_refused_with_the_place(data: Any, problem: str) -> None:
    with pytest.raises(LocomoError, match=problem):
        list(convert(data, "bad"))
