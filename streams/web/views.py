"""Which URL goes to which view and which token scope each method needs, and ``register_views``,
which mounts them on a worker's Faust app.

The views live in ``streams.web.profiles`` and ``streams.web.probes``; tokens are checked in
one place, the ``streams.web.auth`` middleware, from the scopes in the table below; the
OpenAPI document served at ``/openapi.json`` is built from the same table
(``streams.web.openapi``).
"""

import inspect
from collections.abc import Mapping
from typing import Any, NamedTuple, TypeVar, cast

import faust
from faust.types import TableT
from faust.web import View

from streams.core.kinds import USER, Kind
from streams.faust_glue import add_web_middleware
from streams.settings import Settings
from streams.web import openapi
from streams.web.auth import Scope, bearer_auth
from streams.web.freshness import FreshReads
from streams.web.history import HistoryView, RevertView
from streams.web.probes import Health, Metrics, OpenAPIDocument, Ready
from streams.web.profiles import FlushView, KindView, ProfileView, PromptView, RefreshView
from streams.web.reader import ProfileReader

__all__ = ["OPEN", "READ", "READ_OR_ADMIN", "TABLE", "Route", "register_views", "routes"]

_V = TypeVar("_V", bound=View)

# HEAD is answered by the view's GET (Faust's View.head), so it needs what GET needs.
READ: Mapping[str, Scope] = {"GET": "read", "HEAD": "read"}
READ_OR_ADMIN: Mapping[str, Scope] = {**READ, "PATCH": "admin", "DELETE": "admin"}
OPEN: Mapping[str, Scope] = {}
ADMIN_POST: Mapping[str, Scope] = {"POST": "admin"}
#: A refresh is a read: it costs at most one model call, and only when messages are buffered.
READ_POST: Mapping[str, Scope] = {"POST": "read"}


class Route(NamedTuple):
    """One URL pattern, the view serving it, and the scope each of its methods needs."""

    path: str
    view: type[View]
    scopes: Mapping[str, Scope]


#: Every route a worker serves, in matching order, its views not yet bound to their
#: dependencies (``routes`` binds them). The OpenAPI document is built from this table.
TABLE: tuple[Route, ...] = (
    Route("/profiles/{user_id}", ProfileView, READ_OR_ADMIN),
    # Before the kind route, so a user's prompt, flush, history or revert is never taken for a
    # kind named by a user id.
    Route("/profiles/{user_id}/prompt", PromptView, READ),
    Route("/profiles/{user_id}/flush", FlushView, ADMIN_POST),
    Route("/profiles/{user_id}/refresh", RefreshView, READ_POST),
    Route("/profiles/{user_id}/history", HistoryView, READ),
    Route("/profiles/{user_id}/revert", RevertView, ADMIN_POST),
    Route("/profiles/{kind}/{subject}", KindView, READ),
    Route("/healthz", Health, OPEN),
    Route("/metrics", Metrics, OPEN),  # counters only: no label names a user
    Route("/readyz", Ready, OPEN),
    Route("/openapi.json", OpenAPIDocument, OPEN),  # no secret, no user: a generator's input
)


def routes(
    readers: dict[str, ProfileReader],
    commands: faust.TopicT,
    settings: Settings,
    fresh: FreshReads,
) -> tuple[Route, ...]:
    """``TABLE``, each view bound to its dependencies."""
    user = readers[USER]
    document = openapi.render(openapi.build(TABLE, profile_model=user.kind.schema.model))
    command = {"commands": commands, "signing": settings.command_signing}
    dependencies: dict[type[View], dict[str, Any]] = {
        ProfileView: {
            "reader": user,
            "max_body": settings.max_request_bytes,
            "fresh": fresh,
            **command,
        },
        RefreshView: {"reader": user, "fresh": fresh},
        PromptView: {"reader": user},
        HistoryView: {"reader": user},
        RevertView: {"reader": user, "max_body": settings.max_request_bytes, **command},
        FlushView: command,
        KindView: {"readers": readers},
        OpenAPIDocument: {"document": document.encode()},
    }
    return tuple(
        route._replace(view=_bound(route.view, **dependencies.get(route.view, {})))
        for route in TABLE
    )


def register_views(
    app: faust.App,
    kinds: Mapping[str, tuple[Kind, TableT[bytes, bytes]]],
    commands: faust.TopicT,
    settings: Settings,
    *,
    fresh: FreshReads,
) -> None:
    """Mount the routes of ``TABLE`` (``/profiles/...``, the probes, ``/metrics`` and
    ``/openapi.json``) on ``app``.

    Args:
        app: the worker's Faust app, before it starts.
        kinds: by kind name, the kind and its profile table; must include ``user``.
        commands: the topic DELETE and PATCH send their commands to.
        settings: the tokens, the command keys, the partition count, the PATCH body limit and
            the forward's timeout.
        fresh: the user kind's waits for freshness (``?wait_for``, ``/refresh``).
    """
    readers = {
        name: ProfileReader(
            app, kind, table, settings.partitions, proxy_timeout_s=settings.proxy_timeout_s
        )
        for name, (kind, table) in kinds.items()
    }
    table = routes(readers, commands, settings, fresh)
    for route in table:
        app.page(route.path)(route.view)
    guards = {route.path: route.scopes for route in table if route.scopes}
    add_web_middleware(
        app,
        bearer_auth(guards, read_tokens=settings.read_tokens, admin_tokens=settings.admin_tokens),
    )


def _bound(view: type[_V], **dependencies: Any) -> type[_V]:
    """A subclass of ``view`` with ``dependencies`` as class attributes, named like ``view``.

    A subclass per app, so two apps in one process (tests) never share a view's dependencies,
    and ``app.page`` never writes on the module's classes.

    Raises:
        TypeError: ``dependencies`` are not exactly the attributes ``view`` declares.
    """
    declared = set(inspect.get_annotations(view))
    if declared != set(dependencies):
        # A misspelt dependency would otherwise fail as an AttributeError on the first request.
        raise TypeError(f"{view.__name__} takes {sorted(declared)}, not {sorted(dependencies)}")
    return cast(type[_V], type(view.__name__, (view,), dependencies))
