"""Operator commands are signed over their deployment, time, key and value; only an authentic,
recent one for this deployment passes."""

import hashlib
import hmac
from dataclasses import replace
from typing import Any

import pytest
from pydantic import SecretStr

from streams.core.codecs import COMMAND_HEADER
from streams.core.signing import (
    SIGNATURE_HEADER,
    CommandSigning,
    command_headers,
    command_is_authentic,
    require_authentic_command,
    resign,
    signature_header,
    signed_at_ms,
    verify,
)
from streams.errors import ConfigError, InvalidEvent

OLD = SecretStr("o" * 32)
NEW = SecretStr("n" * 32)
KEY = b"alice"
VALUE = b'{"command_id":"c1","type":"forget","user_id":"alice","requested_at":"2026-01-01T00:00Z"}'
NOW = 1_767_268_800.0  # 2026-01-01T12:00Z
PROD = CommandSigning((NEW,), audience="prod/chat-messages", max_age_s=3600, max_ahead_s=300)


def keyed(*keys: SecretStr) -> CommandSigning:
    return replace(PROD, keys=keys)


def signed(signing: CommandSigning = PROD, at: float = NOW) -> list[tuple[str, bytes]]:
    return command_headers(KEY, VALUE, signing, at)


def refusal(
    key: bytes | None, value: bytes | None, headers: Any, signing: CommandSigning = PROD
) -> str:
    with pytest.raises(InvalidEvent) as info:
        require_authentic_command(key, value, headers, signing, NOW)
    assert info.value.code == "invalid_command"
    return info.value.reason


def test_a_signed_command_round_trips() -> None:
    headers = signed()
    assert headers[0] == COMMAND_HEADER
    name, value = headers[1]
    assert name == SIGNATURE_HEADER and value.startswith(b"v2:%d:" % (NOW * 1000))
    assert verify(KEY, VALUE, headers, PROD) and command_is_authentic(KEY, VALUE, headers, PROD)
    require_authentic_command(KEY, VALUE, headers, PROD, NOW)  # passes: no exception
    assert verify(KEY, VALUE, dict(headers), PROD)  # Faust may give a mapping
    assert signed_at_ms(headers) == NOW * 1000


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
    assert not verify(key, value, headers, PROD)
    assert "matches no key of PROFILE_STREAM_COMMAND_KEYS" in refusal(key, value, headers)


def test_tampered_or_repeated_signature_headers_are_refused() -> None:
    name, good = signed()[1]
    flipped = good[:-1] + (b"0" if good[-1:] != b"0" else b"1")
    later = good.replace(b"%d" % (NOW * 1000), b"%d" % (NOW * 1000 + 1))  # moved in time
    for headers in (
        [COMMAND_HEADER, (name, flipped)],
        [COMMAND_HEADER, (name, later)],
        [COMMAND_HEADER, (name, good.upper())],
        [COMMAND_HEADER, (name, b"v3:" + good[3:])],
        [COMMAND_HEADER, (name, b"")],
        [COMMAND_HEADER, (name, None)],
    ):
        assert not verify(KEY, VALUE, headers, PROD), headers
    twice = [COMMAND_HEADER, (name, good), (name, flipped)]
    assert "2 profile-stream-signature headers" in refusal(KEY, VALUE, twice)


def test_a_signature_with_another_key_is_refused() -> None:
    assert not verify(KEY, VALUE, signed(keyed(SecretStr("x" * 32))), PROD)


def test_a_command_signed_for_another_deployment_is_refused_under_the_same_key() -> None:
    staging = replace(PROD, audience="staging/chat-messages")
    headers = signed(staging)
    assert verify(KEY, VALUE, headers, staging) and not verify(KEY, VALUE, headers, PROD)
    assert "PROFILE_STREAM_COMMAND_AUDIENCE" in refusal(KEY, VALUE, headers)


def test_a_command_older_than_the_age_allowed_is_refused_saying_how_to_send_it_again() -> None:
    require_authentic_command(KEY, VALUE, signed(at=NOW - 3600), PROD, NOW)  # the limit: in
    reason = refusal(KEY, VALUE, signed(at=NOW - 3601))
    assert "PROFILE_STREAM_COMMAND_MAX_AGE_S" in reason and "dlq replay" in reason
    assert verify(KEY, VALUE, signed(at=NOW - 86_400), PROD)  # authentic still: replay re-signs


def test_a_command_signed_ahead_of_the_workers_clock_is_refused() -> None:
    require_authentic_command(KEY, VALUE, signed(at=NOW + 300), PROD, NOW)
    assert "PROFILE_STREAM_MAX_FUTURE_SKEW_S" in refusal(KEY, VALUE, signed(at=NOW + 301))


def test_a_signature_of_the_release_before_is_refused_by_workers_and_re_signed_by_replay() -> None:
    """v1 signed only the key and value: no deployment, no time."""
    domain = b"profile-stream operator command v1\n"
    signed_bytes = domain + b"+%d:%b+%d:%b" % (len(KEY), KEY, len(VALUE), VALUE)
    digest = hmac.new(NEW.get_secret_value().encode(), signed_bytes, hashlib.sha256).hexdigest()
    v1 = [COMMAND_HEADER, (SIGNATURE_HEADER, b"v1:" + digest.encode())]
    assert "dlq replay" in refusal(KEY, VALUE, v1)
    assert verify(KEY, VALUE, v1, PROD)  # dlq replay signs it again
    assert not verify(KEY, VALUE.replace(b"c1", b"c2"), v1, PROD)
    assert signed_at_ms(v1) is None


def test_rotation_first_key_signs_any_key_verifies() -> None:
    by_old = signed(keyed(OLD))
    assert verify(KEY, VALUE, by_old, keyed(NEW, OLD))  # during rotation: the old still verifies
    assert not verify(KEY, VALUE, by_old, keyed(NEW))  # once dropped, it does not
    assert signed(keyed(NEW, OLD)) == signed(keyed(NEW))  # the first key signs
    assert verify(KEY, VALUE, signed(keyed(NEW, OLD)), keyed(OLD, NEW))


def test_a_missing_signature_is_refused_saying_how_to_send_commands() -> None:
    for headers in ([COMMAND_HEADER], [], None, {}):
        assert not verify(KEY, VALUE, headers, PROD)
    reason = refusal(KEY, VALUE, [COMMAND_HEADER])
    assert reason.startswith("unsigned command") and SIGNATURE_HEADER in reason


def test_without_keys_every_command_is_refused_naming_the_setting() -> None:
    reason = refusal(KEY, VALUE, signed(), keyed())
    assert "PROFILE_STREAM_COMMAND_KEYS" in reason
    assert not verify(KEY, VALUE, signed(), keyed())
    with pytest.raises(ConfigError, match="PROFILE_STREAM_COMMAND_KEYS is not set"):
        signature_header(KEY, VALUE, keyed(), NOW)


def test_no_refusal_shows_a_key() -> None:
    secret = "a-very-secret-command-key-0123456789"
    for headers in ([COMMAND_HEADER], signed()):
        assert secret not in refusal(KEY, VALUE, headers, keyed(SecretStr(secret)))


def test_resign_replaces_the_signature_and_keeps_other_headers() -> None:
    headers = [("traceparent", b"t-1"), *signed(keyed(OLD), at=NOW - 86_400)]
    again = resign(KEY, VALUE, headers, keyed(NEW), NOW)
    assert again[:2] == [("traceparent", b"t-1"), COMMAND_HEADER]
    assert [n for n, _ in again].count(SIGNATURE_HEADER) == 1
    require_authentic_command(KEY, VALUE, again, PROD, NOW)  # new key, signed now
