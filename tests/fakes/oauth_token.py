"""An identity provider's stand-in for ``PROFILE_STREAM_KAFKA_OAUTH_TOKEN_PROVIDER`` on the
secured local stack (`make up SECURE=1`), whose SASL listeners check OAUTHBEARER tokens with
Kafka's unsecured validator (deploy/stack.sh): an unsigned JWT, header ``{"alg": "none"}``, with
``sub`` (the principal), ``iat``, ``exp`` still ahead and ``scope``.

Hooks (``module:callable``, each called once with no arguments):

- ``tests.fakes.oauth_token:UnsecuredJwt``: a fresh token for each connection, valid for an hour.
- ``tests.fakes.oauth_token:ExpiredJwt``: well-formed, but it expired ten minutes ago.
- ``tests.fakes.oauth_token:Garbage``: a string that is no JWT at all.
- ``tests.fakes.oauth_token:Unreachable``: ``token()`` raises, as when the identity provider
  is down.
- ``tests.fakes.oauth_token:unconfigured``: the hook itself raises, as a provider missing its
  credentials at start.

Never for a real cluster: anyone can mint an unsigned token.
"""

import base64
import json
import time

from aiokafka.abc import AbstractTokenProvider

__all__ = [
    "SUBJECT",
    "ExpiredJwt",
    "Garbage",
    "Unreachable",
    "UnsecuredJwt",
    "unconfigured",
    "unsecured_jwt",
]

#: The principal the broker sees (``User:profile_stream``, as the SCRAM user).
SUBJECT = "profile_stream"
SCOPE = "profile-stream"


def _segment(part: dict[str, object]) -> str:
    raw = json.dumps(part, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unsecured_jwt(
    subject: str = SUBJECT, lifetime_s: float = 3600, now: float | None = None
) -> str:
    """``header.payload.`` with an empty signature, as the unsecured validator requires."""
    issued = int(time.time() if now is None else now)
    claims = {"sub": subject, "iat": issued, "exp": int(issued + lifetime_s), "scope": SCOPE}
    return f"{_segment({'alg': 'none'})}.{_segment(claims)}."


class UnsecuredJwt(AbstractTokenProvider):  # type: ignore[misc]
    """A token valid for an hour, minted for each connection."""

    async def token(self) -> str:
        return unsecured_jwt()


class ExpiredJwt(AbstractTokenProvider):  # type: ignore[misc]
    async def token(self) -> str:
        return unsecured_jwt(now=time.time() - 4200)


class Garbage(AbstractTokenProvider):  # type: ignore[misc]
    async def token(self) -> str:
        return "not-a-jwt"


class Unreachable(AbstractTokenProvider):  # type: ignore[misc]
    async def token(self) -> str:
        raise ConnectionError("identity provider https://idp.invalid/token did not answer")


def unconfigured() -> AbstractTokenProvider:
    raise LookupError("no client secret for the identity provider (IDP_CLIENT_SECRET is not set)")
