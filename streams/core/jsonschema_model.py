"""A profile schema given as a JSON Schema file, turned into a pydantic model. Pure.

Covers what profiles need: a flat object whose properties are strings (``maxLength``,
``enum``), integers or numbers (``minimum``/``maximum``), booleans, or arrays of those
(``maxItems``). A property without a ``default`` is optional (null). ``title`` names the
schema and ``x-schema-version`` (default 1) versions it.
"""

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, create_model

from schemas.profile import ProfileModel
from streams.errors import ConfigError

__all__ = ["model_from_json_schema"]

_SCALARS: dict[str, Any] = {"string": str, "integer": int, "number": float, "boolean": bool}


def _scalar(spec: dict[str, Any], where: str) -> Any:
    kind = spec.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        kind = kinds[0] if len(kinds) == 1 else None
    if "enum" in spec:
        return Literal[tuple(v for v in spec["enum"] if v is not None)]
    if kind not in _SCALARS:
        raise ConfigError(
            f"{where}: type {spec.get('type')!r} is not supported; use string, "
            "integer, number, boolean, or an array of those"
        )
    limits = {k: spec[k] for k in ("maxLength", "minimum", "maximum") if k in spec}
    rename = {"maxLength": "max_length", "minimum": "ge", "maximum": "le"}
    if not limits:
        return _SCALARS[kind]
    return Annotated[_SCALARS[kind], Field(**{rename[k]: v for k, v in limits.items()})]


def _field(name: str, spec: dict[str, Any], where: str, required: bool) -> tuple[Any, Any]:
    where = f"{where} property {name!r}"
    description = spec.get("description", "")
    if spec.get("type") == "array":
        items: Any = list.__class_getitem__(_scalar(spec.get("items", {}), where))
        default = list(spec.get("default", []))
        return items, Field(
            default_factory=default.copy, max_length=spec.get("maxItems"), description=description
        )
    if required and "default" not in spec:
        # Kept required, so the worker refuses the schema at start and names the field.
        return _scalar(spec, where), Field(..., description=description)
    return _scalar(spec, where) | None, Field(spec.get("default"), description=description)


def model_from_json_schema(path: Path, setting: str) -> type[ProfileModel]:
    """The profile model described by the JSON Schema at ``path``; errors name ``setting``."""
    where = f"{setting}={str(path)!r}"
    try:
        schema = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{where} cannot be read: {exc}") from exc
    if schema.get("type") != "object" or not isinstance(schema.get("properties"), dict):
        raise ConfigError(f"{where}: the schema must be an object with properties")
    required = set(schema.get("required", []))
    fields = {
        name: _field(name, spec, where, name in required)
        for name, spec in schema["properties"].items()
    }
    title = str(schema.get("title") or path.stem)
    model: type[ProfileModel] = create_model(  # type: ignore[call-overload]
        title.replace("-", "_"), __base__=ProfileModel, **fields
    )
    model.schema_name = title
    model.schema_version = int(schema.get("x-schema-version", 1))
    return model
