"""Signed operator commands: an HMAC-SHA256 that only workers and admin tools can make.

Commands (forget, correct, migrate) ride the input topic beside chat messages, so anyone who may
produce chat messages could otherwise send them (DESIGN.md invariant 6). A command carries a
header ``profile-stream-signature: v1:<64 hex digits>``, an HMAC-SHA256 under a key from
``PROFILE_STREAM_COMMAND_KEYS`` of:

- a fixed domain label (a signature made for anything else never verifies here),
- the record key (the user id: a command cannot be moved to another user's key),
- the record value (the command itself: its id, type, user, operations and ``requested_at``),

each length-prefixed, so no two (key, value) pairs share the signed bytes. Other headers are not
signed: the type header only says "decode as a command", and a signed value decoded as a chat
message is refused anyway.

What it does not do: refuse a replay. A signed command copied off the topic and produced again is
authentic; it is the same command (same id), which the worker's record of applied ids absorbs
while the id is recent. A timestamp or nonce would only help if it were checked against a clock
or a store, and either makes a replay of the topic (after a crash, or from dead letters) decide
differently from the first run; so none is signed. Reading the input topic is the operator's
and chat apps' right; if it must not let anyone re-send an old command, keep a per-user command
watermark in the record (not done here).

Key rotation: ``keys`` is a list; the first signs, any verifies. Add the new key second, roll the
workers, move it first, roll the admin tools and workers, then drop the old one.

Pure: no I/O; comparisons in constant time (``hmac.compare_digest``, against every key).
"""

import hashlib
import hmac
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import SecretStr

from streams.core.codecs import COMMAND_HEADER
from streams.errors import ConfigError, InvalidEvent

__all__ = [
    "KEYS_SETTING",
    "SIGNATURE_HEADER",
    "command_headers",
    "command_is_authentic",
    "require_authentic_command",
    "resign",
    "signature_header",
    "verify",
]

#: The header that carries a command's signature.
SIGNATURE_HEADER = "profile-stream-signature"
#: The setting that holds the keys, named in every refusal.
KEYS_SETTING = "PROFILE_STREAM_COMMAND_KEYS"

_VERSION = b"v1:"
_DOMAIN = b"profile-stream operator command v1\n"

Headers = Any  # what Faust or aiokafka give: a list of (name, value) pairs, a mapping, or None


def _signed_bytes(key: bytes | None, value: bytes | None) -> bytes:
    parts = [_DOMAIN]
    for part in (key, value):
        parts.append(b"-" if part is None else b"+%d:%b" % (len(part), part))
    return b"".join(parts)


def _mac(secret: SecretStr, key: bytes | None, value: bytes | None) -> bytes:
    digest = hmac.new(secret.get_secret_value().encode(), _signed_bytes(key, value), hashlib.sha256)
    return _VERSION + digest.hexdigest().encode()


def signature_header(
    key: bytes | None, value: bytes | None, keys: Sequence[SecretStr]
) -> tuple[str, bytes]:
    """The signature header for a command record, made with the first of ``keys``.

    Raises:
        ConfigError: ``keys`` is empty (the setting is not set where the command is made).
    """
    if not keys:
        raise ConfigError(
            f"{KEYS_SETTING} is not set: operator commands cannot be signed, and workers refuse "
            "unsigned ones; set the same keys on the workers and the admin tools"
        )
    return SIGNATURE_HEADER, _mac(keys[0], key, value)


def command_headers(
    key: bytes | None, value: bytes | None, keys: Sequence[SecretStr]
) -> list[tuple[str, bytes]]:
    """The headers a new command record carries: the command marker and its signature."""
    return [COMMAND_HEADER, signature_header(key, value, keys)]


def resign(
    key: bytes | None, value: bytes | None, headers: Headers, keys: Sequence[SecretStr]
) -> list[tuple[str, bytes]]:
    """``headers`` with any signature replaced by one made with the first of ``keys``."""
    kept = [(n, v) for n, v in _pairs(headers) if n != SIGNATURE_HEADER]
    return [*kept, signature_header(key, value, keys)]


def verify(
    key: bytes | None, value: bytes | None, headers: Headers, keys: Sequence[SecretStr]
) -> bool:
    """Whether the record carries exactly one signature, made with one of ``keys`` over this
    key and value."""
    return _problem(key, value, headers, keys) is None


#: The name the admission step uses; the same check as :func:`verify`.
command_is_authentic = verify


def require_authentic_command(
    key: bytes | None, value: bytes | None, headers: Headers, keys: Sequence[SecretStr]
) -> None:
    """Pass an authentic command; refuse any other as ``invalid_command``, saying why.

    Raises:
        InvalidEvent: code ``invalid_command``: no keys are set, the signature is missing,
            malformed, repeated, or made with no key of ``keys`` over these bytes.
    """
    problem = _problem(key, value, headers, keys)
    if problem is not None:
        raise InvalidEvent("invalid_command", problem)


def _problem(
    key: bytes | None, value: bytes | None, headers: Headers, keys: Sequence[SecretStr]
) -> str | None:
    """Why the record is not an authentic command, or None when it is."""
    if not keys:
        return (
            f"commands are refused: this worker has no {KEYS_SETTING}; set it (the same keys "
            "as the admin tools) and replay the command from the dead letters"
        )
    found = [v for n, v in _pairs(headers) if n == SIGNATURE_HEADER]
    if not found:
        return (
            f"unsigned command: commands need a {SIGNATURE_HEADER} header made with "
            f"{KEYS_SETTING}; send them with the admin API or the CLI"
        )
    if len(found) > 1:
        return f"the command carries {len(found)} {SIGNATURE_HEADER} headers; one is accepted"
    presented = found[0] if isinstance(found[0], bytes) else str(found[0]).encode()
    matches = [hmac.compare_digest(presented, _mac(k, key, value)) for k in keys]
    if not any(matches):
        return (
            f"the command's signature matches no key of {KEYS_SETTING} (altered, forged, "
            "or signed with a key no longer listed)"
        )
    return None


def _pairs(headers: Headers) -> Iterable[tuple[str, Any]]:
    pairs = headers.items() if isinstance(headers, dict) else (headers or ())
    return [(str(name), value) for name, value in pairs]
