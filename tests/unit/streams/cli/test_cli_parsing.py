"""The CLI's own logic without services: line checks, dead-letter selection and rendering,
event lines, LoCoMo import of a real file, and the errors a user sees."""

import base64
import hashlib
import io
import os
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from schemas import DeadLetter, ProfileEvent
from streams.cli import main
from streams.cli.dlq import Letter, _pick, _record, _select, render
from streams.cli.messages import check_line, checked
from streams.cli.support import event_line
from streams.core.codecs import COMMAND_HEADER, decode_message
from streams.core.forget_mark import FIRST_SEEN_HEADER
from streams.core.origin import ORIGIN_HEADER, SEAL_HEADER
from streams.core.partitioning import partition_for
from streams.settings import Settings

LOCOMO = Path(__file__).resolve().parents[5] / "shared" / "data" / "locomo"
GOOD = {
    "message_id": "m1",
    "user_id": "u1",
    "role": "user",
    "content": "hello",
    "sent_at": "2026-01-01T12:00:00Z",
}


def lines(*items: dict[str, Any] | bytes) -> io.BytesIO:
    raw = [i if isinstance(i, bytes) else orjson.dumps(i) for i in items]
    return io.BytesIO(b"\n".join(raw) + b"\n")


async def test_checked_lines_keep_good_messages_and_number_the_bad_ones() -> None:
    settings = Settings(max_content_chars=10)
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    rejected: list[tuple[int, str]] = []
    source = lines(
        GOOD,
        b"not json",
        b"   ",
        GOOD | {"message_id": "m2", "role": "robot"},
        GOOD | {"message_id": "m3", "content": "x" * 11},
        GOOD | {"message_id": "m4", "sent_at": future},
        GOOD | {"message_id": "m5"},
    )

    good = [m async for m in checked(source, settings, rejected)]

    assert [m.message_id for m in good] == ["m1", "m5"]
    assert [(n, reason.split(":")[0]) for n, reason in rejected] == [
        (2, "not_json"),
        (4, "invalid_message"),
        (5, "content_too_long"),
        (6, "invalid_message"),
    ]
    assert "PROFILE_STREAM_MAX_FUTURE_SKEW_S" in rejected[-1][1]


async def test_lines_from_a_pipe_are_read_too() -> None:
    read, write = os.pipe()
    os.write(write, orjson.dumps(GOOD) + b"\n" + b"{bad\n")
    os.close(write)
    rejected: list[tuple[int, str]] = []
    with os.fdopen(read, "rb") as pipe:
        good = [m async for m in checked(pipe, Settings(), rejected)]
    assert [m.message_id for m in good] == ["m1"] and [n for n, _ in rejected] == [2]


def test_a_line_a_little_ahead_of_now_is_accepted() -> None:
    soon = (datetime.now(UTC) + timedelta(seconds=60)).isoformat()
    assert check_line(orjson.dumps(GOOD | {"sent_at": soon}), Settings()).message_id == "m1"


def letter(partition: int, offset: int, code: str = "not_json", **kw: Any) -> Letter:
    body = DeadLetter.model_validate(
        {
            "reason_code": code,
            "reason": "bad",
            "source_topic": "chat-messages",
            "source_partition": 3,
            "source_offset": 42,
            "key_b64": base64.b64encode(b"alice").decode(),
            "value_b64": base64.b64encode(b"{oops").decode(),
            "failed_at": "2026-01-01T12:00:00Z",
        }
        | kw
    )
    return Letter(partition, offset, body)


def test_a_dead_letter_is_named_by_partition_and_offset_or_an_unambiguous_offset() -> None:
    letters = [letter(0, 5), letter(1, 5), letter(1, 6)]
    assert _pick(letters, "1:5") is letters[1]
    assert _pick(letters, "6") is letters[2]
    with pytest.raises(Exception, match=r"several partitions \(0:5, 1:5\)"):
        _pick(letters, "5")
    with pytest.raises(Exception, match="no dead letter 2:9; `profile-stream dlq list`"):
        _pick(letters, "2:9")


def test_replay_selects_by_reason_and_offsets() -> None:
    letters = [letter(0, 1), letter(0, 2, "extraction_failed"), letter(1, 1, "extraction_failed")]
    assert _select(letters, "extraction_failed", ()) == letters[1:]
    assert _select(letters, None, ("0:1", "1:1")) == [letters[0], letters[2]]
    assert _select(letters, "not_json", ("0:2",)) == []


#: Where a replayed chat message says it was first taken in: the letter's source, at failed_at.
SEEN = (FIRST_SEEN_HEADER, b"chat-messages:3:42:1767268800000")


