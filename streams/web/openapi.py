"""The OpenAPI 3.1 document of the workers' views, built from the route table itself.

Each route of ``streams.web.views.TABLE`` becomes a path, each method Faust mounts for its
view an operation (described in ``streams.web.operations``), its token scope a security
requirement, and its bodies JSON Schemas of the contracts in ``schemas.http``. A worker builds
it once when its views are mounted and serves it at ``/openapi.json``, with its own user
profile model in place of the default one.

``python -m streams.web.openapi [FILE]`` writes the document of the default profile model
(``docs/openapi.json``, which a unit test keeps equal to what the workers serve).
"""

import json
import re
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from faust.web import View
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from schemas.http import ProfileAnswer
from streams.faust_glue import mounted_methods
from streams.version import installed_version
from streams.web.auth import Scope
from streams.web.operations import OPERATIONS, PATH_PARAMETERS, Answer, Operation

__all__ = ["OPENAPI", "SECURITY", "build", "operation_for", "render"]

#: The OpenAPI version the document follows (its schemas are JSON Schema 2020-12).
OPENAPI = "3.1.0"
#: The name of the bearer-token security scheme.
SECURITY = "bearerAuth"
#: The order operations are listed in, within a path.
_ORDER = ("GET", "HEAD", "PATCH", "DELETE", "POST", "PUT", "OPTIONS", "SEARCH")
_REF = "#/components/schemas/{model}"
_Mode = Literal["validation", "serialization"]

RouteLike = tuple[str, type[View], Mapping[str, Scope]]

_ABOUT: dict[str, Any] = {
    "summary": "User profiles kept up to date from chat messages on Kafka.",
    "description": "Every worker serves these views and routes a read to the worker that owns "
    "the profile. Reads need a token of PROFILE_STREAM_READ_TOKENS or "
    "PROFILE_STREAM_ADMIN_TOKENS; corrections and forgets an admin token "
    "(`x-profile-stream-scope` says which). The events on Kafka are described by the JSON "
    "Schemas in schemas/jsonschema/.",
    "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
}
_TAGS = [
    {"name": "profiles", "description": "Read, correct and forget profiles."},
    {"name": "operations", "description": "Probes, metrics and this document."},
]
_SECURITY_SCHEMES = {
    SECURITY: {
        "type": "http",
        "scheme": "bearer",
        "description": "A read token (PROFILE_STREAM_READ_TOKENS) or an admin token "
        "(PROFILE_STREAM_ADMIN_TOKENS).",
    }
}


def operation_for(view: type[View], method: str) -> Operation:
    """The description of ``view``'s ``method`` (a bound subclass finds its view's).

    Raises:
        LookupError: the method is mounted but not described; add it to ``OPERATIONS``.
    """
    for cls in view.__mro__:
        if (cls, method.lower()) in OPERATIONS:
            return OPERATIONS[(cls, method.lower())]
    raise LookupError(
        f"{view.__name__}.{method.lower()} is served but not described: add it to "
        "streams.web.operations.OPERATIONS"
    )


def _scope(scopes: Mapping[str, Scope], method: str) -> Scope | None:
    # As streams.web.auth.scope_for decides: an unlisted method of a guarded route is admin.
    return scopes.get(method, "admin") if scopes else None


