"""The JSON answers the views give: a body, or ``{"error": ...}`` with a status.

Built through Faust's ``View.bytes`` with orjson, so every view (and the auth middleware, via
``error_body``) answers ``application/json`` bytes the same way.
"""

from collections.abc import Mapping
from typing import Any

import orjson
from faust.web import Response, View

from schemas.http import ErrorAnswer

__all__ = ["RETRY_AFTER", "error", "error_body", "json"]

#: Sent with every 503: rebalances and recoveries usually settle within seconds.
RETRY_AFTER: Mapping[str, str] = {"Retry-After": "1"}


def json(
    view: View, body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """``body`` as JSON."""
    return view.bytes(
        orjson.dumps(body),
        content_type="application/json",
        status=status,
        headers=dict(headers or {}),
    )


def error_body(message: str) -> bytes:
    """The JSON of an error answer."""
    return orjson.dumps(ErrorAnswer(error=message).model_dump())


def error(
    view: View, status: int, message: str, headers: Mapping[str, str] | None = None
) -> Response:
    """An error answer: ``{"error": message}`` with ``status``."""
    return json(view, ErrorAnswer(error=message).model_dump(), status, headers)