def test_replay_sends_the_original_bytes_and_marks_commands_again() -> None:
    chat = _record(letter(0, 1).body)
    assert (chat.key, chat.value, list(chat.headers)) == (b"alice", b"{oops", [SEEN])
    command = orjson.dumps(
        {
            "command_id": "c1",
            "type": "forget",
            "user_id": "alice",
            "requested_at": "2026-01-01T12:00:00Z",
        }
    )
    replayed = _record(
        letter(
            0, 2, "invalid_command", value_b64=base64.b64encode(command).decode(), command=True
        ).body
    )
    assert replayed.value == command and list(replayed.headers) == [COMMAND_HEADER]
    keyless = _record(letter(0, 3, key_b64=None).body)
    assert keyless.key is None


def test_replay_gives_back_the_original_headers_once() -> None:
    trace = {"name": "traceparent", "value_b64": base64.b64encode(b"\x00t-1").decode()}
    marked = {"name": COMMAND_HEADER[0], "value_b64": base64.b64encode(COMMAND_HEADER[1]).decode()}
    plain = _record(letter(0, 1, headers=[trace]).body)
    assert list(plain.headers) == [("traceparent", b"\x00t-1"), SEEN]
    command = _record(letter(0, 2, headers=[trace, marked], command=True).body)
    assert list(command.headers) == [("traceparent", b"\x00t-1"), COMMAND_HEADER]
    origin = {"name": ORIGIN_HEADER, "value_b64": base64.b64encode(b"chat-messages:3:9").decode()}
    seal = {"name": SEAL_HEADER, "value_b64": base64.b64encode(b"ab12").decode()}
    rerouted = _record(letter(0, 3, headers=[origin, seal, trace]).body)
    assert list(rerouted.headers) == [("traceparent", b"\x00t-1"), SEEN]  # a new input, not a copy


def test_a_replayed_copy_keeps_where_its_message_was_first_taken_in() -> None:
    first = (FIRST_SEEN_HEADER, b"chat-messages:1:7:1767268700000")
    header = {"name": first[0], "value_b64": base64.b64encode(first[1]).decode()}
    replayed = _record(letter(0, 3, headers=[header]).body)
    assert list(replayed.headers) == [first]  # the original's, not the copy's place


def test_values_show_as_text_when_utf8_else_as_hex() -> None:
    assert render('{"content": "olá"}'.encode()) == '{"content": "olá"}'
    assert render(b"\xff\xfe") == "(not UTF-8, 2 bytes, hex) fffe"


def test_an_event_is_one_line_with_version_type_fields_and_sources() -> None:
    event = ProfileEvent.model_validate(
        {
            "event_id": "alice:2",
            "type": "updated",
            "user_id": "alice",
            "version": 2,
            "profile": {},
            "changes": [
                {"field": "name", "op": "set", "new": "Alice", "evidence": {"message_id": "m1"}},
                {
                    "field": "languages",
                    "op": "add",
                    "new": ["es"],
                    "evidence": {"message_id": "m2"},
                },
            ],
            "source_message_ids": ["m1", "m2"],
            "updated_at": "2026-01-01T12:00:00Z",
            "schema": "UserProfile@1",
        }
    )
    assert event_line(event) == "alice v2 updated name,languages  from m1,m2"
    assert event_line(event, with_user=False) == "v2 updated name,languages  from m1,m2"


@pytest.mark.skipif(not LOCOMO.is_dir(), reason=f"the shared LoCoMo data is not at {LOCOMO}")
def test_import_locomo_of_a_real_file_gives_valid_ordered_messages_per_speaker(
    runner: CliRunner, tmp_path: Path
) -> None:
    source = LOCOMO / "26.json"
    out = tmp_path / "26.jsonl"

    result = runner.invoke(main, ["import-locomo", str(source), "-o", str(out)])

    assert result.exit_code == 0, result.output
    data = orjson.loads(source.read_bytes())
    turns = sum(len(v) for k, v in data.items() if k.startswith("session_") and isinstance(v, list))
    messages = [
        decode_message(line, max_content_chars=8_000) for line in out.read_bytes().splitlines()
    ]
    assert len(messages) == turns
    assert f"wrote {turns} messages of 2 users from 1 files" in result.output
    times: dict[str, list[datetime]] = defaultdict(list)
    for m in messages:
        times[m.user_id].append(m.sent_at)
    speakers = {data["speaker_a"], data["speaker_b"]}
    assert set(times) == {f"locomo-26-{s.lower()}" for s in speakers}
    for sent in times.values():
        assert all(a < b for a, b in zip(sent, sent[1:], strict=False))
    assert len({m.message_id for m in messages}) == turns


