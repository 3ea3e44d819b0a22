"""Who may call the web views: bearer tokens in two scopes, and the one place that checks them.

``authorize`` is the pure decision (tokens compared in constant time). ``bearer_auth`` is the
aiohttp middleware on Faust's web app that applies it to every guarded route before the view
runs, so no view checks tokens itself.
"""

import hmac
from collections.abc import Iterable, Mapping
from typing import Literal

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from pydantic import SecretStr

from streams.web.responses import error_body

__all__ = ["Guards", "Scope", "authorize", "bearer_auth", "refusal", "scope_for"]

Scope = Literal["read", "admin"]

#: Route pattern (as given to ``app.page``) -> HTTP method -> the scope a call needs.
#: A route not listed is open; a method a listed route does not name needs admin.
Guards = Mapping[str, Mapping[str, Scope]]


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


def scope_for(request: web.Request, guards: Guards) -> Scope | None:
    """The scope ``request`` needs, None if its route is open or nothing matched it."""
    resource = request.match_info.route.resource
    if resource is None:
        # No route matched: aiohttp answers 404 or 405, with or without a token, as before.
        return None
    scopes = guards.get(resource.canonical)
    if scopes is None:
        return None
    # Fail closed: a method added to a guarded view but forgotten in its scopes is admin-only.
    return scopes.get(request.method, "admin")


def refusal(status: int) -> web.Response:
    """The answer to a call ``authorize`` refused with ``status`` (401 or 403)."""
    message = "missing or unknown bearer token" if status == 401 else "needs an admin token"
    return web.Response(
        body=error_body(message),
        content_type="application/json",
        status=status,
        headers={"WWW-Authenticate": "Bearer"},
    )


def bearer_auth(
    guards: Guards,
    *,
    read_tokens: Iterable[SecretStr],
    admin_tokens: Iterable[SecretStr],
) -> Middleware:
    """An aiohttp middleware that refuses calls to guarded routes without the scope they need."""
    reads, admins = tuple(read_tokens), tuple(admin_tokens)

    @web.middleware
    async def check_bearer(request: web.Request, handler: Handler) -> web.StreamResponse:
        need = scope_for(request, guards)
        if need is not None:
            header = request.headers.get("Authorization")
            status = authorize(header, need, read_tokens=reads, admin_tokens=admins)
            if status is not None:
                return refusal(status)
        return await handler(request)

    return check_bearer
