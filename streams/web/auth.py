"""Who may call the web views: bearer tokens in two scopes, compared in constant time. Pure."""

import hmac
from collections.abc import Iterable
from typing import Literal

from pydantic import SecretStr

__all__ = ["Scope", "authorize"]

Scope = Literal["read", "admin"]


def _matches(presented: bytes, tokens: Iterable[SecretStr]) -> bool:
    found = False
    for token in tokens:
        # Compare with every token, never stopping early, so timing tells nothing.
        found |= hmac.compare_digest(presented, token.get_secret_value().encode())
    return found


def authorize(
    header: str | None,
    need: Scope,
    *,
    read_tokens: Iterable[SecretStr],
    admin_tokens: Iterable[SecretStr],
) -> int | None:
    """None when the ``Authorization`` header grants ``need``, else the HTTP status to answer.

    401: no bearer token, or one that is not configured. 403: a read token where admin is needed.
    Admin tokens may also read. With no tokens configured every call is refused.
    """
    scheme, _, token = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return 401
    presented = token.strip().encode()
    if _matches(presented, admin_tokens):
        return None
    if _matches(presented, read_tokens):
        return None if need == "read" else 403
    return 401
