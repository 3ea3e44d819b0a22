"""The contracts' JSON Schemas, for producers and consumers in other languages.

``python -m schemas.export`` rewrites the files in ``schemas/jsonschema/``; a unit test fails
when they drift from the models.
"""

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from .evaluation import EvalDataset, EvalReport
from .events import DeadLetter, ProfileEvent
from .messages import ChatMessage, ProfileCommand
from .patch import ProfilePatch
from .profile import UserProfile

__all__ = ["CONTRACTS", "DIALECT", "EXPORT_DIR", "schema_id", "render", "write"]

#: Pydantic writes JSON Schema draft 2020-12; saying so lets a registry or validator read the
#: file as it is, without guessing the draft.
DIALECT = "https://json-schema.org/draft/2020-12/schema"

EXPORT_DIR = Path(__file__).resolve().parent / "jsonschema"
CONTRACTS: dict[str, type[BaseModel]] = {
    "chat-message": ChatMessage,
    "profile-command": ProfileCommand,
    "profile-event": ProfileEvent,
    "profile-patch": ProfilePatch,
    "dead-letter": DeadLetter,
    "user-profile": UserProfile,
    "eval-dataset": EvalDataset,
    "eval-report": EvalReport,
}


def schema_id(name: str) -> str:
    """The ``$id`` of a contract's schema: a URN, stable across releases (a registry keeps the
    versions; the project owns no domain for an ``https`` id to resolve under)."""
    return f"urn:profile-stream:schema:{name}"


def render(name: str) -> str:
    """Contract ``name``'s schema as written to disk: ``$schema`` and ``$id`` (so it can be
    registered with a Schema Registry as it is), stable key order, a trailing newline."""
    schema: dict[str, Any] = {
        "$schema": DIALECT,
        "$id": schema_id(name),
        **CONTRACTS[name].model_json_schema(by_alias=True, mode="serialization"),
    }
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write(directory: Path = EXPORT_DIR) -> list[Path]:
    """Write every contract's schema to ``directory``; returns the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in CONTRACTS:
        path = directory / f"{name}.schema.json"
        path.write_text(render(name))
        paths.append(path)
    return paths


if __name__ == "__main__":
    for written in write():
        sys.stdout.write(f"wrote {written}\n")