def test_import_locomo_refuses_a_file_of_another_shape(runner: CliRunner, tmp_path: Path) -> None:
    bad = tmp_path / "chat.json"
    bad.write_text('{"messages": []}')
    result = runner.invoke(main, ["import-locomo", str(bad)])
    assert result.exit_code == 1
    assert "no session_<n> lists; is this a LoCoMo conversation file?" in result.output
    assert "Traceback" not in result.output


def test_publish_to_an_unreachable_broker_names_it_and_exits_3(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROFILE_STREAM_KAFKA_BOOTSTRAP", "127.0.0.1:1")
    result = runner.invoke(main, ["publish", "-"], input=orjson.dumps(GOOD))
    assert result.exit_code == 3
    assert "cannot reach Kafka at 127.0.0.1:1" in result.output and "make up" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_publish_help_states_the_exit_statuses(runner: CliRunner) -> None:
    result = runner.invoke(main, ["publish", "--help"])
    assert "0 every line sent, 1 some lines rejected" in " ".join(result.output.split())


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["forget", "alice"], "no admin token: pass --token"),
        (["dlq", "replay"], "choose what to replay: --reason CODE, --offset OFFSET or --all"),
        (["tail", "--timeout", "0"], "not in the range x>0"),
        (["get", "alice", "--as-of", "yesterday"], "--as-of must be an RFC 3339 time"),
        (["get", "alice", "--as-of", "2026-11-25T10:00:00"], "with an offset"),
        (["get", "alice", "--version", "0"], "not in the range x>=1"),
        (["get", "alice", "--version", "2", "--as-of", "2026-11-25T10:00:00Z"], "not both"),
        (["revert", "alice"], "Missing option '--version'"),
        (["revert", "alice", "--version", "2", "--lock"], "--lock needs the fields to lock"),
        (["show-source", "alice", "location"], "is not an event id such as alice:3"),
    ],
)
def test_usage_errors_say_what_to_do(runner: CliRunner, args: list[str], problem: str) -> None:
    result = runner.invoke(main, args)
    assert result.exit_code == 2
    assert problem in result.output


def _truncated_letter(offset: int) -> Letter:
    whole = b"{" + b"x" * 999
    return letter(
        0,
        offset,
        value_b64=base64.b64encode(whole[:300]).decode(),
        truncated=True,
        original_size=len(whole),
        original_sha256=hashlib.sha256(whole).hexdigest(),
    )


def test_dlq_show_says_a_letter_is_truncated_and_where_the_whole_record_is(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("streams.cli.dlq._read_all", lambda: [_truncated_letter(7)])
    result = runner.invoke(main, ["dlq", "show", "0:7"])
    assert result.exit_code == 0, result.output
    assert "truncated:   the value was 1000 bytes (sha256 " in result.output
    assert "only its first 300 bytes are kept, so it cannot be replayed" in result.output
    assert "chat-messages partition 3 offset 42" in result.output


def test_dlq_list_marks_a_truncated_letter(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("streams.cli.dlq._read_all", lambda: [_truncated_letter(7), letter(0, 8)])
    lines = runner.invoke(main, ["dlq", "list"]).output.splitlines()
    assert lines[0].endswith("[truncated]") and not lines[1].endswith("[truncated]")


def test_dlq_replay_refuses_a_truncated_letter_and_replays_the_others(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[Any] = []
    monkeypatch.setattr("streams.cli.dlq._read_all", lambda: [_truncated_letter(7), letter(0, 8)])
    monkeypatch.setattr("streams.cli.dlq.produce", lambda records, **kw: records)
    monkeypatch.setattr("streams.cli.dlq.run", sent.extend)
    result = runner.invoke(main, ["dlq", "replay", "--all"])
    assert result.exit_code == 0, result.output
    assert "refused 0:7: the value was 1000 bytes" in result.output
    assert "cannot be replayed" in result.output
    assert [record.value for record in sent] == [b"{oops"]
    assert "re-published 1 dead letters" in result.output


def test_history_of_one_user_reads_only_the_partition_of_its_key(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[Any] = []

    async def eight(topic: str, **kw: Any) -> list[int]:
        return list(range(8))

    async def records(topic: str, **kw: Any) -> Any:
        asked.append(kw)
        return
        yield

    monkeypatch.setattr("streams.cli.events.partitions_of", eight)
    monkeypatch.setattr("streams.cli.events.read_to_end", records)
    result = runner.invoke(main, ["history", "alice"])
    assert "no events for 'alice'" in result.output
    [kw] = asked
    assert kw["partitions"] == [partition_for(b"alice", 8)] == [5] and kw["key"] == b"alice"
