"""Signed operator commands: an HMAC-SHA256 that only workers and admin tools can make.

Commands (forget, correct, migrate, flush, revert) ride the input topic beside chat messages,
so anyone who may produce chat messages could otherwise send them (DESIGN.md invariant 6). A
command carries a header ``profile-stream-signature: v2:<signed at, ms>:<64 hex digits>``, an
HMAC-SHA256 under a key from ``PROFILE_STREAM_COMMAND_KEYS`` of:

- a fixed domain label (a signature made for anything else never verifies here),
- the deployment it is meant for (``PROFILE_STREAM_COMMAND_AUDIENCE``, by default the app id
  and input topic): a command signed for staging is refused by production, even under a
  shared key,
- when it was signed (the worker's or admin tool's clock, in the header),
- the record key (the user id: a command cannot be moved to another user's key),
- the record value (the command itself: its id, type, user, operations and ``requested_at``),

each length-prefixed, so no two inputs share the signed bytes. Other headers are not signed:
the type header only says "decode as a command", and a signed value decoded as a chat message
is refused anyway.

Replays. A signed command copied off the topic (or the dead letters) and produced again is
authentic; two checks bound what it can do. A worker refuses a command signed more than
``PROFILE_STREAM_COMMAND_MAX_AGE_S`` ago, or further ahead of its clock than
``PROFILE_STREAM_MAX_FUTURE_SKEW_S`` (:func:`require_authentic_command`), and the subject's
record keeps when the last command applied to it was signed, refusing any command signed at
or before that (``streams.core.commands``). A redelivery (the same offset) is still skipped
as applied, so a replay of the topic after a crash decides the same; a command that waited
longer than the age in Kafka (the workers were down) is dead-lettered, and ``dlq replay``
signs it again. Signatures of the release before (``v1:``, no deployment, no time) are
refused by workers; ``dlq replay`` signs them again when they verify (:func:`verify`).

Key rotation: ``keys`` is a list; the first signs, any verifies. Add the new key second, roll the
workers, move it first, roll the admin tools and workers, then drop the old one.

Pure: no I/O, no clock (callers pass the time); comparisons in constant time
(``hmac.compare_digest``, against every key).
"""

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr

from streams.core.codecs import COMMAND_HEADER
from streams.errors import ConfigError, InvalidEvent

__all__ = [
    "KEYS_SETTING",
    "SIGNATURE_HEADER",
    "CommandSigning",
    "command_headers",
    "command_is_authentic",
    "require_authentic_command",
    "resign",
    "sealed",
    "signature_header",
    "signed_at_ms",
    "verify",
]

#: The header that carries a command's signature.
SIGNATURE_HEADER = "profile-stream-signature"
#: The setting that holds the keys, named in every refusal.
KEYS_SETTING = "PROFILE_STREAM_COMMAND_KEYS"
_AGE_SETTING = "PROFILE_STREAM_COMMAND_MAX_AGE_S"

_V1, _V2 = b"v1:", b"v2:"
_DOMAIN_V1 = b"profile-stream operator command v1\n"
_DOMAIN = b"profile-stream operator command v2\n"

Headers = Any  # what Faust or aiokafka give: a list of (name, value) pairs, a mapping, or None


@dataclass(frozen=True)
class CommandSigning:
    """What signs and verifies commands in one deployment (``Settings.command_signing``)."""

    #: The first signs, any verifies (PROFILE_STREAM_COMMAND_KEYS).
    keys: tuple[SecretStr, ...]
    #: The deployment a signature names (PROFILE_STREAM_COMMAND_AUDIENCE).
    audience: str
    #: How old a command a worker still applies, in seconds since it was signed.
    max_age_s: float = 3600.0
    #: How far ahead of the worker's clock a signature may be (PROFILE_STREAM_MAX_FUTURE_SKEW_S).
    max_ahead_s: float = 300.0


def sealed(secret: SecretStr, domain: bytes, parts: Iterable[bytes | None]) -> str:
    """The HMAC-SHA256 (hex) under ``secret`` of ``domain`` and ``parts``, each
    length-prefixed (``None`` apart from empty), so no two part lists share the signed bytes."""
    signed = [domain]
    for part in parts:
        signed.append(b"-" if part is None else b"+%d:%b" % (len(part), part))
    return hmac.new(
        secret.get_secret_value().encode(), b"".join(signed), hashlib.sha256
    ).hexdigest()


def _mac(
    secret: SecretStr, audience: str, at_ms: int, key: bytes | None, value: bytes | None
) -> bytes:
    digest = sealed(secret, _DOMAIN, (audience.encode(), b"%d" % at_ms, key, value))
    return b"%b%d:%b" % (_V2, at_ms, digest.encode())


def _mac_v1(secret: SecretStr, key: bytes | None, value: bytes | None) -> bytes:
    return _V1 + sealed(secret, _DOMAIN_V1, (key, value)).encode()


