"""A profile model seen field by field: what each field accepts, checked without the whole model.

Pure: imports pydantic and ``schemas`` only.
"""

import importlib
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import orjson
from pydantic import TypeAdapter, ValidationError

from schemas.profile import ProfileModel
from streams.core.jsonschema_model import model_from_json_schema
from streams.errors import ConfigError

__all__ = ["FieldSpec", "ProfileSchema", "load_profile_schema"]


@dataclass(frozen=True)
class FieldSpec:
    """One field: its full validator and, for lists, the validator of one item."""

    name: str
    description: str
    is_list: bool
    adapter: TypeAdapter[Any]
    item_adapter: TypeAdapter[Any] | None
    default: Any

    def check(self, value: Any) -> Any:
        """The value in JSON form if the field accepts it, else :class:`ValueError`."""
        return _checked(self.adapter, value)

    def check_item(self, value: Any) -> Any:
        """One list item in JSON form if the field accepts it, else :class:`ValueError`."""
        assert self.item_adapter is not None  # noqa: S101 - only called for list fields
        return _checked(self.item_adapter, value)


def _checked(adapter: TypeAdapter[Any], value: Any) -> Any:
    try:
        return adapter.dump_python(adapter.validate_python(value), mode="json")
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ValueError(first["msg"].removeprefix("Value error, ")) from None


def _list_item(annotation: Any) -> Any | None:
    """The item type if ``annotation`` is a list (optionally ``| None``), else None."""
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        inner = [a for a in get_args(annotation) if a is not type(None)]
        return _list_item(inner[0]) if len(inner) == 1 else None
    if origin is list:
        (item,) = get_args(annotation) or (Any,)
        return item
    return None


class ProfileSchema:
    """The profile model a deployment uses, with per-field validators built once."""

    def __init__(
        self,
        model: type[ProfileModel],
        *,
        instructions: str = "",
        source_roles: tuple[str, ...] = ("user",),
    ) -> None:
        self.model = model
        #: What the profile describes, for the model; empty means one user of the chat.
        self.instructions = instructions
        #: Whose turns are a source of facts; other turns are context only.
        self.source_roles = source_roles
        self.schema_id = f"{model.schema_name}/v{model.schema_version}"
        empty = model().model_dump(mode="json")
        self.fields: dict[str, FieldSpec] = {}
        for name, info in model.model_fields.items():
            item = _list_item(info.annotation)
            self.fields[name] = FieldSpec(
                name=name,
                description=info.description or "",
                is_list=item is not None,
                adapter=TypeAdapter(info.rebuild_annotation()),
                item_adapter=TypeAdapter(item) if item is not None else None,
                default=empty[name],
            )
        self._empty = orjson.dumps(empty)

    def empty(self) -> dict[str, Any]:
        """A new profile with every field at its default (a fresh copy: lists and all).

        Read back from its JSON: every merge starts from it, and ``copy.deepcopy`` of the
        defaults cost several times more (bench/README.md)."""
        profile: dict[str, Any] = orjson.loads(self._empty)
        return profile

    def json_schema(self) -> dict[str, Any]:
        """The model's JSON Schema, as shown to the model and exported for other languages."""
        return self.model.model_json_schema()


def load_profile_schema(
    path: str,
    *,
    setting: str = "PROFILE_STREAM_PROFILE_MODEL",
    instructions: str = "",
    source_roles: tuple[str, ...] = ("user",),
) -> ProfileSchema:
    """Load ``module:Class`` (a :class:`ProfileModel` subclass) or a JSON Schema file
    (``*.json``); errors name the setting."""
    module_name, _, attr = path.partition(":")
    if path.endswith(".json"):
        # Its ConfigError already says which keyword of the file is wrong, not how to import.
        model: Any = model_from_json_schema(Path(path), setting)
    else:
        try:
            model = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError, ValueError) as exc:
            raise ConfigError(
                f"{setting}={path!r} cannot be imported ({exc}); "
                "give it as 'package.module:ClassName'"
            ) from exc
    if not (isinstance(model, type) and issubclass(model, ProfileModel)):
        raise ConfigError(f"{setting}={path!r} is not a subclass of schemas.ProfileModel")
    try:
        model()
    except ValidationError as exc:
        missing = ", ".join(str(e["loc"][0]) for e in exc.errors() if e["loc"])
        raise ConfigError(
            f"{setting}={path!r}: every field needs a default so a new "
            f"profile can start empty; these have none: {missing}"
        ) from exc
    return ProfileSchema(model, instructions=instructions, source_roles=source_roles)
