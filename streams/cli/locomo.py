"""LoCoMo conversation files as chat messages: a pure conversion, no I/O.

A LoCoMo file is one conversation between two people in numbered sessions::

    {"speaker_a": "Caroline", "speaker_b": "Melanie",
     "session_1_date_time": "1:30 pm on 8 May, 2023",
     "session_1": [{"speaker": "Caroline", "dia_id": "D1:1", "text": "..."}, ...], ...}

Every turn becomes one :class:`~schemas.ChatMessage` of role ``user`` whose user is its speaker
(one user per speaker and file). Its time is the session's, plus :data:`TURN_SPACING_S` seconds
per turn index, so one user's messages are strictly ordered.
"""

import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from schemas import ChatMessage

__all__ = ["TURN_SPACING_S", "LocomoError", "convert", "parse_session_time", "user_id_for"]

#: Seconds between consecutive turns of one session.
TURN_SPACING_S = 5

_SESSION = re.compile(r"session_(\d+)")
_TIME = re.compile(
    r"\s*(\d{1,2}):(\d{2})\s*([ap]m)\s+on\s+(\d{1,2})\s+([a-z]+),?\s+(\d{4})\s*", re.I
)
_FORMATS = ("%I:%M %p %d %B %Y", "%I:%M %p %d %b %Y")  # "September" or "Sep"


class LocomoError(ValueError):
    """The file is not in the LoCoMo shape; the message names the file and the place."""


def parse_session_time(text: str) -> datetime:
    """``"1:30 pm on 8 May, 2023"`` as an aware UTC datetime."""
    found = _TIME.fullmatch(text)
    if found is None:
        raise ValueError(f"{text!r} is not a time like '1:30 pm on 8 May, 2023'")
    hour, minute, ampm, day, month, year = found.groups()
    normal = f"{int(hour):02d}:{minute} {ampm.upper()} {day} {month.capitalize()} {year}"
    for layout in _FORMATS:
        try:
            parsed = datetime.strptime(normal, layout)  # noqa: DTZ007 - made aware here
        except ValueError:
            continue
        return parsed.replace(tzinfo=UTC)
    raise ValueError(f"{text!r} is not a valid date and time")


def user_id_for(stem: str, speaker: str) -> str:
    """``locomo-<file stem>-<speaker lowercased>`` (inner spaces become ``-``)."""
    return f"locomo-{stem}-{'-'.join(speaker.lower().split())}"


def _sessions(data: Mapping[str, Any], stem: str) -> list[int]:
    numbers = sorted(
        int(found.group(1))
        for key, value in data.items()
        if (found := _SESSION.fullmatch(key)) and isinstance(value, list)
    )
    if not numbers:
        raise LocomoError(f"{stem}: no session_<n> lists; is this a LoCoMo conversation file?")
    return numbers


def _content(turn: Mapping[str, Any]) -> str:
    text = str(turn.get("text") or "").strip()
    caption = str(turn.get("blip_caption") or "").strip()
    if caption:
        text = f"{text} [shares a photo: {caption}]".strip()
    return text


def _message(
    turn: Mapping[str, Any], stem: str, session: int, start: datetime, index: int
) -> ChatMessage:
    where = f"{stem}: session_{session} turn {index}"
    if not isinstance(turn, Mapping) or not turn.get("speaker") or not turn.get("dia_id"):
        raise LocomoError(f"{where}: a turn needs 'speaker' and 'dia_id'")
    try:
        return ChatMessage(
            message_id=f"{stem}-{turn['dia_id']}",
            user_id=user_id_for(stem, str(turn["speaker"])),
            conversation_id=f"{stem}-session_{session}",
            role="user",
            content=_content(turn),
            sent_at=start + timedelta(seconds=TURN_SPACING_S * index),
            metadata={"source": "locomo", "speaker": turn["speaker"], "dia_id": turn["dia_id"]},
        )
    except ValidationError as exc:
        raise LocomoError(f"{where}: {exc.errors(include_input=False)[0]['msg']}") from None


def convert(data: Mapping[str, Any], stem: str) -> Iterator[ChatMessage]:
    """The chat messages of one parsed LoCoMo file, session by session, turn by turn.

    ``stem`` is the file's name without its extension; it prefixes every id. Turns with neither
    text nor a photo caption say nothing and are skipped.

    Raises:
        LocomoError: the data is not a LoCoMo conversation (no sessions, a session without a
            date, a turn without a speaker).
    """
    if not isinstance(data, Mapping):
        raise LocomoError(f"{stem}: expected a JSON object with session_<n> lists")
    for session in _sessions(data, stem):
        raw_time = data.get(f"session_{session}_date_time")
        if not isinstance(raw_time, str):
            raise LocomoError(f"{stem}: session_{session} has no session_{session}_date_time")
        try:
            start = parse_session_time(raw_time)
        except ValueError as exc:
            raise LocomoError(f"{stem}: session_{session}_date_time: {exc}") from None
        for index, turn in enumerate(data[f"session_{session}"]):
            if isinstance(turn, Mapping) and not _content(turn):
                continue
            yield _message(turn, stem, session, start, index)
