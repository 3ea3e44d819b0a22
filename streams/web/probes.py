"""The views an orchestrator, a scraper or a client generator calls, without a token:
liveness, readiness, metrics, and the OpenAPI document of the views.

``/readyz`` is what a load balancer should watch: a worker that is still joining the group or
restoring its tables would answer profile reads with 503 anyway.
"""

from typing import ClassVar, cast

import faust
from faust.web import Request, Response, View

from schemas.http import Liveness, Readiness
from streams import metrics
from streams.faust_glue import tables_recovered
from streams.web.responses import RETRY_AFTER, error, json

__all__ = ["Health", "Metrics", "OpenAPIDocument", "Ready"]


class Health(View):
    """``/healthz``: the process serves HTTP."""

    async def get(self, request: Request) -> Response:
        """Always 200."""
        return json(self, Liveness(status="ok").model_dump())


class Ready(View):
    """``/readyz``: the worker has partitions, is not rebalancing, and its tables are restored."""

    async def get(self, request: Request) -> Response:
        """200 when ready, else 503 with ``Retry-After``."""
        app = cast(faust.App, self.app)  # Faust types it as the AppT interface
        assigned = bool(app.consumer.assignment()) if app.consumer else False
        if not (assigned and not app.rebalancing and tables_recovered(app)):
            return error(
                self, 503, "not ready: joining the group or recovering tables", RETRY_AFTER
            )
        return json(self, Readiness(status="ready").model_dump())


class Metrics(View):
    """``/metrics``: the Prometheus registry in text format."""

    async def get(self, request: Request) -> Response:
        """The counters; no label names a user, so scrapers need no token."""
        return self.bytes(metrics.render(), content_type="text/plain")


class OpenAPIDocument(View):
    """``/openapi.json``: the OpenAPI 3.1 document of this worker's routes
    (``streams.web.openapi``), built once when the views are mounted."""

    document: ClassVar[bytes]

    async def get(self, request: Request) -> Response:
        """The document as JSON; it holds no secret and names no user."""
        return self.bytes(self.document, content_type="application/json")
