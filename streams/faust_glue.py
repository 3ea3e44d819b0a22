"""Every touch of Faust (and aiokafka) internals, in one module.

Faust 0.15.3 has no public API for a few things the worker needs; each hook here names the
private attribute it reads or overrides, and ``tests/unit/streams/test_faust_glue.py`` checks
each one against the installed Faust, so an upgrade is a one-file review.
"""

from typing import Any, cast

import faust

__all__ = ["tables_recovered"]


def tables_recovered(app: faust.App) -> bool:
    """Whether the worker finished restoring its table partitions after the last rebalance.

    Internal: ``app.tables.recovery.completed`` (an ``asyncio.Event``), no public accessor.
    """
    return bool(cast(Any, app.tables).recovery.completed.is_set())


def add_web_middleware(app: faust.App, middleware: Any) -> None:
    """Run ``middleware`` (an aiohttp middleware) around every request to ``app``'s web server.

    Driver-specific: Faust's web API has no middleware hook; its aiohttp driver exposes the
    ``aiohttp.web.Application`` as ``app.web.web_app``. Call before the worker starts: aiohttp
    freezes the middleware list when the server starts.
    """
    cast(Any, app.web).web_app.middlewares.append(middleware)


__all__ += ["add_web_middleware"]
