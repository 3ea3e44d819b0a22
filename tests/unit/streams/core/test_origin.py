"""The origin header of a re-routed or forwarded copy: written, read back, dropped on replay."""

import pytest

from streams.core.origin import ORIGIN_HEADER, origin_headers, origin_of, without_origin


def test_a_copy_names_its_original_and_is_read_back_as_an_applied_key() -> None:
    headers = origin_headers("chat-messages", 3, 1234)
    assert headers == [(ORIGIN_HEADER, b"chat-messages:3:1234")]
    assert origin_of(headers) == ("origin:chat-messages:3", 1234)
    assert origin_of(dict(headers)) == ("origin:chat-messages:3", 1234)  # Faust may give a dict


@pytest.mark.parametrize("value", [b"", b"chat-messages:x:1", b"\xff:1:2", b"nocolon"])
def test_an_original_or_a_mangled_header_is_no_copy(value: bytes) -> None:
    assert origin_of([]) is None and origin_of(None) is None
    assert origin_of([(ORIGIN_HEADER, value)]) is None


def test_a_replay_drops_the_origin_and_keeps_the_rest() -> None:
    headers = [("traceparent", b"t"), *origin_headers("chat-messages", 0, 1)]
    assert without_origin(headers) == [("traceparent", b"t")]
