"""Faust's web server: middleware around every request, and the methods a view is mounted under."""

from typing import Any, cast

import faust

__all__ = ["add_web_middleware", "mounted_methods"]


def add_web_middleware(app: faust.App, middleware: Any) -> None:
    """Run ``middleware`` (an aiohttp middleware) around every request to ``app``'s web server.
    Driver-specific: Faust's web API has no middleware hook; its aiohttp driver exposes the
    ``aiohttp.web.Application`` as ``app.web.web_app``. Call before the worker starts: aiohttp
    freezes the middleware list when the server starts."""
    cast(Any, app.web).web_app.middlewares.append(middleware)


def mounted_methods(view: type[faust.web.View]) -> frozenset[str]:
    """The HTTP methods Faust mounts ``view`` under: HEAD (answered by GET) and each method
    the view defines over Faust's ``View``. Faust decides this in ``View.get_methods``, on an
    instance; a view is built without its app and web server to ask it (Faust's
    ``View.__init__`` only stores them)."""
    return frozenset(view(cast(Any, None), cast(Any, None)).get_methods())
