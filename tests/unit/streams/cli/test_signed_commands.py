"""The admin tools sign the commands they send: `migrate`, and `dlq replay` of a command letter
(only when its signature verifies, so a replay never turns a forged command into a real one)."""

import base64
import time
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from pydantic import SecretStr

from schemas import DeadLetter
from streams.cli import main
from streams.cli.dlq import Letter, _prepare, _record
from streams.cli.migrate import _command
from streams.core.codecs import COMMAND_HEADER, decode_command
from streams.core.signing import (
    SIGNATURE_HEADER,
    CommandSigning,
    command_headers,
    require_authentic_command,
    verify,
)
from streams.settings import Settings

OLD, NEW = SecretStr("o" * 32), SecretStr("n" * 32)
#: The deployment these tools sign for (the default settings': app id and input topic).
AUDIENCE = "profile-stream/chat-messages"
A_DAY_AGO = time.time() - 86_400


def signing(*keys: SecretStr) -> CommandSigning:
    return CommandSigning(keys, AUDIENCE)


FORGET = orjson.dumps(
    {
        "command_id": "c1",
        "type": "forget",
        "user_id": "alice",
        "requested_at": "2026-01-01T00:00:00Z",
    }
)


def command_letter(offset: int, headers: list[tuple[str, bytes]]) -> Letter:
    body = DeadLetter.model_validate(
        {
            "reason_code": "invalid_command",
            "reason": "bad",
            "source_topic": "chat-messages",
            "source_partition": 3,
            "source_offset": offset,
            "key_b64": base64.b64encode(b"alice").decode(),
            "value_b64": base64.b64encode(FORGET).decode(),
            "failed_at": "2026-01-01T12:00:00Z",
            "command": True,
            "headers": [{"name": n, "value_b64": base64.b64encode(v).decode()} for n, v in headers],
        }
    )
    return Letter(0, offset, body)


def signatures(headers: Any) -> list[bytes]:
    return [v for n, v in headers if n == SIGNATURE_HEADER]


def test_a_command_signed_with_a_listed_key_is_signed_again_now_with_the_first() -> None:
    old = command_headers(b"alice", FORGET, signing(OLD), A_DAY_AGO)  # too old for a worker
    letter = command_letter(1, [("traceparent", b"t"), *old])
    record = _record(letter.body, signing(NEW, OLD))
    assert record is not None and record.value == FORGET
    assert len(signatures(record.headers)) == 1 and ("traceparent", b"t") in record.headers
    require_authentic_command(record.key, record.value, record.headers, signing(NEW), time.time())


def test_an_unsigned_or_forged_command_is_held_back_unless_the_operator_vouches() -> None:
    unsigned = command_letter(1, [COMMAND_HEADER])
    forged_headers = command_headers(b"alice", FORGET, signing(SecretStr("x" * 32)), time.time())
    forged = command_letter(2, forged_headers)
    for letter in (unsigned, forged):
        assert _record(letter.body, signing(NEW)) is None
        vouched = _record(letter.body, signing(NEW), sign_unverified=True)
        assert vouched is not None
        assert verify(vouched.key, vouched.value, vouched.headers, signing(NEW))
    ready, held = _prepare([unsigned, forged], signing(NEW), sign_unverified=False)
    assert (ready, held) == ([], [unsigned, forged])


def test_without_keys_a_command_goes_with_the_signature_it_had() -> None:
    headers = command_headers(b"alice", FORGET, signing(OLD), A_DAY_AGO)
    record = _record(command_letter(1, headers).body)
    assert record is not None and signatures(record.headers) == signatures(headers)


def test_migrate_signs_each_command_for_its_subject() -> None:
    settings = Settings(command_keys=(NEW.get_secret_value(),))
    record = _command(settings, b"team-1", datetime(2026, 1, 1, tzinfo=UTC))
    assert record.value is not None and decode_command(record.value).user_id == "team-1"
    assert COMMAND_HEADER in record.headers
    assert verify(record.key, record.value, record.headers, signing(NEW))
    assert not verify(b"team-2", record.value, record.headers, signing(NEW))


def test_migrate_without_keys_stops_before_touching_kafka(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("PROFILE_STREAM_KAFKA_BOOTSTRAP", "127.0.0.1:1")  # nothing listens
    result = CliRunner().invoke(main, ["migrate"])
    assert result.exit_code == 1 and "PROFILE_STREAM_COMMAND_KEYS is not set" in result.output
