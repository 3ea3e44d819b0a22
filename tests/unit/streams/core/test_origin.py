"""The origin header of a re-routed or forwarded copy: sealed, read back only when a worker of
this deployment sealed it for this very copy, dropped on replay."""

from dataclasses import replace

import pytest
from pydantic import SecretStr

from streams.core.origin import (
    ORIGIN_HEADER,
    SEAL_HEADER,
    origin_headers,
    origin_of,
    without_origin,
)
from streams.core.signing import CommandSigning

SIGNING = CommandSigning((SecretStr("k" * 32),), audience="prod/chat-messages")
KEY, VALUE = b"alice", b'{"message_id":"m1"}'


def sealed() -> list[tuple[str, bytes]]:
    return origin_headers("chat-messages", 3, 1234, key=KEY, value=VALUE, signing=SIGNING)


def test_a_copy_names_its_original_and_is_read_back_as_an_applied_key() -> None:
    headers = sealed()
    assert headers[0] == (ORIGIN_HEADER, b"chat-messages:3:1234")
    assert [name for name, _ in headers] == [ORIGIN_HEADER, SEAL_HEADER]
    assert origin_of(headers, KEY, VALUE, SIGNING) == ("origin:chat-messages:3", 1234)
    # Faust may give a dict
    assert origin_of(dict(headers), KEY, VALUE, SIGNING) == ("origin:chat-messages:3", 1234)


def test_an_origin_no_worker_sealed_for_this_copy_is_ignored() -> None:
    headers = sealed()
    assert origin_of(headers[:1], KEY, VALUE, SIGNING) is None  # a producer's header alone
    assert origin_of(headers, b"bob", VALUE, SIGNING) is None  # moved to another key
    assert origin_of(headers, KEY, VALUE + b" ", SIGNING) is None  # or another message
    forged = [(ORIGIN_HEADER, b"chat-messages:3:99999"), headers[1]]
    assert origin_of(forged, KEY, VALUE, SIGNING) is None  # another offset
    other = replace(SIGNING, audience="staging/chat-messages")
    assert origin_of(headers, KEY, VALUE, other) is None  # another deployment
    assert origin_of(headers, KEY, VALUE, replace(SIGNING, keys=())) is None  # no keys here
    assert origin_of(headers + headers[1:], KEY, VALUE, SIGNING) is None  # two seals


def test_rotation_an_origin_sealed_with_any_listed_key_is_read() -> None:
    rotated = replace(SIGNING, keys=(SecretStr("n" * 32), *SIGNING.keys))
    assert origin_of(sealed(), KEY, VALUE, rotated) == ("origin:chat-messages:3", 1234)


def test_without_keys_a_copy_carries_its_origin_unsealed() -> None:
    headers = origin_headers(
        "chat-messages", 0, 1, key=KEY, value=VALUE, signing=replace(SIGNING, keys=())
    )
    assert headers == [(ORIGIN_HEADER, b"chat-messages:0:1")]


@pytest.mark.parametrize("value", [b"", b"chat-messages:x:1", b"\xff:1:2", b"nocolon"])
def test_an_original_or_a_mangled_header_is_no_copy(value: bytes) -> None:
    assert origin_of([], KEY, VALUE, SIGNING) is None
    assert origin_of(None, KEY, VALUE, SIGNING) is None
    seal = origin_headers("t", 0, 0, key=KEY, value=VALUE, signing=SIGNING)[1]
    assert origin_of([(ORIGIN_HEADER, value), seal], KEY, VALUE, SIGNING) is None


def test_a_replay_drops_the_origin_and_its_seal_and_keeps_the_rest() -> None:
    headers = [("traceparent", b"t"), *sealed()]
    assert without_origin(headers) == [("traceparent", b"t")]