class _Builder:
    """The operations of one document, their bodies referring to the components."""

    def __init__(self, profile_model: type[BaseModel], operations: Iterable[Operation]) -> None:
        self.profile_model = profile_model
        wanted: dict[tuple[type[BaseModel], _Mode], None] = {(profile_model, "validation"): None}
        for described in operations:
            if described.body is not None:
                wanted[(described.body, "validation")] = None
            for answer in described.answers.values():
                if isinstance(answer.body, type):
                    wanted[(answer.body, "serialization")] = None
        # One pass over every model, so pydantic names each component once, without clashes.
        self.refs, top = models_json_schema(list(wanted), ref_template=_REF)
        self.schemas = dict(sorted(top.get("$defs", {}).items()))

    def content(self, answer: Answer, typed_profile: bool) -> dict[str, Any]:
        if answer.body is None:
            return {}
        if isinstance(answer.body, str):
            schema: dict[str, Any] = {"type": "string"}
            if answer.body == "application/json":
                schema = {"type": "object"}
            return {"content": {answer.body: {"schema": schema}}}
        schema = dict(self.refs[(answer.body, "serialization")])
        if typed_profile and answer.body is ProfileAnswer:
            # The user's profile follows the deployment's profile model, not just any object.
            profile = {"profile": self.refs[(self.profile_model, "validation")]}
            schema = {"allOf": [schema, {"properties": profile}]}
        return {"content": {"application/json": {"schema": schema}}}

    def operation(self, path: str, view: type[View], method: str, scope: Scope | None) -> Any:
        described = operation_for(view, "get" if method == "HEAD" else method)
        answers = dict(described.answers)
        if scope is not None:
            answers[401] = Answer("No bearer token, or one this worker does not know.")
        if scope == "admin":
            answers[403] = Answer("A read token, where an admin token is needed.")
        operation: dict[str, Any] = {
            "operationId": described.operation_id,
            "summary": described.summary,
            "tags": list(described.tags),
        }
        if method == "HEAD":
            operation["operationId"] = "head" + described.operation_id.removeprefix("get")
            operation["summary"] = f"Headers only: {described.summary}"
        if described.description:
            operation["description"] = described.description
        operation["parameters"] = _parameters(path, described)
        if described.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {"schema": self.refs[(described.body, "validation")]}
                },
            }
        operation["responses"] = {
            str(status): {"description": answer.description}
            | ({} if method == "HEAD" else self.content(answer, described.typed_profile))
            for status, answer in sorted(answers.items())
        }
        operation["security"] = [{SECURITY: []}] if scope else []
        if scope:
            operation["x-profile-stream-scope"] = scope
        return operation


def _parameters(path: str, described: Operation) -> list[dict[str, Any]]:
    names = re.findall(r"{(\w+)}", path)
    missing = [name for name in names if name not in PATH_PARAMETERS]
    if missing:
        raise LookupError(f"{path}: describe {missing} in streams.web.operations.PATH_PARAMETERS")
    found: list[dict[str, Any]] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "description": PATH_PARAMETERS[name],
            "schema": {"type": "string", "minLength": 1},
        }
        for name in names
    ]
    for query in described.query:
        schema: dict[str, Any] = dict(query.schema or {})
        if not schema:
            schema = {"type": "array", "items": {"type": "string", "enum": list(query.values)}}
        parameter: dict[str, Any] = {
            "name": query.name,
            "in": "query",
            "description": query.description,
        }
        if schema.get("type") == "array":
            # A comma-separated list (`?include=provenance,usage`): form style, not exploded.
            parameter |= {"style": "form", "explode": False}
        found.append(parameter | {"schema": schema})
    return found


def _documented(methods: frozenset[str]) -> list[str]:
    """The mounted methods that are operations, in document order: Faust mounts HEAD on every
    view, but without a GET it only answers 405."""
    kept = [m for m in methods if m != "HEAD" or "GET" in methods]
    return sorted(kept, key=_ORDER.index)


def build(
    routes: Iterable[RouteLike],
    *,
    profile_model: type[BaseModel],
    version: str | None = None,
) -> dict[str, Any]:
    """The document of ``routes`` (path, view, scopes), in their order.

    Args:
        routes: the route table (``streams.web.views.TABLE``, bound or not).
        profile_model: the user kind's profile model, the type of a user's ``profile``.
        version: ``info.version``; the installed profile-stream's when not given.

    Raises:
        LookupError: a mounted method or a path parameter is not described.
    """
    table = [
        (path, view, method, _scope(scopes, method))
        for path, view, scopes in routes
        for method in _documented(mounted_methods(view))
    ]
    builder = _Builder(
        profile_model,
        [
            operation_for(view, "get" if method == "HEAD" else method)
            for _, view, method, _ in table
        ],
    )
    paths: dict[str, Any] = {}
    for path, view, method, scope in table:
        paths.setdefault(path, {})[method.lower()] = builder.operation(path, view, method, scope)
    return {
        "openapi": OPENAPI,
        "info": {"title": "profile-stream worker", "version": version or installed_version()}
        | _ABOUT,
        "tags": _TAGS,
        "paths": paths,
        "components": {"schemas": builder.schemas, "securitySchemes": _SECURITY_SCHEMES},
    }


def render(document: Mapping[str, Any]) -> str:
    """The document as written to disk and served: indented, a trailing newline."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _main(argv: list[str]) -> None:
    from schemas import UserProfile
    from streams.web.views import TABLE

    text = render(build(TABLE, profile_model=UserProfile))
    if argv:
        Path(argv[0]).write_text(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    _main(sys.argv[1:])
