"""A profile schema given as a JSON Schema file, turned into a pydantic model. Pure.

Covers what profiles need: a flat object whose properties are strings, integers, numbers,
booleans, or arrays of those. Every validation keyword in the file is enforced
(``streams.core.jsonschema_keywords`` says how) or refused at start, naming the keyword and
its JSON Pointer: nothing is silently ignored. A property without a ``default`` is optional
(null); a default the property's own keywords refuse is refused too, since a new profile
starts with it. ``title`` names the schema and ``x-schema-version`` (default 1) versions it.
"""

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, TypeAdapter, ValidationError, create_model

from schemas.profile import ProfileModel
from streams.core.jsonschema_keywords import (
    SchemaRefused,
    check_keywords,
    list_constraints,
    scalar_type,
    type_of,
)
from streams.errors import ConfigError

__all__ = ["model_from_json_schema"]

#: What the root object may say; ``additionalProperties`` only ``false`` (profiles refuse
#: fields they do not declare, whatever the file says).
_ROOT = frozenset(
    {"$schema", "$id", "$comment", "title", "description", "type", "properties", "required"}
    | {"additionalProperties", "x-schema-version"}
)


def _pointer(name: str) -> str:
    """The JSON Pointer of a property (RFC 6901 escapes ``~`` and ``/``)."""
    return "/properties/" + name.replace("~", "~0").replace("/", "~1")


def _checked_default(annotation: Any, default: Any, pointer: str) -> Any:
    try:
        TypeAdapter(annotation).validate_python(default)
    except ValidationError as exc:
        reason = exc.errors()[0]["msg"].removeprefix("Value error, ")
        raise SchemaRefused(
            f"{pointer}/default",
            f"the default {default!r} breaks the property's own rules ({reason}); a new "
            "profile starts with it, so give a default that fits",
        ) from None
    return default


def _field(name: str, spec: Any, required: bool) -> tuple[Any, Any]:
    pointer = _pointer(name)
    if not isinstance(spec, Mapping):
        raise SchemaRefused(pointer, "a property must be a JSON object")
    description = spec.get("description", "")
    if type_of(spec, pointer) == "array":
        check_keywords(spec, pointer, "array")
        if not isinstance(spec.get("items"), Mapping):
            raise SchemaRefused(f"{pointer}/items", "an array needs 'items' with a type")
        item = scalar_type(spec["items"], f"{pointer}/items")
        counts, checks = list_constraints(spec, pointer)
        annotation = Annotated[list[item], Field(**counts), *checks]  # type: ignore[valid-type]
        default = _checked_default(annotation, list(spec.get("default", [])), pointer)
        return annotation, Field(default_factory=default.copy, description=description)
    scalar = scalar_type(spec, pointer)
    if required and "default" not in spec:
        # Kept required, so the worker refuses the schema at start and names the field.
        return scalar, Field(..., description=description)
    default = _checked_default(scalar | None, spec.get("default"), pointer)
    return scalar | None, Field(default, description=description)


def _check_root(schema: Any) -> set[str]:
    """The required property names, once the root is a flat object this converter takes."""
    if not isinstance(schema, Mapping) or schema.get("type") != "object":
        raise SchemaRefused("/type", "the schema must be an object with properties")
    if not isinstance(schema.get("properties"), Mapping):
        raise SchemaRefused("/properties", "the schema must be an object with properties")
    for keyword in schema:
        if keyword not in _ROOT and not keyword.startswith("x-"):
            raise SchemaRefused(
                f"/{keyword}", f"keyword {keyword!r} is not enforced by profile-stream at the root"
            )
    if schema.get("additionalProperties", False) is not False:
        raise SchemaRefused(
            "/additionalProperties",
            "a profile refuses fields it does not declare; leave it out or set it to false",
        )
    required = schema.get("required", [])
    unknown = [name for name in required if name not in schema["properties"]]
    if unknown:
        raise SchemaRefused("/required", f"names no property: {unknown}")
    return set(required)


def model_from_json_schema(path: Path, setting: str) -> type[ProfileModel]:
    """The profile model described by the JSON Schema at ``path``.

    Raises:
        ConfigError: the file cannot be read, or a keyword is not enforced, or a value cannot
            be used; the message names ``setting``, the file, the JSON Pointer and the keyword.
    """
    where = f"{setting}={str(path)!r}"
    try:
        schema = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{where} cannot be read: {exc}") from exc
    try:
        required = _check_root(schema)
        fields = {
            name: _field(name, spec, name in required)
            for name, spec in schema["properties"].items()
        }
    except SchemaRefused as exc:
        raise ConfigError(f"{where}: {exc}") from None
    title = str(schema.get("title") or path.stem)
    model: type[ProfileModel] = create_model(  # type: ignore[call-overload]
        title.replace("-", "_"), __base__=ProfileModel, **fields
    )
    model.schema_name = title
    model.schema_version = int(schema.get("x-schema-version", 1))
    return model