def signature_header(
    key: bytes | None, value: bytes | None, signing: CommandSigning, now: float
) -> tuple[str, bytes]:
    """The signature header for a command record signed at ``now`` (seconds), made with the
    first key.

    Raises:
        ConfigError: no keys (the setting is not set where the command is made).
    """
    if not signing.keys:
        raise ConfigError(
            f"{KEYS_SETTING} is not set: operator commands cannot be signed, and workers refuse "
            "unsigned ones; set the same keys on the workers and the admin tools"
        )
    return SIGNATURE_HEADER, _mac(signing.keys[0], signing.audience, int(now * 1000), key, value)


def command_headers(
    key: bytes | None, value: bytes | None, signing: CommandSigning, now: float
) -> list[tuple[str, bytes]]:
    """The headers a new command record carries: the command marker and its signature."""
    return [COMMAND_HEADER, signature_header(key, value, signing, now)]


def resign(
    key: bytes | None,
    value: bytes | None,
    headers: Headers,
    signing: CommandSigning,
    now: float,
) -> list[tuple[str, bytes]]:
    """``headers`` with any signature replaced by one made at ``now`` with the first key."""
    kept = [(n, v) for n, v in _pairs(headers) if n != SIGNATURE_HEADER]
    return [*kept, signature_header(key, value, signing, now)]


def verify(
    key: bytes | None, value: bytes | None, headers: Headers, signing: CommandSigning
) -> bool:
    """Whether the record carries exactly one signature made with one of the keys over this key
    and value, for this deployment, whenever it was made; a ``v1`` signature (the release
    before) counts too. What ``dlq replay`` asks before signing a letter again; a worker asks
    more (:func:`require_authentic_command`)."""
    found = _signature(headers)
    if found is None or not signing.keys:
        return False
    if found.startswith(_V1):
        return _matches(found, [_mac_v1(k, key, value) for k in signing.keys])
    return _problem(key, value, headers, signing, now=None) is None


#: The name the admission step uses; the same check as :func:`verify`.
command_is_authentic = verify


def require_authentic_command(
    key: bytes | None,
    value: bytes | None,
    headers: Headers,
    signing: CommandSigning,
    now: float,
) -> None:
    """Pass an authentic command signed for this deployment within the age allowed at ``now``;
    refuse any other as ``invalid_command``, saying why.

    Raises:
        InvalidEvent: code ``invalid_command``: no keys are set, the signature is missing,
            malformed, repeated, of the release before, too old or ahead of ``now``, or made
            with no key over these bytes for this deployment.
    """
    problem = _problem(key, value, headers, signing, now)
    if problem is not None:
        raise InvalidEvent("invalid_command", problem)


def signed_at_ms(headers: Headers) -> int | None:
    """When the command was signed (ms since the epoch), from its ``v2`` signature; None
    without one. Read after :func:`require_authentic_command` passed."""
    found = _signature(headers)
    parsed = _parse(found) if found is not None else None
    return parsed[0] if parsed is not None else None


def _problem(
    key: bytes | None,
    value: bytes | None,
    headers: Headers,
    signing: CommandSigning,
    now: float | None,
) -> str | None:
    """Why the record is not an authentic command, or None when it is (``now`` None: of any
    age)."""
    if not signing.keys:
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
    presented = _bytes(found[0])
    if presented.startswith(_V1):
        return (
            "the command is signed the way the release before did (v1: no deployment, no "
            "time); `profile-stream dlq replay` signs it again"
        )
    parsed = _parse(presented)
    if parsed is None or not _matches(
        presented, [_mac(k, signing.audience, parsed[0], key, value) for k in signing.keys]
    ):
        return (
            f"the command's signature matches no key of {KEYS_SETTING} for this deployment "
            "(altered, forged, signed for another PROFILE_STREAM_COMMAND_AUDIENCE, or with a "
            "key no longer listed)"
        )
    return None if now is None else _too_old_or_new(parsed[0] / 1000, signing, now)


def _too_old_or_new(signed_at: float, signing: CommandSigning, now: float) -> str | None:
    if now - signed_at > signing.max_age_s:
        return (
            f"the command was signed {now - signed_at:.0f}s ago, more than {_AGE_SETTING} "
            f"({signing.max_age_s:.0f}s): a replay, or it waited too long; "
            "`profile-stream dlq replay` signs it again"
        )
    if signed_at - now > signing.max_ahead_s:
        return (
            f"the command was signed {signed_at - now:.0f}s ahead of this worker's clock "
            "(limit PROFILE_STREAM_MAX_FUTURE_SKEW_S); fix the signer's clock"
        )
    return None


def _parse(presented: bytes) -> tuple[int, bytes] | None:
    """The signing time and digest of a ``v2`` signature, None when it is not one."""
    if not presented.startswith(_V2):
        return None
    at, _, digest = presented[len(_V2) :].partition(b":")
    return (int(at), digest) if at.isdigit() and len(at) < 20 else None


def _matches(presented: bytes, candidates: list[bytes]) -> bool:
    return any([hmac.compare_digest(presented, c) for c in candidates])  # every key compared


def _signature(headers: Headers) -> bytes | None:
    found = [v for n, v in _pairs(headers) if n == SIGNATURE_HEADER]
    return _bytes(found[0]) if len(found) == 1 else None


def _bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def _pairs(headers: Headers) -> Iterable[tuple[str, Any]]:
    pairs = headers.items() if isinstance(headers, dict) else (headers or ())
    return [(str(name), value) for name, value in pairs]
