"""Operator commands are signed over their key and value; only an authentic one passes."""

from typing import Any

import pytest
from pydantic import SecretStr

from streams.core.codecs import COMMAND_HEADER
from streams.core.signing import (
    SIGNATURE_HEADER,
    command_headers,
    command_is_authentic,
    require_authentic_command,
    resign,
    signature_header,
    verify,
)
from streams.errors import ConfigError, InvalidEvent

OLD = SecretStr("o" * 32)
NEW = SecretStr("n" * 32)
KEY = b"alice"
VALUE = b'{"command_id":"c1","type":"forget","user_id":"alice","requested_at":"2026-01-01T00:00Z"}'


def signed(keys: tuple[SecretStr, ...] = (NEW,)) -> list[tuple[str, bytes]]:
    return command_headers(KEY, VALUE, keys)


def refusal(key: bytes | None, value: bytes | None, headers: Any, keys: Any) -> str:
    with pytest.raises(InvalidEvent) as info:
        require_authentic_command(key, value, headers, keys)
    assert info.value.code == "invalid_command"
    return info.value.reason


def test_a_signed_command_round_trips() -> None:
    headers = signed()
    assert headers[0] == COMMAND_HEADER
    name, value = headers[1]
    assert name == SIGNATURE_HEADER and value.startswith(b"v1:") and len(value) == 3 + 64
    assert verify(KEY, VALUE, headers, (NEW,)) and command_is_authentic(KEY, VALUE, headers, [NEW])
    require_authentic_command(KEY, VALUE, headers, (NEW,))  # passes: no exception
    assert verify(KEY, VALUE, dict(headers), (NEW,))  # Faust may give a mapping


@pytest.mark.parametrize(
    ("key", "value"),
    [
        (KEY, VALUE.replace(b"forget", b"correct")),  # another command
        (KEY, VALUE + b" "),  # even one byte more
        (b"bob", VALUE),  # moved to another user's key
        (None, VALUE),  # key dropped
        (KEY, None),
        # the boundary between key and value is signed too
        (KEY + VALUE[:1], VALUE[1:]),
    ],
)
def test_a_tampered_key_or_value_is_refused(key: bytes | None, value: bytes | None) -> None:
    headers = signed()
    assert not verify(key, value, headers, (NEW,))
    assert "matches no key of PROFILE_STREAM_COMMAND_KEYS" in refusal(key, value, headers, (NEW,))


def test_tampered_or_repeated_signature_headers_are_refused() -> None:
    name, good = signed()[1]
    flipped = good[:-1] + (b"0" if good[-1:] != b"0" else b"1")
    for headers in (
        [COMMAND_HEADER, (name, flipped)],
        [COMMAND_HEADER, (name, good.upper())],
        [COMMAND_HEADER, (name, b"v2:" + good[3:])],
        [COMMAND_HEADER, (name, b"")],
        [COMMAND_HEADER, (name, None)],
    ):
        assert not verify(KEY, VALUE, headers, (NEW,)), headers
    twice = [COMMAND_HEADER, (name, good), (name, flipped)]
    assert "2 profile-stream-signature headers" in refusal(KEY, VALUE, twice, (NEW,))


def test_a_signature_with_another_key_is_refused() -> None:
    assert not verify(KEY, VALUE, signed((SecretStr("x" * 32),)), (NEW,))


def test_rotation_first_key_signs_any_key_verifies() -> None:
    by_old = signed((OLD,))
    assert verify(KEY, VALUE, by_old, (NEW, OLD))  # during rotation: the old key still verifies
    assert not verify(KEY, VALUE, by_old, (NEW,))  # once dropped, it does not
    assert signed((NEW, OLD)) == signed((NEW,))  # the first key signs
    assert verify(KEY, VALUE, signed((NEW, OLD)), (OLD, NEW))


def test_a_missing_signature_is_refused_saying_how_to_send_commands() -> None:
    for headers in ([COMMAND_HEADER], [], None, {}):
        assert not verify(KEY, VALUE, headers, (NEW,))
    reason = refusal(KEY, VALUE, [COMMAND_HEADER], (NEW,))
    assert reason.startswith("unsigned command") and SIGNATURE_HEADER in reason


def test_without_keys_every_command_is_refused_naming_the_setting() -> None:
    reason = refusal(KEY, VALUE, signed(), ())
    assert "PROFILE_STREAM_COMMAND_KEYS" in reason
    with pytest.raises(ConfigError, match="PROFILE_STREAM_COMMAND_KEYS is not set"):
        signature_header(KEY, VALUE, ())


def test_no_refusal_shows_a_key() -> None:
    secret = "a-very-secret-command-key-0123456789"
    for headers in ([COMMAND_HEADER], signed()):
        assert secret not in refusal(KEY, VALUE, headers, (SecretStr(secret),))


def test_resign_replaces_the_signature_and_keeps_other_headers() -> None:
    headers = [("traceparent", b"t-1"), *signed((OLD,))]
    again = resign(KEY, VALUE, headers, (NEW,))
    assert again[:2] == [("traceparent", b"t-1"), COMMAND_HEADER]
    assert [n for n, _ in again].count(SIGNATURE_HEADER) == 1
    assert verify(KEY, VALUE, again, (NEW,))
